// WebSockets through the fleet's gateway, with real clients (Python's `websockets`) and a real
// WebSocket service (examples/ws-echo, Python): tunnels that echo, a refused handshake relayed as
// it came, the tunnels counted in the gateway's metrics, and a rollout under open tunnels that
// closes none of them before the old instance's stop_grace.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <signal.h>

#include "fleet_fixture.hpp"
#include "json_line.hpp"
#include "raw_client.hpp"
#include "squadron/http/request.hpp"

namespace squadron::testing {
namespace {

const std::string kPython = "/usr/bin/python3";  // Debian's, with python3-websockets
std::string source(const std::string& path) {
  return std::string(SQUADRON_SOURCE_DIR) + "/" + path;
}

class WebSocket : public Fleet {
 protected:
  // A fleet of the ws-echo service behind the gateway (`extra`: more of the service's keys);
  // the gateway's port, 0 when it did not come up.
  std::uint16_t up_ws_echo(const std::string& extra) {
    std::ofstream(dir_ / "squadron.yaml")
        << "name: ws\ncontrol: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\n"
        << "services:\n  ws:\n    command: [" << kPython << ", "
        << source("examples/ws-echo/app.py")
        << "]\n    ready: { path: /healthz }\n    routes: [/chat]\n"
        << extra;
    const auto up = cli({"up", "-d"}, 60s);
    EXPECT_EQ(up.code, 0) << up.output;
    const auto list = ps();
    const auto gateway = of(list, "gateway");
    return up.code == 0 && gateway.size() == 1 ? port_of(*gateway[0]) : 0;
  }
};

TEST_F(WebSocket, TunnelsEchoAndARolloutClosesNoneBeforeStopGrace) {
  const auto port = up_ws_echo("    stop_grace: 2s\n");
  ASSERT_NE(port, 0);
  // A GET that asks no upgrade reaches the service as any request does (its 426 comes back).
  const auto plain = fetch(port, "GET", "/chat");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 426);

  constexpr int kTunnels = 40;
  ChildProcess client({kPython, source("tests/integration/services/ws_client.py"),
                       "ws://127.0.0.1:" + std::to_string(port) + "/chat", std::to_string(kTunnels),
                       "7", "0.2"});
  ASSERT_TRUE(
      eventually([&] { return client.output_now().find("open ") != std::string::npos; }, 20s, 50ms))
      << client.output_now();
  EXPECT_NE(client.output_now().find("open " + std::to_string(kTunnels)), std::string::npos)
      << client.output_now();
  // The gateway counts them (on its admin listener, which the fleet's summary names).
  const auto fleet = fetch(control_port(), "GET", "/api/v1/fleet");
  ASSERT_TRUE(fleet);
  const std::string url(json::parse(fleet->body).at("gateway_metrics").as_string());
  const auto admin = static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
  const auto metrics = fetch(admin, "GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("_tunnels{service=\"ws\"} " + std::to_string(kTunnels)),
            std::string::npos)
      << metrics->body.substr(0, 3000);

