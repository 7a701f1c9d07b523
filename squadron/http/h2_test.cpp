// HTTP/2 on the server, against real clients: curl, and Python's h2 with raw frames for the
// known attacks (tests/support/h2_client.py). Each attack test checks what the attacker gets
// (GOAWAY, refused streams, a 431), that handlers in flight stay bounded, and that a client
// beside the attacker is answered.
#include <atomic>
#include <thread>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "json_line.hpp"
#include "process.hpp"
#include "squadron/http/server.hpp"

namespace squadron::http {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

const std::string kClient = std::string(SQUADRON_SOURCE_DIR) + "/tests/support/h2_client.py";

// h2_client.py's JSON line (its last line of output).
json::object client(std::uint16_t port, const std::string& args) {
  const auto r = testing::run_command("/usr/bin/python3 " + kClient + " " + std::to_string(port) +
                                      " " + args + " 2>&1");
  auto line = testing::last_json_line(r.output);
  EXPECT_FALSE(line.empty()) << r.output;
  return line;
}

class H2Handler final : public Handler {
 public:
  explicit H2Handler(Server*& server) : server_(server) {}
  bool handle(Request& req, Response& res, std::size_t) override {
    if (req.path() == "/hello") {
      res = Response::text(std::string(req.target()) + (req.http2() ? " h2" : " h1"));
      return true;
    }
    if (req.path() == "/id") {  // as the gateway does: each answer its own X-Request-Id
      req.set_request_id("id-" + std::string(req.target()));
      res = Response::text("with an id");
      return true;
    }
    if (req.path() == "/ws") {  // a WebSocket echo, frames unmasked (RFC 6455 §5.2, short ones)
      if (req.header("upgrade") != std::optional<std::string_view>("websocket") ||
          req.header("sec-websocket-key").value_or("").size() != 24) {
        res = Response::problem(400, "not a WebSocket handshake");
        return true;
      }
      res.status = 101;
      res.set_header("Connection", "Upgrade");
      res.set_header("Upgrade", "websocket");
      res.set_header("Sec-WebSocket-Accept", "made-from-the-key");
      res.upgraded = [](Upgraded& up) -> boost::asio::awaitable<void> {
        std::string in;
        char buffer[4096];
        while (std::size_t n = co_await up.read_some(buffer, sizeof buffer)) {
          in.append(buffer, n);
          while (in.size() >= 6 && in.size() >= 6 + static_cast<std::size_t>(in[1] & 0x7f)) {
            const auto len = static_cast<std::size_t>(in[1] & 0x7f);
            std::string frame{in[0], static_cast<char>(len)};
            for (std::size_t i = 0; i < len; ++i) frame.push_back(in[6 + i] ^ in[2 + i % 4]);
            const bool close = (in[0] & 0x0f) == 8;
            in.erase(0, 6 + len);
            if (!co_await up.write(frame) || close) co_return;
          }
        }
      };
      return true;
    }
    if (req.path() == "/download") {  // 4 MiB in 16 KiB pieces, streamed
      auto left = std::make_shared<std::size_t>(std::size_t{4} << 20);
      res.stream = [left]() -> boost::asio::awaitable<BodyPiece> {
        if (*left == 0) co_return BodyPiece::last();
        const std::size_t n = std::min<std::size_t>(*left, 16384);
        *left -= n;
        co_return BodyPiece::more(std::string(n, 'd'));
      };
      return true;
    }
    return false;
  }
  boost::asio::awaitable<void> handle_async(Request& req, Response& res, std::size_t w) override {
    ++entered_;
    const int now = ++running_;
    int seen = max_running_.load();
    while (now > seen && !max_running_.compare_exchange_weak(seen, now)) {
    }
    std::size_t bytes = req.body().size();
    if (auto* reader = req.body_reader()) {
      std::string piece;
      while (co_await reader->read(piece)) bytes += piece.size();
    }
    if (req.path() == "/slow" || req.path() == "/hold") {
      boost::asio::steady_timer t(server_->context(w));
      t.expires_after(req.path() == "/slow" ? 200ms : 1500ms);
      co_await t.async_wait(boost::asio::use_awaitable);
    }
    --running_;
    res = Response::text(std::string(req.path()) + " bytes=" + std::to_string(bytes));
  }
  void on_rejected(int status, std::size_t) noexcept override {
    if (status == 431) ++rejected_431_;
  }
  int max_running() const { return max_running_.load(); }
  int entered() const { return entered_.load(); }
  int rejected_431() const { return rejected_431_.load(); }

