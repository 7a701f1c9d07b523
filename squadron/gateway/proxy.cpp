#include "squadron/gateway/proxy.hpp"

#include <list>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "squadron/core/splitmix.hpp"
#include "squadron/http/response_parser.hpp"

namespace squadron::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

namespace {

// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the gateway sets itself.
bool dropped_request_header(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "connection", "keep-alive",     "proxy-connection",
      "te",         "trailer",        "transfer-encoding",
      "upgrade",    "content-length", "proxy-authorization",
      "expect"};
  for (auto n : kNames) {
    if (http::iequals(n, name)) return true;
  }
  return false;
}
bool dropped_response_header(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "connection",        "keep-alive", "proxy-connection", "te",   "trailer",
      "transfer-encoding", "upgrade",    "content-length",   "date", "x-request-id"};
  for (auto n : kNames) {
    if (http::iequals(n, name)) return true;
  }
  return false;
}

bool idempotent(http::Method m) {
  using M = http::Method;
  return m == M::kGet || m == M::kHead || m == M::kOptions || m == M::kPut || m == M::kDelete;
}

std::string new_request_id(core::SplitMix64& rng) {
  std::uint64_t z = rng();
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i, z >>= 4)
    id[static_cast<std::size_t>(i)] = "0123456789abcdef"[z & 15];
  return id;
}

}  // namespace

// A pooled upstream connection: a plain socket on the thread's io_context (no timer per
// operation: the thread's sweeper enforces deadlines).
struct Connection {
  explicit Connection(const asio::io_context::executor_type& ex) : socket(ex) {}
  tcp::socket socket;
  http::ResponseParser parser;  // reused: its buffers keep their capacity
};

// An upstream operation's deadline, watched by the thread's sweeper; linked into the thread's
// list in place (no allocation per request).
struct Deadline {
  tcp::socket* socket = nullptr;
  std::chrono::steady_clock::time_point at;
  bool expired = false;
  Deadline* prev = nullptr;
  Deadline* next = nullptr;
};

struct Proxy::Worker {
  explicit Worker(std::uint64_t seed) : balancer(seed), rng{seed * 31 + 7} {}
  Balancer balancer;
  std::uint64_t seen_version = ~std::uint64_t{0};
  std::shared_ptr<const RouteTable> table;
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle;  // by instance
  core::SplitMix64 rng;           // request ids, retry jitter
  Deadline* deadlines = nullptr;  // the first of a doubly linked list
  std::unordered_map<std::string, int> service_in_flight;
  std::uint64_t breaker_rejections = 0;
  int retries_in_flight = 0;  // for the retry budget
  std::uint64_t retries = 0;
  std::uint64_t budget_refusals = 0;
  bool sweeping = false;
  char read_buffer[16 * 1024];
};

namespace {

// Cancels the socket of every upstream operation past its deadline, every 50 ms while there
// are any (one timer per thread, not one per request).
asio::awaitable<void> sweep(Proxy::Worker& w) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (w.deadlines != nullptr) {
    timer.expires_after(std::chrono::milliseconds(50));
    co_await timer.async_wait(kAwait);
    const auto now = std::chrono::steady_clock::now();
    for (auto* d = w.deadlines; d != nullptr; d = d->next) {
      if (!d->expired && d->at <= now) {
        d->expired = true;
        boost::system::error_code ec;
        d->socket->cancel(ec);
      }
    }
  }
  w.sweeping = false;
}

// Lists `d` with the thread's sweeper for as long as it lives.
class Watched {
 public:
  Watched(Proxy::Worker& w, Deadline& d, const asio::io_context::executor_type& ex) : w_(w), d_(d) {
    d.prev = nullptr;
    d.next = w.deadlines;
    if (w.deadlines != nullptr) w.deadlines->prev = &d;
    w.deadlines = &d;
    if (!w.sweeping) {
      w.sweeping = true;
      asio::co_spawn(ex, sweep(w), asio::detached);
    }
  }
  ~Watched() {
    if (d_.prev != nullptr) d_.prev->next = d_.next;
    if (d_.next != nullptr) d_.next->prev = d_.prev;
    if (w_.deadlines == &d_) w_.deadlines = d_.next;
  }
  Watched(const Watched&) = delete;
  Watched& operator=(const Watched&) = delete;

