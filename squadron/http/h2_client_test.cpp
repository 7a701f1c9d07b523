// The HTTP/2 upstream transport (H2Pool) against the server's own HTTP/2 (h2c by prior
// knowledge), over real sockets: answers with their trailers, streams sharing one connection,
// a body streamed both ways piece by piece, a refused connection, a deadline that resets the
// stream (the server's handler sees the cancel); and HTTP/1.1's chunked trailer section.
#include "squadron/http/h2_client.hpp"

#include <atomic>
#include <deque>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "squadron/http/server.hpp"

namespace squadron::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A handler that answers like a gRPC server: /unary a body then trailers; /echo each piece of
// the request's body as a piece of the answer, as it comes (duplex); /hold waits until its
// client gives up.
class Upstream final : public Handler {
 public:
  explicit Upstream(Server*& server) : server_(server) {}
  bool handle(Request&, Response&, std::size_t) override { return false; }
  asio::awaitable<void> handle_async(Request& req, Response& res, std::size_t w) override {
    if (req.path() == "/unary") {
      auto done = std::make_shared<bool>(false);
      std::string body = "reply to " + req.body();
      res.set_header("content-type", "application/grpc");
      res.stream = [done, body]() -> asio::awaitable<BodyPiece> {
        if (*done) co_return BodyPiece::last({{"grpc-status", "0"}, {"grpc-message", "fine"}});
        *done = true;
        co_return BodyPiece::more(body);
      };
      co_return;
    }
    if (req.path() == "/echo") {
      BodyReader* reader = req.body_reader();
      res.duplex = true;
      res.stream = [reader]() -> asio::awaitable<BodyPiece> {
        std::string piece;
        if (reader == nullptr || !co_await reader->read(piece))
          co_return BodyPiece::last({{"grpc-status", "0"}});
        co_return BodyPiece::more("echo:" + piece);
      };
      co_return;
    }
    if (req.path() == "/hold") {
      auto timer = std::make_shared<asio::steady_timer>(server_->context(w), 10s);
      req.on_cancel([this, timer] {
        ++cancelled_;
        timer->cancel();
      });
      co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
      res = Response::text("held");
      co_return;
    }
    res = Response::problem(404, "no such path");
  }
  void on_rejected(int, std::size_t) noexcept override {}
  int cancelled() const { return cancelled_.load(); }

 private:
  Server*& server_;
  std::atomic<int> cancelled_{0};
};

