#include "squadron/http/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

namespace squadron::http {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// One connection's worth of upstream: reads a request, writes `answer`, then closes.
asio::awaitable<void> answer_once(tcp::acceptor& acceptor, std::string answer) {
  auto socket = co_await acceptor.async_accept(asio::use_awaitable);
  char buf[4096];
  co_await socket.async_read_some(asio::buffer(buf), asio::use_awaitable);
  co_await asio::async_write(socket, asio::buffer(answer), asio::use_awaitable);
  socket.close();
}

struct Streamed {
  Exchange x;
  Response res;
  bool was_streamed = false;  // res.stream was set (it is dropped before the io_context goes)
  std::vector<BodyPiece> pieces;
};

asio::awaitable<void> fetch(ConnectionPool& pool, std::uint16_t port, Streamed& out) {
  static constexpr std::string_view kRequest = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
  const std::array<asio::const_buffer, 1> bytes{asio::buffer(kRequest)};
  ExchangeOptions options;
  options.deadline = std::chrono::steady_clock::now() + 5s;
  options.stream_above = 4;
  out.x = co_await pool.exchange({"t", "127.0.0.1", port}, bytes, options, out.res);
  if (!out.res.stream) co_return;
  while (true) {
    out.pieces.push_back(co_await out.res.stream());
    if (out.pieces.back().end) break;
  }
}

Streamed stream_from(std::string answer) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  ConnectionPool pool(io.get_executor());
  Streamed out;
  asio::co_spawn(io, answer_once(acceptor, std::move(answer)), asio::detached);
  asio::co_spawn(io, fetch(pool, acceptor.local_endpoint().port(), out), asio::detached);
  io.run();
  out.was_streamed = static_cast<bool>(out.res.stream);
  out.res.stream = nullptr;  // the pump (and its socket) goes before the io_context does
  return out;
}

TEST(ConnectionPool, AChunkedBodyComesWholeToItsEnd) {
  const auto s = stream_from(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n "
      "world\r\n0\r\n\r\n");
  ASSERT_EQ(s.x.outcome, Outcome::kAnswered) << s.x.error;
  std::string body = s.res.body;  // what came with the head, if all of it did
  if (!s.was_streamed) {
    EXPECT_EQ(body, "hello world");
    return;
  }
  for (const auto& p : s.pieces) {
    EXPECT_FALSE(p.failed()) << p.error;
    body += p.data;
  }
  EXPECT_EQ(body, "hello world");
  EXPECT_TRUE(s.pieces.back().end);
}

// The answer's Content-Type goes on as it came. A usual one is told by a constant (no string of
// its own: a proxied answer then costs no allocation), an unusual one as a field; two are both
// kept, or three; and no answer says none.
TEST(ConnectionPool, TheAnswersContentTypeGoesOnAsItCame) {
  const auto type_of = [](std::string fields) {
    auto s = stream_from("HTTP/1.1 200 OK\r\n" + fields + "Content-Length: 2\r\n\r\nok");
    EXPECT_EQ(s.x.outcome, Outcome::kAnswered) << s.x.error;
    return s.res;
  };
  Response json = type_of("Content-Type: application/json\r\n");
  EXPECT_EQ(json.header("content-type"), std::optional<std::string_view>("application/json"));
  EXPECT_TRUE(json.headers.empty()) << "interned, not copied";
  std::string out;
  serialize_head(json, "", "", false, false, out);
  EXPECT_EQ(out.find("Content-Type: application/json\r\n"), out.rfind("Content-Type:"))
      << "one Content-Type: " << out;
  EXPECT_NE(out.find("Content-Type: application/json\r\n"), std::string::npos) << out;

  const Response odd = type_of("content-type: text/csv; header=present\r\n");
  EXPECT_EQ(odd.header("Content-Type"),
            std::optional<std::string_view>("text/csv; header=present"));
  const Response two =
      type_of("Content-Type: text/plain; charset=utf-8\r\nContent-Type: text/html\r\n");
  ASSERT_EQ(two.headers.size(), 2u);
  EXPECT_EQ(two.headers[0].second, "text/plain; charset=utf-8");
  EXPECT_EQ(two.headers[1].second, "text/html");
  const Response three = type_of(
      "Content-Type: text/html\r\nContent-Type: application/json\r\nContent-Type: text/html\r\n");
  ASSERT_EQ(three.headers.size(), 3u) << "none of them lost";
  EXPECT_EQ(three.headers[2].second, "text/html");
  EXPECT_FALSE(type_of("").header("content-type").has_value()) << "none said, none made up";
}

