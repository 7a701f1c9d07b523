#include "squadron/core/interpolate.hpp"

#include <map>

#include <gtest/gtest.h>

namespace squadron::core {
namespace {

const std::map<std::string, std::string, std::less<>> kVars = {
    {"HOME", "/root"}, {"EMPTY", ""}, {"DB", "postgres"}, {"PRICE", "5$"}};

std::optional<std::string> look(std::string_view n) {
  auto it = kVars.find(n);
  return it == kVars.end() ? std::nullopt : std::optional<std::string>(it->second);
}

std::string ok(std::string_view text, const InterpolateOptions& o = {}) {
  auto r = interpolate(text, look, o);
  if (auto* e = std::get_if<VariableError>(&r)) {
    ADD_FAILURE() << text << ": " << e->message;
    return "";
  }
  return std::get<std::string>(r);
}

VariableError error(std::string_view text) {
  auto r = interpolate(text, look);
  EXPECT_TRUE(std::holds_alternative<VariableError>(r)) << text;
  return std::holds_alternative<VariableError>(r) ? std::get<VariableError>(r) : VariableError{};
}

TEST(Interpolate, ComposeRules) {
  EXPECT_EQ(ok("${HOME}/x and $HOME"), "/root/x and /root");
  EXPECT_EQ(ok("${UNSET:-fallback}"), "fallback");
  EXPECT_EQ(ok("${EMPTY:-fallback}"), "fallback");
  EXPECT_EQ(ok("${EMPTY-fallback}"), "") << "- alone: only when unset";
  EXPECT_EQ(ok("${UNSET-fallback}"), "fallback");
  EXPECT_EQ(ok("${DB:+set}${UNSET:+set}"), "set");
  EXPECT_EQ(ok("${UNSET:-${DB}-x}"), "postgres-x") << "defaults may hold references";
  EXPECT_EQ(ok("cost $$5 and $$HOME"), "cost $5 and $HOME");
  EXPECT_EQ(ok("sh: $1 $! $(date) $@ $"), "sh: $1 $! $(date) $@ $") << "no name: no reference";
}

TEST(Interpolate, ErrorsSayWhereAndWhat) {
  auto e = error("x ${UNSET} y");
  EXPECT_EQ(e.offset, 2U);
  EXPECT_EQ(e.message, "variable UNSET is not set");
  EXPECT_EQ(error("$NOPE").message, "variable NOPE is not set");
  EXPECT_EQ(error("${EMPTY:?give the database a password}").message,
            "EMPTY: give the database a password");
  EXPECT_EQ(error("${UNSET?}").message, "variable UNSET is required");
  EXPECT_EQ(error("${DB").message, "unterminated ${");
  EXPECT_EQ(error("${9X}").message, "\"${9X}\" names no variable");
  EXPECT_EQ(error("${DB#x}").message, "\"${DB#x}\": unknown modifier");
}

TEST(Interpolate, KeptNamesWaitForTheLaterPassAndValuesAreEscapedForIt) {
  InterpolateOptions later;
  later.keep = [](std::string_view n) { return n == "PORT"; };
  later.for_later_pass = true;
  EXPECT_EQ(ok("--port ${PORT} ${PORT:-80} $PORT $$ $PRICE $1", later),
            "--port ${PORT} ${PORT:-80} $PORT $$ 5$$ $$1");
  // A literal $ from a default cannot make a reference with what follows it in the later pass.
  const auto first = ok("${UNSET:-$}HOME", later);
  EXPECT_EQ(first, "$$HOME");
  EXPECT_EQ(ok(first), "$HOME");
}

}  // namespace
}  // namespace squadron::core
