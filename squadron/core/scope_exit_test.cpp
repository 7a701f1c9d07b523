#include "squadron/core/scope_exit.hpp"

#include <stdexcept>

#include <gtest/gtest.h>

namespace squadron::core {
namespace {

TEST(ScopeExit, RunsOnceWhenTheScopeEndsHoweverItEnds) {
  int runs = 0;
  {
    ScopeExit guard([&] { ++runs; });
  }
  EXPECT_EQ(runs, 1);
  try {
    ScopeExit guard([&] { ++runs; });
    throw std::runtime_error("out");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(runs, 2) << "also when an exception leaves the scope";
}

TEST(ScopeExit, ACancelledGuardDoesNothing) {
  int runs = 0;
  {
    ScopeExit guard([&] { ++runs; });
    guard.cancel();
  }
  EXPECT_EQ(runs, 0);
}

}  // namespace
}  // namespace squadron::core
