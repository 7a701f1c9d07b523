#include "squadron/control/env_file.hpp"

#include <gtest/gtest.h>

namespace squadron::control {
namespace {

TEST(EnvFile, ComposesFormat) {
  const auto f = parse_env_file(
      "# settings\n\nPOSTGRES_USER=vote\nexport REDIS_HOST = redis \nQUOTED=\"a b\\n#c\"\n"
      "SINGLE='$not ${expanded}'\nCOMMENT=value # a comment\nHASH=a#b\nEMPTY=\n");
  ASSERT_TRUE(f.errors.empty()) << f.errors[0].message;
  EXPECT_EQ(f.vars.at("POSTGRES_USER"), "vote");
  EXPECT_EQ(f.vars.at("REDIS_HOST"), "redis");
  EXPECT_EQ(f.vars.at("QUOTED"), "a b\n#c");
  EXPECT_EQ(f.vars.at("SINGLE"), "$not ${expanded}");
  EXPECT_EQ(f.vars.at("COMMENT"), "value");
  EXPECT_EQ(f.vars.at("HASH"), "a#b");
  EXPECT_EQ(f.vars.at("EMPTY"), "");
}

TEST(EnvFile, BadLinesSayWhichAndWhy) {
  const auto f = parse_env_file("OK=1\njust words\n9X=1\nQ=\"open\nR='x' y\n");
  ASSERT_EQ(f.errors.size(), 4U);
  EXPECT_EQ(f.errors[0].line, 2);
  EXPECT_EQ(f.errors[0].message, "expected NAME=value, got \"just words\"");
  EXPECT_EQ(f.errors[1].line, 3);
  EXPECT_EQ(f.errors[2].message, "the value's quote is not closed on this line");
  EXPECT_EQ(f.errors[3].message, "text after the closing quote");
  EXPECT_EQ(f.vars.at("OK"), "1");
}

}  // namespace
}  // namespace squadron::control
