// The server in-process on port 0 with a handler written for the test: streamed (chunked)
// bodies, close-delimited bodies for HTTP/1.0, handler exceptions, stop() with requests in flight.
#include "squadron/http/server.hpp"

#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "raw_client.hpp"

namespace squadron::http {
namespace {

using namespace std::chrono_literals;
using testing::RawConnection;

boost::asio::awaitable<BodyPiece> next_piece(std::shared_ptr<int> left) {
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, 1ms);
  co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  if (*left == 0) co_return BodyPiece::last();
  co_return BodyPiece::more("piece" + std::to_string((*left)--) + ";");
}

class TestHandler final : public Handler {
 public:
  bool handle(Request& req, Response& res, std::size_t) override {
    if (req.path() == "/throw") throw std::runtime_error("boom");
    if (req.path() == "/stream") {
      auto left = std::make_shared<int>(3);
      res.stream = [left] { return next_piece(left); };
      return true;
    }
    if (req.path() == "/sized" || req.path() == "/short") {
      auto left = std::make_shared<int>(3);
      res.stream = [left] { return next_piece(left); };
      res.stream_length = req.path() == "/sized" ? 21 : 100;  // the pieces make 21 bytes
      return true;
    }
    if (req.path() == "/wait" || req.path() == "/upload") return false;
    res = Response::text("plain");
    return true;
  }
  boost::asio::awaitable<void> handle_async(Request& req, Response& res, std::size_t) override {
    if (req.path() == "/upload") {
      // Counts the pieces of a streamed body (or takes the buffered one whole).
      std::size_t pieces = 0, bytes = req.body().size(), largest = 0;
      if (auto* reader = req.body_reader()) {
        std::string piece;
        while (co_await reader->read(piece)) {
          ++pieces;
          bytes += piece.size();
          largest = std::max(largest, piece.size());
        }
        if (reader->error_status() != 0) co_return;  // the server answers it
      }
      res = Response::text("pieces=" + std::to_string(pieces) + " bytes=" + std::to_string(bytes) +
                           " largest=" + std::to_string(largest));
      co_return;
    }
    entered.store(true);
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, 300ms);
    co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    res = Response::text("waited");
  }
  void on_rejected(int status, std::size_t) noexcept override { last_rejected.store(status); }
  std::atomic<bool> entered{false};
  std::atomic<int> last_rejected{0};
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerConfig config;
    config.port = 0;
    config.threads = 2;
    config.limits.stream_above = 1024;  // bodies over 1 KiB reach the handler as they arrive
    server_ = std::make_unique<Server>(config, handler_);
    ASSERT_FALSE(server_->listen());
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    server_->stop(2s);
    thread_.join();
  }
  TestHandler handler_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(ServerTest, StreamsABodyInChunks) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->body, "piece3;piece2;piece1;");
  // the connection stays usable after the last chunk
  ASSERT_TRUE(c.send("GET /plain HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto next = c.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "plain");
}

TEST_F(ServerTest, StreamsCloseDelimitedToHttp10Clients) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.send("GET /stream HTTP/1.0\r\n\r\n"));
  auto all = c.read_until_close(5s);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->find("Transfer-Encoding"), std::string::npos);
  EXPECT_NE(all->find("Connection: close"), std::string::npos);
  EXPECT_NE(all->find("\r\n\r\npiece3;piece2;piece1;"), std::string::npos);
}

TEST_F(ServerTest, AStreamOfKnownLengthGoesWithContentLength) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.send("GET /sized HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->chunked);
  EXPECT_EQ(r->header("content-length").value_or(""), "21");
  EXPECT_EQ(r->body, "piece3;piece2;piece1;");
  // A stream that ends short of its announced length is cut: the connection closes.
  ASSERT_TRUE(c.send("GET /short HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_FALSE(c.read_response(2s));
}

TEST_F(ServerTest, LargeAndChunkedBodiesReachTheHandlerAsTheyArrive) {
  RawConnection c(server_->port());
  // Small: read whole before the handler runs.
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "pieces=0 bytes=5 largest=0");
  // Large: streamed, in pieces no larger than a read, then the connection goes on.
  const std::string big(1 << 20, 'b');
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n"));
  ASSERT_TRUE(c.send(big));
  r = c.read_response();
  ASSERT_TRUE(r);
  const auto& body = r->body;
  EXPECT_EQ(body.rfind("pieces=", 0), 0u) << body;
  EXPECT_NE(body.find("bytes=1048576"), std::string::npos) << body;
  EXPECT_GT(std::stoul(body.substr(7)), 10u) << "many pieces: " << body;
  EXPECT_LE(std::stoul(body.substr(body.find("largest=") + 8)), 64u * 1024) << body;
  // Chunked, pipelined with the next request.
  ASSERT_TRUE(
      c.send("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\nGET /plain HTTP/1.1\r\nHost: t\r\n\r\n"));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("bytes=7"), std::string::npos) << r->body;
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "plain");
}

TEST_F(ServerTest, AMalformedStreamedBodyIsAnswered400AndTheConnectionCloses) {
  RawConnection c(server_->port());
  ASSERT_TRUE(
      c.send("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\nzz\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(handler_.last_rejected.load(), 400);
  EXPECT_TRUE(c.closed_within(3s));
}

TEST_F(ServerTest, AHandlerExceptionIsA500AndTheConnectionLives) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.send("GET /throw HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  auto next = c.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST_F(ServerTest, ReportsItsOwnRejectionsToTheHandler) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\n\r\n"));  // no Host
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(handler_.last_rejected.load(), 400);
}

TEST_F(ServerTest, StopFinishesRequestsInFlightAndClosesIdleConnections) {
  RawConnection busy(server_->port());
  RawConnection idle(server_->port());
  ASSERT_TRUE(idle.send("GET /plain HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(idle.read_response());
  ASSERT_TRUE(busy.send("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n"));
  while (!handler_.entered.load()) std::this_thread::yield();
  server_->stop(5s);
  EXPECT_TRUE(idle.closed_within(2s));
  auto r = busy.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "waited");
  EXPECT_EQ(r->header("Connection").value_or(""), "close");
  EXPECT_FALSE(RawConnection(server_->port()).ok()) << "no longer accepting";
}

}  // namespace
}  // namespace squadron::http
