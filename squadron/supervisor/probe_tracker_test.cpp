#include "squadron/supervisor/probe_tracker.hpp"

#include <gtest/gtest.h>

namespace squadron::supervisor {
namespace {

using namespace std::chrono_literals;

TEST(ProbeTracker, TheFirstProbeIsDueAtOnceThenEveryInterval) {
  core::FakeClock clock;
  ProbeTracker t(1s, 3, clock);
  EXPECT_TRUE(t.due());
  t.record(false);
  EXPECT_FALSE(t.due());
  clock.advance(999ms);
  EXPECT_FALSE(t.due());
  clock.advance(1ms);
  EXPECT_TRUE(t.due());
}

TEST(ProbeTracker, OneSuccessMakesItPassing) {
  core::FakeClock clock;
  ProbeTracker t(1s, 3, clock);
  EXPECT_FALSE(t.passing());
  t.record(false);
  t.record(false);
  EXPECT_FALSE(t.passing());
  t.record(true);
  EXPECT_TRUE(t.passing());
}

TEST(ProbeTracker, ThresholdConsecutiveFailuresTurnItAndASuccessInBetweenStartsOver) {
  core::FakeClock clock;
  ProbeTracker t(1s, 3, clock);
  t.record(true);
  t.record(false);
  t.record(false);
  t.record(true);  // resets the count
  t.record(false);
  t.record(false);
  EXPECT_TRUE(t.passing());
  EXPECT_FALSE(t.failed_after_passing());
  t.record(false);
  EXPECT_FALSE(t.passing());
  EXPECT_TRUE(t.failed_after_passing()) << "liveness: due for a restart";
}

TEST(ProbeTracker, NeverPassingIsNotALivenessFailure) {
  core::FakeClock clock;
  ProbeTracker t(1s, 1, clock);
  t.record(false);
  t.record(false);
  EXPECT_FALSE(t.failed_after_passing()) << "a starting instance is not restarted for being slow";
}

TEST(ProbeTracker, ResetStartsOver) {
  core::FakeClock clock;
  ProbeTracker t(1s, 1, clock);
  t.record(true);
  t.reset();
  EXPECT_FALSE(t.passing());
  EXPECT_TRUE(t.due());
}

}  // namespace
}  // namespace squadron::supervisor
