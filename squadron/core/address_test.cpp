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

TEST(HostPart, DropsThePortAndTheBrackets) {
  EXPECT_EQ(host_part("127.0.0.1:9900"), "127.0.0.1");
  EXPECT_EQ(host_part("localhost"), "localhost");
  EXPECT_EQ(host_part("[::1]:9900"), "::1");
  EXPECT_EQ(host_part("[::1]"), "::1");
  EXPECT_EQ(host_part("::1"), "::1") << "a bare IPv6 address";
  EXPECT_EQ(host_part("evil.example:80"), "evil.example");
  EXPECT_EQ(host_part(""), "");
}

TEST(IsLoopback, OnlyThisMachine) {
  for (const char* h : {"127.0.0.1", "127.9.9.9", "::1", "localhost"})
    EXPECT_TRUE(is_loopback(h)) << h;
  for (const char* h : {"0.0.0.0", "10.0.0.1", "::", "128.0.0.1", "localhost.example", ""})
    EXPECT_FALSE(is_loopback(h)) << h;
}

}  // namespace
}  // namespace squadron::core
