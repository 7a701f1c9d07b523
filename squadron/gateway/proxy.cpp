#include "squadron/gateway/proxy.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <charconv>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

#include "squadron/core/scope_exit.hpp"
#include "squadron/core/splitmix.hpp"
#include "squadron/http/client.hpp"
#include "squadron/resilience/backoff.hpp"
#include "squadron/resilience/concurrency_limit.hpp"
#include "squadron/resilience/retry_budget.hpp"

namespace squadron::gateway {

namespace asio = boost::asio;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

namespace {

// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the gateway sets itself.
bool dropped_request_header(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection",
                                                "keep-alive",
                                                "proxy-connection",
                                                "te",
                                                "trailer",
                                                "transfer-encoding",
                                                "upgrade",
                                                "content-length",
                                                "proxy-authorization",
                                                "expect",
                                                "x-squadron-timeout-ms"};
  for (auto n : kNames) {
    if (http::iequals(n, name)) return true;
  }
  return false;
}
bool dropped_response_header(std::string_view name) {
  static constexpr std::string_view kNames[] = {"proxy-connection", "te",   "trailer",
                                                "upgrade",          "date", "x-request-id"};
  for (auto n : kNames) {
    if (http::iequals(n, name)) return true;
  }
  return false;
}

// Whether a `Connection` field of `req` names `name`: a hop-by-hop header of the client's, not
// passed on (RFC 9110 §7.6.1).
bool named_in_connection(const http::Request& req, std::string_view name) {
  const auto& headers = req.headers();
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) {
    return http::iequals(h.name, "connection") && http::has_token(h.value, name);
  });
}

bool idempotent(http::Method m) {
  using M = http::Method;
  return m == M::kGet || m == M::kHead || m == M::kOptions || m == M::kPut || m == M::kDelete;
}

// 16 hex digits of `rng` into `out` (no allocation: the id is copied into the request's own).
void new_request_id(core::SplitMix64& rng, char (&out)[16]) {
  std::uint64_t z = rng();
  for (int i = 15; i >= 0; --i, z >>= 4)
    out[static_cast<std::size_t>(i)] = "0123456789abcdef"[z & 15];
}

}  // namespace

struct Proxy::Snapshot {
  std::shared_ptr<const RouteTable> table;
  std::vector<std::vector<Stats*>> services;     // [worker][service index]
  std::vector<std::vector<Stats*>> routes;       // [worker][route index]
  std::vector<resilience::TokenBucket*> limits;  // [route index]; nullptr: no limit
};

struct Proxy::Worker {
  explicit Worker(std::uint64_t seed) : balancer(seed), rng{seed * 31 + 7} {}
  resilience::Balancer balancer;
  std::uint64_t seen_version = ~std::uint64_t{0};
  std::shared_ptr<const Snapshot> snapshot;
  http::ConnectionPool* pool = nullptr;  // the thread's io_context's, from its first request
  core::SplitMix64 rng;                  // request ids, retry jitter
  resilience::RetryBudget retry_budget;  // 20 % of this thread's requests in flight, at least 3
  int held = 0;                          // requests waiting for a service to wake
  RouteMatch pending;  // handle() -> handle_async(), read before the first suspension
  std::optional<std::int64_t> pending_left;  // the request's X-Squadron-Timeout-Ms, likewise
  std::vector<std::string> spare_heads;  // request heads' buffers, reused (no malloc per request)
};

Proxy::Proxy(ProxyConfig config)
    : config_(std::move(config)), metrics_(std::max<std::size_t>(1, config_.threads)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, config_.threads); ++i) {
    workers_.push_back(std::make_unique<Worker>(0x5eed + i * 7919));
  }
  for (const auto& t : config_.trusted_proxies) {
    if (auto b = core::AddressBlock::parse(t)) trusted_.push_back(*b);
  }
  publish(std::make_shared<RouteTable>());
}

bool Proxy::trusts(std::string_view address) const {
  return std::any_of(trusted_.begin(), trusted_.end(),
                     [&](const core::AddressBlock& b) { return b.contains(address); });
}

