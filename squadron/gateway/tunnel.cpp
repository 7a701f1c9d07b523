#include "squadron/gateway/tunnel.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <memory>
#include <string_view>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_set>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "squadron/core/scope_exit.hpp"
#include "squadron/core/spawn.hpp"
#include "squadron/gateway/admission.hpp"
#include "squadron/gateway/proxy.hpp"
#include "squadron/http/outbound.hpp"
#include "squadron/http/response_parser.hpp"
#include "squadron/resilience/concurrency_limit.hpp"

namespace squadron::gateway {

namespace asio = boost::asio;
using asio::experimental::awaitable_operators::operator&&;
using asio::experimental::awaitable_operators::operator||;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// Per direction. A database's replies are mostly small; 16 KiB moves a bulk reply in few reads.
constexpr std::size_t kBuffer = 16 * 1024;
// An upgraded connection's buffers, one per direction while it passes bytes: WebSocket messages
// are small, and a thousand tunnels should not hold 32 MiB.
constexpr std::size_t kUpgradeBuffer = 4 * 1024;
// A refused upgrade's answer (a 400, a 401) is relayed whole up to this size.
constexpr std::size_t kMaxUpgradeAnswer = 1024 * 1024;

// The status a connection's outcome is counted as (the HTTP classes the metrics keep).
constexpr int kPassed = 200, kNoInstance = 503, kUnreachable = 502, kTimedOut = 504;

tcp family_of(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4();
}

void close_both(tcp::socket& a, tcp::socket& b) {
  error_code ignored;
  a.close(ignored);
  b.close(ignored);
}

// Bytes from `from` to `to` until `from` ends its side (then `to`'s write side is shut: the
// half-close passes through) or either fails (then both close, which ends the other direction).
asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to) {
  auto buffer = std::make_unique<std::array<char, kBuffer>>();
  while (true) {
    auto [rec, n] = co_await from.async_read_some(asio::buffer(*buffer), kAwait);
    if (n > 0) {
      auto [wec, written] = co_await asio::async_write(to, asio::buffer(buffer->data(), n), kAwait);
      if (wec) {
        close_both(from, to);
        co_return;
      }
    }
    if (rec == asio::error::eof) {
      error_code ignored;
      to.shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    if (rec) {
      close_both(from, to);
      co_return;
    }
  }
}

void tune(tcp::socket& s) {
  error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);                  // the ends chose their own batching
  s.set_option(asio::socket_base::keep_alive(true), ignored);  // a vanished peer ends it
}

}  // namespace

struct TcpFront::Worker {
  explicit Worker(asio::io_context& c) : context(c), grace(c) {}
  asio::io_context& context;
  std::unordered_set<tcp::socket*> open;  // each connection's client socket
  bool stopping = false;
  asio::steady_timer grace;
};

struct TcpFront::Listener {
  explicit Listener(asio::io_context& c) : acceptor(c), pause(c) {}
  tcp::acceptor acceptor;
  asio::steady_timer pause;  // after an accept that failed for want of descriptors
  std::uint16_t port = 0;
};

TcpFront::TcpFront(Proxy& proxy, std::vector<asio::io_context*> contexts) : proxy_(proxy) {
  for (auto* c : contexts) workers_.push_back(std::make_unique<Worker>(*c));
}

TcpFront::~TcpFront() = default;

error_code TcpFront::adopt(int fd, std::uint16_t* bound) {
  int listening = 0;
  socklen_t optlen = sizeof listening;
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0)
    return {errno, boost::system::system_category()};
  if (listening == 0) return asio::error::invalid_argument;
  auto l = std::make_unique<Listener>(workers_[0]->context);
  error_code ec;
  l->acceptor.assign(family_of(fd), fd, ec);
  if (ec) return ec;
  l->port = l->acceptor.local_endpoint(ec).port();
  if (ec) return ec;
  if (bound != nullptr) *bound = l->port;
  listeners_.push_back(std::move(l));
  return {};
}

