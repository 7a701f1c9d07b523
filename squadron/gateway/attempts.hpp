// The upstream attempt loop of one request: pick an instance (the resilience layer's balancer),
// exchange over the thread's Transport, and on a failure that allows it try another instance
// after a jittered pause, within the retry budget and the request's deadline; then map what
// happened to the answer (the upstream's own, or 502/503/504).
//
//   Attempts attempts{seed, [&](std::string_view name) { return latest_table().find(name); }};
//   attempts.set_transport(&pool);
//   co_await attempts.run(cluster, {std::move(account), std::move(request), table, timeout}, res);
//
// Thread safety: one Attempts per I/O thread, used on that thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>

#include "squadron/core/splitmix.hpp"
#include "squadron/gateway/accounting.hpp"
#include "squadron/gateway/metrics.hpp"
#include "squadron/gateway/route_table.hpp"
#include "squadron/gateway/upstream_request.hpp"
#include "squadron/http/client.hpp"
#include "squadron/resilience/balancer.hpp"
#include "squadron/resilience/retry_budget.hpp"

namespace squadron::gateway {

// A request's session affinity (proxy: { affinity: ... }): which instance it sticks to.
struct Affinity {
  std::optional<std::uint64_t> key;       // header or source_ip: rendezvous hashing over the ready
  std::string cookie;                     // cookie: its name (the answer sets it when it changes)
  std::string token;                      // cookie: the value the client sent (instance_token())
  std::optional<std::uint64_t> instance;  // the same as a number: compared with instance_hash()
  bool secure = false;  // the cookie goes with `Secure` (the request came over TLS)
};

// The affinity `req` asks for under `policy` (none when the policy has none).
Affinity affinity_of(const http::Request& req, const registry::ProxyPolicy& policy);
// What an affinity cookie says for instance `id`: 16 hex digits of a stable hash (the instance's
// name stays on the gateway).
std::string instance_token(std::string_view id);
// The number instance_token() writes in hex: what a request's cookie is compared with (no
// formatting per endpoint and request).
std::uint64_t instance_hash(std::string_view id);
// The instance of `service` a request with affinity `a` goes to first, if it has one that is
// ready and neither tried nor ejected; nullopt: the balancer chooses.
std::optional<std::size_t> affine_pick(const resilience::Balancer& balancer,
                                       const resilience::Pool& pool, const Affinity& a,
                                       std::span<const std::string_view> tried,
                                       std::chrono::steady_clock::time_point now);
// The Set-Cookie an answer from `chosen` carries when the request's cookie named another (or none).
void stick(const Affinity& a, std::string_view chosen, http::Response& res);

// What one request's attempts own, moved into the attempt loop's frame (so that a forwarded
// request has no coroutine frame but this one and the exchange's).
struct Forward {
  RequestAccount account;             // counts the request until its answer
  UpstreamRequest request;            // the bytes to send and the exchange's options (its deadline)
  std::shared_ptr<const void> table;  // keeps the Cluster and its endpoints alive
  std::chrono::milliseconds timeout{0};  // the bound the deadline came from (for the 504)
  Affinity affinity;
};

class Attempts final {
 public:
  // `latest` finds a service by name in the newest routing table (null: gone); a retry asks it
  // whether the instance that failed is still listed.
  Attempts(std::uint64_t seed, std::function<const Cluster*(std::string_view)> latest);

  // The exchanges with services over HTTP/1.1, and with those over HTTP/2 (`protocol: h2c`).
  void set_transport(http::Transport* transport) noexcept { transport_ = transport; }
  void set_h2_transport(http::Transport* transport) noexcept { h2_transport_ = transport; }
  http::Transport* transport() const noexcept { return transport_; }
  resilience::Balancer& balancer() noexcept { return balancer_; }
  const resilience::Balancer& balancer() const noexcept { return balancer_; }

  // Sends `f.request` to ready instances of `service` (kept alive by `f.table`) until one
  // answers or the attempts, the budget or the deadline run out; the answer in `res`, counted
  // in the request's account (retries, ejections, timeouts). Precondition: a transport is set,
  // the service has a ready instance. `res` outlives the loop.
  boost::asio::awaitable<void> run(const Cluster& service, Forward f, http::Response& res);

 private:
  struct Tried;
  enum class Next { kAnswered, kRetry, kStop };
  // Whether attempt `n` may go (after its pause, inside the budget and the deadline).
  boost::asio::awaitable<bool> may_retry(const Cluster& service, Stats& stats, const Forward& f,
                                         int n, Tried& tried);
  // What exchange `x` with instance `ep` (attempt `n` of `attempts`) means: the answer (in
  // `res`), another attempt, or the end of them. No suspension: the exchange is awaited in run().
  Next after(const Cluster& service, Stats& stats, const Forward& f, const Endpoint& ep,
             const http::Exchange& x, int n, int attempts, Tried& tried, http::Response& res);
  bool still_listed(const Cluster& service, std::string_view id) const;

  resilience::Balancer balancer_;
  resilience::RetryBudget budget_;  // 20 % of this thread's requests in flight, at least 3
  core::SplitMix64 rng_;            // retry jitter
  std::function<const Cluster*(std::string_view)> latest_;
  http::Transport* transport_ = nullptr;
  http::Transport* h2_transport_ = nullptr;
};

}  // namespace squadron::gateway
