// The usage monitor on a scripted runner and passed-in times: CPU as a share of a core between
// samples, no share across a restart that reset the count, gone instances forgotten.
#include "squadron/control/usage.hpp"

#include <gtest/gtest.h>

namespace squadron::control {
namespace {

namespace sv = squadron::supervisor;
using namespace std::chrono_literals;

struct ScriptedRunner final : sv::Runner {
  std::map<std::string, sv::Usage> now;
  std::string add(const sv::InstanceSpec&) override { return {}; }
  void stop(const std::string&, std::chrono::milliseconds) override {}
  void stop_all(std::function<void()>) override {}
  std::vector<sv::InstanceStatus> snapshot() const override { return {}; }
  std::vector<std::string> logs(const std::string&, std::size_t) const override { return {}; }
  void set_observer(sv::InstanceObserver*) override {}
  std::map<std::string, sv::Usage> usage() const override { return now; }
};

TEST(UsageMonitor, CpuIsTheShareOfACoreBetweenTwoSamples) {
  boost::asio::io_context io;
  ScriptedRunner runner;
  UsageMonitor usage(io, runner);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  runner.now["spin-1"] = {.rss_bytes = 5 << 20, .cpu_usec = 1'000'000};
  usage.sample(t0);
  ASSERT_NE(usage.find("spin-1"), nullptr);
  EXPECT_FALSE(usage.find("spin-1")->measured) << "one sample says nothing about a rate";
  EXPECT_EQ(usage.find("spin-1")->now.rss_bytes, 5U << 20);

  runner.now["spin-1"].cpu_usec += 500'000;  // half a second of CPU in one second
  usage.sample(t0 + 1s);
  EXPECT_TRUE(usage.find("spin-1")->measured);
  EXPECT_DOUBLE_EQ(usage.find("spin-1")->cpu_percent, 50.0);

  runner.now["spin-1"].cpu_usec += 3'000'000;  // two cores' worth over 1.5 s
  usage.sample(t0 + 2500ms);
  EXPECT_DOUBLE_EQ(usage.find("spin-1")->cpu_percent, 200.0);
}

TEST(UsageMonitor, ARestartThatResetTheCountGivesNoShareAndGoneInstancesAreForgotten) {
  boost::asio::io_context io;
  ScriptedRunner runner;
  UsageMonitor usage(io, runner);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  runner.now["a-1"] = {.cpu_usec = 9'000'000};
  runner.now["b-1"] = {.cpu_usec = 1};
  usage.sample(t0);
  runner.now["a-1"] = {.cpu_usec = 10};  // a new process, counted from /proc anew
  runner.now.erase("b-1");
  usage.sample(t0 + 1s);
  EXPECT_FALSE(usage.find("a-1")->measured);
  EXPECT_EQ(usage.find("a-1")->cpu_percent, 0.0);
  EXPECT_EQ(usage.find("b-1"), nullptr);
}

}  // namespace
}  // namespace squadron::control