error_code TcpFront::listen(const std::string& host, std::uint16_t port, std::uint16_t* bound) {
  error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return ec;
  auto l = std::make_unique<Listener>(workers_[0]->context);
  const tcp::endpoint ep(address, port);
  l->acceptor.open(ep.protocol(), ec);
  if (!ec) l->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) l->acceptor.bind(ep, ec);
  if (!ec) l->acceptor.listen(4096, ec);
  if (ec) return ec;
  l->port = l->acceptor.local_endpoint(ec).port();
  if (bound != nullptr) *bound = l->port;
  listeners_.push_back(std::move(l));
  return ec;
}

void TcpFront::start() {
  for (auto& l : listeners_) {
    core::spawn(workers_[0]->context, accept_loop(*l),
                "the TCP listener on port " + std::to_string(l->port));
  }
}

void TcpFront::stop(std::chrono::milliseconds grace) {
  if (stopping_.exchange(true)) return;
  asio::post(workers_[0]->context, [this] {
    error_code ignored;
    for (auto& l : listeners_) {
      l->acceptor.close(ignored);
      l->pause.cancel();
    }
  });
  for (auto& w : workers_) {
    asio::post(w->context, [w = w.get(), grace] {
      w->stopping = true;
      if (w->open.empty()) return;  // nothing to wait for: no timer keeps the context running
      w->grace.expires_after(grace);
      w->grace.async_wait([w](error_code ec) {
        if (ec) return;
        error_code ignored;
        for (auto* s : w->open) s->close(ignored);  // each connection then closes its upstream
      });
    });
  }
}

asio::awaitable<void> TcpFront::accept_loop(Listener& l) {
  while (true) {
    auto [ec, socket] = co_await l.acceptor.async_accept(kAwait);
    if (ec == asio::error::operation_aborted || !l.acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors (or the peer gave up already): the connection waits in the queue.
      if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
        l.pause.expires_after(std::chrono::milliseconds(50));
        co_await l.pause.async_wait(kAwait);
      }
      continue;
    }
    // A connection lives on one thread (BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO): its descriptor
    // goes to that thread's context, which adopts it.
    error_code released;
    const int fd = socket.release(released);
    if (released) continue;
    const std::size_t i = next_++ % workers_.size();
    asio::post(workers_[i]->context, [this, fd, i, port = l.port] {
      core::spawn(workers_[i]->context, serve(fd, port, i), "a TCP connection");
    });
  }
}

// One connection's way to an instance: the table it was routed by (kept alive while its
// service is read), and what it tried.
struct TcpFront::Route {
  std::shared_ptr<const RouteTable> table;
  const Cluster* service = nullptr;
  std::vector<std::string> tried;  // instance ids, this round
};

asio::awaitable<bool> TcpFront::await_ready(Route& r, std::uint16_t port, std::size_t i,
                                            std::chrono::steady_clock::time_point start) {
  http::Response res;  // hold_for_wake's answer for HTTP: a connection is just closed
  const std::string name = r.service->name;
  WakeWait wait{[this, i, port, &r]() -> std::optional<RouteMatch> {
                  if (workers_[i]->stopping) return std::nullopt;  // no hold past a stop
                  r.table = proxy_.table_on(i);
                  r.service = r.table->find_by_port(port);
                  if (r.service == nullptr) return std::nullopt;
                  return RouteMatch{r.service, {}, false, kNoRoute};
                },
                r.service->policy.scale_to_zero ? proxy_.config().wake : WakeWait{}.wake,
                start,
                "",
                &proxy_.held_on(i),
                proxy_.config().max_held_per_thread};
  const auto match = co_await hold_for_wake(name, r.service->policy.timeout, std::move(wait), res);
  if (!match) co_return false;
  r.service = match->service;
  co_return true;
}

