// The gateway's request handler, orchestration only: route match (route_table.hpp) ->
// admission (admission.hpp: rate limit, deadline, a ready instance or a wait for a cold start,
// the breaker) -> the request as the upstream sees it (upstream_request.hpp) -> the attempt loop
// (attempts.hpp: balancing, retries, outcome mapping) -> the answer; one RequestAccount per
// request counts it. The admin listener has its own handler (admin.hpp).
//
//   Proxy proxy{{.threads = 2}};
//   proxy.publish(table);                  // from the watch follower, any thread
//   http::Server server{config, proxy};    // the same thread count
//
// Thread safety: publish() from any thread; the Handler calls on the server's I/O threads,
// each with its own balancer, retry budget and connection pool.
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
#include "squadron/http/client.hpp"
#include "squadron/http/server.hpp"
#include "squadron/resilience/token_bucket.hpp"

namespace squadron::gateway {

class RequestAccount;
struct Forward;

// Timeouts, retries, the breaker and ejection are per service (route_table.hpp's Policy, from
// the manifest's `proxy:`); this is what is the gateway's own.
struct ProxyConfig {
  std::size_t threads = 1;  // must equal the server's
  // Idle connections kept per instance and thread: as many as a burst had in flight (up to
  // this), so that the next burst reuses them instead of connecting again (HAProxy and Envoy keep
  // theirs unbounded; closing those past 256 cost a connect and a close per request at 1,600
  // requests in flight, bench/h2.sh).
  std::size_t max_idle_per_endpoint = 4096;
  // Listener port -> service: every request arriving on that port goes to that service (the
  // stable per-service address given to instances as SQUADRON_<NAME>_URL), routes aside.
  std::vector<std::pair<std::uint16_t, std::string>> internal;
  // Asks the control plane to wake a service scaled to zero (a request waits for it). Called on
  // an I/O thread, at most once a second per waiting request; must not block.
  std::function<void(const std::string& service)> wake;
  // Requests one I/O thread holds for services waking up; beyond: 503 at once.
  int max_held_per_thread = 1024;
  // Peers whose X-Forwarded-For is believed (addresses or CIDR blocks: "10.0.0.0/8", "::1"):
  // what they say comes before their own address. From any other peer the header is replaced
  // by the peer's address (Envoy's use_remote_address).
  std::vector<std::string> trusted_proxies;
  // Upstream exchanges: null, each I/O thread's http::ConnectionPool; else this (a test's fake).
  http::Transport* transport = nullptr;
};

class Proxy final : public http::Handler {
 public:
  explicit Proxy(ProxyConfig config);
  ~Proxy() override;

  // Replaces the routing table (routes and ready endpoints); requests in flight keep theirs.
  void publish(std::shared_ptr<const RouteTable> table);
  std::shared_ptr<const RouteTable> table() const;
  const Metrics& metrics() const noexcept { return metrics_; }
  std::size_t threads() const noexcept { return workers_.size(); }
  // The front door's port: requests there are routed by Host and path, never by port.
  void set_front_port(std::uint16_t port) noexcept { front_port_ = port; }
  // Whether `address` (a peer's) is one of the trusted proxies.
  bool trusts(std::string_view address) const;
  // The requests I/O thread `worker` has in flight, by instance id; call on that thread.
  std::vector<std::pair<std::string, int>> in_flight(std::size_t worker) const;

  // For the L4 front (tunnel.hpp), on I/O thread `worker`: the newest table it took, its
  // counts of `service`, its balancer (an open connection is a request in flight to its
  // instance), the requests and connections it holds for services starting; and the config.
  std::shared_ptr<const RouteTable> table_on(std::size_t worker);
  Stats& stats_on(std::size_t worker, std::string_view service) {
    return metrics_.service(worker, service);
  }
  resilience::Balancer& balancer_on(std::size_t worker);
  int& held_on(std::size_t worker);
  const ProxyConfig& config() const noexcept { return config_; }

  bool handle(http::Request& req, http::Response& res, std::size_t worker) override;
  boost::asio::awaitable<void> handle_async(http::Request& req, http::Response& res,
                                            std::size_t worker) override;
  void on_rejected(int, std::size_t) noexcept override {}

  struct ThreadState;
  struct Snapshot;

 private:
  std::shared_ptr<const Snapshot> current(std::size_t worker);
  // The request matched, admitted and forwarded (handle_async without gRPC's shaping); the
  // service's stats into `*stats` when it has one.
  boost::asio::awaitable<void> route(http::Request& req, http::Response& res, std::size_t worker,
                                     Stats** stats);
  std::optional<RouteMatch> resolve(const RouteTable& table, const http::Request& req) const;
  // The checks before any upstream (admission.hpp); false: refused, the answer in `res`.
  bool admit(const Snapshot& snap, const RouteMatch& match, const http::Request& req,
             RequestAccount& account, http::Response& res);
  // A matched, admitted request to its attempt loop (after the breaker); not a coroutine.
  boost::asio::awaitable<void> forward(ThreadState& w, std::shared_ptr<const Snapshot> snap,
                                       const RouteMatch& match, http::Request& req,
                                       http::Response& res, RequestAccount account);
  // The thread's first forwarded request: finds the thread's connection pool, then forwards.
  boost::asio::awaitable<void> first_forward(ThreadState& w, std::shared_ptr<const Snapshot> snap,
                                             const Cluster& service, http::Response& res,
                                             Forward f);
  // A service scaled to zero: holds the request while it wakes, then forwards.
  boost::asio::awaitable<void> wake_then_forward(std::size_t worker,
                                                 std::shared_ptr<const Snapshot> snap,
                                                 RouteMatch first, http::Request& req,
                                                 http::Response& res, RequestAccount account);

  ProxyConfig config_;
  std::vector<core::AddressBlock> trusted_;
  std::uint16_t front_port_ = 0;
  Metrics metrics_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::map<std::string, std::unique_ptr<resilience::TokenBucket>, std::less<>>
      buckets_;  // by route key
  std::atomic<std::uint64_t> version_{0};
  std::vector<std::unique_ptr<ThreadState>> workers_;
};

}  // namespace squadron::gateway
