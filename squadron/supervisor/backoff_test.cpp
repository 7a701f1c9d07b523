#include "squadron/supervisor/backoff.hpp"

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

}  // namespace
}  // namespace squadron::supervisor
