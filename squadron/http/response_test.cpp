#include "squadron/http/response.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace squadron::http {
namespace {

TEST(Response, SerializesStatusHeadersAndLength) {
  auto res = Response::text("Hello World!");
  res.set_header("X-A", "b");
  std::string out;
  serialize_head(res, "Wed, 25 Nov 2026 22:00:01 GMT", "rid", true, false, out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Type: text/plain; "
            "charset=utf-8\r\nContent-Length: 12\r\n"
            "Date: Wed, 25 Nov 2026 22:00:01 GMT\r\nX-Request-Id: rid\r\n\r\n");
}

TEST(Response, AnnouncesCloseAndChunking) {
  Response res;
  res.status = 404;
  std::string out;
  serialize_head(res, {}, {}, false, true, out);
  EXPECT_NE(out.find("HTTP/1.1 404 Not Found\r\n"), std::string::npos);
  EXPECT_NE(out.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Content-Length"), std::string::npos);
}

TEST(Response, NoContentHasNeitherLengthNorType) {
  Response res;
  res.status = 204;
  std::string out;
  serialize_head(res, {}, {}, true, false, out);
  EXPECT_EQ(out, "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST(Response, ACustomContentTypeHeaderReplacesTheDefault) {
  auto res = Response::text("x");
  res.set_header("Content-Type", "image/png");
  std::string out;
  serialize_head(res, {}, {}, true, false, out);
  EXPECT_EQ(out.find("text/plain"), std::string::npos);
  EXPECT_NE(out.find("Content-Type: image/png"), std::string::npos);
}

TEST(Response, ProblemIsRfc9457Json) {
  auto res = Response::problem(413, "too \"big\"");
  EXPECT_EQ(res.status, 413);
  EXPECT_EQ(res.content_type, kProblemJson);
  auto doc = boost::json::parse(res.body).as_object();
  EXPECT_EQ(doc.at("status").as_int64(), 413);
  EXPECT_EQ(doc.at("title").as_string(), "Content Too Large");
  EXPECT_EQ(doc.at("detail").as_string(), "too \"big\"");
  EXPECT_EQ(doc.at("type").as_string(), "about:blank");
}

TEST(Response, FormatsImfFixdate) {
  EXPECT_EQ(format_http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(Response, OutOfRangeStatusBecomes500) {
  Response res;
  res.status = 42;
  std::string out;
  serialize_head(res, {}, {}, true, false, out);
  EXPECT_EQ(out.rfind("HTTP/1.1 500 ", 0), 0u);
}

}  // namespace
}  // namespace squadron::http
