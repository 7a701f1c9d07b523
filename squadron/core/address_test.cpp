#include "squadron/core/address.hpp"

#include <gtest/gtest.h>

namespace squadron::core {
namespace {

TEST(AddressBlock, ParsesAddressesAndBlocksOfBothFamilies) {
  EXPECT_TRUE(AddressBlock::parse("10.0.0.0/8"));
  EXPECT_TRUE(AddressBlock::parse("192.168.1.7"));
  EXPECT_TRUE(AddressBlock::parse("::1"));
  EXPECT_TRUE(AddressBlock::parse("fd00::/8"));
  EXPECT_TRUE(AddressBlock::parse("0.0.0.0/0"));
  for (const char* bad : {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "host.example",
                          "10.0.0/8", "10.0.0.0/-1", "10.0.0.0/8/8"}) {
    EXPECT_FALSE(AddressBlock::parse(bad)) << bad;
  }
}

TEST(AddressBlock, ContainsWhatItsPrefixCovers) {
  const auto b = *AddressBlock::parse("10.9.0.0/16");
  EXPECT_TRUE(b.contains("10.9.0.1"));
  EXPECT_TRUE(b.contains("10.9.255.255"));
  EXPECT_FALSE(b.contains("10.10.0.1"));
  EXPECT_FALSE(b.contains("::1")) << "another family";
  const auto odd = *AddressBlock::parse("192.168.1.128/25");
  EXPECT_TRUE(odd.contains("192.168.1.200"));
  EXPECT_FALSE(odd.contains("192.168.1.127"));
  EXPECT_TRUE(AddressBlock::parse("0.0.0.0/0")->contains("8.8.8.8"));
  EXPECT_TRUE(AddressBlock::parse("::1")->contains("::1"));
  EXPECT_FALSE(AddressBlock::parse("::1")->contains("::2"));
  EXPECT_FALSE(b.contains("garbage"));
}

}  // namespace
}  // namespace squadron::core
