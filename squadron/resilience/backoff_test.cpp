// backoff.hpp on injected time and chosen random numbers: no clock, no sleep.
#include "squadron/resilience/backoff.hpp"

#include <chrono>
#include <set>

#include <gtest/gtest.h>

namespace squadron::resilience {
namespace {

using namespace std::chrono_literals;

TEST(FullJitter, TheWindowDoublesUpToTheCapAndTheDrawStaysInsideIt) {
  const JitterPolicy p{.base = 25ms, .cap = 250ms, .floor = 0ms};
  EXPECT_EQ(full_jitter(1, p, 25), 25ms) << "the top of the first window";
  for (std::uint64_t r : {0ULL, 7ULL, 12345ULL, ~0ULL}) {
    EXPECT_LE(full_jitter(1, p, r), 25ms);
    EXPECT_LE(full_jitter(2, p, r), 50ms);
    EXPECT_LE(full_jitter(3, p, r), 100ms);
    EXPECT_LE(full_jitter(5, p, r), 250ms) << "capped";
    EXPECT_LE(full_jitter(60, p, r), 250ms) << "no overflow far out";
    EXPECT_GE(full_jitter(60, p, r), 0ms);
  }
  EXPECT_EQ(full_jitter(1, p, 0), 0ms);
  std::set<long long> seen;
  for (std::uint64_t r = 0; r < 1000; ++r)
    seen.insert(full_jitter(4, p, r * 2654435761ULL).count());
  EXPECT_GT(seen.size(), 150u) << "spread over the window, not a few values";
}

TEST(FullJitter, TheFloorIsAlwaysWaited) {
  const JitterPolicy p{.base = 50ms, .cap = 200ms, .floor = 25ms};
  for (std::uint64_t r : {0ULL, 99ULL, ~0ULL}) {
    EXPECT_GE(full_jitter(1, p, r), 25ms);
    EXPECT_LE(full_jitter(1, p, r), 75ms);
    EXPECT_LE(full_jitter(9, p, r), 225ms);
  }
}

}  // namespace
}  // namespace squadron::resilience
