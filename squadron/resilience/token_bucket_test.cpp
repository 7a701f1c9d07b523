// token bucket.hpp on injected time and chosen random numbers: no clock, no sleep.
#include "squadron/resilience/token_bucket.hpp"

#include <chrono>

#include <gtest/gtest.h>

namespace squadron::resilience {
namespace {

using namespace std::chrono_literals;

TEST(TokenBucket, AllowsTheBurstThenTheRate) {
  const auto t0 = std::chrono::steady_clock::time_point(1h);
  TokenBucket b(10, 3, t0);  // 10 a second, bursts of 3
  for (int i = 0; i < 3; ++i) EXPECT_EQ(b.take(t0).count(), 0) << i;
  const auto wait = b.take(t0);
  EXPECT_GT(wait, 99ms);
  EXPECT_LE(wait, 101ms);
  EXPECT_GT(b.take(t0 + 50ms).count(), 0) << "half a token is not a token";
  EXPECT_EQ(b.take(t0 + 100ms).count(), 0);
  EXPECT_GT(b.take(t0 + 100ms).count(), 0);
  // A long quiet time refills only up to the burst.
  int granted = 0;
  for (int i = 0; i < 10; ++i) granted += b.take(t0 + 1h).count() == 0;
  EXPECT_EQ(granted, 3);
  b.configure(10, 1);  // a smaller burst caps what is held
  EXPECT_EQ(b.take(t0 + 2h).count(), 0);
  EXPECT_GT(b.take(t0 + 2h).count(), 0);
}

TEST(TokenBucket, TimeGoingBackwardsGrantsNothingExtra) {
  const auto t0 = std::chrono::steady_clock::time_point(1h);
  TokenBucket b(1, 1, t0);
  EXPECT_EQ(b.take(t0).count(), 0);
  EXPECT_GT(b.take(t0 - 10s).count(), 0);
}

}  // namespace
}  // namespace squadron::resilience
