// concurrency limit.hpp on injected time and chosen random numbers: no clock, no sleep.
#include "squadron/resilience/concurrency_limit.hpp"

#include <chrono>

#include <gtest/gtest.h>

namespace squadron::resilience {
namespace {

using namespace std::chrono_literals;

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
