#include "squadron/gateway/proxy.hpp"

#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

#include "squadron/core/splitmix.hpp"
#include "squadron/gateway/accounting.hpp"
#include "squadron/gateway/admission.hpp"
#include "squadron/gateway/attempts.hpp"
#include "squadron/gateway/grpc.hpp"
#include "squadron/gateway/tunnel.hpp"
#include "squadron/gateway/upstream_request.hpp"
#include "squadron/http/client.hpp"
#include "squadron/http/h2_client.hpp"
#include "squadron/resilience/concurrency_limit.hpp"

namespace squadron::gateway {

namespace asio = boost::asio;

// One routing table with what requests would otherwise look up by name: each thread's stats of
// each service and route, and each route's rate limit.
struct Proxy::Snapshot {
  std::shared_ptr<const RouteTable> table;
  std::vector<std::vector<Stats*>> services;     // [worker][service index]
  std::vector<std::vector<Stats*>> routes;       // [worker][route index]
  std::vector<resilience::TokenBucket*> limits;  // [route index]; nullptr: no limit
};

// What one I/O thread keeps: the newest table it took, its attempt loop (balancer, retry
// budget) and its buffers.
struct Proxy::ThreadState {
  ThreadState(std::uint64_t seed, std::function<const Cluster*(std::string_view)> latest)
      : attempts(seed, std::move(latest)), rng{seed * 131 + 11} {}
  Attempts attempts;
  std::uint64_t seen_version = ~std::uint64_t{0};
  std::shared_ptr<const Snapshot> snapshot;
  core::SplitMix64 rng;  // request ids
  int held = 0;          // requests waiting for a service to wake
  HeadBuffers heads;
};

Proxy::Proxy(ProxyConfig config)
    : config_(std::move(config)), metrics_(std::max<std::size_t>(1, config_.threads)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, config_.threads); ++i) {
    auto latest = [this, i](std::string_view name) { return current(i)->table->find(name); };
    workers_.push_back(std::make_unique<ThreadState>(0x5eed + i * 7919, std::move(latest)));
    if (config_.transport != nullptr) {
      workers_.back()->attempts.set_transport(config_.transport);
      workers_.back()->attempts.set_h2_transport(config_.transport);
    }
  }
  for (const auto& t : config_.trusted_proxies) {
    if (auto b = core::AddressBlock::parse(t)) trusted_.push_back(*b);
  }
  publish(std::make_shared<RouteTable>());
}

Proxy::~Proxy() = default;

bool Proxy::trusts(std::string_view address) const {
  return std::any_of(trusted_.begin(), trusted_.end(),
                     [&](const core::AddressBlock& b) { return b.contains(address); });
}

std::vector<std::pair<std::string, int>> Proxy::in_flight(std::size_t worker) const {
  return workers_.at(worker)->attempts.balancer().busy();
}

std::shared_ptr<const RouteTable> Proxy::table_on(std::size_t worker) {
  return current(worker)->table;
}

resilience::Balancer& Proxy::balancer_on(std::size_t worker) {
  return workers_.at(worker)->attempts.balancer();
}

int& Proxy::held_on(std::size_t worker) { return workers_.at(worker)->held; }

void Proxy::publish(std::shared_ptr<const RouteTable> table) {
  auto snap = std::make_shared<Snapshot>();
  const std::size_t threads = workers_.size();
  snap->services.resize(threads);
  snap->routes.resize(threads);
  for (std::size_t w = 0; w < threads; ++w) {
    for (const auto& s : table->services())
      snap->services[w].push_back(&metrics_.service(w, s.name));
    for (const auto& r : table->routes()) {
      snap->routes[w].push_back(&metrics_.route(w, table->services()[r.service].name, r.key()));
    }
  }
  // Rate limits are kept over tables by route key: a new table does not refill a bucket.
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  for (const auto& r : table->routes()) {
    if (r.rate <= 0) {
      snap->limits.push_back(nullptr);
      continue;
    }
    auto key = r.key();
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
      auto bucket = std::make_unique<resilience::TokenBucket>(r.rate, r.burst, now);
      it = buckets_.emplace(std::move(key), std::move(bucket)).first;
    } else {
      it->second->configure(r.rate, r.burst);
    }
    snap->limits.push_back(it->second.get());
  }
  snap->table = std::move(table);
  snapshot_ = std::move(snap);
  version_.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const RouteTable> Proxy::table() const {
  std::lock_guard lock(mutex_);
  return snapshot_->table;
}

std::shared_ptr<const Proxy::Snapshot> Proxy::current(std::size_t worker) {
  auto& w = *workers_[worker];
  const auto v = version_.load(std::memory_order_acquire);
  if (v != w.seen_version) {  // a new table: take it once per thread, not per request
    std::lock_guard lock(mutex_);
    w.snapshot = snapshot_;
    w.seen_version = version_.load(std::memory_order_relaxed);
  }
  return w.snapshot;
}

std::optional<RouteMatch> Proxy::resolve(const RouteTable& table, const http::Request& req) const {
  const std::uint16_t port = req.local_port();
  if (port != 0 && port != front_port_) {
    for (const auto& [internal, name] : config_.internal) {
      if (internal != port) continue;
      const Cluster* s = table.find(name);
      if (s == nullptr) return std::nullopt;
      return RouteMatch{s, {}, false, kNoRoute};
    }
    // A listener the fleet assigned later (a service an apply added), named in the watch.
    if (const Cluster* s = table.find_by_port(port)) return RouteMatch{s, {}, false, kNoRoute};
  }
  return table.match(req.header("host").value_or(""), req.path());
}

