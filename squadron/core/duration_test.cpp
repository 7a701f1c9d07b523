#include "squadron/core/duration.hpp"

#include <gtest/gtest.h>

namespace squadron::core {
namespace {

using std::chrono::milliseconds;

TEST(ParseDuration, ReadsEveryUnit) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("10s"), milliseconds(10'000));
  EXPECT_EQ(parse_duration("1.5s"), milliseconds(1'500));
  EXPECT_EQ(parse_duration("2m"), milliseconds(120'000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3'600'000));
}

TEST(ParseDuration, BareNumberIsSeconds) { EXPECT_EQ(parse_duration("3"), milliseconds(3'000)); }

TEST(FormatDuration, ShortestExactFormThatParsesBack) {
  EXPECT_EQ(format_duration(milliseconds(30'000)), "30s");
  EXPECT_EQ(format_duration(milliseconds(120'000)), "2m");
  EXPECT_EQ(format_duration(milliseconds(7'200'000)), "2h");
  EXPECT_EQ(format_duration(milliseconds(1'500)), "1500ms");
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
  for (long long ms : {1LL, 999LL, 1'000LL, 61'000LL, 3'600'000LL, 90'061'001LL})
    EXPECT_EQ(parse_duration(format_duration(milliseconds(ms))), milliseconds(ms)) << ms;
}

TEST(ParseDuration, RejectsGarbage) {
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_FALSE(parse_duration("10 parsecs"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("1e300s"));
  EXPECT_FALSE(parse_duration("nan"));
  EXPECT_FALSE(parse_duration("infs"));
}

}  // namespace
}  // namespace squadron::core