TEST(ConnectionPool, AStreamedBodyCutOffEndsInAFailedPieceNotAnException) {
  const auto s = stream_from("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it");
  ASSERT_EQ(s.x.outcome, Outcome::kAnswered) << s.x.error;
  ASSERT_TRUE(s.was_streamed);
  ASSERT_FALSE(s.pieces.empty());
  EXPECT_TRUE(s.pieces.back().failed());
  EXPECT_NE(s.pieces.back().error.find("cut its body off"), std::string::npos)
      << s.pieces.back().error;
}

// GET / through `pool` to `to`, within 5 s.
asio::awaitable<Exchange> get(ConnectionPool& pool, Upstream to, Response& res) {
  static constexpr std::string_view kRequest = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
  const std::array<asio::const_buffer, 1> bytes{asio::buffer(kRequest)};
  ExchangeOptions options;
  options.deadline = std::chrono::steady_clock::now() + 5s;
  co_return co_await pool.exchange(to, bytes, options, res);
}

// Answers `n` requests with `body` on the one connection it accepts (kept alive), then closes it.
asio::awaitable<void> answer_as(tcp::acceptor& acceptor, int n, std::string body) {
  auto socket = co_await acceptor.async_accept(asio::use_awaitable);
  const std::string answer =
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  char buf[4096];
  for (int i = 0; i < n; ++i) {
    co_await socket.async_read_some(asio::buffer(buf), asio::use_awaitable);
    co_await asio::async_write(socket, asio::buffer(answer), asio::use_awaitable);
  }
  socket.close();
}

// Exchanges with two upstreams in turn: each reuses its own kept connection (the pool remembers
// the last list it found: asked for the other, it must not hand that one out).
TEST(ConnectionPool, ExchangesWithTwoUpstreamsInTurnEachReuseTheirOwnConnection) {
  asio::io_context io;
  tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  tcp::acceptor b(io, {asio::ip::make_address("127.0.0.1"), 0});
  ConnectionPool pool(io.get_executor());
  asio::co_spawn(io, answer_as(a, 3, "from a"), asio::detached);
  asio::co_spawn(io, answer_as(b, 3, "from b"), asio::detached);
  std::vector<std::string> bodies;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const std::string key_a = "a:" + std::to_string(a.local_endpoint().port());
        const std::string key_b = "b:" + std::to_string(b.local_endpoint().port());
        for (int i = 0; i < 6; ++i) {
          const bool to_a = i % 2 == 0;
          Response res;
          const auto x =
              co_await get(pool,
                           {to_a ? key_a : key_b, "127.0.0.1",
                            to_a ? a.local_endpoint().port() : b.local_endpoint().port()},
                           res);
          EXPECT_EQ(x.outcome, Outcome::kAnswered) << x.error;
          bodies.push_back(res.body);
        }
      },
      asio::detached);
  io.run();
  EXPECT_EQ(bodies,
            (std::vector<std::string>{"from a", "from b", "from a", "from b", "from a", "from b"}));
}

TEST(ConnectionPool, AnIdleConnectionGivesItsReadBufferBackToThePool) {
  const auto before = ConnectionPool::memory();
  ConnectionPool::Memory idle_after_first, idle_after_second;
  {
    asio::io_context io;
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    ConnectionPool pool(io.get_executor());
    asio::co_spawn(io, answer_as(acceptor, 2, "ok"), asio::detached);
    const auto port = acceptor.local_endpoint().port();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          Response res;
          auto x = co_await get(pool, {"t", "127.0.0.1", port}, res);
          EXPECT_EQ(x.outcome, Outcome::kAnswered) << x.error;
          idle_after_first = ConnectionPool::memory();
          x = co_await get(pool, {"t", "127.0.0.1", port}, res);
          EXPECT_EQ(x.outcome, Outcome::kAnswered) << x.error;
          EXPECT_EQ(res.body, "ok");
          idle_after_second = ConnectionPool::memory();
        },
        asio::detached);
    io.run();
  }
  EXPECT_EQ(idle_after_first.idle_connections, before.idle_connections + 1);
  EXPECT_EQ(idle_after_first.buffers_in_use, before.buffers_in_use) << "idle holds no buffer";
  EXPECT_EQ(idle_after_first.buffers_pooled, before.buffers_pooled + 1);
  EXPECT_EQ(idle_after_second.idle_connections, before.idle_connections + 1)
      << "the second exchange reused the connection and its pool's buffer";
  EXPECT_EQ(idle_after_second.buffers_pooled, before.buffers_pooled + 1);
  const auto after = ConnectionPool::memory();  // the pool is gone
  EXPECT_EQ(after.idle_connections, before.idle_connections);
  EXPECT_EQ(after.buffers_pooled, before.buffers_pooled);
  EXPECT_EQ(after.buffers_in_use, before.buffers_in_use);
}

