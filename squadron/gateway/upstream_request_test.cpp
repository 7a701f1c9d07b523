#include "squadron/gateway/upstream_request.hpp"

#include <gtest/gtest.h>

#include "squadron/http/parser.hpp"

namespace squadron::gateway {
namespace {

using namespace std::chrono_literals;

void parse(std::string_view raw, http::Request& req) {
  http::RequestParser parser{http::ParserLimits{}};
  auto r = parser.feed(raw, req);
  if (r.status == http::ParseStatus::kHeadersDone) r = parser.feed(raw.substr(r.consumed), req);
  ASSERT_EQ(r.status, http::ParseStatus::kComplete);
  req.set_remote_address("192.0.2.7");
}

struct Built {
  std::string head;
  bool replayable = false;
  http::ExchangeOptions options;
};

Built build(http::Request& req, bool strip, bool trusted) {
  Cluster s;
  s.name = "py";
  s.policy.connect_timeout = 250ms;
  const RouteMatch m{&s, "/py", strip, 0};
  core::SplitMix64 rng{7};
  ensure_request_id(req, rng);
  HeadBuffers buffers;
  UpstreamRequest up(buffers);
  up.build(req, m, trusted, 900ms, std::chrono::steady_clock::time_point{});
  return {up.head(), up.replayable, up.options};
}

TEST(UpstreamRequest, ARequestThatCameOverTlsSaysHttps) {
  http::Request req;
  parse("GET /py HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-Proto: http\r\n\r\n", req);
  req.set_secure(true);
  const Built b = build(req, false, false);
  EXPECT_NE(b.head.find("\r\nX-Forwarded-Proto: https\r\n"), std::string::npos) << b.head;
  EXPECT_EQ(b.head.find("X-Forwarded-Proto: http\r\n"), std::string::npos)
      << "the client's own is replaced: " << b.head;
}

TEST(UpstreamRequest, CarriesEndToEndFieldsAndSetsItsOwn) {
  http::Request req;
  parse(
      "GET /py/items?x=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Secret\r\n"
      "X-Secret: hop\r\nKeep-Alive: 5\r\nAccept: */*\r\nX-Forwarded-For: 6.6.6.6\r\n"
      "X-Forwarded-Proto: https\r\n\r\n",
      req);
  const auto b = build(req, true, false);
  EXPECT_EQ(b.head.rfind("GET /items?x=1 HTTP/1.1\r\n", 0), 0u) << b.head;
  EXPECT_NE(b.head.find("\r\nHost: shop.example\r\n"), std::string::npos);
  EXPECT_NE(b.head.find("\r\nAccept: */*\r\n"), std::string::npos);
  EXPECT_EQ(b.head.find("X-Secret"), std::string::npos) << "named in Connection: hop-by-hop";
  EXPECT_EQ(b.head.find("Keep-Alive"), std::string::npos);
  EXPECT_EQ(b.head.find("Connection"), std::string::npos);
  EXPECT_NE(b.head.find("\r\nX-Forwarded-For: 192.0.2.7\r\n"), std::string::npos)
      << "an untrusted client's XFF is replaced: " << b.head;
  EXPECT_NE(b.head.find("\r\nX-Forwarded-Proto: http\r\n"), std::string::npos);
  EXPECT_EQ(b.head.find("https"), std::string::npos);
  EXPECT_NE(b.head.find("\r\nX-Forwarded-Host: shop.example\r\n"), std::string::npos);
  EXPECT_NE(b.head.find("\r\nX-Request-Id: " + std::string(req.request_id()) + "\r\n"),
            std::string::npos);
  EXPECT_EQ(req.request_id().size(), 16u);
  EXPECT_NE(b.head.find("\r\nX-Squadron-Timeout-Ms: 900\r\n"), std::string::npos);
  EXPECT_EQ(b.head.find("Content-Length"), std::string::npos) << "a GET without a body";
  EXPECT_TRUE(b.head.ends_with("\r\n\r\n"));
  EXPECT_TRUE(b.replayable);
  EXPECT_EQ(b.options.deadline, std::chrono::steady_clock::time_point{} + 900ms);
  EXPECT_EQ(b.options.connect_timeout, 250ms);
}

TEST(UpstreamRequest, ATrustedProxysForwardedForIsKeptBeforeItsAddress) {
  http::Request req;
  parse("GET /py HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.1\r\nX-Request-Id: abc\r\n\r\n",
        req);
  const auto b = build(req, false, true);
  EXPECT_EQ(b.head.rfind("GET /py HTTP/1.1\r\n", 0), 0u) << "not stripped";
  EXPECT_NE(b.head.find("\r\nX-Forwarded-For: 203.0.113.1, 192.0.2.7\r\n"), std::string::npos)
      << b.head;
  EXPECT_NE(b.head.find("\r\nX-Request-Id: abc\r\n"), std::string::npos) << "the client's id";
}

TEST(UpstreamRequest, ABodyIsFramedByItsLengthAndAPostIsNotReplayed) {
  http::Request empty;
  parse("POST /py HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", empty);
  const auto e = build(empty, false, false);
  EXPECT_NE(e.head.find("\r\nContent-Length: 0\r\n\r\n"), std::string::npos) << e.head;
  EXPECT_FALSE(e.replayable);
  http::Request with_body;
  parse("PUT /py HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", with_body);
  const auto b = build(with_body, false, false);
  EXPECT_TRUE(b.head.ends_with("\r\nContent-Length: 5\r\n\r\nhello")) << b.head;
  EXPECT_TRUE(b.replayable) << "PUT is idempotent";
}

// A head per request in flight: under 1,600 at once, keeping 256 of them freed and allocated
// again some 1,300 a turn. As many usual heads as that are kept; large ones only a few.
TEST(HeadBuffers, KeepAHeadPerRequestInFlightButFewLargeOnes) {
  HeadBuffers buffers;
  std::vector<std::string> out;
  for (int i = 0; i < 1600; ++i) {
    out.push_back(buffers.take());
    out.back().reserve(600);
  }
  for (auto& s : out) buffers.give_back(std::move(s));
  EXPECT_EQ(buffers.spare(), 1600u);
  out.clear();
  for (int i = 0; i < 1600; ++i) {
    out.push_back(buffers.take());
    EXPECT_GE(out.back().capacity(), 600u) << "reused, not made anew";
    EXPECT_TRUE(out.back().empty());
  }
  EXPECT_EQ(buffers.spare(), 0u);
  for (int i = 0; i < 3000; ++i) buffers.give_back(std::string(600, 'x'));
  EXPECT_EQ(buffers.spare(), HeadBuffers::kSmallKept);
  HeadBuffers large;
  for (int i = 0; i < 100; ++i) large.give_back(std::string(8 * 1024, 'x'));
  large.give_back(std::string(HeadBuffers::kLarge + 1, 'x'));
  EXPECT_EQ(large.spare(), HeadBuffers::kLargeKept) << "large ones: a few, none past 64 KiB";
  for (std::size_t i = 0; i < HeadBuffers::kLargeKept; ++i) large.take();
  large.give_back(std::string(8 * 1024, 'x'));
  EXPECT_EQ(large.spare(), 1u) << "taking one makes room for another";
}

}  // namespace
}  // namespace squadron::gateway