Proxy::~Proxy() = default;

void Proxy::publish(std::shared_ptr<const RouteTable> table) {
  // Resolve once per table what requests would otherwise look up by name: each thread's stats
  // of each service and route, and each route's rate limit (kept over tables by route key).
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
      it = buckets_
               .emplace(std::move(key),
                        std::make_unique<resilience::TokenBucket>(r.rate, r.burst, now))
               .first;
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

const Proxy::Snapshot& Proxy::current(std::size_t worker) {
  auto& w = *workers_[worker];
  const auto v = version_.load(std::memory_order_acquire);
  if (v != w.seen_version) {  // a new table: take it once per thread, not per request
    std::lock_guard lock(mutex_);
    w.snapshot = snapshot_;
    w.seen_version = version_.load(std::memory_order_relaxed);
  }
  return *w.snapshot;
}

std::optional<RouteMatch> Proxy::resolve(const RouteTable& table, const http::Request& req) const {
  if (!config_.internal.empty() && req.local_port() != 0) {
    for (const auto& [port, name] : config_.internal) {
      if (port != req.local_port()) continue;
      const Service* s = table.find(name);
      if (s == nullptr) return std::nullopt;
      return RouteMatch{s, {}, false, kNoRoute};
    }
  }
  // A listener the fleet assigned later (a service an apply added), named in the watch.
  if (req.local_port() != 0 && req.local_port() != front_port_ &&
      req.local_port() != config_.admin_port) {
    if (const Service* s = table.find_by_port(req.local_port()))
      return RouteMatch{s, {}, false, kNoRoute};
  }
  return table.match(req.header("host").value_or(""), req.path());
}

void Proxy::admin(const http::Request& req, http::Response& res) const {
  if (req.method() != http::Method::kGet && req.method() != http::Method::kHead) {
    res = http::Response::problem(405, "the admin endpoints answer GET");
    res.set_header("Allow", "GET, HEAD");
    return;
  }
  if (req.path() == "/metrics") {
    res = http::Response::text(metrics_.prometheus());
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  } else if (req.path() == "/metrics.json") {
    res = http::Response::json(metrics_.json());
  } else if (req.path() == "/healthz") {
    res = http::Response::text("ok\n");
  } else {
    res = http::Response::problem(
        404, fmt::format("no admin endpoint {} (try /metrics, /metrics.json, /upstreams, /healthz)",
                         req.path()));
  }
}

bool Proxy::handle(http::Request& req, http::Response& res, std::size_t worker) {
  if (config_.admin_port != 0 && req.local_port() == config_.admin_port) {
    if (req.path() == "/upstreams" && req.method() == http::Method::kGet) return false;
    admin(req, res);
    return true;
  }
  const auto& snap = current(worker);
  const auto m = resolve(*snap.table, req);
  if (m) workers_[worker]->pending = *m;
  if (!m) {
    res = http::Response::problem(404, fmt::format("no route for {}", req.path()));
    return true;
  }
  // Answers given here, before any upstream, still count for the service and route.
  auto answered = [&](int status) {
    const auto i = snap.table->index_of(*m->service);
    snap.services[worker][i]->requests.add();
    snap.services[worker][i]->finish(status, {});
    if (m->route != kNoRoute) {
      snap.routes[worker][m->route]->requests.add();
      snap.routes[worker][m->route]->finish(status, {});
    }
    return true;
  };
  if (m->route != kNoRoute && snap.limits[m->route] != nullptr) {
    const auto wait = snap.limits[m->route]->take(std::chrono::steady_clock::now());
    if (wait.count() > 0) {
      const auto& route = snap.table->routes()[m->route];
      res = http::Response::problem(
          429, fmt::format("{} is limited to {} requests a second (bursts of {})", route.key(),
                           route.rate, route.burst));
      const auto seconds = std::chrono::ceil<std::chrono::seconds>(wait).count();
      res.set_header("Retry-After", std::to_string(std::max<std::int64_t>(1, seconds)));
      const auto i = snap.table->index_of(*m->service);
      snap.services[worker][i]->rate_limited.add();
      snap.routes[worker][m->route]->rate_limited.add();
      return answered(429);
    }
  }
  const auto left = req.timeout_left_ms();
  workers_[worker]->pending_left = left;
  if (left && *left <= 0) {
    res = http::Response::problem(
        504, fmt::format("the request's deadline passed before it reached {} ({}: {})",
                         m->service->name, http::kTimeoutHeader, *left));
    snap.services[worker][snap.table->index_of(*m->service)]->timeouts.add();
    return answered(504);
  }
  if (m->service->ready.empty() && m->service->policy.scale_to_zero) return false;  // holds
  if (m->service->ready.empty()) {
    res = http::Response::problem(
        503, fmt::format("no ready instance of {} (starting, or all down)", m->service->name));
    res.set_header("Retry-After", "1");
    return answered(503);
  }
  return false;  // forward: handle_async
}

asio::awaitable<void> Proxy::upstreams(http::Response& res) {
  // Each balancer's counts are its thread's: read there, gathered here, answered from here.
  struct Gather {
    std::mutex mutex;
    std::map<std::string, int, std::less<>> busy;
    std::size_t left = 0;
  };
  auto g = std::make_shared<Gather>();
  const auto revision = table()->revision();  // before the counts: a newer table only helps
  const auto executor = co_await asio::this_coro::executor;
  auto done =
      std::make_shared<asio::steady_timer>(executor, std::chrono::steady_clock::time_point::max());
  if (contexts_.size() == workers_.size()) {
    g->left = workers_.size();
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      asio::post(*contexts_[i], [this, i, g, done, executor] {
        const auto busy = workers_[i]->balancer.busy();
        std::lock_guard lock(g->mutex);
        for (const auto& [id, n] : busy) g->busy[id] += n;
        if (--g->left == 0) asio::post(executor, [done] { done->cancel(); });
      });
    }
    co_await done->async_wait(asio::as_tuple(asio::use_awaitable));
  } else if (workers_.size() == 1) {  // one thread, this one
    for (const auto& [id, n] : workers_[0]->balancer.busy()) g->busy[id] += n;
  }
  boost::json::object in_flight;
  {
    std::lock_guard lock(g->mutex);
    for (const auto& [id, n] : g->busy) in_flight[id] = n;
  }
  res = http::Response::json(
      boost::json::object{{"revision", revision}, {"in_flight", std::move(in_flight)}});
}