// Upstream connections for a burst: each answers its requests "ok", those to /slow once `release`
// has fired.
asio::awaitable<void> answer_until_released(tcp::socket socket, asio::steady_timer& release) {
  char buf[4096];
  while (true) {
    auto [ec, n] =
        co_await socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    if (std::string_view(buf, n).find("/slow") != std::string_view::npos)
      co_await release.async_wait(asio::as_tuple(asio::use_awaitable));
    static constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    co_await asio::async_write(socket, asio::buffer(kOk), asio::as_tuple(asio::use_awaitable));
  }
}

TEST(ConnectionPool, ABurstKeepsItsReadBuffersWhileItLastsAndGivesThemBackAfter) {
  constexpr int kEach = 100;  // fast and slow exchanges, all at once: 200 buffers in use
  const auto before = ConnectionPool::memory();
  ConnectionPool::Memory after_fast, after_all;
  {
    asio::io_context io;
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::steady_timer release(io, asio::steady_timer::time_point::max());
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (int i = 0; i < 2 * kEach; ++i) {
            auto socket = co_await acceptor.async_accept(asio::use_awaitable);
            asio::co_spawn(io, answer_until_released(std::move(socket), release), asio::detached);
          }
        },
        asio::detached);
    ConnectionPool pool(io.get_executor());
    const auto port = acceptor.local_endpoint().port();
    int fast_done = 0;
    int all_done = 0;
    auto exchange = [&](std::string_view request) -> asio::awaitable<void> {
      const std::array<asio::const_buffer, 1> bytes{asio::buffer(request)};
      ExchangeOptions options;
      options.deadline = std::chrono::steady_clock::now() + 10s;
      Response res;
      const auto x = co_await pool.exchange({"t", "127.0.0.1", port}, bytes, options, res);
      EXPECT_EQ(x.outcome, Outcome::kAnswered) << x.error;
      if (request.find("/slow") == std::string_view::npos && ++fast_done == kEach) {
        after_fast = ConnectionPool::memory();  // the slow half still in flight
        release.cancel();
      }
      if (++all_done == 2 * kEach) {
        // The pool trims within seconds of its last exchange (waves of a load come back sooner).
        asio::steady_timer settle(io);
        for (int i = 0; i < 100; ++i) {
          settle.expires_after(50ms);
          co_await settle.async_wait(asio::use_awaitable);
          after_all = ConnectionPool::memory();
          if (after_all.buffers_pooled - before.buffers_pooled <= 64) break;
        }
        io.stop();  // the upstream's connections stay open: nothing else ends the run
      }
    };
    for (int i = 0; i < kEach; ++i) {
      asio::co_spawn(io, exchange("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"), asio::detached);
      asio::co_spawn(io, exchange("GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"), asio::detached);
    }
    io.run_for(20s);
  }
  // While the burst lasts, the buffers its finished exchanges freed wait for the next ones
  // (freeing those past 64 cost an mmap and an munmap per exchange under a steady load)...
  EXPECT_EQ(after_fast.buffers_in_use - before.buffers_in_use, static_cast<std::size_t>(kEach));
  EXPECT_EQ(after_fast.buffers_pooled - before.buffers_pooled, static_cast<std::size_t>(kEach));
  // ... and once it is over, the pool keeps its usual 64.
  EXPECT_EQ(after_all.buffers_in_use, before.buffers_in_use);
  EXPECT_EQ(after_all.buffers_pooled - before.buffers_pooled, 64u);
}

// An upstream for max_connections: accepts every connection, counting them, and answers each
// with answer_until_released(); `release` fires once `open_before_release` are open (0: never).
asio::awaitable<void> accept_counting(tcp::acceptor& acceptor, asio::steady_timer& release,
                                      int open_before_release, int& accepted) {
  while (true) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    if (++accepted == open_before_release)
      release.expires_at(asio::steady_timer::time_point::min());
    asio::co_spawn(acceptor.get_executor(), answer_until_released(std::move(socket), release),
                   asio::detached);
  }
}

// A pool before accept_counting()'s upstream, its exchanges limited to `places` connections.
struct Limited {
  Limited(std::size_t places_, int open_before_release) : places(places_) {
    asio::co_spawn(io, accept_counting(acceptor, release, open_before_release, accepted),
                   asio::detached);
  }
  // `request` within `within`, for `client` (may be null).
  asio::awaitable<Exchange> exchange(std::string_view request, std::chrono::milliseconds within,
                                     Request* client = nullptr) {
    const std::array<asio::const_buffer, 1> bytes{asio::buffer(request)};
    ExchangeOptions options;
    options.deadline = std::chrono::steady_clock::now() + within;
    options.max_connections = places;
    options.client = client;
    Response res;
    co_return co_await pool.exchange({"t", "127.0.0.1", acceptor.local_endpoint().port()}, bytes,
                                     options, res);
  }
  asio::io_context io;
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  asio::steady_timer release{io, asio::steady_timer::time_point::max()};
  int accepted = 0;
  ConnectionPool pool{io.get_executor()};
  std::size_t places;
};