// A request body the test feeds piece by piece.
class Feed final : public BodyReader {
 public:
  explicit Feed(asio::io_context& io) : signal_(io) {}
  asio::awaitable<bool> read(std::string& out) override {
    while (pieces_.empty() && !end_) {
      signal_.expires_at(Clock::time_point::max());
      co_await signal_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (pieces_.empty()) co_return false;
    out = std::move(pieces_.front());
    pieces_.pop_front();
    co_return true;
  }
  bool complete() const noexcept override { return end_ && pieces_.empty(); }
  int error_status() const noexcept override { return 0; }
  std::string_view error() const noexcept override { return {}; }
  void push(std::string s) {
    pieces_.push_back(std::move(s));
    signal_.cancel();
  }
  void finish() {
    end_ = true;
    signal_.cancel();
  }

 private:
  asio::steady_timer signal_;
  std::deque<std::string> pieces_;
  bool end_ = false;
};

class H2PoolTest : public ::testing::Test {
 public:
  void SetUp() override {
    ServerConfig config;
    config.port = 0;
    config.threads = 1;
    config.limits.stream_above = 1024;
    server_holder_ = std::make_unique<Server>(config, handler_);
    server_ = server_holder_.get();
    ASSERT_FALSE(server_->listen());
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    server_->stop(1s);
    thread_.join();
  }
  // Runs `task` on a client io_context with its own pool until it ends.
  template <typename Task>
  void run(Task task) {
    asio::io_context io;
    auto pool = std::make_unique<H2Pool>(io.get_executor());
    asio::co_spawn(io, task(io, *pool), [&](std::exception_ptr e) {
      pool.reset();  // its connections close: the io_context runs out of work
      if (e) std::rethrow_exception(e);
    });
    io.run();
  }
  std::uint16_t port() const { return server_->port(); }
  Server* server_ = nullptr;
  Upstream handler_{server_};
  std::unique_ptr<Server> server_holder_;
  std::thread thread_;
};

std::string request(std::string_view method, std::string_view path, std::string_view body = {}) {
  std::string r = std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: up\r\n" +
                  "Content-Type: application/grpc\r\nTE: trailers\r\nConnection: keep-alive\r\n";
  if (!body.empty()) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + std::string(body);
}

ExchangeOptions within(std::chrono::milliseconds ms) {
  ExchangeOptions o;
  o.deadline = Clock::now() + ms;
  return o;
}

// The body's pieces to its end; the trailers of the last.
asio::awaitable<std::pair<std::string, Fields>> drain(Response& res) {
  std::string body = res.body;
  Fields trailers;
  while (res.stream) {
    BodyPiece p = co_await res.stream();
    if (p.failed()) {
      body += "<failed: " + p.error + ">";
      break;
    }
    body += p.data;
    if (p.end) {
      trailers = std::move(p.trailers);
      break;
    }
  }
  co_return std::make_pair(body, trailers);
}

// `n` unary calls at once from one pool, each answer checked; the connections it had when the
// last ended.
std::size_t calls_at_once(H2PoolTest& t, int n) {
  int answered = 0;
  std::size_t connections = 0;
  t.run([&](asio::io_context& io, H2Pool& pool) -> asio::awaitable<void> {
    auto one = [&](int i) -> asio::awaitable<void> {
      const std::string bytes = request("POST", "/unary", "call " + std::to_string(i));
      const std::array<asio::const_buffer, 1> b{asio::buffer(bytes)};
      Response res;
      const auto x = co_await pool.exchange({"up", "127.0.0.1", t.port()}, b, within(5s), res);
      EXPECT_EQ(x.outcome, Outcome::kAnswered) << x.error;
      EXPECT_EQ(res.status, 200);
      EXPECT_EQ(res.header("content-type"), std::optional<std::string_view>("application/grpc"));
      const auto [body, trailers] = co_await drain(res);
      EXPECT_EQ(body, "reply to call " + std::to_string(i));
      EXPECT_EQ(trailers, (Fields{{"grpc-status", "0"}, {"grpc-message", "fine"}}));
      ++answered;
    };
    int ended = 0;
    asio::steady_timer all(io, Clock::time_point::max());
    for (int i = 0; i < n; ++i) {
      asio::co_spawn(io, one(i), [&](std::exception_ptr) {
        if (++ended == n) all.cancel();
      });
    }
    co_await all.async_wait(asio::as_tuple(asio::use_awaitable));
    connections = pool.connections();
  });
  EXPECT_EQ(answered, n);
  return connections;
}

TEST_F(H2PoolTest, AnswersComeWithTheirTrailersAndStreamsShareOneConnection) {
  EXPECT_EQ(calls_at_once(*this, 10), 1u);  // ten at once: one connection carries them all
}

TEST_F(H2PoolTest, ABurstPastOneConnectionsStreamsOpensOnlyTheConnectionsItNeeds) {
  // The server takes 128 streams a connection (ServerConfig::http2): 300 calls at once need 3
  // (nghttp2 allows 100 before the server's SETTINGS arrive: 4 at most). Each call that found
  // the first one full used to open its own.
  const std::size_t connections = calls_at_once(*this, 300);
  EXPECT_GE(connections, 3u);
  EXPECT_LE(connections, 4u);
}

TEST_F(H2PoolTest, ABodyStreamsBothWaysEachPieceAnsweredBeforeTheNextIsSent) {
  std::vector<std::string> echoes;
  Fields last;
  run([&](asio::io_context& io, H2Pool& pool) -> asio::awaitable<void> {
    Feed feed(io);
    std::string head = request("POST", "/echo");
    head.replace(head.find("Content-Type"), 0, "Transfer-Encoding: chunked\r\n");
    const std::array<asio::const_buffer, 1> b{asio::buffer(head)};
    ExchangeOptions options = within(5s);
    options.body = &feed;
    options.chunked_body = true;
    options.duplex = true;
    Response res;
    // The answer's head comes while the body has not begun: the call is open both ways.
    const auto x = co_await pool.exchange({"up", "127.0.0.1", port()}, b, options, res);
    EXPECT_EQ(x.outcome, Outcome::kAnswered) << x.error;
    EXPECT_TRUE(res.duplex);
    if (!res.stream) co_return;
    for (const char* text : {"one", "two", "three"}) {
      feed.push(text);
      const BodyPiece p = co_await res.stream();
      echoes.push_back(p.data);
    }
    feed.finish();
    const BodyPiece end = co_await res.stream();
    EXPECT_TRUE(end.end && !end.failed()) << end.error;
    last = end.trailers;
  });
  EXPECT_EQ(echoes, (std::vector<std::string>{"echo:one", "echo:two", "echo:three"}));
  EXPECT_EQ(last, (Fields{{"grpc-status", "0"}}));
}

TEST_F(H2PoolTest, AStreamResetWhileItsAnswerStillReadsTheBodyEndsBothSidesCleanly) {
  BodyPiece last;
  run([&](asio::io_context& io, H2Pool& pool) -> asio::awaitable<void> {
    Feed feed(io);
    const std::string head = request("POST", "/echo");
    const std::array<asio::const_buffer, 1> b{asio::buffer(head)};
    ExchangeOptions options = within(300ms);
    options.body = &feed;
    options.duplex = true;
    Response res;
    const auto x = co_await pool.exchange({"up", "127.0.0.1", port()}, b, options, res);
    EXPECT_EQ(x.outcome, Outcome::kAnswered) << x.error;
    if (!res.stream) co_return;
    feed.push("one");
    EXPECT_EQ((co_await res.stream()).data, "echo:one");
    // Nothing more comes: at the deadline the stream is reset while the server's answer waits
    // in its body reader (its record must outlive that read).
    last = co_await res.stream();
    // The client's side ends too (the server closes a reset stream's body): the transport's
    // reader of it returns, before this frame and its Feed go.
    feed.finish();
    co_await asio::post(io, asio::use_awaitable);
  });
  EXPECT_TRUE(last.failed());
  // The server goes on serving.
  int answered = 0;
  run([&](asio::io_context&, H2Pool& pool) -> asio::awaitable<void> {
    const std::string bytes = request("POST", "/unary", "again");
    const std::array<asio::const_buffer, 1> b{asio::buffer(bytes)};
    Response res;
    const auto x = co_await pool.exchange({"up", "127.0.0.1", port()}, b, within(5s), res);
    if (x.outcome == Outcome::kAnswered && (co_await drain(res)).first == "reply to again")
      ++answered;
  });
  EXPECT_EQ(answered, 1);
}

TEST_F(H2PoolTest, NoListenerIsRefusedAndTheDeadlineResetsTheStreamTheHandlerSeesIt) {
  Exchange refused, late;
  run([&](asio::io_context& io, H2Pool& pool) -> asio::awaitable<void> {
    asio::ip::tcp::acceptor closed(io, {asio::ip::make_address("127.0.0.1"), 0});
    const std::uint16_t nobody = closed.local_endpoint().port();
    closed.close();
    const std::string bytes = request("GET", "/hold");
    const std::array<asio::const_buffer, 1> b{asio::buffer(bytes)};
    Response res;
    refused = co_await pool.exchange({"gone", "127.0.0.1", nobody}, b, within(2s), res);
    late = co_await pool.exchange({"up", "127.0.0.1", port()}, b, within(200ms), res);
  });
  EXPECT_EQ(refused.outcome, Outcome::kRefused) << refused.error;
  EXPECT_FALSE(refused.sent);
  EXPECT_EQ(late.outcome, Outcome::kTimeout) << late.error;
  // The reset reached the handler (Request::cancel): its upstream work can stop.
  for (int i = 0; i < 100 && handler_.cancelled() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(handler_.cancelled(), 1);
}

TEST_F(H2PoolTest, Http11SendsAStreamsTrailersInTheChunkedTrailerSection) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port()});
  const std::string r = request("POST", "/unary", "x");
  const std::string closing = r.substr(0, r.find("Connection: keep-alive")) +
                              "Connection: close\r\n" + r.substr(r.find("keep-alive\r\n") + 12);
  asio::write(s, asio::buffer(closing));
  std::string got;
  boost::system::error_code ec;
  asio::read(s, asio::dynamic_buffer(got), ec);
  EXPECT_NE(got.find("Transfer-Encoding: chunked"), std::string::npos) << got;
  EXPECT_TRUE(got.ends_with("a\r\nreply to x\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n"))
      << got;
}

}  // namespace
}  // namespace squadron::http
