// retry budget.hpp on injected time and chosen random numbers: no clock, no sleep.
#include "squadron/resilience/retry_budget.hpp"

#include <chrono>

#include <gtest/gtest.h>

namespace squadron::resilience {
namespace {

using namespace std::chrono_literals;

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

}  // namespace
}  // namespace squadron::resilience
