// The gateway's request handler: routes each request by Host and path prefix to a service,
// picks a ready instance (least request, power of two choices), and forwards the request over a
// pooled keep-alive connection, retrying idempotent requests on another instance when one
// cannot be reached, resets or answers 503.
//
//   Proxy proxy{{.threads = 2}};
//   proxy.publish(table);                  // from the watch follower, any thread
//   http::Server server{config, proxy};    // the same thread count
//
// Thread safety: publish() from any thread; the Handler calls on the server's I/O threads,
// each with its own balancer and connection pool.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "squadron/core/address.hpp"
#include "squadron/gateway/metrics.hpp"
#include "squadron/gateway/route_table.hpp"
#include "squadron/http/server.hpp"
#include "squadron/resilience/token_bucket.hpp"

namespace squadron::gateway {

// Timeouts, retries, the breaker and ejection are per service (route_table.hpp's Policy, from
// the manifest's `proxy:`); this is what is the gateway's own.
struct ProxyConfig {
  std::size_t threads = 1;  // must equal the server's
  std::size_t max_idle_per_endpoint = 256;
  // Listener port -> service: every request arriving on that port goes to that service (the
  // stable per-service address given to instances as SQUADRON_<NAME>_URL), routes aside.
  std::vector<std::pair<std::uint16_t, std::string>> internal;
  // Listener port of the admin endpoints (GET /metrics, /metrics.json, /healthz), meant for
  // loopback; 0: none.
  std::uint16_t admin_port = 0;
  // Asks the control plane to wake a service scaled to zero (a request waits for it). Called on
  // an I/O thread, at most once a second per waiting request; must not block.
  std::function<void(const std::string& service)> wake;
  // Requests one I/O thread holds for services waking up; beyond: 503 at once.
  int max_held_per_thread = 1024;
  // Peers whose X-Forwarded-For is believed (addresses or CIDR blocks: "10.0.0.0/8", "::1"):
  // what they say comes before their own address. From any other peer the header is replaced
  // by the peer's address (Envoy's use_remote_address).
  std::vector<std::string> trusted_proxies;
};

class Proxy final : public http::Handler {
 public:
  explicit Proxy(ProxyConfig config);
  ~Proxy() override;

  // Replaces the routing table (routes and ready endpoints); requests in flight keep theirs.
  void publish(std::shared_ptr<const RouteTable> table);
  std::shared_ptr<const RouteTable> table() const;
  const Metrics& metrics() const noexcept { return metrics_; }
  // The admin listener's port, once bound (before the server runs).
  void set_admin_port(std::uint16_t port) noexcept { config_.admin_port = port; }
  // The front door's port: requests there are routed by Host and path, never by port.
  void set_front_port(std::uint16_t port) noexcept { front_port_ = port; }
  // The server's I/O threads' io_contexts, by index (before it runs): GET /upstreams asks each
  // thread for its requests in flight on its own thread.
  // Whether `address` (a peer's) is one of the trusted proxies.
  bool trusts(std::string_view address) const;
  void set_contexts(std::vector<boost::asio::io_context*> contexts) {
    contexts_ = std::move(contexts);
  }

  bool handle(http::Request& req, http::Response& res, std::size_t worker) override;
  boost::asio::awaitable<void> handle_async(http::Request& req, http::Response& res,
                                            std::size_t worker) override;
  void on_rejected(int, std::size_t) noexcept override {}

  struct Worker;
  struct Snapshot;

 private:
  const Snapshot& current(std::size_t worker);
  std::optional<RouteMatch> resolve(const RouteTable& table, const http::Request& req) const;
  void admin(const http::Request& req, http::Response& res) const;
  // GET /upstreams on the admin listener: {"revision": the routing table's, "in_flight":
  // {instance id: requests}} — what the control plane waits on before it stops an instance.
  boost::asio::awaitable<void> upstreams(http::Response& res);

  ProxyConfig config_;
  std::vector<core::AddressBlock> trusted_;
  std::uint16_t front_port_ = 0;
  Metrics metrics_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::map<std::string, std::unique_ptr<resilience::TokenBucket>, std::less<>>
      buckets_;  // by route key
  std::atomic<std::uint64_t> version_{0};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<boost::asio::io_context*> contexts_;
};

}  // namespace squadron::gateway
