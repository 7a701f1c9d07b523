#include "squadron/http/response_parser.hpp"

#include <gtest/gtest.h>

namespace squadron::http {
namespace {

using R = ResponseParser::Result;

// Feeds `text` in pieces of `step` bytes; returns the last result and the bytes left unused.
std::pair<R, std::size_t> feed_all(ResponseParser& p, std::string_view text, std::size_t step) {
  R r = R::kNeedMore;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t used = 0;
    r = p.feed(text.substr(pos, std::min(step, text.size() - pos)), used);
    pos += used;
    if (r != R::kNeedMore) break;
  }
  return {r, text.size() - pos};
}

TEST(ResponseParser, ContentLengthInAnySlicing) {
  const std::string text =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nHello World!";
  for (std::size_t step : {1u, 2u, 7u, 100u}) {
    ResponseParser p;
    auto [r, left] = feed_all(p, text, step);
    ASSERT_EQ(r, R::kDone) << step;
    EXPECT_EQ(left, 0u);
    EXPECT_EQ(p.status(), 200);
    EXPECT_EQ(p.body(), "Hello World!");
    EXPECT_TRUE(p.keep_alive());
    ASSERT_EQ(p.headers().size(), 2u);
    EXPECT_EQ(p.headers()[0].first, "Content-Type");
    EXPECT_EQ(p.headers()[0].second, "text/plain");
  }
}

TEST(ResponseParser, FieldValuesOfEveryLengthAreTrimmedAndChecked) {
  // Values scanned eight bytes at a time and byte by byte: each length up to 20, with the
  // spaces and tabs around them trimmed, obs-text kept, and a control byte anywhere refused.
  for (std::size_t n = 0; n <= 20; ++n) {
    std::string value;
    for (std::size_t i = 0; i < n; ++i)
      value.push_back(i % 5 == 2 ? ' ' : i % 7 == 3 ? '\xe9' : 'a');
    while (!value.empty() && value.back() == ' ') value.pop_back();
    const std::string text =
        "HTTP/1.1 200 OK\r\nX-Value: \t " + value + " \t\r\nContent-Length: 0\r\n\r\n";
    ResponseParser p;
    auto [r, left] = feed_all(p, text, 1000);
    ASSERT_EQ(r, R::kDone) << n;
    ASSERT_EQ(p.headers().size(), 2u);
    EXPECT_EQ(p.headers()[0].second, value) << n;
    for (const char bad : {'\x01', '\x7f', '\r', '\n', '\0'}) {
      for (std::size_t at = 0; at < value.size(); ++at) {
        std::string spoiled = value;
        spoiled[at] = bad;
        ResponseParser q;
        const std::string t = "HTTP/1.1 200 OK\r\nX-Value: " + spoiled + "x\r\n\r\n";
        auto [rr, l] = feed_all(q, t, 1000);
        EXPECT_EQ(rr, R::kError) << n << " " << at << " " << int(bad);
      }
    }
  }
  // A tab inside a value passes; a name with a space or without a colon does not.
  ResponseParser tab;
  ASSERT_EQ(feed_all(tab, "HTTP/1.1 204 No Content\r\nX-A: a\tb\r\n\r\n", 1000).first, R::kDone);
  EXPECT_EQ(tab.headers()[0].second, "a\tb");
  for (const char* bad : {"X A: b\r\n", ": b\r\n", "X-A b\r\n", " X-A: b\r\n"}) {
    ResponseParser q;
    EXPECT_EQ(feed_all(q, std::string("HTTP/1.1 204 No Content\r\n") + bad + "\r\n", 1000).first,
              R::kError)
        << bad;
  }
}

TEST(ResponseParser, ResetParsesTheNextResponse) {
  ResponseParser p;
  feed_all(p, "HTTP/1.1 500 Oops\r\nContent-Length: 1\r\n\r\nx", 100);
  p.reset(false);
  auto [r, left] = feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 100);
  ASSERT_EQ(r, R::kDone);
  EXPECT_EQ(p.status(), 200);
  EXPECT_EQ(p.body(), "ok");
  EXPECT_EQ(p.headers().size(), 1u);
}

