// The control API of a running fleet, served on `control.listen`: REST + JSON under /api/v1,
// documented in docs/control-api.md. Reads are open (the listener is loopback by default);
// every POST needs `Authorization: Bearer <token>` (the token `up` writes to .squadron/token).
//
//   ControlApi api{fleet, registry, token, [&] { fleet.down([&] { server.stop(1s); }); }};
//   http::Server server{{.host = "127.0.0.1", .port = 9900, .threads = 1}, api};
//
// Thread safety: one I/O thread, the fleet's own (the server runs on the fleet's io_context).
#pragma once

#include <functional>
#include <string>

#include "squadron/control/fleet.hpp"
#include "squadron/control/scaling.hpp"
#include "squadron/control/traffic.hpp"
#include "squadron/http/router.hpp"
#include "squadron/http/server.hpp"
#include "squadron/registry/registry.hpp"

namespace squadron::control {

class ControlApi final : public http::Handler {
 public:
  ControlApi(Fleet& fleet, registry::Registry& registry, std::string token,
             std::function<void()> on_down);
  ~ControlApi() override;

  bool handle(http::Request& req, http::Response& res, std::size_t worker) override;
  boost::asio::awaitable<void> handle_async(http::Request& req, http::Response& res,
                                            std::size_t worker) override;
  void on_rejected(int, std::size_t) noexcept override {}

  // How long a long-poll (`watch?since=`, `events?since=&wait=`) waits at most; SSE streams
  // send a comment this often so that proxies and clients see the stream alive.
  std::chrono::milliseconds max_wait = std::chrono::seconds(30);
  std::chrono::milliseconds keepalive = std::chrono::seconds(15);
  // The gateway's traffic per service (GET /api/v1/metrics); nullptr: the fleet has no gateway.
  const Traffic* traffic = nullptr;
  // The autoscaler's state per service (in the service's JSON as "autoscale"); may be nullptr.
  Scaling* scaling = nullptr;

 private:
  enum Route : std::size_t;
  bool authorized(const http::Request& req) const;
  // A service as the API shows it: the fleet's view, its latest traffic, its autoscaler.
  boost::json::object service_view(const ServiceSpec& spec) const;
  http::Response scale(http::Request& req);
  http::Response deploy(http::Request& req);
  http::Response apply(http::Request& req);
  http::Response logs(http::Request& req);

  Fleet& fleet_;
  registry::Registry& reg_;
  std::string token_;
  std::function<void()> on_down_;
  http::Router router_;
};

}  // namespace squadron::control