 private:
  Proxy::Worker& w_;
  Deadline& d_;
};

}  // namespace

Proxy::Proxy(ProxyConfig config) : config_(config) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, config_.threads); ++i) {
    workers_.push_back(std::make_unique<Worker>(0x5eed + i * 7919));
  }
  table_ = std::make_shared<RouteTable>();
}

Proxy::~Proxy() = default;

void Proxy::publish(std::shared_ptr<const RouteTable> table) {
  std::lock_guard lock(mutex_);
  table_ = std::move(table);
  version_.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const RouteTable> Proxy::table() const {
  std::lock_guard lock(mutex_);
  return table_;
}

const RouteTable& Proxy::current(std::size_t worker) {
  auto& w = *workers_[worker];
  const auto v = version_.load(std::memory_order_acquire);
  if (v != w.seen_version) {  // a new table: take it once per thread, not per request
    std::lock_guard lock(mutex_);
    w.table = table_;
    w.seen_version = version_.load(std::memory_order_relaxed);
  }
  return *w.table;
}

std::optional<RouteMatch> Proxy::resolve(const RouteTable& table, const http::Request& req) const {
  if (!config_.internal.empty() && req.local_port() != 0) {
    for (const auto& [port, name] : config_.internal) {
      if (port != req.local_port()) continue;
      const Service* s = table.find(name);
      if (s == nullptr) return std::nullopt;
      return RouteMatch{s, {}, false};
    }
  }
  return table.match(req.header("host").value_or(""), req.path());
}

bool Proxy::handle(http::Request& req, http::Response& res, std::size_t worker) {
  const auto& table = current(worker);
  const auto m = resolve(table, req);
  if (!m) {
    res = http::Response::problem(404, fmt::format("no route for {}", req.path()));
    return true;
  }
  if (m->service->ready.empty()) {
    res = http::Response::problem(
        503, fmt::format("no ready instance of {} (starting, or all down)", m->service->name));
    res.set_header("Retry-After", "1");
    return true;
  }
  return false;  // forward: handle_async
}

asio::awaitable<void> Proxy::handle_async(http::Request& req, http::Response& res,
                                          std::size_t worker) {
  auto& w = *workers_[worker];
  const auto table = w.table;  // kept alive for this request, whatever is published meanwhile
  const auto m = resolve(*table, req);
  if (!m) {
    res = http::Response::problem(404, fmt::format("no route for {}", req.path()));
    co_return;
  }
  const Service& service = *m->service;
  // The server runs each connection on its thread's io_context: its executor, not a
  // type-erased one, for the upstream sockets.
  const auto any_executor = co_await asio::this_coro::executor;
  const auto executor = *any_executor.target<asio::io_context::executor_type>();
  const Policy& policy = service.policy;
  const auto started_at = std::chrono::steady_clock::now();
  const auto deadline = started_at + policy.timeout;
  // Circuit breaker: at most max_in_flight requests to this service (shared out over threads).
  auto& in_flight = w.service_in_flight[service.name];
  const int limit_here = std::max<int>(1, policy.max_in_flight / static_cast<int>(workers_.size()));
  if (in_flight >= limit_here) {
    ++w.breaker_rejections;
    res = http::Response::problem(
        503, fmt::format("{} has {} requests in flight, its limit: try again shortly", service.name,
                         policy.max_in_flight));
    res.set_header("Retry-After", "1");
    co_return;
  }
  ++in_flight;
  struct Leave {
    int& n;
    ~Leave() { --n; }
  } leave{in_flight};

  // The request as the upstream sees it: same method, target (prefix stripped if asked),
  // end-to-end headers, X-Forwarded-*, a request id, and a Content-Length for the body.
  if (req.request_id().empty()) {
    if (auto id = req.header("x-request-id"); id && !id->empty() && id->size() <= 200) {
      req.set_request_id(*id);
    } else {
      req.set_request_id(new_request_id(w.rng));
    }
  }
  std::string head;
  head.reserve(512 + req.target().size() + std::min<std::size_t>(req.body().size(), 16 * 1024));
  head.append(req.method_name()).append(" ").append(m->upstream_target(req.target()));
  head.append(" HTTP/1.1\r\n");
  std::string forwarded_for;
  for (const auto& h : req.headers()) {
    if (dropped_request_header(h.name)) continue;
    if (http::iequals(h.name, "x-forwarded-for")) {
      forwarded_for = std::string(h.value) + ", ";
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
  if (!req.body().empty() || req.method() == http::Method::kPost ||
      req.method() == http::Method::kPut || req.method() == http::Method::kPatch) {
    head.append("Content-Length: ").append(std::to_string(req.body().size())).append("\r\n");
  }
  head.append("\r\n");
  // Small bodies travel in the same buffer (one send); large ones as a second buffer.
  const bool inline_body = req.body().size() <= 16 * 1024;
  if (inline_body) head.append(req.body());
  const std::array<asio::const_buffer, 2> out{
      asio::buffer(head), inline_body ? asio::const_buffer() : asio::buffer(req.body())};

  std::array<std::string_view, 8> tried_ids;  // instances already tried for this request
  std::size_t tried_count = 0;
  std::string last_error;
  bool timed_out = false;
  const int attempts = std::min<int>(policy.retries + 1, static_cast<int>(tried_ids.size()));
  struct RetryCount {
    int& n;
    bool counted = false;
    ~RetryCount() {
      if (counted) --n;
    }
  } retrying{w.retries_in_flight};
  bool refused = false;  // the last attempt could not connect: the instance got nothing
  for (int attempt = 0; attempt < attempts; ++attempt) {
    // A retry after a refused connection goes to another instance at once, outside the budget:
    // it adds no load to the failing one (a dead instance still listed for a few milliseconds).
    if (attempt > 0 && !refused) {
      // The retry budget: retries in flight at most 20 % of the requests in flight (at least
      // 3, as Envoy), so that a failing service is not hit with three times its load.
      if (!retrying.counted &&
          w.retries_in_flight >= std::max(3, static_cast<int>(in_flight) / 5)) {
        ++w.budget_refusals;
        break;
      }
      if (!retrying.counted) {
        retrying.counted = true;
        ++w.retries_in_flight;
      }
      ++w.retries;
      // Full jitter: a random wait up to 25 ms, doubling per retry, at most 250 ms.
      const auto cap = std::min<std::int64_t>(250, 25LL << (attempt - 1));
      const auto wait = std::chrono::milliseconds(
          static_cast<std::int64_t>(w.rng() % static_cast<std::uint64_t>(cap + 1)));
      if (std::chrono::steady_clock::now() + wait >= deadline) break;
      asio::steady_timer pause(executor, wait);
      co_await pause.async_wait(kAwait);
    }
    const auto pick = w.balancer.pick(service, {tried_ids.data(), tried_count},
                                      attempt == 0 ? started_at : std::chrono::steady_clock::now());
    if (!pick) break;
    const Endpoint& ep = service.ready[*pick];  // `table` keeps it alive
    tried_ids[tried_count++] = ep.id;
    w.balancer.started(ep);
    refused = false;
    struct Finish {
      Balancer& b;
      const Endpoint& e;
      ~Finish() { b.finished(e); }
    } finish{w.balancer, ep};

    // A pooled connection, or a new one. A pooled one the upstream closed meanwhile fails
    // before any answer: then a fresh connection is tried once, on the same endpoint.
    bool sent_anything = false;
    bool try_next = false;  // answered 503: another instance may do better
    for (int fresh = 0; fresh < 2; ++fresh) {
      std::unique_ptr<Connection> conn;
      auto& pool = w.idle[ep.id];
      const bool reused = fresh == 0 && !pool.empty();
      Deadline limit;
      limit.at = deadline;
      if (reused) {
        conn = std::move(pool.back());
        pool.pop_back();
        limit.socket = &conn->socket;
      } else {
        fresh = 1;
        conn = std::make_unique<Connection>(executor);
        boost::system::error_code ec;
        const auto address = asio::ip::make_address(ep.host, ec);
        if (ec) {
          last_error = "bad address " + ep.host;
          break;
        }
        limit.socket = &conn->socket;
        limit.at = std::min(deadline, std::chrono::steady_clock::now() + policy.connect_timeout);
        Watched watched(w, limit, executor);
        auto [cec] = co_await conn->socket.async_connect(tcp::endpoint(address, ep.port), kAwait);
        if (cec || limit.expired) {
          refused = !limit.expired;
          last_error =
              fmt::format("{}: {}", ep.id, limit.expired ? "connect timeout" : cec.message());
          timed_out = limit.expired && std::chrono::steady_clock::now() >= deadline;
          break;  // nothing was sent: any method may go to another instance
        }
        conn->socket.set_option(tcp::no_delay(true), ec);
        limit.at = deadline;
      }
      Watched watched(w, limit, executor);
      // One buffer goes out with send(); two need sendmsg().
      auto [wec, wn] = inline_body
                           ? co_await asio::async_write(conn->socket, asio::buffer(head), kAwait)
                           : co_await asio::async_write(conn->socket, out, kAwait);
      if (wec || limit.expired) {
        if (reused && !limit.expired) continue;  // a stale pooled connection
        sent_anything = wn > 0;
        timed_out = limit.expired;
        last_error = fmt::format("{}: {}", ep.id, timed_out ? "timeout" : wec.message());
        break;
      }
      sent_anything = true;
      http::ResponseParser& parser = conn->parser;
      parser.reset(req.method() == http::Method::kHead);
      auto result = http::ResponseParser::Result::kNeedMore;
      bool leftover = false;
      std::string why;
      while (result == http::ResponseParser::Result::kNeedMore) {
        auto [rec, rn] = co_await conn->socket.async_read_some(
            asio::buffer(w.read_buffer, sizeof w.read_buffer), kAwait);
        if (limit.expired) {
          timed_out = true;
          why = "timeout";
          result = http::ResponseParser::Result::kError;
          break;
        }
        if (rec == asio::error::eof) {
          result = parser.finish_eof();
          why = parser.error();
          break;
        }
        if (rec) {
          why = rec.message();
          result = http::ResponseParser::Result::kError;
          break;
        }
        std::size_t used = 0;
        result = parser.feed(std::string_view(w.read_buffer, rn), used);
        leftover = used < rn;
        if (result == http::ResponseParser::Result::kError)
          why = "bad answer: " + std::string(parser.error());
      }
      if (result != http::ResponseParser::Result::kDone) {
        // Cut off before any answer on a reused connection: it was stale; try a fresh one.
        if (reused && !parser.started() && !timed_out) continue;
        last_error = fmt::format("{}: {}", ep.id, why);
        break;
      }
      const int status = parser.status();
      w.balancer.record(service, ep, status < 500, std::chrono::steady_clock::now());
      if (parser.keep_alive() && !leftover && pool.size() < config_.max_idle_per_endpoint) {
        pool.push_back(std::move(conn));
      }
      if (status == 503 && idempotent(req.method()) && attempt + 1 < attempts &&
          service.ready.size() > tried_count) {
        last_error = fmt::format("{}: 503", ep.id);
        try_next = true;
        break;
      }
      res = http::Response{};
      res.status = status;
      res.content_type = {};
      res.headers.reserve(parser.headers().size());
      for (const auto& [name, value] : parser.headers()) {
        if (dropped_response_header(name)) continue;
        res.headers.emplace_back(std::string(name), std::string(value));
      }
      res.body = std::move(parser.body());
      co_return;
    }
    if (try_next) continue;
    // No answer from this instance (refused, reset, cut off, timed out): a failure.
    w.balancer.record(service, ep, false, std::chrono::steady_clock::now());
    if (timed_out) break;
    if (sent_anything && !idempotent(req.method())) {
      res = http::Response::problem(
          502, fmt::format("{} failed during the request: {}", service.name, last_error));
      co_return;
    }
  }
  if (timed_out) {
    res = http::Response::problem(
        504, fmt::format("{} did not answer within {} ms", service.name, policy.timeout.count()));
    co_return;
  }
  res = http::Response::problem(
      503, fmt::format("{}: {}", service.name,
                       last_error.empty() ? "no instance answered" : last_error));
  res.set_header("Retry-After", "1");
}

}  // namespace squadron::gateway
