// squadron::Client against a real server on port 0: headers carried along, deadlines, refused
// connections and timeouts, all as answers (never exceptions).
#include "squadron/service/client.hpp"

#include <cstdlib>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "raw_client.hpp"
#include "squadron/http/server.hpp"

namespace squadron {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

// Answers "<timeout header>|<request id>|<traceparent>|<method>|<body>"; /slow waits 2 s.
class Upstream final : public http::Handler {
 public:
  bool handle(http::Request& req, http::Response& res, std::size_t) override {
    if (req.path() == "/slow") return false;
    res = http::Response::text(fmt(req));
    return true;
  }
  asio::awaitable<void> handle_async(http::Request& req, http::Response& res,
                                     std::size_t) override {
    asio::steady_timer t(co_await asio::this_coro::executor, 2s);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    res = http::Response::text(fmt(req));
  }
  void on_rejected(int, std::size_t) noexcept override {}
  static std::string fmt(const http::Request& req) {
    return std::string(req.header("x-squadron-timeout-ms").value_or("-")) + "|" +
           std::string(req.header("x-request-id").value_or("-")) + "|" +
           std::string(req.header("traceparent").value_or("-")) + "|" +
           std::string(req.method_name()) + "|" + req.body();
  }
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http::ServerConfig config;
    config.port = 0;
    config.threads = 1;
    server_ = std::make_unique<http::Server>(config, upstream_);
    ASSERT_FALSE(server_->listen());
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    server_->stop(1s);
    thread_.join();
  }
  // Runs `call` as a coroutine on a private io_context and returns its answer.
  template <typename F>
  http::Response run(F call) {
    asio::io_context io;
    http::Response out;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { out = co_await call(); }, asio::detached);
    io.run();
    return out;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  Upstream upstream_;
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
};

TEST_F(ClientTest, CarriesTheCallersIdTraceAndDeadline) {
  const Client c(url());
  auto caller = http::Request::make_for_test(
      "GET", "/", {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}});
  caller.set_request_id("abc123");
  caller.set_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  caller.set_deadline(std::chrono::steady_clock::now() + 800ms);
  auto r = run([&] { return c.get("/x", &caller); });
  ASSERT_EQ(r.status, 200) << r.body;
  const auto timeout = std::stol(r.body.substr(0, r.body.find('|')));
  EXPECT_GT(timeout, 500) << "the caller's deadline, not the client's 15 s";
  EXPECT_LE(timeout, 800);
  EXPECT_NE(r.body.find("|abc123|00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01|GET|"),
            std::string::npos)
      << r.body;
  r = run([&] { return c.post("/x", "{\"a\":1}"); });
  EXPECT_EQ(r.body, "15000|-|-|POST|{\"a\":1}");
}

TEST_F(ClientTest, FailuresAreAnswersNeverExceptions) {
  // A spent deadline: 504 without calling.
  const Client c(url());
  auto caller = http::Request::make_for_test("GET", "/");
  caller.set_deadline(std::chrono::steady_clock::now() - 1ms);
  EXPECT_EQ(run([&] { return c.get("/x", &caller); }).status, 504);
  // Too slow: 504 at the client's timeout.
  const Client quick(url(), {.timeout = 200ms});
  const auto before = std::chrono::steady_clock::now();
  const auto slow = run([&] { return quick.get("/slow"); });
  EXPECT_EQ(slow.status, 504);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1500ms);
  // Nobody listening: 503 after the retries, with the reason.
  const Client nowhere("http://127.0.0.1:" + std::to_string(testing::free_port()));
  const auto refused = run([&] { return nowhere.get("/x"); });
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.body.find("unreachable"), std::string::npos) << refused.body;
  // Not run by squadron up: the variable is missing, and the answer says what to do.
  ::unsetenv("SQUADRON_NO_SUCH_SERVICE_URL");
  const auto missing = Client::for_service("no-such-service");
  EXPECT_FALSE(missing.configured());
  const auto r = run([&] { return missing.get("/x"); });
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("SQUADRON_NO_SUCH_SERVICE_URL"), std::string::npos) << r.body;
  EXPECT_FALSE(Client("ftp://x").configured());
}

TEST_F(ClientTest, ForServiceReadsItsUrlAndReusesConnections) {
  ::setenv("SQUADRON_MY_API_URL", url().c_str(), 1);
  const auto c = Client::for_service("my-api");
  ASSERT_TRUE(c.configured());
  asio::io_context io;
  int ok = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 200; ++i) ok += (co_await c.get("/n")).status == 200;
      },
      asio::detached);
  io.run();
  EXPECT_EQ(ok, 200);
  EXPECT_EQ(server_->connections(), 1u) << "one keep-alive connection for all 200 calls";
  ::unsetenv("SQUADRON_MY_API_URL");
}

}  // namespace
}  // namespace squadron
