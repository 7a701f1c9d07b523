// The resilience parts on injected time and chosen random numbers: no clock, no sleep.
#include <chrono>
#include <set>

#include <gtest/gtest.h>

#include "squadron/resilience/backoff.hpp"
#include "squadron/resilience/concurrency_limit.hpp"
#include "squadron/resilience/retry_budget.hpp"
#include "squadron/resilience/token_bucket.hpp"

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

TEST(RetryBudget, RetriesInFlightStayWithinTheRatioAndAtLeastTheMinimum) {
  RetryBudget budget;  // 20 %, at least 3
  RetryBudget::Slot a, b, c, d;
  // With few requests in flight, the minimum of 3 holds.
  EXPECT_TRUE(budget.acquire(a, 1));
  EXPECT_TRUE(budget.acquire(b, 1));
  EXPECT_TRUE(budget.acquire(c, 1));
  EXPECT_FALSE(budget.acquire(d, 1)) << "a fourth retrying request is over budget";
  EXPECT_TRUE(budget.acquire(a, 1)) << "one already retrying keeps its slot";
  EXPECT_EQ(budget.in_flight(), 3);
  // 100 in flight: 20 may retry.
  EXPECT_TRUE(budget.acquire(d, 100));
  EXPECT_EQ(budget.in_flight(), 4);
  b.release();
  EXPECT_EQ(budget.in_flight(), 3);
  {
    RetryBudget::Slot scoped;
    EXPECT_TRUE(budget.acquire(scoped, 100));
    EXPECT_EQ(budget.in_flight(), 4);
  }
  EXPECT_EQ(budget.in_flight(), 3) << "a slot goes back when its request ends";
}

TEST(ConcurrencyLimit, EachThreadGetsItsShareAndTheLastAdmittedOneOpensTheBreaker) {
  using V = ConcurrencyLimit::Verdict;
  const ConcurrencyLimit limit(10, 2);  // 5 a thread
  EXPECT_EQ(limit.share(), 5);
  EXPECT_EQ(limit.admit(1), V::kAdmitted);
  EXPECT_EQ(limit.admit(4), V::kAdmitted);
  EXPECT_EQ(limit.admit(5), V::kReached);
  EXPECT_EQ(limit.admit(6), V::kRefused);
  EXPECT_EQ(ConcurrencyLimit(1, 4).share(), 1) << "every thread keeps one";
  EXPECT_EQ(ConcurrencyLimit(1, 4).admit(2), V::kRefused);
  EXPECT_EQ(ConcurrencyLimit(8, 0).share(), 8) << "no threads counts as one";
}

}  // namespace
}  // namespace squadron::resilience
