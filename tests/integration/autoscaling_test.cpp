// The autoscaler with real traffic: concurrency up and down, scale to zero and wake.
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

TEST_F(Gateway, TheAutoscalerFollowsConcurrencyUpAtOnceAndDownAfterItsDelay) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  echo:\n    command: " << bin_dir() << "/echo --threads 1\n"
      << "    routes: [/echo]\n    ready: { path: /readyz }\n"
      << "    autoscale: { min: 1, max: 4, metric: concurrency, target: 2, "
         "scale_down_delay: 3s }\n";
  up();
  const auto gateway = port_of(*of(ps(), "gateway")[0]);
  ASSERT_EQ(of(ps(), "echo").size(), 1u);
  // 12 clients, each with a 200 ms request in flight all the time: ~12 in flight, target 2.
  Load load(gateway, {.threads = 12, .target = "/echo?delay_ms=200"});
  int ready = 0;
  const auto step = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - step < 15s && ready < 4) {
    std::this_thread::sleep_for(200ms);  // polling pace
    ready = 0;
    const auto list = ps();
    for (const auto* o : of(list, "echo")) ready += o->at("state").as_string() == "ready";
  }
  const auto took = std::chrono::steady_clock::now() - step;
  load.stop();
  EXPECT_EQ(ready, 4) << "scaled to max";
  EXPECT_LT(took, 8s);
  EXPECT_EQ(load.failed(), 0) << load.first_failure();
  // Quiet: back to min once the delay has passed without demand.
  int left = 4;
  const auto quiet = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - quiet < 20s && left != 1) {
    std::this_thread::sleep_for(250ms);  // polling pace
    left = static_cast<int>(of(ps(), "echo").size());
  }
  EXPECT_EQ(left, 1);
  EXPECT_GE(std::chrono::steady_clock::now() - quiet, 3s) << "not before scale_down_delay";
  // Every decision is an event with its inputs and rule.
  const auto r = cli({"events", "echo"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("autoscale 1 -> "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("concurrency "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("-> 1: concurrency"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(down)"), std::string::npos) << r.output;
  // The API shows the autoscaler's state.
  const auto svc = fetch(control_port(), "GET", "/api/v1/services/echo");
  ASSERT_TRUE(svc);
  const auto v = json::parse(svc->body);
  EXPECT_EQ(v.at("autoscale").at("max").as_int64(), 4);
  EXPECT_EQ(v.at("autoscale").at("metric").as_string(), "concurrency");
}

TEST_F(Gateway, AnIdleServiceScalesToZeroAndTheGatewayWakesItForTheNextRequest) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  hello:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n"
      << "    routes: [/hello]\n"
      << "    autoscale: { min: 0, max: 2, target: 8, scale_down_delay: 2s }\n";
  up();
  const auto gateway = port_of(*of(ps(), "gateway")[0]);
  auto r = fetch(gateway, "GET", "/hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  std::size_t left = 1;
  const auto quiet = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - quiet < 15s && left != 0) {
    std::this_thread::sleep_for(200ms);  // polling pace
    left = of(ps(), "hello").size();
  }
  ASSERT_EQ(left, 0u) << "idle for scale_down_delay: scaled to zero";
  // The next request waits while the gateway wakes the service, and is answered.
  const auto before = std::chrono::steady_clock::now();
  r = fetch(gateway, "GET", "/hello");
  const auto cold = std::chrono::steady_clock::now() - before;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, "Hello World!");
  EXPECT_LT(cold, 3s) << "a cold start, not a retry loop";
  const auto events = cli({"events", "hello"});
  EXPECT_NE(events.output.find("(idle)"), std::string::npos) << events.output;
  EXPECT_NE(events.output.find("(wake)"), std::string::npos) << events.output;
  // Waking a service that cannot sleep is refused precisely.
  const auto no = fetch(control_port(), "POST", "/api/v1/services/gateway/wake", auth());
  ASSERT_TRUE(no);
  EXPECT_EQ(no->status, 409);
}

}  // namespace
}  // namespace squadron::testing
