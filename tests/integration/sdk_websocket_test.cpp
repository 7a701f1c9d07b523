// The SDK's WebSocket endpoint (app.websocket(), on Boost.Beast) of examples/echo with a real
// client (Python's `websockets`): messages both kinds and large echoed, the route's parameter
// and the request's headers seen, a plain GET refused with 426, and a SIGTERM that keeps an open
// WebSocket through the stop grace and closes it with 1001 before the grace ends.
#include <csignal>

#include <boost/json.hpp>

#include "fixture.hpp"
#include "json_line.hpp"

namespace squadron::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

const std::string kPython = "/usr/bin/python3";  // Debian's, with python3-websockets

std::string client_script() {
  return std::string(SQUADRON_SOURCE_DIR) + "/tests/integration/services/ws_sdk_client.py";
}

class SdkWebSocket : public ServiceTest {};

TEST_F(SdkWebSocket, EchoesTextBinaryAndLargeMessagesAndSeesItsRoomAndHeaders) {
  start("echo");
  ChildProcess client(
      {kPython, client_script(), "talk", "ws://127.0.0.1:" + std::to_string(port_) + "/ws/lobby"});
  ASSERT_TRUE(client.wait_exit(20s).has_value());
  const auto r = last_json_line(client.output());
  ASSERT_FALSE(r.empty()) << client.output() << proc_->output();
  EXPECT_EQ(r.at("text").as_string(), "hello");
  EXPECT_TRUE(r.at("binary").as_bool()) << "a binary message comes back binary, byte for byte";
  EXPECT_TRUE(r.at("big").as_bool()) << "a 1 MiB message comes back whole";
  const auto& about = r.at("describe").as_object();
  EXPECT_EQ(about.at("room").as_string(), "lobby");
  EXPECT_EQ(about.at("path").as_string(), "/ws/lobby");
  EXPECT_EQ(about.at("user_agent").as_string(), "ws-sdk-client/1");
  EXPECT_EQ(r.at("close_code").as_int64(), 1000);
}

TEST_F(SdkWebSocket, ARequestThatAsksNoUpgradeGets426AndABadHandshakeNo101) {
  start("echo");
  const auto plain = fetch(port_, "GET", "/ws/lobby");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 426);
  EXPECT_EQ(plain->header("upgrade").value_or(""), "websocket");
  EXPECT_NE(plain->body.find("Upgrade: websocket"), std::string::npos) << plain->body;
  // An upgrade without its key: Beast refuses it, and the connection is not a WebSocket.
  const auto keyless = fetch(port_, "GET", "/ws/lobby",
                             "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                             "Sec-WebSocket-Version: 13\r\n");
  ASSERT_TRUE(keyless);
  EXPECT_EQ(keyless->status, 400);
  // The service goes on answering.
  const auto after = fetch(port_, "GET", "/still");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

TEST_F(SdkWebSocket, SigtermKeepsAnOpenWebSocketThroughTheGraceThenCloses1001) {
  start("echo", {"--grace", "1000ms"});
  ChildProcess client(
      {kPython, client_script(), "hold", "ws://127.0.0.1:" + std::to_string(port_) + "/ws/a"});
  ASSERT_TRUE(
      eventually([&] { return client.output_now().find("open") != std::string::npos; }, 20s, 20ms))
      << client.output_now();
  proc_->signal(SIGTERM);
  ASSERT_TRUE(client.wait_exit(10s).has_value());
  const auto r = last_json_line(client.output());
  ASSERT_FALSE(r.empty()) << client.output() << proc_->output();
  // A close frame (not a cut connection), Going Away, not before 0.9 s of the 1 s grace.
  EXPECT_EQ(r.at("close_code").as_int64(), 1001) << client.output();
  EXPECT_GE(r.at("after").as_double(), 0.9) << client.output();
  EXPECT_EQ(proc_->wait_exit(10s), 0) << proc_->output();
}

}  // namespace
}  // namespace squadron::testing
