#include "squadron/supervisor/backoff.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace squadron::supervisor {
namespace {

using namespace std::chrono_literals;

TEST(RestartBackoff, FirstRestartAtOnceThenHalfASecondDoublingToThirtySeconds) {
  core::FakeClock clock;
  RestartBackoff b(clock);
  std::vector<std::chrono::milliseconds> delays;
  for (int i = 0; i < 10; ++i) {
    b.on_start();
    clock.advance(10ms);  // crashes right away
    delays.push_back(b.on_exit());
  }
  EXPECT_EQ(delays, (std::vector<std::chrono::milliseconds>{0ms, 500ms, 1s, 2s, 4s, 8s, 16s, 30s,
                                                            30s, 30s}));
}

TEST(RestartBackoff, StartsOverAfterSixtySecondsUp) {
  core::FakeClock clock;
  RestartBackoff b(clock);
  for (int i = 0; i < 4; ++i) {
    b.on_start();
    b.on_exit();
  }
  EXPECT_EQ(b.failures(), 4);
  b.on_start();
  clock.advance(60s);
  EXPECT_EQ(b.on_exit(), 0ms);
  b.on_start();
  EXPECT_EQ(b.on_exit(), 500ms);
}

TEST(RestartBackoff, FiftyNineSecondsUpIsNotEnoughToReset) {
  core::FakeClock clock;
  RestartBackoff b(clock);
  b.on_start();
  b.on_exit();
  b.on_start();
  clock.advance(59s);
  EXPECT_EQ(b.on_exit(), 500ms);
}

// The finding: a crash loop escalated the delay to 16 s, and a kill -9 of the instance
// after it had then served for 16 s waited 16 s more. Only quick crashes count.
TEST(RestartBackoff, AnInstanceReadyLongerThanItsDelayRestartsAtOnce) {
  core::FakeClock clock;
  RestartBackoff b(clock);
  for (int i = 0; i < 7; ++i) {  // 0, 0.5, 1, 2, 4, 8, 16 s
    b.on_start();
    clock.advance(10ms);
    b.on_exit();
  }
  b.on_start();
  clock.advance(100ms);
  b.on_ready();
  clock.advance(30s);  // ready for 30 s: longer than the 30 s it would wait now
  EXPECT_EQ(b.on_exit(), 0ms);
  b.on_start();
  clock.advance(10ms);
  EXPECT_EQ(b.on_exit(), 500ms) << "a quick crash right after counts again, from the start";
}

TEST(RestartBackoff, ReadyForLessThanTheDelayStillBacksOff) {
  core::FakeClock clock;
  RestartBackoff b(clock);
  for (int i = 0; i < 4; ++i) {  // 0, 0.5, 1, 2 s
    b.on_start();
    clock.advance(10ms);
    b.on_exit();
  }
  b.on_start();
  b.on_ready();
  clock.advance(3s);  // the next delay is 4 s
  EXPECT_EQ(b.on_exit(), 4s);
  b.on_start();
  clock.advance(10ms);
  EXPECT_EQ(b.on_exit(), 8s) << "not ready this time";
}

// The bad neighbour: a memory hog ready at once and OOM-killed a second later was
// restarted every second for ever (a second ready outgrew the 0.5 s delay each time).
TEST(RestartBackoff, ASecondOfReadinessBetweenCrashesIsStillALoop) {
  core::FakeClock clock;
  RestartBackoff b(clock);
  std::vector<std::chrono::milliseconds> delays;
  for (int i = 0; i < 6; ++i) {
    b.on_start();
    b.on_ready();
    clock.advance(1s);
    delays.push_back(b.on_exit());
    clock.advance(delays.back());
  }
  EXPECT_EQ(delays, (std::vector<std::chrono::milliseconds>{0ms, 500ms, 1s, 2s, 4s, 8s}));
}

}  // namespace
}  // namespace squadron::supervisor
