// The gateway's admin listener, its own handler beside the data path (loopback only):
// GET /metrics (Prometheus text), /metrics.json, /healthz, and /upstreams — {"revision": the
// routing table's, "in_flight": {instance id: requests}}, what the control plane waits on before
// it stops an instance.
//
//   Admin admin{proxy};
//   admin.set_server(server);   // /upstreams asks each of its threads for their counts, and
//                               // /metrics tells what its connections hold
//   server.serve_port_with(admin_port, admin);
//
// Thread safety: as http::Handler; the counts are read on the thread that keeps them.
#pragma once

#include <vector>

#include <boost/asio/io_context.hpp>

#include "squadron/http/server.hpp"

namespace squadron::gateway {

class Proxy;

class Admin final : public http::Handler {
 public:
  explicit Admin(const Proxy& proxy) : proxy_(proxy) {}
  // The server's I/O threads' io_contexts, by index, before it runs.
  void set_contexts(std::vector<boost::asio::io_context*> contexts) {
    contexts_ = std::move(contexts);
  }
  // The server the gateway runs on, before it runs: its contexts, and its connections' memory.
  void set_server(http::Server& server) {
    std::vector<boost::asio::io_context*> contexts;
    for (std::size_t i = 0; i < server.threads(); ++i) contexts.push_back(&server.context(i));
    set_contexts(std::move(contexts));
    server_ = &server;
  }

  bool handle(http::Request& req, http::Response& res, std::size_t worker) override;
  boost::asio::awaitable<void> handle_async(http::Request& req, http::Response& res,
                                            std::size_t worker) override;
  void on_rejected(int, std::size_t) noexcept override {}

 private:
  const Proxy& proxy_;
  std::vector<boost::asio::io_context*> contexts_;
  const http::Server* server_ = nullptr;
};

}  // namespace squadron::gateway