bool Proxy::admit(const Snapshot& snap, const RouteMatch& match, const http::Request& req,
                  RequestAccount& account, http::Response& res) {
  if (match.route != kNoRoute &&
      !admit_rate(snap.limits[match.route], snap.table->routes()[match.route], account.start(),
                  account, res))
    return false;
  return admit_deadline(req.timeout_left_ms(), *match.service, account, res) &&
         admit_ready(*match.service, res);
}

bool Proxy::handle(http::Request&, http::Response&, std::size_t) {
  return false;  // every request is matched and answered in handle_async, in one place
}

namespace {
// The answer is in `res` already: nothing to wait for.
asio::awaitable<void> answered() { co_return; }

// A gRPC call: its answer as a gRPC client reads it, its grpc-status counted (grpc.hpp).
asio::awaitable<void> grpc_call(asio::awaitable<void> inner, http::Request& req, Stats* stats,
                                http::Response& res) {
  co_await std::move(inner);
  grpc_answer(res, req, stats);
}
}  // namespace

asio::awaitable<void> Proxy::handle_async(http::Request& req, http::Response& res,
                                          std::size_t worker) {
  if (is_grpc(req)) {
    if (const auto left = req.timeout_left_ms())  // the call's deadline, for what it ends as
      req.set_deadline(std::chrono::steady_clock::now() + std::chrono::milliseconds(*left));
    Stats* stats = nullptr;
    auto inner = route(req, res, worker, &stats);
    return grpc_call(std::move(inner), req, stats, res);
  }
  return route(req, res, worker, nullptr);
}

// Not a coroutine: the match and the admission are synchronous, and a forwarded request's only
// frame is the attempt loop's, which owns its account and upstream request (Forward).
asio::awaitable<void> Proxy::route(http::Request& req, http::Response& res, std::size_t worker,
                                   Stats** stats) {
  auto& w = *workers_[worker];
  auto snap = current(worker);  // kept alive for this request, whatever is published meanwhile
  const auto match = resolve(*snap->table, req);
  if (!match) {
    res = http::Response::problem(404, fmt::format("no route for {}", req.path()));
    return answered();
  }
  Stats& service_stats = *snap->services[worker][snap->table->index_of(*match->service)];
  if (stats != nullptr) *stats = &service_stats;
  RequestAccount account(service_stats,
                         match->route != kNoRoute ? snap->routes[worker][match->route] : nullptr,
                         res, std::chrono::steady_clock::now());
  if (!admit(*snap, *match, req, account, res)) return answered();
  if (match->service->ready.empty())  // waking from zero, or starting: wait for an instance
    return wake_then_forward(worker, std::move(snap), *match, req, res, std::move(account));
  return forward(w, std::move(snap), *match, req, res, std::move(account));
}

asio::awaitable<void> Proxy::forward(ThreadState& w, std::shared_ptr<const Snapshot> snap,
                                     const RouteMatch& match, http::Request& req,
                                     http::Response& res, RequestAccount account) {
  const Cluster& service = *match.service;
  if (!admit_in_flight(service, workers_.size(), account, res)) return answered();
  const auto timeout = attempt_timeout(service.policy, req.timeout_left_ms());
  ensure_request_id(req, w.rng);
  UpstreamRequest up(w.heads);
  up.build(req, match, trusts(req.remote_address()), timeout, account.start());
  // Each thread's pool holds its share of every instance's connections, shared out as the
  // circuit breaker's requests are.
  up.options.max_connections = static_cast<std::size_t>(
      resilience::ConcurrencyLimit(service.policy.max_connections, workers_.size()).share());
  Affinity affinity = affinity_of(req, service.policy);
  if (up.upgrade) {  // a WebSocket's handshake: a connection of its own, then a tunnel
    Stats& stats = account.service();
    return forward_upgrade(w.attempts.balancer(), stats, service, std::move(up), std::move(snap),
                           res, std::move(account), std::move(affinity));
  }
  if (w.attempts.transport() == nullptr) {
    // The server runs each connection on its thread's io_context: that context's pool (it goes
    // with the context, whatever outlives it). Known once the thread's first request runs.
    return first_forward(
        w, std::move(snap), service, res,
        Forward{std::move(account), std::move(up), nullptr, timeout, std::move(affinity)});
  }
  return w.attempts.run(
      service,
      Forward{std::move(account), std::move(up), std::move(snap), timeout, std::move(affinity)},
      res);
}

asio::awaitable<void> Proxy::first_forward(ThreadState& w, std::shared_ptr<const Snapshot> snap,
                                           const Cluster& service, http::Response& res, Forward f) {
  const auto executor = co_await asio::this_coro::executor;
  auto& context = executor.target<asio::io_context::executor_type>()->context();
  w.attempts.set_transport(&http::ConnectionPool::of(context, config_.max_idle_per_endpoint));
  w.attempts.set_h2_transport(&http::H2Pool::of(context));
  f.table = std::move(snap);
  co_await w.attempts.run(service, std::move(f), res);
}

asio::awaitable<void> Proxy::wake_then_forward(std::size_t worker,
                                               std::shared_ptr<const Snapshot> snap,
                                               RouteMatch first, http::Request& req,
                                               http::Response& res, RequestAccount account) {
  auto& w = *workers_[worker];
  // `first` points into `snap`'s table: read it before the wait may replace `snap`.
  std::string name = first.service->name;
  const auto timeout = first.service->policy.timeout;
  WakeWait wait{[this, worker, &req, &snap] {
                  snap = current(worker);
                  return resolve(*snap->table, req);
                },
                first.service->policy.scale_to_zero ? config_.wake : WakeWait{}.wake,
                account.start(),
                req.path(),
                &w.held,
                config_.max_held_per_thread};
  const auto match = co_await hold_for_wake(std::move(name), timeout, std::move(wait), res);
  if (!match) co_return;
  co_await forward(w, snap, *match, req, res, std::move(account));
}

}  // namespace squadron::gateway
