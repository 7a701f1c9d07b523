// The gateway when instances fail: 503 ejection, drains that wait for requests in flight,
// hanging services, killed replicas, scale-down under load.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <signal.h>
#include <sstream>
#include <thread>

#include <boost/crc.hpp>
#include <boost/json.hpp>

#include "fleet_fixture.hpp"

namespace squadron::testing {
namespace {

TEST_F(Gateway, AnInstanceAnswering503IsEjectedAndItsRequestsRetriedElsewhere) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  flaky:\n    command: [/usr/bin/python3, " << flaky_py() << "]\n"
      << "    replicas: 3\n    env: { FAIL_INSTANCE: flaky-2 }\n    routes: [/flaky]\n";
  up();
  const auto list = ps();
  const auto gateway = port_of(*of(list, "gateway")[0]);
  std::uint16_t failing = 0;
  for (const auto* o : of(list, "flaky")) {
    if (o->at("id").as_string() == "flaky-2") failing = port_of(*o);
  }
  ASSERT_NE(failing, 0);
  RawConnection c(gateway);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(c.send("GET /flaky HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    const auto r = c.read_response();
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << "a 503 of a GET is retried on another instance: " << r->body;
  }
  // Ejected after 5 failures: of 1,000 requests, at most those 5 (plus 1%) reached it.
  EXPECT_LE(count_of(failing), 15);
  // ...and the ejection is among the fleet's events (from the gateway's counters, each second).
  std::string events;
  eventually(
      [&] {
        events = cli({"events", "flaky"}).output;
        return events.find("ejected") != std::string::npos;
      },
      10s, 100ms);
  EXPECT_NE(events.find("gateway: 1 instance ejected"), std::string::npos) << events;
}

TEST_F(Gateway, ARetiredInstanceStopsOnlyOnceTheGatewayHasNoRequestInFlightToIt) {
  // flaky.py dies at once on SIGTERM, so a request it is still answering would be cut (a 502:
  // no retries here). The fleet waits for the gateway's word instead of a fixed drain.
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  flaky:\n    command: [/usr/bin/python3, " << flaky_py() << "]\n"
      << "    replicas: 2\n    routes: [/flaky]\n    proxy: { retries: 0 }\n";
  up();
  const auto list = ps();
  const auto gateway = port_of(*of(list, "gateway")[0]);
  std::vector<std::uint16_t> ports;
  for (const auto* o : of(list, "flaky")) ports.push_back(port_of(*o));
  constexpr int kSlow = 6;
  std::vector<int> status(kSlow, 0);
  std::vector<std::thread> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.emplace_back([&, i] {
      const auto r = fetch(gateway, "GET", "/flaky/slow/1500");
      status[i] = r ? r->status : -1;
    });
  }
  // Every slow request has reached an instance (each counts it before it sleeps).
  eventually(
      [&] {
        long n = 0;
        for (auto p : ports) n += std::max(0L, count_of(p));
        return n >= kSlow;
      },
      10s);
  const auto scaled = std::chrono::steady_clock::now();
  const auto r = cli({"scale", "flaky=1"});
  ASSERT_EQ(r.code, 0) << r.output;
  for (auto& t : slow) t.join();
  for (int i = 0; i < kSlow; ++i) EXPECT_EQ(status[i], 200) << "slow request " << i;
  // ...and it went soon after its last request, not at the stop_grace bound (10 s).
  eventually([&] { return of(ps(), "flaky").size() <= 1; }, 9s, 20ms);
  EXPECT_EQ(of(ps(), "flaky").size(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - scaled, 5s);
}

TEST_F(Gateway, AHangingServiceGets504AtItsTimeoutAndOthersAreUnaffected) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  stuck:\n    command: [/usr/bin/python3, " << flaky_py() << "]\n"
      << "    routes: [/stuck]\n    proxy: { timeout: 500ms, retries: 0 }\n"
      << "  hello:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n"
      << "    routes: [/hello]\n";
  up();
  const auto gateway = port_of(*of(ps(), "gateway")[0]);
  std::vector<RawConnection> hung;
  for (int i = 0; i < 20; ++i) {
    hung.emplace_back(gateway);
    ASSERT_TRUE(hung.back().send("GET /stuck/hang HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  }
  for (int i = 0; i < 100; ++i) {  // meanwhile, another service answers as usual
    const auto r = fetch(gateway, "GET", "/hello");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
  for (auto& c : hung) {
    const auto r = c.read_response(5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 504);
    EXPECT_NE(r->body.find("did not answer within 500 ms"), std::string::npos) << r->body;
  }
}

TEST_F(Gateway, GetsSurviveKilledReplicas) {
  start_routed();
  Load load(gateway_, {.raw = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"});
  EXPECT_EQ(kill_ready("hello", 3, 300ms), 3);
  load.stop();
  EXPECT_GT(load.ok(), 100);
  EXPECT_EQ(load.failed(), 0) << load.first_failure();
}

TEST_F(Gateway, ScalingDownUnderLoadFailsNoRequestNotEvenAPost) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  echo:\n    command: [" << bin_dir() << "/echo, --threads, \"1\"]\n"
      << "    replicas: 4\n    ready: { path: /readyz }\n    routes: [/echo]\n";
  up();
  const auto gateway = port_of(*of(ps(), "gateway")[0]);
  Load load(gateway,
            {.raw = "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello"});
  // The load runs before, during and after the scale-down (which, with the drain ending as soon
  // as the gateway is done with an instance, can take only milliseconds).
  auto wait_for_ok = [&](int n) { eventually([&] { return load.ok() >= n; }, 10s, 5ms); };
  wait_for_ok(50);
  const auto r = cli({"scale", "echo=1"});
  const int at_scale = load.ok();
  eventually([&] { return of(ps(), "echo").size() <= 1; }, 10s);  // the three retired ones gone
  wait_for_ok(load.ok() + 50);
  load.stop();
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_GE(at_scale, 50);
  EXPECT_EQ(of(ps(), "echo").size(), 1u);
  EXPECT_GT(load.ok(), at_scale + 49) << "and after";
  EXPECT_EQ(load.failed(), 0) << load.first_failure();
}

}  // namespace
}  // namespace squadron::testing