 private:
  Server*& server_;
  std::atomic<int> entered_{0};
  std::atomic<int> running_{0};
  std::atomic<int> max_running_{0};
  std::atomic<int> rejected_431_{0};
};

class H2Test : public ::testing::Test {
 protected:
  void start(ServerConfig config = {}) {
    config.port = 0;
    config.threads = 2;
    config.limits.stream_above = 64 * 1024;
    server_holder_ = std::make_unique<Server>(config, handler_);
    server_ = server_holder_.get();
    ASSERT_FALSE(server_->listen());
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    if (server_holder_) {
      server_->stop(1s);
      thread_.join();
    }
  }
  std::uint16_t port() const { return server_->port(); }
  // A well-behaved client beside an attack: ten streams, each answered.
  void expect_others_served() {
    const json::object other = client(port(), "streams 10 /hello");
    EXPECT_EQ(other.at("ok").as_int64(), 10) << json::serialize(other);
  }

  Server* server_ = nullptr;
  H2Handler handler_{server_};
  std::unique_ptr<Server> server_holder_;
  std::thread thread_;
};

TEST_F(H2Test, CurlSpeaksH2cByPriorKnowledgeAndHttp11StaysAsItWas) {
  start();
  const std::string url = "http://127.0.0.1:" + std::to_string(port()) + "/hello?a=1";
  const auto h2 = testing::run_command(
      "curl -sS --max-time 10 --http2-prior-knowledge -w ' %{http_version}' " + url);
  EXPECT_EQ(h2.output, "/hello?a=1 h2 2");
  const auto h1 = testing::run_command("curl -sS --max-time 10 -w ' %{http_version}' " + url);
  EXPECT_EQ(h1.output, "/hello?a=1 h1 1.1");
}

TEST_F(H2Test, AnAnswersRequestIdIsNeverIndexed) {
  // A value new with every answer: indexed, it would take a place in the HPACK table each time,
  // evicting the fields that repeat (which would then go out in full again).
  start();
  const json::object r = client(port(), "streams 20 /id");
  EXPECT_EQ(r.at("ok").as_int64(), 20) << json::serialize(r);
  EXPECT_EQ(json::serialize(r.at("never_indexed")), R"(["x-request-id"])") << json::serialize(r);
}

TEST_F(H2Test, AWebSocketOverAnExtendedConnectIsTheHandlersUpgradeWhenOffered) {
  // Not offered by default: a client sees no SETTINGS_ENABLE_CONNECT_PROTOCOL.
  start();
  EXPECT_FALSE(client(port(), "websocket 1 /ws").at("enabled").as_bool());
  server_->stop(1s);
  thread_.join();
  server_holder_.reset();
  // Offered: each extended CONNECT reaches the handler as HTTP/1.1's handshake (a key of the
  // server's), its 101 becomes 200 and the stream carries the frames both ways.
  ServerConfig config;
  config.http2.websocket = true;
  start(config);
  const auto r = client(port(), "websocket 5 /ws");
  EXPECT_TRUE(r.at("enabled").as_bool());
  EXPECT_EQ(json::serialize(r.at("statuses")), "[200,200,200,200,200]");
  EXPECT_EQ(r.at("echoed").as_int64(), 5) << json::serialize(r);
  EXPECT_EQ(r.at("closed").as_int64(), 5) << json::serialize(r);
  // The server goes on serving plain streams beside them.
  expect_others_served();
}

TEST_F(H2Test, AConnectionQuietPastATickIsTrimmedAndServesTheNextRequest) {
  ServerConfig config;
  config.header_timeout = 400ms;  // a 100 ms tick: the quiet connection is trimmed (its spare
                                  // records gone, its read buffer's pages given back)
  start(config);
  const json::object r = client(port(), "twice /hello 0.5");
  EXPECT_EQ(r.at("first").at("status").as_int64(), 200) << json::serialize(r);
  EXPECT_EQ(r.at("second").at("status").as_int64(), 200) << json::serialize(r);
  EXPECT_EQ(r.at("second").at("body").as_string(), "/hello h2");
  EXPECT_TRUE(r.at("second").at("goaway").is_null());
}

TEST_F(H2Test, AHundredStreamsOnOneConnectionAreAnsweredEachItsOwnAtOnce) {
  start();
  const json::object r = client(port(), "streams 100 /slow");
  EXPECT_EQ(r.at("ok").as_int64(), 100) << json::serialize(r);
  // Each stream got its own answer...
  const auto& bodies = r.at("bodies").as_array();
  ASSERT_EQ(bodies.size(), 100u);
  for (const auto& b : bodies) EXPECT_EQ(b.as_string(), "/slow bytes=0");
  // ... and they were handled side by side, not one after the other.
  EXPECT_GT(handler_.max_running(), 50);
}

TEST_F(H2Test, UploadsFlowThroughTheWindowWhetherStreamedOrBuffered) {
  start();
  const json::object big = client(port(), "upload 3145728 /upload");  // past stream_above
  EXPECT_EQ(big.at("status").as_int64(), 200) << json::serialize(big);
  EXPECT_EQ(big.at("body").as_string(), "/upload bytes=3145728");
  const json::object small = client(port(), "upload 10000 /upload");  // read whole first
  EXPECT_EQ(small.at("body").as_string(), "/upload bytes=10000") << json::serialize(small);
}

TEST_F(H2Test, AStreamedAnswerOfFourMebibytesArrivesWhole) {
  start();
  const json::object r = client(port(), "download /download");
  EXPECT_EQ(r.at("status").as_int64(), 200) << json::serialize(r);
  EXPECT_EQ(r.at("bytes").as_int64(), 4 << 20);
  EXPECT_TRUE(r.at("complete").as_bool());
}

TEST_F(H2Test, RapidResetIsCutOffAndHandlersInFlightStayBounded) {
  start();
  // 20,000 streams, each reset right after its HEADERS, each for an asynchronous handler.
  std::thread attack([&] {
    const json::object r = client(port(), "rapid-reset 20000 /quick");
    ASSERT_FALSE(r.at("goaway").is_null()) << json::serialize(r);
    EXPECT_EQ(r.at("goaway").at("code").as_int64(), 11) << json::serialize(r);  // ENHANCE_YOUR_CALM
  });
  expect_others_served();
  attack.join();
  // Resets did not free room for more work than one connection may have...
  EXPECT_LE(handler_.max_running(), 128 + 10);
  // ... and the attacker was cut off after about a hundred of them (a reset before its answer
  // weighs ten frames of the budget), most never reaching their handler (reset in the read that
  // opened them). The well-behaved client's 10 + 10 streams are counted here too.
  EXPECT_LE(handler_.entered(), 150);
  expect_others_served();
}

TEST_F(H2Test, AContinuationFloodEndsTheConnection) {
  start();
  const json::object r = client(port(), "continuation 10000");
  ASSERT_FALSE(r.at("goaway").is_null()) << json::serialize(r);
  EXPECT_NE(r.at("goaway").at("code").as_int64(), 0) << json::serialize(r);
  EXPECT_EQ(r.at("answered").as_int64(), 0);
  expect_others_served();
}

TEST_F(H2Test, AnHpackBombIsAnswered431WithoutKeepingWhatItExpandsTo) {
  start();
  // 3,000 one-byte references to a 4 KB field: 12 MB of header fields from 3 KB on the wire.
  const json::object r = client(port(), "hpack-bomb 3000");
  const auto& by = r.at("by_stream").as_object();
  ASSERT_TRUE(by.contains("3")) << json::serialize(r);
  EXPECT_EQ(by.at("3").as_int64(), 431) << json::serialize(r);
  // The connection goes on: the stream after it is answered.
  ASSERT_TRUE(by.contains("5")) << json::serialize(r);
  EXPECT_EQ(by.at("5").as_int64(), 200) << json::serialize(r);
  EXPECT_GE(handler_.rejected_431(), 1);
}

TEST_F(H2Test, PingAndSettingsFloodsEndTheConnection) {
  start();
  for (const std::string mode : {"ping-flood 20000", "settings-flood 20000"}) {
    const json::object r = client(port(), mode);
    ASSERT_FALSE(r.at("goaway").is_null()) << mode << ": " << json::serialize(r);
    EXPECT_EQ(r.at("goaway").at("code").as_int64(), 11) << mode << ": " << json::serialize(r);
  }
  expect_others_served();
}

TEST_F(H2Test, StreamsPastTheLimitAreRefusedAndTheOthersAnswered) {
  ServerConfig config;
  config.http2.max_concurrent_streams = 20;
  start(config);
  // 60 at once, before the client could have read the server's SETTINGS.
  const json::object r = client(port(), "too-many-streams 60 /slow");
  EXPECT_EQ(r.at("answered").as_int64() + r.at("refused").as_int64(), 60) << json::serialize(r);
  EXPECT_GE(r.at("refused").as_int64(), 40) << json::serialize(r);
  EXPECT_LE(handler_.max_running(), 20);
}

TEST_F(H2Test, StopSendsGoawayAndFinishesTheStreamsInFlight) {
  start();
  testing::ChildProcess holder(
      {"/usr/bin/python3", kClient, std::to_string(port()), "hold", "/hold", "8"});
  // Wait until the stream is in its handler, then stop with time to spare.
  for (int i = 0; i < 200 && handler_.max_running() == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(handler_.max_running(), 1);
  server_->stop(5s);
  thread_.join();
  server_holder_.reset();
  ASSERT_TRUE(holder.wait_exit(10s).has_value());
  const std::string out = holder.output();
  const auto line = out.substr(out.rfind("\n{") + 1);
  boost::system::error_code ec;
  const json::value v = json::parse(line, ec);
  ASSERT_FALSE(ec) << out;
  EXPECT_EQ(v.at("status").as_int64(), 200) << out;
  EXPECT_EQ(v.at("body").as_string(), "/hold bytes=0") << out;
  ASSERT_FALSE(v.at("goaway").is_null()) << out;
  EXPECT_EQ(v.at("goaway").at("code").as_int64(), 0) << out;
  EXPECT_EQ(v.at("goaway").at("last_stream_id").as_int64(), 1) << out;
  EXPECT_TRUE(v.at("eof").as_bool()) << out;
}

TEST_F(H2Test, AnIdleConnectionIsToldGoawayAtTheIdleTimeout) {
  ServerConfig config;
  config.idle_timeout = 300ms;
  start(config);
  testing::ChildProcess holder(
      {"/usr/bin/python3", kClient, std::to_string(port()), "hold", "/hello", "8"});
  ASSERT_TRUE(holder.wait_exit(10s).has_value());
  const std::string out = holder.output();
  const json::value v = json::parse(out.substr(out.rfind("\n{") + 1));
  EXPECT_EQ(v.at("status").as_int64(), 200) << out;
  ASSERT_FALSE(v.at("goaway").is_null()) << out;
  EXPECT_EQ(v.at("goaway").at("code").as_int64(), 0) << out;
  EXPECT_TRUE(v.at("eof").as_bool()) << out;
}

}  // namespace
}  // namespace squadron::http
