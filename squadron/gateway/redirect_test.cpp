#include "squadron/gateway/redirect.hpp"

#include <gtest/gtest.h>

#include "squadron/http/parser.hpp"

namespace squadron::gateway {
namespace {

http::Response answer(std::string_view raw, std::uint16_t https_port) {
  http::Request req;
  http::RequestParser parser{http::ParserLimits{}};
  EXPECT_EQ(parser.feed(raw, req).status, http::ParseStatus::kComplete);
  HttpsRedirect redirect(https_port);
  http::Response res;
  EXPECT_TRUE(redirect.handle(req, res, 0));
  return res;
}

std::string location(const http::Response& res) {
  for (const auto& [name, value] : res.headers) {
    if (name == "Location") return value;
  }
  return "";
}

TEST(HttpsRedirect, SendsTheSameHostAndTargetToHttpsWith308) {
  auto res = answer(
      "POST /cart?id=7&x=%20 HTTP/1.1\r\nHost: shop.example:80\r\n"
      "Content-Length: 0\r\n\r\n",
      443);
  EXPECT_EQ(res.status, 308) << "308 keeps the method and body (301 and 302 may not)";
  EXPECT_EQ(location(res), "https://shop.example/cart?id=7&x=%20");
  res = answer("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", 8443);
  EXPECT_EQ(location(res), "https://127.0.0.1:8443/");
  res = answer("GET /a HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 8443);
  EXPECT_EQ(location(res), "https://[::1]:8443/a");
}

TEST(HttpsRedirect, AHostItCannotNameSafelyIs400) {
  EXPECT_EQ(answer("GET / HTTP/1.0\r\n\r\n", 443).status, 400);
  EXPECT_EQ(answer("GET / HTTP/1.1\r\nHost: evil.example@good\r\n\r\n", 443).status, 400);
  EXPECT_EQ(answer("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 443).status, 400);
  EXPECT_EQ(answer("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 443).status, 400);
}

}  // namespace
}  // namespace squadron::gateway
