#include "squadron/control/autoscaler.hpp"

#include <gtest/gtest.h>

namespace squadron::control {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;
const TimePoint kT0 = TimePoint(10h);

// Feeds one observation a second from `from` for `seconds`, applying each decision, and
// returns the replicas at the end; `log` collects the changes.
struct Driver {
  Driver(AutoscaleSpec s, int replicas) : a(s), current(replicas) {}
  Autoscaler a;
  int current;
  std::uint64_t requests = 0;
  TimePoint t = kT0;
  std::vector<std::pair<double, ScaleDecision>> changes;  // (seconds since kT0, decision)
  int run(double value, int seconds, bool rolling = false, bool traffic = true) {
    for (int i = 0; i < seconds; ++i) {
      t += 1s;
      if (traffic) requests += 100;
      const auto d = a.evaluate({.now = t,
                                 .ready = current,
                                 .current = current,
                                 .value = value,
                                 .requests = requests,
                                 .rolling = rolling});
      if (d.changed()) {
        changes.emplace_back(std::chrono::duration<double>(t - kT0).count(), d);
        current = d.desired;
      }
    }
    return current;
  }
};

AutoscaleSpec spec(int min = 1, int max = 10, double target = 8) {
  AutoscaleSpec s;
  s.min = min;
  s.max = max;
  s.target = target;
  return s;
}

TEST(Autoscaler, ATenfoldStepScalesUpWithinASecondInPanic) {
  Driver d(spec(), 1);
  EXPECT_EQ(d.run(8, 40), 1) << "8 in flight is one instance's target";
  EXPECT_TRUE(d.changes.empty());
  EXPECT_EQ(d.run(80, 1), 10) << "the first second of the step decides";
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].second.rule, "panic");
  EXPECT_NE(d.changes[0].second.explain.find("autoscale 1 -> 10: concurrency 80.0 over 1 ready"),
            std::string::npos)
      << d.changes[0].second.explain;
  EXPECT_NE(d.changes[0].second.explain.find("ceil(80.0/8) = 10"), std::string::npos);
}

TEST(Autoscaler, ScalesDownOnlyAfterTheDelayOfLowerDemandAndNeverWhilePanicking) {
  Driver d(spec(), 1);
  d.run(8, 40);
  d.run(80, 10);
  ASSERT_EQ(d.current, 10);
  const auto quiet_from = std::chrono::duration<double>(d.t - kT0).count();
  d.run(8, 29);
  EXPECT_EQ(d.current, 10) << "29 s of lower demand: not yet";
  d.run(8, 2);
  EXPECT_EQ(d.current, 1);
  ASSERT_EQ(d.changes.size(), 2u);
  EXPECT_EQ(d.changes[1].second.rule, "down");
  EXPECT_GE(d.changes[1].first - quiet_from, 30.0);
  EXPECT_LE(d.changes[1].first - quiet_from, 31.0);
}

TEST(Autoscaler, AManualScaleHoldsForTheDelayThenDemandDecides) {
  Driver d(spec(), 1);
  EXPECT_EQ(d.run(2, 60), 1) << "a long quiet: one instance";
  d.current = 3;  // `squadron scale catalog=3`, or the dashboard's button
  d.a.hold(3, d.t);
  EXPECT_EQ(d.run(2, 29), 3) << "not undone at the next pass";
  EXPECT_EQ(d.run(2, 2), 1) << "then, after the delay of lower demand, down as usual";
  ASSERT_FALSE(d.changes.empty());
  EXPECT_EQ(d.changes.back().second.rule, "down");
  // A held count never keeps the autoscaler from scaling up.
  d.current = 2;
  d.a.hold(2, d.t);
  EXPECT_EQ(d.run(40, 1), 5);
}

TEST(Autoscaler, NoChangeWithinTheToleranceAndUpBeyondIt) {
  Driver d(spec(), 4);
  EXPECT_EQ(d.run(34, 5), 4) << "34 / (4 x 8) = 1.06: within 10 %";
  EXPECT_EQ(d.run(40, 1), 5) << "1.25: up to ceil(40/8)";
  EXPECT_EQ(d.changes.back().second.rule, "up");
}

TEST(Autoscaler, AnOscillatingLoadNeverReversesWithinTheWindow) {
  Driver d(spec(), 2);
  for (int i = 0; i < 12; ++i) {  // 20 and 40 in flight, 5 s each, for two minutes
    d.run(20, 5);
    d.run(40, 5);
  }
  ASSERT_FALSE(d.changes.empty());
  for (const auto& [at, change] : d.changes) {
    EXPECT_NE(change.rule, "down") << "at " << at << " s: a 5 s dip is shorter than the delay";
  }
  EXPECT_EQ(d.current, 5) << "sized for the peaks (40 / 8)";
}

TEST(Autoscaler, NothingMovesDuringARolloutOrWithoutMetrics) {
  Driver d(spec(), 2);
  EXPECT_EQ(d.run(80, 5, /*rolling=*/true), 2);
  EXPECT_TRUE(d.changes.empty());
  Autoscaler a(spec());
  const auto r = a.evaluate({.now = kT0, .ready = 2, .current = 2, .value = 80, .observed = false});
  EXPECT_FALSE(r.changed());
  EXPECT_EQ(r.rule, "hold");
}

TEST(Autoscaler, MinZeroScalesAnIdleServiceToZeroAndWakesIt) {
  Driver d(spec(0), 1);
  d.run(1, 10);
  EXPECT_EQ(d.current, 1) << "requests keep one instance";
  d.run(0, 29, false, /*traffic=*/false);
  EXPECT_EQ(d.current, 1) << "29 s without a request";
  d.run(0, 2, false, false);
  EXPECT_EQ(d.current, 0);
  EXPECT_EQ(d.changes.back().second.rule, "idle");
  EXPECT_EQ(d.run(0, 30, false, false), 0) << "stays at zero while nothing comes";
  EXPECT_EQ(d.run(0.5, 2), 0) << "what finished before is not a request waiting";
  // The gateway holds a request and asks to wake it: one replica, and not idle any more.
  d.a.touch(d.t);
  d.current = 1;
  EXPECT_EQ(d.run(0, 1, false, false), 1);
  EXPECT_EQ(d.run(0, 28, false, false), 1) << "woken: idle only after a new delay";
  EXPECT_EQ(d.run(0, 2, false, false), 0) << "idle again after the delay";
}

TEST(Autoscaler, StaysWithinMinAndMax) {
  Driver d(spec(2, 4), 2);
  EXPECT_EQ(d.run(1000, 3), 4);
  EXPECT_EQ(d.run(0, 60), 2) << "never below min";
  Driver over(spec(1, 3), 7);  // the manifest lowered max
  EXPECT_EQ(over.run(8, 1), 3);
  EXPECT_EQ(over.changes.back().second.rule, "max");
}

}  // namespace
}  // namespace squadron::control
