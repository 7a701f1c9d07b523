#include "squadron/http/outbound.hpp"

#include <gtest/gtest.h>

namespace squadron::http {
namespace {

using namespace std::chrono_literals;

TEST(RequestHead, WritesTheRequestLineFieldsDeadlineAndFraming) {
  std::string out;
  RequestHead h(out, "POST", "/orders");
  h.field("Host", "127.0.0.1:8080").deadline(900ms);
  h.end_with_body(0);
  EXPECT_EQ(out,
            "POST /orders HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Squadron-Timeout-Ms: 900\r\n"
            "Content-Length: 0\r\n\r\n")
      << "an empty POST says its length";
  std::string get;
  RequestHead(get, "GET", "").end_with_body(0);
  EXPECT_EQ(get, "GET / HTTP/1.1\r\n\r\n") << "no length for a GET without a body";
  std::string parts;
  RequestHead(parts, "PUT", "/", "x?y").end_with_body(3);
  EXPECT_EQ(parts, "PUT /x?y HTTP/1.1\r\nContent-Length: 3\r\n\r\n");
  std::string chunked;
  RequestHead(chunked, "POST", "/up").end_chunked();
  EXPECT_EQ(chunked, "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string declared;
  RequestHead(declared, "POST", "/up").end_with_declared_length("1048576");
  EXPECT_EQ(declared, "POST /up HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n");
}

TEST(RequestHead, HopByHopFieldsAreNeverCopied) {
  for (auto name : {"Connection", "keep-alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
                    "Content-Length", "Proxy-Authorization", "Expect", "x-squadron-timeout-ms"})
    EXPECT_TRUE(hop_by_hop_field(name)) << name;
  for (auto name : {"Host", "Accept", "Authorization", "X-Request-Id"})
    EXPECT_FALSE(hop_by_hop_field(name)) << name;
}

TEST(FailureAnswer, MapsEachOutcomeToItsStatus) {
  EXPECT_EQ(failure_answer(Outcome::kTimeout, "hello", "", 500ms).status, 504);
  EXPECT_EQ(failure_answer(Outcome::kConnectTimeout, "hello", "", 500ms).status, 504);
  EXPECT_EQ(failure_answer(Outcome::kFailed, "hello", "reset", 500ms).status, 502);
  EXPECT_EQ(failure_answer(Outcome::kMalformed, "hello", "bad framing", 500ms).status, 502);
  const auto refused = failure_answer(Outcome::kRefused, "hello", "hello-1: refused", 500ms);
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.header("retry-after").value_or(""), "1");
  EXPECT_NE(refused.body.find("hello is unreachable: hello-1: refused"), std::string::npos);
  const auto timeout = failure_answer(Outcome::kTimeout, "hello", "", 500ms);
  EXPECT_NE(timeout.body.find("hello did not answer within 500 ms"), std::string::npos);
  EXPECT_EQ(timeout.content_type, kProblemJson);
}

}  // namespace
}  // namespace squadron::http
