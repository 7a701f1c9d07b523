#include "squadron/gateway/proxy.hpp"

#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <fmt/format.h>

namespace squadron::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

namespace {

// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the gateway sets itself.
bool dropped_request_header(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "connection", "keep-alive",     "proxy-connection",   "te", "trailer", "transfer-encoding",
      "upgrade",    "content-length", "proxy-authorization"};
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

std::string new_request_id(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return fmt::format("{:016x}", z ^ (z >> 31));
}

}  // namespace

struct Connection {
  explicit Connection(const asio::any_io_executor& ex) : stream(ex) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

struct Proxy::Worker {
  explicit Worker(std::uint64_t seed) : balancer(seed), id_state(seed * 31 + 7) {}
  Balancer balancer;
  std::uint64_t seen_version = ~std::uint64_t{0};
  std::shared_ptr<const RouteTable> table;
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle;
  std::uint64_t id_state;
};

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

bool Proxy::handle(http::Request& req, http::Response& res, std::size_t worker) {
  const auto& table = current(worker);
  const auto m = table.match(req.header("host").value_or(""), req.path());
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
  const auto m = table->match(req.header("host").value_or(""), req.path());
  if (!m) {
    res = http::Response::problem(404, fmt::format("no route for {}", req.path()));
    co_return;
  }
  const Service& service = *m->service;
  auto executor = co_await asio::this_coro::executor;
  const auto deadline = std::chrono::steady_clock::now() + config_.route_timeout;

  // The request as the upstream sees it: same method, target (prefix stripped if asked),
  // end-to-end headers, X-Forwarded-*, a request id, and a Content-Length for the body.
  if (req.request_id().empty()) {
    if (auto id = req.header("x-request-id"); id && !id->empty() && id->size() <= 200) {
      req.set_request_id(*id);
    } else {
      req.set_request_id(new_request_id(w.id_state));
    }
  }
  std::string head;
  head.reserve(512 + req.target().size());
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
    head.append(fmt::format("Content-Length: {}\r\n", req.body().size()));
  }
  head.append("\r\n");
  const std::array<asio::const_buffer, 2> out{asio::buffer(head), asio::buffer(req.body())};

  std::vector<std::string> tried;
  std::string last_error = "no instance answered";
  bool timed_out = false;
  for (int attempt = 0; attempt <= config_.max_retries; ++attempt) {
    const auto pick = w.balancer.pick(service.ready, tried);
    if (!pick) break;
    const Endpoint ep = service.ready[*pick];
    tried.push_back(ep.id);
    const std::string key = ep.host + ":" + std::to_string(ep.port);
    w.balancer.started(ep);
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
      auto& pool = w.idle[key];
      const bool reused = fresh == 0 && !pool.empty();
      if (reused) {
        conn = std::move(pool.back());
        pool.pop_back();
      } else {
        fresh = 1;
        conn = std::make_unique<Connection>(executor);
        boost::system::error_code ec;
        const auto address = asio::ip::make_address(ep.host, ec);
        if (ec) {
          last_error = "bad address " + ep.host;
          break;
        }
        conn->stream.expires_after(
            std::min(config_.connect_timeout, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  deadline - std::chrono::steady_clock::now())));
        auto [cec] = co_await conn->stream.async_connect(tcp::endpoint(address, ep.port), kAwait);
        if (cec) {
          last_error = fmt::format("{} ({}): {}", ep.id, key, cec.message());
          timed_out = cec == beast::error::timeout && std::chrono::steady_clock::now() >= deadline;
          break;  // nothing was sent: any method may go to another instance
        }
        conn->stream.socket().set_option(tcp::no_delay(true), ec);
      }
      conn->stream.expires_at(deadline);
      auto [wec, wn] = co_await asio::async_write(conn->stream, out, kAwait);
      if (wec) {
        if (reused) continue;  // a stale pooled connection
        sent_anything = wn > 0;
        last_error = fmt::format("{}: {}", ep.id, wec.message());
        break;
      }
      sent_anything = true;
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      parser.header_limit(64 * 1024);
      if (req.method() == http::Method::kHead) parser.skip(true);
      auto [rec, rn] = co_await bhttp::async_read(conn->stream, conn->buffer, parser, kAwait);
      if (rec) {
        if (reused && parser.got_some() == false && rec != beast::error::timeout) continue;
        timed_out = rec == beast::error::timeout;
        last_error = fmt::format("{}: {}", ep.id, rec.message());
        break;
      }
      auto& msg = parser.get();
      const int status = static_cast<int>(msg.result_int());
      const bool retryable_status = status == 503 && idempotent(req.method());
      if (msg.keep_alive() && pool.size() < config_.max_idle_per_endpoint) {
        conn->stream.expires_never();
        pool.push_back(std::move(conn));
      }
      if (retryable_status && attempt < config_.max_retries &&
          service.ready.size() > tried.size()) {
        last_error = fmt::format("{}: 503", ep.id);
        try_next = true;
        break;
      }
      res = http::Response{};
      res.status = status;
      res.content_type = {};
      for (const auto& f : msg) {
        if (dropped_response_header(f.name_string())) continue;
        res.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      }
      res.body = std::move(msg.body());
      co_return;
    }
    if (try_next) continue;
    if (timed_out) break;
    if (sent_anything && !idempotent(req.method())) {
      res = http::Response::problem(
          502, fmt::format("{} failed during the request: {}", service.name, last_error));
      co_return;
    }
  }
  if (timed_out) {
    res = http::Response::problem(504, fmt::format("{} did not answer within {} ms", service.name,
                                                   config_.route_timeout.count()));
    co_return;
  }
  res = http::Response::problem(503, fmt::format("{}: {}", service.name, last_error));
  res.set_header("Retry-After", "1");
}

}  // namespace squadron::gateway