namespace {

// Up to 1 + retries connects to ready instances of `service` not in `tried` (each one tried is
// added); the one that accepted on `upstream`.
asio::awaitable<std::optional<Endpoint>> connect_instance(
    resilience::Balancer& balancer, const Cluster& service, tcp::socket& upstream,
    std::vector<std::string>& tried, Stats& stats, bool& timed_out, const bool* stopping,
    const Affinity* affinity = nullptr) {
  const resilience::Pool pool = pool_of(service);
  const auto& policy = service.policy;
  const int attempts = 1 + std::max(0, policy.retries);
  for (int n = 0; n < attempts && (stopping == nullptr || !*stopping); ++n) {
    const std::vector<std::string_view> skip(tried.begin(), tried.end());
    const auto now = std::chrono::steady_clock::now();
    auto k = n == 0 && affinity != nullptr ? affine_pick(balancer, pool, *affinity, skip, now)
                                           : std::nullopt;
    if (!k) k = balancer.pick(pool, skip, now);
    if (!k) break;
    const Endpoint ep = pool.ready[*k];
    tried.push_back(ep.id);
    if (n > 0) stats.retries.add();
    error_code ec;
    const auto address = asio::ip::make_address(ep.host, ec);
    if (ec) continue;
    asio::steady_timer limit(upstream.get_executor(), policy.connect_timeout);
    auto outcome = co_await (upstream.async_connect(tcp::endpoint(address, ep.port), kAwait) ||
                             limit.async_wait(kAwait));
    timed_out = outcome.index() == 1;
    ec = timed_out ? asio::error::timed_out : std::get<0>(std::get<0>(outcome));
    const bool ok = !ec;
    if (balancer.record(pool, ep, ok, std::chrono::steady_clock::now())) stats.ejections.add();
    if (ok) co_return ep;
    error_code ignored;
    upstream.close(ignored);
  }
  co_return std::nullopt;
}

}  // namespace

asio::awaitable<std::optional<Endpoint>> TcpFront::connect(Route& r, tcp::socket& upstream,
                                                           std::size_t i, Stats& stats,
                                                           bool& timed_out) {
  co_return co_await connect_instance(proxy_.balancer_on(i), *r.service, upstream, r.tried, stats,
                                      timed_out, &workers_[i]->stopping);
}

namespace {

// An upstream's bytes to the upgraded client until the upstream ends its side (passed on as a
// half-close) or either fails (then both close).
asio::awaitable<void> pump_to_client(tcp::socket& from, http::Upgraded& to) {
  auto buffer = std::make_unique<std::array<char, kUpgradeBuffer>>();
  while (true) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(*buffer), kAwait);
    if (n > 0 && !co_await to.write(std::string_view(buffer->data(), n))) {
      error_code ignored;
      from.close(ignored);
      co_return;
    }
    if (ec == asio::error::eof) {
      to.shutdown_send();
      co_return;
    }
    if (ec) {
      to.close();
      co_return;
    }
  }
}

// The upgraded client's bytes to the upstream until the client ends, fails or stays quiet past
// the tunnel timeout: then the upstream connection closes (a WebSocket has no half-close, and an
// upstream left open would hold its side of the tunnel for good).
asio::awaitable<void> pump_from_client(http::Upgraded& from, tcp::socket& to) {
  auto buffer = std::make_unique<std::array<char, kUpgradeBuffer>>();
  while (true) {
    const std::size_t n = co_await from.read_some(buffer->data(), buffer->size());
    if (n == 0) break;
    // At once when the socket takes it all (nearly always), else through the reactor.
    error_code ec;
    std::size_t sent = to.write_some(asio::buffer(buffer->data(), n), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      sent = 0;
    }
    if (!ec && sent < n) {
      std::tie(ec, std::ignore) =
          co_await asio::async_write(to, asio::buffer(buffer->data() + sent, n - sent), kAwait);
    }
    if (ec) break;
  }
  error_code ignored;
  to.shutdown(tcp::socket::shutdown_both, ignored);
  to.close(ignored);
}

// The fields of an upstream's answer the client gets: the end-to-end ones (the framing is the
// server's to write, Date and X-Request-Id the gateway's, as on every answer it relays), and
// for a 101 the upgrade it agreed to.
void copy_answer_fields(const http::ResponseParser& parser, http::Response& res) {
  for (const auto& [name, value] : parser.headers()) {
    if (http::hop_by_hop_field(name) || dropped_response_field(name)) continue;
    res.headers.emplace_back(std::string(name), std::string(value));
  }
  if (parser.status() != 101) return;
  for (const auto& [name, value] : parser.headers()) {
    if (http::iequals(name, "upgrade")) res.headers.emplace_back("Upgrade", std::string(value));
  }
  res.headers.emplace_back("Connection", "Upgrade");
}

}  // namespace

