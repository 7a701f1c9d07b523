#include "squadron/core/quantity.hpp"

#include <gtest/gtest.h>

namespace squadron::core {
namespace {

TEST(ParseBytes, ReadsKubernetesSuffixes) {
  EXPECT_EQ(parse_bytes("256Mi"), 256ULL << 20);
  EXPECT_EQ(parse_bytes("1Gi"), 1ULL << 30);
  EXPECT_EQ(parse_bytes("64Ki"), 64ULL << 10);
  EXPECT_EQ(parse_bytes("1.5Gi"), 3ULL << 29);
  EXPECT_EQ(parse_bytes("500M"), 500'000'000ULL);
  EXPECT_EQ(parse_bytes("2k"), 2'000ULL);
  EXPECT_EQ(parse_bytes("1048576"), 1048576ULL);
}

TEST(ParseBytes, RefusesWhatKubernetesWouldNot) {
  for (const char* bad :
       {"", "Mi", "-1Mi", "1.Mi", "1mi", "1MB", "1 Mi", "1Pi", "0x10", "99999999999Ti", "1.2.3"})
    EXPECT_FALSE(parse_bytes(bad).has_value()) << bad;
}

TEST(ParseMillicores, ReadsCoresAndMillicores) {
  EXPECT_EQ(parse_millicores("0.5"), 500U);
  EXPECT_EQ(parse_millicores("500m"), 500U);
  EXPECT_EQ(parse_millicores("2"), 2000U);
  EXPECT_EQ(parse_millicores("0.001"), 1U);
  EXPECT_EQ(parse_millicores("1.25"), 1250U);
}

TEST(ParseMillicores, RefusesZeroAndFinerThanAMillicore) {
  for (const char* bad : {"", "0", "0m", "0.0001", "0.5m", "-1", "1c", "m", "1e3"})
    EXPECT_FALSE(parse_millicores(bad).has_value()) << bad;
}

TEST(FormatBytes, ShortAndReadable) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(64ULL << 20), "64 MiB");
  EXPECT_EQ(format_bytes(3ULL << 29), "1.5 GiB");
  EXPECT_EQ(format_bytes(300ULL << 20), "300 MiB");
}

TEST(FormatCores, NoTrailingZeros) {
  EXPECT_EQ(format_cores(500), "0.5");
  EXPECT_EQ(format_cores(2000), "2");
  EXPECT_EQ(format_cores(1250), "1.25");
}

}  // namespace
}  // namespace squadron::core
