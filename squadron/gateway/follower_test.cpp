// The control APIs a gateway follows: one URL, or a cluster's servers separated by commas.
#include "squadron/gateway/follower.hpp"

#include <gtest/gtest.h>

namespace squadron::gateway {
namespace {

TEST(ControlUrls, OneOrSeveralServersEachAHttpUrl) {
  std::vector<WatchTarget> t;
  ASSERT_TRUE(parse_control_urls("http://127.0.0.1:9900", t));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].port, 9900);
  ASSERT_TRUE(parse_control_urls("http://10.213.0.11:9900,http://10.213.0.12:9901/", t));
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].host, "10.213.0.11");
  EXPECT_EQ(t[1].host, "10.213.0.12");
  EXPECT_EQ(t[1].port, 9901);
  ASSERT_TRUE(parse_control_urls("http://localhost:1", t));
  EXPECT_EQ(t[0].host, "127.0.0.1");
  for (const char* bad : {"", "127.0.0.1:9900", "http://a:1,", ",http://a:1", "http://a:0",
                          "http://a:1,https://b:2", "http://a"}) {
    EXPECT_FALSE(parse_control_urls(bad, t)) << bad;
  }
}

}  // namespace
}  // namespace squadron::gateway