constexpr std::string_view kSlow = "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n";
constexpr std::string_view kFast = "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n";

TEST(ConnectionPool, PastMaxConnectionsExchangesWaitForOneToComeFreeInsteadOfOpeningMore) {
  constexpr int kPlaces = 3;
  // The slow ones hold all three connections until the third is open: by then the fast ones,
  // started after them, are waiting. Without the limit they open three more.
  Limited t(kPlaces, kPlaces);
  int answered = 0;
  auto exchange = [&](std::string_view request) -> asio::awaitable<void> {
    const auto x = co_await t.exchange(request, 10s);
    EXPECT_EQ(x.outcome, Outcome::kAnswered) << x.error;
    if (++answered == 2 * kPlaces) t.io.stop();  // the upstream's connections stay open
  };
  for (int i = 0; i < kPlaces; ++i) asio::co_spawn(t.io, exchange(kSlow), asio::detached);
  for (int i = 0; i < kPlaces; ++i) asio::co_spawn(t.io, exchange(kFast), asio::detached);
  t.io.run_for(20s);
  EXPECT_EQ(answered, 2 * kPlaces);
  EXPECT_EQ(t.accepted, kPlaces) << "the waiting exchanges reused those three";
}

TEST(ConnectionPool, AnExchangeStillWaitingForAConnectionAtItsDeadlineEndsHavingSentNothing) {
  const auto before = ConnectionPool::memory().waiting_exchanges;
  Limited t(1, 0);
  Exchange slow, late;
  std::size_t waiting = 0;
  asio::co_spawn(
      t.io,
      [&]() -> asio::awaitable<void> {
        slow = co_await t.exchange(kSlow, 10s);
        t.io.stop();
      },
      asio::detached);
  asio::co_spawn(
      t.io,
      [&]() -> asio::awaitable<void> {
        late = co_await t.exchange(kFast, 50ms);
        t.release.expires_at(asio::steady_timer::time_point::min());  // now the slow one ends
      },
      asio::detached);
  asio::post(t.io, [&] { waiting = ConnectionPool::memory().waiting_exchanges - before; });
  t.io.run_for(20s);
  EXPECT_EQ(waiting, 1u) << "counted while it waits (squadron_http_upstream_waiting_requests)";
  EXPECT_EQ(ConnectionPool::memory().waiting_exchanges, before);
  EXPECT_EQ(late.outcome, Outcome::kConnectTimeout) << late.error;
  EXPECT_FALSE(late.sent);
  EXPECT_NE(late.error.find("max_connections"), std::string::npos) << late.error;
  EXPECT_EQ(slow.outcome, Outcome::kAnswered) << slow.error;
  EXPECT_EQ(t.accepted, 1);
}

TEST(ConnectionPool, AWaitingExchangeWhoseClientGaveUpSendsNothingAndPassesItsTurnOn) {
  Limited t(1, 0);
  Request gone;  // the second exchange's client: it resets its stream while it waits
  Exchange slow, cancelled, third;
  int done = 0;
  auto exchange = [&](std::string_view request, Request* client,
                      Exchange& out) -> asio::awaitable<void> {
    out = co_await t.exchange(request, 10s, client);
    if (++done == 3) t.io.stop();
  };
  asio::co_spawn(t.io, exchange(kSlow, nullptr, slow), asio::detached);
  asio::co_spawn(t.io, exchange(kFast, &gone, cancelled), asio::detached);
  asio::co_spawn(t.io, exchange(kFast, nullptr, third), asio::detached);
  asio::post(t.io, [&] {
    gone.cancel();  // both wait behind the slow one by now
    t.release.expires_at(asio::steady_timer::time_point::min());
  });
  t.io.run_for(20s);
  EXPECT_EQ(slow.outcome, Outcome::kAnswered) << slow.error;
  EXPECT_NE(cancelled.outcome, Outcome::kAnswered);
  EXPECT_FALSE(cancelled.sent);
  EXPECT_EQ(cancelled.error, "the client cancelled the request");
  EXPECT_EQ(third.outcome, Outcome::kAnswered) << third.error;
  EXPECT_EQ(t.accepted, 1);
}

}  // namespace
}  // namespace squadron::http