TEST(ResponseParser, StopsAtTheEndOfTheResponse) {
  ResponseParser p;
  auto [r, left] = feed_all(p, "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n", 1000);
  EXPECT_EQ(r, R::kDone);
  EXPECT_EQ(left, 17u);
}

TEST(ResponseParser, ChunkedIsDechunkedWithExtensionsAndTrailers) {
  const std::string text =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nHello\r\n7\r\n World!\r\n0\r\nX-Trailer: t\r\n\r\n";
  for (std::size_t step : {1u, 3u, 1000u}) {
    ResponseParser p;
    auto [r, left] = feed_all(p, text, step);
    ASSERT_EQ(r, R::kDone) << step;
    EXPECT_EQ(p.body(), "Hello World!");
    EXPECT_EQ(left, 0u);
  }
}

TEST(ResponseParser, InterimAnswersAreSkipped) {
  ResponseParser p;
  auto [r, left] = feed_all(
      p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 5);
  ASSERT_EQ(r, R::kDone);
  EXPECT_EQ(p.status(), 201);
  EXPECT_EQ(p.body(), "ok");
}

TEST(ResponseParser, CloseDelimitedEndsAtEof) {
  ResponseParser p;
  auto [r, left] = feed_all(p, "HTTP/1.0 200 OK\r\n\r\nsome body", 4);
  EXPECT_EQ(r, R::kNeedMore);
  EXPECT_EQ(p.finish_eof(), R::kDone);
  EXPECT_EQ(p.body(), "some body");
  EXPECT_FALSE(p.keep_alive());
}

TEST(ResponseParser, HeadAnswersHaveNoBody) {
  ResponseParser p(/*head_request=*/true);
  auto [r, left] = feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", 100);
  EXPECT_EQ(r, R::kDone);
  EXPECT_TRUE(p.body().empty());
}

TEST(ResponseParser, KeepAliveFollowsVersionAndConnection) {
  ResponseParser a;
  feed_all(a, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 100);
  EXPECT_FALSE(a.keep_alive());
  ResponseParser b;
  feed_all(b, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 100);
  EXPECT_TRUE(b.keep_alive());
}

TEST(ResponseParser, AmbiguousOrMalformedAnswersAreErrors) {
  for (const char* bad : {
           "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
           "HTTP/2 200 OK\r\n\r\n",
           "HTTP/1.1 2000 OK\r\n\r\n",
           "HTTP/1.1 200 OK\r\n folded\r\n\r\n",
           "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
           "HTTP/1.1 101 Switching Protocols\r\n\r\n",
       }) {
    ResponseParser p;
    auto [r, left] = feed_all(p, bad, 1000);
    EXPECT_EQ(r, R::kError) << bad;
    EXPECT_FALSE(p.error().empty());
  }
  ResponseParser cut;
  feed_all(cut, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 100);
  EXPECT_EQ(cut.finish_eof(), R::kError);
}

TEST(ResponseParser, A101EndsAtItsHeadWhenTheRequestAskedForAnUpgrade) {
  const std::string answer =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
      "\x81\x02hi";  // the new protocol's first bytes follow at once
  ResponseParser p;
  p.allow_upgrade();
  std::size_t used = 0;
  EXPECT_EQ(p.feed(answer, used), R::kDone);
  EXPECT_TRUE(p.upgraded());
  EXPECT_EQ(p.status(), 101);
  EXPECT_FALSE(p.keep_alive());
  EXPECT_EQ(answer.substr(used), "\x81\x02hi") << "what follows the head is not the parser's";
  p.reset(false);  // the next answer on a connection asks again
  EXPECT_EQ(p.feed(answer, used), R::kError);
}

TEST(ResponseParser, AHeadTooLargeIsAnError) {
  ResponseParser p(false, 64);
  auto [r, left] = feed_all(p, "HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a') + "\r\n\r\n", 10);
  EXPECT_EQ(r, R::kError);
}

}  // namespace
}  // namespace squadron::http
