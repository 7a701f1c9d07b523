#include "squadron/http/parser.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "squadron/http/request.hpp"

namespace squadron::http {
namespace {

struct Outcome {
  ParseStatus status;
  std::size_t consumed;  // total bytes consumed up to the final status
  int error_status = 0;
};

// Feeds `raw` whole (continuing past kHeadersDone) and returns where parsing stopped.
Outcome parse(std::string_view raw, Request& req, ParserLimits limits = {}) {
  RequestParser p(limits);
  std::size_t total = 0;
  while (true) {
    auto r = p.feed(raw.substr(total), req);
    total += r.consumed;
    if (r.status == ParseStatus::kHeadersDone) continue;
    return {r.status, total, p.error().status};
  }
}

Outcome parse(std::string_view raw, ParserLimits limits = {}) {
  Request req;
  return parse(raw, req, limits);
}

int rejection(std::string_view raw, ParserLimits limits = {}) {
  auto o = parse(raw, limits);
  EXPECT_EQ(o.status, ParseStatus::kError) << raw;
  return o.error_status;
}

TEST(RequestParser, ParsesAGetWithHeadersAndQuery) {
  Request req;
  auto o = parse("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\nX-Thing:  v  \r\n\r\n", req);
  ASSERT_EQ(o.status, ParseStatus::kComplete);
  EXPECT_EQ(req.method(), Method::kGet);
  EXPECT_EQ(req.method_name(), "GET");
  EXPECT_EQ(req.target(), "/a/b?x=1&y=2");
  EXPECT_EQ(req.path(), "/a/b");
  EXPECT_EQ(req.query(), "x=1&y=2");
  EXPECT_EQ(req.version_minor(), 1);
  EXPECT_TRUE(req.keep_alive());
  ASSERT_EQ(req.headers().size(), 2u);
  EXPECT_EQ(req.header("x-thing"), "v");
  EXPECT_EQ(req.header("HOST"), "h");
  EXPECT_FALSE(req.header("missing"));
}

TEST(RequestParser, ByteAtATimeGivesTheSameRequest) {
  const std::string raw =
      "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=\"q\\\"x\"\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
  Request req;
  RequestParser p;
  ParseStatus last = ParseStatus::kNeedMore;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    auto r = p.feed(std::string_view(raw).substr(i, 1), req);
    ASSERT_NE(r.status, ParseStatus::kError) << "at byte " << i << ": " << p.error().detail;
    last = r.status;
  }
  EXPECT_EQ(last, ParseStatus::kComplete);
  EXPECT_EQ(req.body(), "hello world");
  EXPECT_EQ(req.path(), "/up");
  EXPECT_EQ(req.header("host"), "h");
}

TEST(RequestParser, FieldValuesOfEveryLengthInEverySlicingAreTrimmedAndChecked) {
  // Values scanned eight bytes at a time and byte by byte, whole or cut anywhere: each length up
  // to 20 with spaces inside, obs-text kept, the spaces and tabs around trimmed; a control byte
  // anywhere refused.
  for (std::size_t n = 0; n <= 20; ++n) {
    std::string value;
    for (std::size_t i = 0; i < n; ++i)
      value.push_back(i % 5 == 2 ? ' ' : i % 7 == 3 ? '\xe9' : 'a');
    while (!value.empty() && value.back() == ' ') value.pop_back();
    const std::string raw = "GET / HTTP/1.1\r\nHost: h\r\nX-Value: \t " + value + " \t \r\n\r\n";
    for (std::size_t cut = 0; cut < raw.size(); ++cut) {
      Request req;
      RequestParser p;
      auto r = p.feed(std::string_view(raw).substr(0, cut), req);
      ASSERT_NE(r.status, ParseStatus::kError) << n << " cut " << cut;
      r = p.feed(std::string_view(raw).substr(r.consumed), req);
      ASSERT_EQ(r.status, ParseStatus::kComplete) << n << " cut " << cut;
      EXPECT_EQ(req.header("x-value"), value) << n << " cut " << cut;
    }
    for (const char bad : {'\x01', '\x7f', '\n', '\0'}) {
      for (std::size_t at = 0; at < value.size(); ++at) {
        std::string spoiled = value;
        spoiled[at] = bad;
        EXPECT_EQ(rejection("GET / HTTP/1.1\r\nHost: h\r\nX-Value: " + spoiled + "x\r\n\r\n"), 400)
            << n << " " << at << " " << int(bad);
      }
    }
  }
}

TEST(RequestParser, StopsAtTheEndOfEachPipelinedRequest) {
  const std::string first = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  auto o = parse(first + second);
  EXPECT_EQ(o.status, ParseStatus::kComplete);
  EXPECT_EQ(o.consumed, first.size());
}

TEST(RequestParser, ResetKeepsParsingTheNextRequest) {
  const std::string raw = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
  Request req;
  RequestParser p;
  auto r = p.feed(raw, req);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(req.path(), "/1");
  p.reset(req);
  r = p.feed(std::string_view(raw).substr(r.consumed), req);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(req.path(), "/2");
}

TEST(RequestParser, ReadsAContentLengthBody) {
  Request req;
  auto o = parse("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", req);
  EXPECT_EQ(o.status, ParseStatus::kComplete);
  EXPECT_EQ(req.body(), "hello");
}

TEST(RequestParser, ReportsHeadersDoneBeforeTheBodySoTheServerCanSend100Continue) {
  Request req;
  RequestParser p;
  auto r = p.feed("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
                  req);
  EXPECT_EQ(r.status, ParseStatus::kHeadersDone);
  EXPECT_TRUE(req.expects_continue());
  EXPECT_EQ(p.feed("hello", req).status, ParseStatus::kComplete);
}

TEST(RequestParser, IgnoresEmptyLinesBeforeTheRequestLine) {
  EXPECT_EQ(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").status, ParseStatus::kComplete);
}

TEST(RequestParser, AcceptsAbsoluteAndAsteriskForms) {
  Request req;
  ASSERT_EQ(parse("GET http://example.com:80/p/q?z=1#frag HTTP/1.1\r\nHost: h\r\n\r\n", req).status,
            ParseStatus::kComplete);
  EXPECT_EQ(req.path(), "/p/q");
  EXPECT_EQ(req.query(), "z=1");
  Request root;
  ASSERT_EQ(parse("GET http://example.com?a=b HTTP/1.1\r\nHost: h\r\n\r\n", root).status,
            ParseStatus::kComplete);
  EXPECT_EQ(root.path(), "/");
  EXPECT_EQ(root.query(), "a=b");
  Request star;
  ASSERT_EQ(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", star).status, ParseStatus::kComplete);
  EXPECT_EQ(star.path(), "*");
}

TEST(RequestParser, StripsTheFragment) {
  Request req;
  ASSERT_EQ(parse("GET /f?x=1#y HTTP/1.1\r\nHost: h\r\n\r\n", req).status, ParseStatus::kComplete);
  EXPECT_EQ(req.path(), "/f");
  EXPECT_EQ(req.query(), "x=1");
}

TEST(RequestParser, Http10ClosesUnlessKeepAliveIsAsked) {
  Request a;
  parse("GET / HTTP/1.0\r\n\r\n", a);
  EXPECT_FALSE(a.keep_alive());
  Request b;
  parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", b);
  EXPECT_TRUE(b.keep_alive());
  Request c;
  parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n", c);
  EXPECT_FALSE(c.keep_alive());
}

TEST(RequestParser, AcceptsTheSameContentLengthTwice) {
  EXPECT_EQ(
      parse("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx").status,
      ParseStatus::kComplete);
}

TEST(RequestParser, AcceptsObsTextInValues) {
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\nX: D\xc3\xbcsseldorf\r\n\r\n").status,
            ParseStatus::kComplete);
}

TEST(RequestParser, RejectsAmbiguousFraming) {
  EXPECT_EQ(
      rejection(
          "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
      400);
  EXPECT_EQ(
      rejection(
          "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
      400);
  EXPECT_EQ(
      rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
      400);
  EXPECT_EQ(rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n"), 400);
  EXPECT_EQ(rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"), 400);
  EXPECT_EQ(rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n"),
            400);
  EXPECT_EQ(rejection("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            400);
  EXPECT_EQ(rejection("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n"), 400);
  EXPECT_EQ(rejection("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
}

TEST(RequestParser, AnswersNotImplementedForUnknownCodingsAndMethods) {
  EXPECT_EQ(rejection("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501);
  EXPECT_EQ(rejection("MKCOLA / HTTP/1.1\r\nHost: h\r\n\r\n"), 501);
  EXPECT_EQ(rejection("CONNECT example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n"), 501);
}

TEST(RequestParser, RejectsBareLineFeedsAndStrayCarriageReturns) {
  EXPECT_EQ(rejection("GET / HTTP/1.1\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTP/1.1\r\nHost: h\r\n\rX"), 400);
}

TEST(RequestParser, RejectsMalformedHeaderLines) {
  EXPECT_EQ(rejection("GET / HTTP/1.1\r\nHost: h\r\nX : y\r\n\r\n"), 400);       // space before ':'
  EXPECT_EQ(rejection("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"), 400);  // obs-fold
  EXPECT_EQ(rejection("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTP/1.1\r\nHost: h\r\nFo@: x\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n"), 400);
}

TEST(RequestParser, RejectsBadRequestLines) {
  EXPECT_EQ(rejection("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET /\xce\xb4 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET /\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTX/1.1\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTP/2.0\r\n"), 505);
  EXPECT_EQ(rejection("GET / HTTP/1.1 \r\n"), 400);
  EXPECT_EQ(rejection("GET foo HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

TEST(RequestParser, RejectsAnInvalidVersionBeforeTheLineEnds) {
  // The client has not finished the line: the answer must not wait for it.
  EXPECT_EQ(rejection("GET / HTTP/5.6"), 505);
}

TEST(RequestParser, RequiresExactlyOneHostInHttp11) {
  EXPECT_EQ(rejection("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  EXPECT_EQ(parse("GET / HTTP/1.0\r\n\r\n").status, ParseStatus::kComplete);
}

TEST(RequestParser, RejectsUnsupportedExpectations) {
  EXPECT_EQ(rejection("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n"), 417);
}

TEST(RequestParser, AnswersUriTooLongPastTheRequestLineLimit) {
  const std::string target(9000, 'a');
  EXPECT_EQ(rejection("GET /" + target + " HTTP/1.1\r\nHost: h\r\n\r\n"), 414);
  // Also before the line is complete.
  EXPECT_EQ(rejection("GET /" + target), 414);
}

TEST(RequestParser, AnswersHeaderFieldsTooLargeForTooManyOrTooBigHeaders) {
  std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 100; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(rejection(many + "\r\n"), 431);
  const std::string big =
      "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(70 * 1024, 'v') + "\r\n\r\n";
  EXPECT_EQ(rejection(big), 431);
  EXPECT_EQ(rejection(big.substr(0, 66 * 1024)), 431);  // incomplete yet already too big
}

TEST(RequestParser, AnswersContentTooLargeFromTheHeadersBeforeAnyBodyByte) {
  ParserLimits limits;
  limits.max_body = 10;
  const std::string head = "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1073741824\r\n\r\n";
  auto o = parse(head + "xxxx", limits);
  EXPECT_EQ(o.status, ParseStatus::kError);
  EXPECT_EQ(o.error_status, 413);
  EXPECT_EQ(o.consumed, head.size());
}

TEST(RequestParser, AnswersContentTooLargeForAChunkedBodyThatGrowsPastTheLimit) {
  ParserLimits limits;
  limits.max_body = 8;
  EXPECT_EQ(
      rejection(
          "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\n",
          limits),
      413);
}

TEST(RequestParser, RejectsMalformedChunks) {
  const std::string head = "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(rejection(head + "zz\r\n"), 400);                  // not hex
  EXPECT_EQ(rejection(head + "a \r\n"), 400);                  // space after size
  EXPECT_EQ(rejection(head + "2;\r\naa\r\n0\r\n\r\n"), 400);   // empty extension
  EXPECT_EQ(rejection(head + "5\r\nhelloX"), 400);             // no CRLF after data
  EXPECT_EQ(rejection(head + "3\r\nfoo\r\n\r\n"), 400);        // missing last-chunk
  EXPECT_EQ(rejection(head + "5;a=\"b\r\n"), 400);             // unbalanced quote
  EXPECT_EQ(rejection(head + "ffffffffffffffffff\r\n"), 413);  // larger than any body we take
}

TEST(RequestParser, WaitsForMoreWhenTheMessageIsIncomplete) {
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\n").status, ParseStatus::kNeedMore);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\nabc").status,
            ParseStatus::kNeedMore);
  EXPECT_EQ(
      parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel").status,
      ParseStatus::kNeedMore);
}

TEST(RequestParser, StartedTellsWhetherARequestIsUnderway) {
  Request req;
  RequestParser p;
  EXPECT_FALSE(p.started());
  p.feed("GE", req);
  EXPECT_TRUE(p.started());
}

TEST(RequestParser, KnowsTheRegisteredMethods) {
  for (std::string m :
       {"PURGE", "M-SEARCH", "REPORT", "PROPFIND", "QUERY", "PATCH", "DELETE", "OPTIONS"}) {
    Request req;
    ASSERT_EQ(parse(m + " / HTTP/1.1\r\nHost: h\r\n\r\n", req).status, ParseStatus::kComplete) << m;
    EXPECT_EQ(req.method_name(), m);
  }
}

// feed_split(): a head given in its parts (HTTP/2) as feed() would have read it written out.
Outcome split(std::string_view method, std::string_view target, std::vector<Header> fields,
              Request& req, ParserLimits limits = {}) {
  RequestParser p(limits);
  const auto r = p.feed_split(method, target, fields, req);
  return {r.status, r.consumed, p.error().status};
}

int split_rejection(std::string_view method, std::string_view target, std::vector<Header> fields,
                    ParserLimits limits = {}) {
  Request req;
  const auto o = split(method, target, std::move(fields), req, limits);
  EXPECT_EQ(o.status, ParseStatus::kError) << method << " " << target;
  return o.error_status;
}

TEST(RequestParserSplit, GivesTheRequestFeedGivesForTheSameHeadWrittenOut) {
  const std::string head =
      "PUT /a/b?x=1 HTTP/1.1\r\nhost: h\r\ncookie: a=1; b=2\r\nx-thing: v\r\n"
      "content-length: 3\r\n\r\n";
  Request whole;
  ASSERT_EQ(parse(head + "abc", whole).status, ParseStatus::kComplete);
  Request req;
  RequestParser p;
  const auto r = p.feed_split(
      "PUT", "/a/b?x=1",
      std::vector<Header>{
          {"host", "h"}, {"cookie", "a=1; b=2"}, {"x-thing", "v"}, {"content-length", "3"}},
      req);
  ASSERT_EQ(r.status, ParseStatus::kHeadersDone);  // the body comes in DATA frames
  EXPECT_EQ(r.consumed, head.size());
  EXPECT_EQ(p.content_length(), 3u);
  EXPECT_EQ(req.method(), whole.method());
  EXPECT_EQ(req.method_name(), "PUT");
  EXPECT_EQ(req.target(), whole.target());
  EXPECT_EQ(req.path(), "/a/b");
  EXPECT_EQ(req.query(), "x=1");
  EXPECT_EQ(req.version_minor(), 1);
  EXPECT_TRUE(req.keep_alive());
  ASSERT_EQ(req.headers().size(), whole.headers().size());
  for (std::size_t i = 0; i < req.headers().size(); ++i) {
    EXPECT_EQ(req.headers()[i].name, whole.headers()[i].name);
    EXPECT_EQ(req.headers()[i].value, whole.headers()[i].value);
  }
  // Without a body: complete at once.
  Request get;
  EXPECT_EQ(split("GET", "/", {{"host", "h"}}, get).status, ParseStatus::kComplete);
  EXPECT_EQ(get.header("host"), "h");
}

TEST(RequestParserSplit, AValueKeepsNoWhitespaceAroundIt) {
  Request req;
  ASSERT_EQ(split("GET", "/", {{"host", "h"}, {"x-a", " \tv w\t "}, {"x-b", "  "}}, req).status,
            ParseStatus::kComplete);
  EXPECT_EQ(req.header("x-a"), "v w");
  EXPECT_EQ(req.header("x-b"), "");
}

TEST(RequestParserSplit, RejectsWhatFeedRejectsWithTheSameAnswers) {
  const std::vector<Header> host{{"host", "h"}};
  EXPECT_EQ(split_rejection("G(T", "/", host), 400);
  EXPECT_EQ(split_rejection("", "/", host), 400);
  EXPECT_EQ(split_rejection("BREW", "/", host), 501);
  EXPECT_EQ(split_rejection("GET", "", host), 400);
  EXPECT_EQ(split_rejection("GET", "/a b", host), 400);
  EXPECT_EQ(split_rejection("GET", "/\xc3\xa9", host), 400);  // raw UTF-8 in the target
  EXPECT_EQ(split_rejection("GET", "a", host), 400);
  EXPECT_EQ(split_rejection("GET", "/", {}), 400);  // no Host
  EXPECT_EQ(split_rejection("GET", "/", {{"host", "h"}, {"host", "i"}}), 400);
  EXPECT_EQ(split_rejection("GET", "/", {{"host", "h"}, {"x-a", "a\x01b"}}), 400);
  EXPECT_EQ(split_rejection("GET", "/", {{"host", "h"}, {"x-a", "a\x7f"}}), 400);
  EXPECT_EQ(split_rejection("GET", "/", {{"host", "h"}, {"x a", "v"}}), 400);
  EXPECT_EQ(split_rejection("GET", "/", {{"host", "h"}, {"", "v"}}), 400);
  EXPECT_EQ(split_rejection("GET", "/", {{"host", "h"}, {"expect", "201-later"}}), 417);
  EXPECT_EQ(split_rejection("POST", "/",
                            {{"host", "h"}, {"content-length", "1"}, {"content-length", "2"}}),
            400);
  EXPECT_EQ(split_rejection("POST", "/", {{"host", "h"}, {"content-length", "x"}}), 400);
  EXPECT_EQ(
      split_rejection("POST", "/", {{"host", "h"}, {"content-length", "99"}}, {.max_body = 10}),
      413);
}

TEST(RequestParserSplit, HoldsToTheSameLimits) {
  ParserLimits limits;
  limits.max_request_line = 32;
  EXPECT_EQ(split_rejection("GET", "/" + std::string(40, 'a'), {{"host", "h"}}, limits), 414);
  limits = {};
  limits.max_headers = 3;
  EXPECT_EQ(
      split_rejection("GET", "/", {{"host", "h"}, {"a", "1"}, {"b", "2"}, {"c", "3"}}, limits),
      431);
  limits = {};
  limits.max_header_bytes = 64;
  const std::string big(80, 'v');
  EXPECT_EQ(split_rejection("GET", "/", {{"host", "h"}, {"x-big", big}}, limits), 431);
  Request req;
  limits.max_header_bytes = 128;
  EXPECT_EQ(split("GET", "/", {{"host", "h"}, {"x-big", big}}, req, limits).status,
            ParseStatus::kComplete);
}

// The byte rule iequals() holds to: equal, or the same ASCII letter in either case.
bool same_byte(unsigned char x, unsigned char y) {
  const auto lower = [](unsigned char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c + 32) : c;
  };
  return lower(x) == lower(y);
}

TEST(Iequals, EveryPairOfBytesAtEveryPlaceOfShortAndLongNames) {
  // Each pair of bytes, put at each place of strings of 1 to 20 bytes that are otherwise equal
  // (lower case one side, capitals the other): the answer is the byte rule's.
  const std::string base = "content-type-and-mor";  // 20 bytes
  std::string upper = base;
  for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  for (std::size_t n : {1u, 3u, 7u, 8u, 9u, 12u, 15u, 16u, 17u, 20u}) {
    for (std::size_t at : {std::size_t{0}, n / 2, n - 1}) {
      for (unsigned x = 0; x < 256; ++x) {
        for (unsigned y = 0; y < 256; ++y) {
          std::string a = base.substr(0, n), b = upper.substr(0, n);
          a[at] = static_cast<char>(x);
          b[at] = static_cast<char>(y);
          ASSERT_EQ(iequals(a, b),
                    same_byte(static_cast<unsigned char>(x), static_cast<unsigned char>(y)))
              << n << " " << at << " " << x << " " << y;
        }
      }
    }
  }
  EXPECT_FALSE(iequals("content-type", "content-typ"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_TRUE(iequals("X-Squadron-Timeout-Ms", "x-squadron-timeout-ms"));
  EXPECT_FALSE(iequals("X-Squadron-Timeout-Ms", "x-squadron-timeout-mt"));
}

}  // namespace
}  // namespace squadron::http