asio::awaitable<void> Proxy::handle_async(http::Request& req, http::Response& res,
                                          std::size_t worker) {
  if (config_.admin_port != 0 && req.local_port() == config_.admin_port) {
    co_await upstreams(res);
    co_return;
  }
  auto& w = *workers_[worker];
  // Both set by handle() just now, on this thread: no second lookup.
  auto snap = w.snapshot;  // kept alive for this request, whatever is published meanwhile
  RouteMatch match = w.pending;
  const auto left = w.pending_left;
  if (w.pool == nullptr) {
    // The server runs each connection on its thread's io_context: that context's pool (it goes
    // with the context, whatever outlives it).
    const auto any_executor = co_await asio::this_coro::executor;
    w.pool =
        &http::ConnectionPool::of(any_executor.target<asio::io_context::executor_type>()->context(),
                                  config_.max_idle_per_endpoint);
  }
  const auto started_at = std::chrono::steady_clock::now();
  Stats& stats = *snap->services[worker][snap->table->index_of(*match.service)];
  Stats* route_stats = match.route != kNoRoute ? snap->routes[worker][match.route] : nullptr;
  stats.requests.add();
  stats.in_flight.add();
  if (route_stats != nullptr) {
    route_stats->requests.add();
    route_stats->in_flight.add();
  }
  struct Account {  // the answer's status and time, whichever way the request ends
    Stats& s;
    Stats* r;
    const http::Response& res;
    std::chrono::steady_clock::time_point start;
    ~Account() {
      const auto took = std::chrono::steady_clock::now() - start;
      s.in_flight.sub();
      s.finish(res.status, took);
      if (r != nullptr) {
        r->in_flight.sub();
        r->finish(res.status, took);
      }
    }
  } account{stats, route_stats, res, started_at};

  // A service scaled to zero: hold the request (counted in flight: demand the autoscaler
  // sees) while the service wakes, and send it on as soon as an instance is ready.
  if (match.service->ready.empty()) {
    const std::string name = match.service->name;
    const auto timeout = match.service->policy.timeout;
    if (w.held >= config_.max_held_per_thread) {
      res = http::Response::problem(
          503, fmt::format("{} is starting and {} requests already wait for it", name, w.held));
      res.set_header("Retry-After", "1");
      co_return;
    }
    ++w.held;
    core::ScopeExit unhold([&w] { --w.held; });
    asio::steady_timer tick(co_await asio::this_coro::executor);
    auto woken = std::chrono::steady_clock::time_point{};
    while (true) {
      const auto now = std::chrono::steady_clock::now();
      if (now - woken >= std::chrono::seconds(1)) {  // again each second, in case one was lost
        woken = now;
        if (config_.wake) config_.wake(name);
      }
      if (now - started_at >= timeout) {
        res = http::Response::problem(
            503, fmt::format("{} did not start within {} ms", name, timeout.count()));
        res.set_header("Retry-After", "1");
        co_return;
      }
      // Look often while a cold start is likely (tens of ms), then less.
      tick.expires_after(
          std::chrono::milliseconds(now - started_at < std::chrono::milliseconds(300) ? 2 : 20));
      co_await tick.async_wait(kAwait);
      const auto& latest = current(worker);  // a newer table, if one came
      const auto m = resolve(*latest.table, req);
      if (!m) {
        res = http::Response::problem(404, fmt::format("no route for {}", req.path()));
        co_return;
      }
      if (!m->service->ready.empty()) {
        snap = w.snapshot;
        match = *m;
        break;
      }
    }
  }
  const Service& service = *match.service;

  const Policy& policy = service.policy;
  auto timeout = policy.timeout;
  if (left && *left < timeout.count())
    timeout = std::chrono::milliseconds(std::max<std::int64_t>(1, *left));
  const auto deadline = started_at + timeout;
  // Circuit breaker: at most max_in_flight requests to this service (shared out over threads),
  // counting the service's requests in flight on this thread, this one included.
  const resilience::ConcurrencyLimit breaker(policy.max_in_flight, workers_.size());
  const auto verdict = breaker.admit(static_cast<std::int64_t>(stats.in_flight.get()));
  if (verdict == resilience::ConcurrencyLimit::Verdict::kRefused) {
    stats.breaker_rejections.add();
    res = http::Response::problem(
        503, fmt::format("{} has {} requests in flight, its limit: try again shortly", service.name,
                         policy.max_in_flight));
    res.set_header("Retry-After", "1");
    co_return;
  }
  if (verdict == resilience::ConcurrencyLimit::Verdict::kReached) stats.breaker_opens.add();

  // The request as the upstream sees it: same method, target (prefix stripped if asked),
  // end-to-end headers, X-Forwarded-*, a request id, the deadline, and a Content-Length.
  if (req.request_id().empty()) {
    if (auto id = req.header("x-request-id"); id && !id->empty() && id->size() <= 200) {
      req.set_request_id(*id);
    } else {
      char made[16];
      new_request_id(w.rng, made);
      req.set_request_id(std::string_view(made, sizeof made));
    }
  }
  struct Head {  // a buffer of the thread's, back to it when the request ends
    std::vector<std::string>& spare;
    std::string s;
    explicit Head(std::vector<std::string>& pool) : spare(pool) {
      if (!pool.empty()) {
        s = std::move(pool.back());
        pool.pop_back();
        s.clear();
      }
    }
    ~Head() {
      if (spare.size() < 256 && s.capacity() <= 64 * 1024) spare.push_back(std::move(s));
    }
  } head_buffer{w.spare_heads};
  std::string& head = head_buffer.s;
  head.reserve(512 + req.target().size() + std::min<std::size_t>(req.body().size(), 16 * 1024));
  head.append(req.method_name()).append(" ");
  match.append_upstream_target(req.target(), head);
  head.append(" HTTP/1.1\r\n");
  // X-Forwarded-For: the peer's address, and what came before it only from a trusted proxy
  // (all its XFF fields, in order); from anyone else a client's own XFF is a lie it may tell.
  std::string forwarded_for;
  const bool trusted = trusts(req.remote_address());
  const bool has_connection = req.header("connection").has_value();  // usually absent (1.1)
  for (const auto& h : req.headers()) {
    if (dropped_request_header(h.name) || (has_connection && named_in_connection(req, h.name)))
      continue;
    if (http::iequals(h.name, "x-forwarded-for")) {
      if (trusted && !h.value.empty()) forwarded_for.append(h.value).append(", ");
      continue;
    }
    if (http::iequals(h.name, "x-request-id") || http::iequals(h.name, "x-forwarded-proto") ||
        http::iequals(h.name, "x-forwarded-host"))
      continue;
    head.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  head.append("X-Forwarded-For: ").append(forwarded_for).append(req.remote_address());
  head.append("\r\nX-Forwarded-Proto: http\r\n");
  if (auto host = req.header("host"))
    head.append("X-Forwarded-Host: ").append(*host).append("\r\n");
  head.append("X-Request-Id: ").append(req.request_id()).append("\r\n");
  head.append(http::kTimeoutHeader)
      .append(": ")
      .append(std::to_string(timeout.count()))
      .append("\r\n");
  // A streamed body (large or chunked) goes on as it arrives, framed as it came.
  http::BodyReader* const streamed = req.body_reader();
  const bool chunked_body = streamed != nullptr && req.header("transfer-encoding").has_value();
  if (chunked_body) {
    head.append("Transfer-Encoding: chunked\r\n");
  } else if (streamed != nullptr) {
    head.append("Content-Length: ").append(req.header("content-length").value_or("0"));
    head.append("\r\n");
  } else if (!req.body().empty() || req.method() == http::Method::kPost ||
             req.method() == http::Method::kPut || req.method() == http::Method::kPatch) {
    head.append("Content-Length: ").append(std::to_string(req.body().size())).append("\r\n");
  }
  head.append("\r\n");
  // Small bodies travel in the same buffer (one send); large ones as a second buffer.
  const bool inline_body = req.body().size() <= 16 * 1024;
  if (inline_body) head.append(req.body());
  const std::array<asio::const_buffer, 2> out{asio::buffer(head), asio::buffer(req.body())};
  const std::span<const asio::const_buffer> request(out.data(), inline_body ? 1 : 2);
  http::ExchangeOptions options;
  options.deadline = deadline;
  options.connect_timeout = policy.connect_timeout;
  options.head = req.method() == http::Method::kHead;
  options.drop_header = &dropped_response_header;
  options.body = streamed;
  options.chunked_body = chunked_body;
  options.stream_above = 64 * 1024;  // larger answers flow through as they arrive
  // The route timeout bounds the answer's head; a streamed body may take as long as it goes on
  // arriving (an 8 s download is no timeout), each piece within the route timeout of the last.
  options.body_idle_timeout = policy.timeout;
  // A streamed body cannot be sent twice: such a request is retried only when it got nowhere.
  const bool replayable = idempotent(req.method()) && streamed == nullptr;

  std::array<std::string_view, 8> tried_ids;  // instances already tried for this request
  std::size_t tried_count = 0;
  std::string last_error;
  bool timed_out = false;
  const int attempts = std::min<int>(policy.retries + 1, static_cast<int>(tried_ids.size()));
  resilience::RetryBudget::Slot retry_slot;  // back to the thread's budget when the request ends
  bool refused = false;  // the last attempt could not connect: the instance got nothing
  for (int attempt = 0; attempt < attempts; ++attempt) {
    // A retry after a refused connection goes to another instance at once, outside the budget:
    // it adds no load to the failing one (a dead instance still listed for a few milliseconds).
    if (attempt > 0 && !refused) {
      // Full jitter: a random wait up to 25 ms, doubling per retry, at most 250 ms.
      const auto wait = resilience::full_jitter(
          attempt, {std::chrono::milliseconds(25), std::chrono::milliseconds(250)}, w.rng());
      if (std::chrono::steady_clock::now() + wait >= deadline) break;
      asio::steady_timer pause(co_await asio::this_coro::executor, wait);
      co_await pause.async_wait(kAwait);
      // The retry budget: retries in flight at most 20 % of the requests in flight (at least
      // 3, as Envoy), so that a failing service is not hit with three times its load. An
      // instance that left the ready set meanwhile (it died: the registry saw its exit within
      // milliseconds) took its requests with it: retrying those does not load a struggling
      // service, so, like a refused connection, they are outside the budget.
      const auto in_flight = static_cast<std::int64_t>(stats.in_flight.get());
      auto over_budget = [&] { return !w.retry_budget.allows(retry_slot, in_flight); };
      auto still_listed = [&] {
        const Service* now = current(worker).table->find(service.name);
        if (now == nullptr) return false;
        return std::any_of(now->ready.begin(), now->ready.end(),
                           [&](const Endpoint& e) { return e.id == tried_ids[tried_count - 1]; });
      };
      bool exempt = !still_listed();
      for (int look = 0; !exempt && over_budget() && look < 10; ++look) {
        pause.expires_after(std::chrono::milliseconds(5));  // its exit may be news in a moment
        co_await pause.async_wait(kAwait);
        exempt = !still_listed();
      }
      if (!exempt && !w.retry_budget.acquire(retry_slot, in_flight)) break;
    }
    const auto pick = w.balancer.pick(pool_of(service), {tried_ids.data(), tried_count},
                                      attempt == 0 ? started_at : std::chrono::steady_clock::now());
    if (!pick) break;
    if (attempt > 0) stats.retries.add();
    const Endpoint& ep = service.ready[*pick];  // `snap` keeps it alive
    tried_ids[tried_count++] = ep.id;
    w.balancer.started(ep);
    core::ScopeExit finish([&w, &ep] { w.balancer.finished(ep); });

    auto x = co_await w.pool->exchange({ep.id, ep.host, ep.port}, request, options, res);
    refused = x.outcome == http::Outcome::kRefused;
    const auto now = std::chrono::steady_clock::now();
    if (x.outcome == http::Outcome::kMalformed) {
      // An answer, but not one to pass on (framing, header count or size, control bytes).
      if (w.balancer.record(pool_of(service), ep, false, now)) stats.ejections.add();
      res = http::Response::problem(
          502,
          fmt::format("{} answered what the gateway does not pass on: {}", service.name, x.error));
      co_return;
    }
    if (x.outcome == http::Outcome::kAnswered) {
      if (w.balancer.record(pool_of(service), ep, res.status < 500, now)) stats.ejections.add();
      if (res.status == 503 && replayable && attempt + 1 < attempts &&
          service.ready.size() > tried_count) {
        last_error = fmt::format("{}: 503", ep.id);
        continue;  // another instance may do better
      }
      co_return;
    }
    // No answer from this instance (refused, reset, cut off, timed out): a failure.
    last_error = fmt::format("{}: {}", ep.id, x.error);
    if (w.balancer.record(pool_of(service), ep, false, now)) stats.ejections.add();
    timed_out = x.outcome == http::Outcome::kTimeout ||
                (x.outcome == http::Outcome::kConnectTimeout && now >= deadline);
    if (timed_out) break;
    if (x.sent && !replayable) {
      res = http::Response::problem(
          502, fmt::format("{} failed during the request: {}", service.name, last_error));
      co_return;
    }
  }
  if (timed_out) {
    stats.timeouts.add();
    res = http::Response::problem(
        504, fmt::format("{} did not answer within {} ms", service.name, timeout.count()));
    co_return;
  }
  res = http::Response::problem(
      503, fmt::format("{}: {}", service.name,
                       last_error.empty() ? "no instance answered" : last_error));
  res.set_header("Retry-After", "1");
}

}  // namespace squadron::gateway