  client.signal(SIGUSR1);  // mark: the rollout starts now
  const auto restart = cli({"restart", "ws"}, 60s);
  EXPECT_EQ(restart.code, 0) << restart.output;
  ASSERT_TRUE(client.wait_exit(30s).has_value());
  const auto result = last_json_line(client.output());
  ASSERT_FALSE(result.empty()) << client.output();
  EXPECT_EQ(result.at("opened").as_int64(), kTunnels);
  EXPECT_EQ(result.at("wrong").as_int64(), 0);
  EXPECT_GT(result.at("echoed").as_int64(), kTunnels * 10) << "they echoed on until the end";
  // Every tunnel was to the old instance: each stayed open through its drain, until stop_grace
  // (2 s) ended it; none closed before.
  EXPECT_EQ(result.at("closed").as_int64(), kTunnels);
  ASSERT_TRUE(result.at("first_close_after_mark").is_double()) << client.output();
  EXPECT_GE(result.at("first_close_after_mark").as_double(), 1.9) << client.output();
  // New tunnels reach the new instance.
  ChildProcess after({kPython, source("tests/integration/services/ws_client.py"),
                      "ws://127.0.0.1:" + std::to_string(port) + "/chat", "5", "1", "0.2"});
  ASSERT_TRUE(after.wait_exit(30s).has_value());
  const auto second = last_json_line(after.output());
  ASSERT_FALSE(second.empty()) << after.output();
  EXPECT_EQ(second.at("opened").as_int64(), 5);
  EXPECT_EQ(second.at("closed").as_int64(), 0);
}

TEST_F(WebSocket, TheRelayed101HasOneDateAndOneRequestId) {
  // The instance's 101 says its own Date (Python's websockets does); the gateway writes its own
  // Date and X-Request-Id on what it relays, as on every proxied answer: one of each.
  const auto port = up_ws_echo("");
  ASSERT_NE(port, 0);
  RawConnection c(port);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(
      c.send("GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
  const auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 101);
  const auto count = [&](std::string_view name) {
    return std::count_if(r->headers.begin(), r->headers.end(),
                         [&](const auto& h) { return http::iequals(h.first, name); });
  };
  EXPECT_EQ(count("date"), 1);
  EXPECT_EQ(count("x-request-id"), 1);
  EXPECT_EQ(r->header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_F(WebSocket, OverHttp2EachExtendedConnectIsATunnelToTheService) {
  const auto gateway_port = up_ws_echo("");
  ASSERT_NE(gateway_port, 0);
  const auto port = std::to_string(gateway_port);
  // RFC 8441 offered (SETTINGS_ENABLE_CONNECT_PROTOCOL); 20 WebSockets as streams of one h2c
  // connection, each answered 200 by way of the instance's 101, each message echoed by the
  // instance and each close answered by it.
  ChildProcess client(
      {kPython, source("tests/support/h2_client.py"), port, "websocket", "20", "/chat"});
  ASSERT_TRUE(client.wait_exit(30s).has_value());
  const auto r = last_json_line(client.output());
  ASSERT_FALSE(r.empty()) << client.output();
  EXPECT_TRUE(r.at("enabled").as_bool());
  EXPECT_EQ(
      json::serialize(r.at("statuses")), "[" + [] {
        std::string s;
        for (int i = 0; i < 20; ++i) s += i == 0 ? "200" : ",200";
        return s;
      }() + "]");
  EXPECT_EQ(r.at("echoed").as_int64(), 20) << client.output();
  EXPECT_EQ(r.at("closed").as_int64(), 20) << client.output();
  // A path no service routes: the gateway's 404, no tunnel.
  ChildProcess unrouted(
      {kPython, source("tests/support/h2_client.py"), port, "websocket", "1", "/nope"});
  ASSERT_TRUE(unrouted.wait_exit(30s).has_value());
  const auto u = last_json_line(unrouted.output());
  ASSERT_FALSE(u.empty()) << unrouted.output();
  EXPECT_EQ(json::serialize(u.at("statuses")), "[404]");
}

}  // namespace
}  // namespace squadron::testing

namespace squadron::testing {
namespace {

using Affinity = Fleet;

// The name=value of a Set-Cookie, "" without one.
std::string cookie_of(const RawResponse& r) {
  const auto v = r.header("set-cookie");
  return v ? v->substr(0, v->find(';')) : "";
}

// Which echo instance answered.
std::string who(const RawResponse& r) {
  boost::system::error_code ec;
  const auto v = json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("instance")) return "";
  return std::string(v.as_object().at("instance").as_string());
}

TEST_F(Affinity, ACookieKeepsAClientOnOneOfTwoInstances) {
  std::ofstream(dir_ / "squadron.yaml")
      << "name: sticky\ncontrol: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\n"
      << "services:\n  echo:\n    command: " << bin_dir() << "/echo --threads 1\n"
      << "    replicas: 2\n    routes: [/]\n"
      << "    proxy: { balance: round-robin, affinity: { cookie: sticky } }\n";
  const auto up = cli({"up", "-d"}, 60s);
  ASSERT_EQ(up.code, 0) << up.output;
  const auto list = ps();
  const auto port = port_of(*of(list, "gateway")[0]);
  const auto first = fetch(port, "GET", "/");
  ASSERT_TRUE(first);
  const std::string cookie = cookie_of(*first);
  ASSERT_EQ(cookie.rfind("sticky=", 0), 0u);
  const std::string instance = who(*first);
  ASSERT_FALSE(instance.empty()) << first->body;
  for (int i = 0; i < 20; ++i) {  // round-robin alone would alternate
    const auto next = fetch(port, "GET", "/", "Cookie: " + cookie + "\r\n");
    ASSERT_TRUE(next);
    EXPECT_EQ(who(*next), instance) << next->body;
    EXPECT_EQ(cookie_of(*next), "") << "the cookie is set once";
  }
  std::set<std::string> without;
  for (int i = 0; i < 4; ++i) {
    const auto r = fetch(port, "GET", "/");
    if (r) without.insert(who(*r));
  }
  EXPECT_EQ(without.size(), 2u) << "without the cookie, both instances answer";
}

}  // namespace
}  // namespace squadron::testing
