#include "squadron/supervisor/grpc_health.hpp"

#include <gtest/gtest.h>

namespace squadron::supervisor {
namespace {

using namespace std::string_literals;

TEST(GrpcHealth, TheRequestIsOneUncompressedMessageNamingTheService) {
  const std::string all = health_check_request("127.0.0.1:5001", "");
  EXPECT_EQ(all.rfind("POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: 127.0.0.1:5001\r\n", 0),
            0u)
      << all;
  EXPECT_NE(all.find("\r\nContent-Type: application/grpc\r\nTE: trailers\r\n"), std::string::npos);
  EXPECT_TRUE(all.ends_with("Content-Length: 5\r\n\r\n"s + std::string(5, '\0'))) << all;
  const std::string one = health_check_request("h", "echo.Echo");
  EXPECT_TRUE(
      one.ends_with("Content-Length: 16\r\n\r\n"s + "\0\0\0\0\x0b"s + "\x0a\x09"s + "echo.Echo"))
      << one;
}

TEST(GrpcHealth, TheAnswersStatusIsReadAndAnythingElseIsNotAnAnswer) {
  EXPECT_EQ(health_status("\0\0\0\0\x02\x08\x01"s), kServing);
  EXPECT_EQ(health_status("\0\0\0\0\x02\x08\x02"s), 2);  // NOT_SERVING
  EXPECT_EQ(health_status("\0\0\0\0\0"s), 0) << "an empty message: UNKNOWN";
  // Unknown fields of every wire type are skipped.
  EXPECT_EQ(
      health_status(
          "\0\0\0\0\x14\x12\x02hi\x19\x01\x02\x03\x04\x05\x06\x07\x08\x25\x01\x02\x03\x04\x08\x01"s),
      kServing);
  for (const std::string bad :
       {""s, "\0\0\0"s, "\x01\0\0\0\x02\x08\x01"s, "\0\0\0\0\x05\x08\x01"s, "\0\0\0\0\x02\x08\x81"s,
        "\0\0\0\0\x02\x12\x05"s, "\0\0\0\0\x01\x0f"s})
    EXPECT_EQ(health_status(bad), std::nullopt) << testing::PrintToString(bad);
}

}  // namespace
}  // namespace squadron::supervisor