asio::awaitable<void> forward_upgrade(resilience::Balancer& balancer, Stats& stats,
                                      const Cluster& service, UpstreamRequest up,
                                      std::shared_ptr<const void> table, http::Response& res,
                                      RequestAccount account, Affinity affinity) {
  (void)account;  // counts the handshake until its answer, in `res`, is decided
  const auto executor = co_await asio::this_coro::executor;
  auto upstream = std::make_shared<tcp::socket>(executor);
  std::vector<std::string> tried;
  bool timed_out = false;
  const std::optional<Endpoint> chosen = co_await connect_instance(
      balancer, service, *upstream, tried, stats, timed_out, nullptr, &affinity);
  if (!chosen) {
    res = http::Response::problem(
        timed_out ? 504 : 503, fmt::format("no instance of {} took the connection", service.name));
    if (!timed_out) res.set_header("Retry-After", "1");
    co_return;
  }
  const Endpoint ep = *chosen;
  tune(*upstream);
  error_code nb;
  upstream->non_blocking(true, nb);  // the pump's write_some tries without waiting
  // The handshake (a GET without a body) and its answer within the route's timeout.
  asio::steady_timer limit(executor, service.policy.timeout);
  auto sent = co_await (asio::async_write(*upstream, asio::buffer(up.head()), kAwait) ||
                        limit.async_wait(kAwait));
  if (sent.index() == 1 || std::get<0>(std::get<0>(sent))) {
    res = http::Response::problem(502, fmt::format("{} closed the connection", ep.id));
    co_return;
  }
  http::ResponseParser parser(false);
  parser.allow_upgrade();
  std::string buffer(kUpgradeBuffer, '\0');
  std::string early;  // what the upstream sent after its 101: the new protocol's first bytes
  while (!parser.done()) {
    auto got = co_await (upstream->async_read_some(asio::buffer(buffer), kAwait) ||
                         limit.async_wait(kAwait));
    if (got.index() == 1) {
      res = http::Response::problem(504, fmt::format("{} did not answer within {} ms", ep.id,
                                                     service.policy.timeout.count()));
      co_return;
    }
    auto [ec, n] = std::get<0>(got);
    http::ResponseParser::Result r = http::ResponseParser::Result::kNeedMore;
    if (n > 0) {
      std::size_t used = 0;
      r = parser.feed(std::string_view(buffer.data(), n), used);
      if (r == http::ResponseParser::Result::kDone) early.assign(buffer.data() + used, n - used);
    } else if (ec == asio::error::eof) {
      r = parser.finish_eof();
    }
    if (r == http::ResponseParser::Result::kError ||
        (ec && r != http::ResponseParser::Result::kDone) ||
        parser.body().size() > kMaxUpgradeAnswer) {
      res = http::Response::problem(
          502, fmt::format("{} answered what cannot be passed on: {}", ep.id,
                           parser.error().empty() ? "cut off" : parser.error()));
      co_return;
    }
  }
  res.status = parser.status();
  res.content_type = {};
  copy_answer_fields(parser, res);
  stick(affinity, ep.id, res);
  if (!parser.upgraded()) {  // refused (a 400, a 401...): the answer as it came, then the end
    res.body = std::move(parser.body());
    res.close = true;
    co_return;
  }
  table.reset();  // the tunnel reads no table: a newer one need not wait for it
  // The tunnel runs once the server sent the 101, on this thread; its state lives in the lambda,
  // which the server keeps (in `res`) until it returns.
  res.upgraded = [upstream, early = std::move(early), &balancer, &stats,
                  ep](http::Upgraded& client) -> asio::awaitable<void> {
    // In flight to the instance while it lasts: a draining instance keeps it (up to stop_grace).
    balancer.started(ep);
    stats.tunnels.add();
    core::ScopeExit end([&] {
      balancer.finished(ep);
      stats.tunnels.sub();
    });
    if (!early.empty() && !co_await client.write(early)) co_return;
    co_await (pump_to_client(*upstream, client) && pump_from_client(client, *upstream));
  };
}

asio::awaitable<bool> TcpFront::await_other(Route& r, std::uint16_t port, std::size_t i,
                                            std::chrono::steady_clock::time_point start) {
  // Every instance tried refused: most likely they died, and the registry says so within
  // milliseconds. Then the connection goes on to the others, or waits for one starting, as a
  // connection that came a moment later would; an instance listed and refusing all the same
  // fails it after this short look.
  const auto timeout = r.service->policy.timeout;
  const auto until =
      std::min(start + timeout, std::chrono::steady_clock::now() + std::chrono::seconds(2));
  asio::steady_timer tick(workers_[i]->context);
  while (std::chrono::steady_clock::now() < until && !workers_[i]->stopping) {
    tick.expires_after(std::chrono::milliseconds(20));
    co_await tick.async_wait(kAwait);
    r.table = proxy_.table_on(i);
    r.service = r.table->find_by_port(port);
    if (r.service == nullptr) co_return false;
    const bool tried_gone =
        std::none_of(r.service->ready.begin(), r.service->ready.end(), [&](const Endpoint& e) {
          return std::find(r.tried.begin(), r.tried.end(), e.id) != r.tried.end();
        });
    if (tried_gone &&
        (!r.service->ready.empty() || r.service->coming > 0 || r.service->policy.scale_to_zero)) {
      r.tried.clear();
      co_return true;
    }
  }
  co_return false;
}

asio::awaitable<void> TcpFront::serve(int fd, std::uint16_t port, std::size_t i) {
  Worker& w = *workers_[i];
  tcp::socket client(w.context), upstream(w.context);
  error_code ec;
  client.assign(family_of(fd), fd, ec);
  if (ec) {
    ::close(fd);
    co_return;
  }
  if (w.stopping) co_return;  // the socket closes as the frame ends
  w.open.insert(&client);
  open_.fetch_add(1, std::memory_order_relaxed);
  core::ScopeExit leave([&] {
    w.open.erase(&client);
    open_.fetch_sub(1, std::memory_order_relaxed);
    if (w.stopping && w.open.empty()) w.grace.cancel();
  });

  Route r{proxy_.table_on(i), nullptr, {}};
  r.service = r.table->find_by_port(port);
  if (r.service == nullptr) co_return;  // no service has this port (any more): nothing to reach
  Stats& stats = proxy_.stats_on(i, r.service->name);
  const auto start = std::chrono::steady_clock::now();
  int status = kNoInstance;
  bool counted = false;  // the outcome is counted once, when the connect is over
  auto count = [&] {
    if (counted) return;
    counted = true;
    stats.finish(status, std::chrono::steady_clock::now() - start);
  };
  stats.requests.add();
  stats.in_flight.add();
  core::ScopeExit account([&] {
    stats.in_flight.sub();
    count();
  });

  std::optional<Endpoint> chosen;
  bool admitted = false;
  while (!chosen) {
    if (r.service->ready.empty()) {
      // Starting, restarting, or waking from zero: held as an HTTP request would be.
      const auto timeout = r.service->policy.timeout;
      if (!co_await await_ready(r, port, i, start)) {
        if (std::chrono::steady_clock::now() - start >= timeout) status = kTimedOut;
        co_return;
      }
    }
    if (!admitted) {  // the breaker: open connections of the service, shared over the threads
      const resilience::ConcurrencyLimit breaker(r.service->policy.max_in_flight, workers_.size());
      const auto verdict = breaker.admit(static_cast<std::int64_t>(stats.in_flight.get()));
      if (verdict == resilience::ConcurrencyLimit::Verdict::kRefused) {
        stats.breaker_rejections.add();
        co_return;
      }
      if (verdict == resilience::ConcurrencyLimit::Verdict::kReached) stats.breaker_opens.add();
      admitted = true;
    }
    bool timed_out = false;
    chosen = co_await connect(r, upstream, i, stats, timed_out);
    if (w.stopping) co_return;
    if (!chosen) {
      status = timed_out ? kTimedOut : kUnreachable;
      if (!co_await await_other(r, port, i, start)) co_return;
    }
  }
  status = kPassed;
  count();
  auto& balancer = proxy_.balancer_on(i);
  balancer.started(*chosen);  // in flight to it until the connection ends: what a drain waits on
  core::ScopeExit finished([&] { balancer.finished(*chosen); });
  r = {};  // nothing below reads the table: a newer one need not wait for this connection
  tune(client);
  tune(upstream);
  co_await (pump(client, upstream) && pump(upstream, client));
}

}  // namespace squadron::gateway
