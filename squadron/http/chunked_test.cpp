#include "squadron/http/chunked.hpp"

#include <gtest/gtest.h>

namespace squadron::http {
namespace {

struct Decoded {
  ChunkedDecoder::Status status;
  std::string body;
  std::size_t used = 0;  // of the whole input
  int error_status = 0;
};

// Feeds `in` in pieces of `step` bytes.
Decoded decode(std::string_view in, std::size_t step = 1 << 20, ChunkedLimits limits = {}) {
  ChunkedDecoder d(limits);
  Decoded out{ChunkedDecoder::Status::kNeedMore, {}, 0, 0};
  while (out.used < in.size()) {
    std::size_t used = 0;
    out.status = d.feed(in.substr(out.used, step), out.body, used);
    out.used += used;
    if (out.status != ChunkedDecoder::Status::kNeedMore) break;
  }
  out.error_status = d.error().status;
  return out;
}

TEST(ChunkedDecoder, DecodesInAnySplitAndStopsAtTheMessagesEnd) {
  const std::string in =
      "5;name=value;q=\"a \\\"b\\\"\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
  for (std::size_t step = 1; step <= in.size(); ++step) {
    const auto d = decode(in, step);
    ASSERT_EQ(d.status, ChunkedDecoder::Status::kDone) << "step " << step;
    EXPECT_EQ(d.body, "hello world");
    EXPECT_EQ(d.used, in.size() - 4) << "the next message's bytes are left";
  }
}

TEST(ChunkedDecoder, RejectsWhatAProxyCouldReadTwoWays) {
  for (std::string_view bad : {"5\nhello\r\n0\r\n\r\n", "5\r\nhelloX\r\n0\r\n\r\n", "g\r\n",
                               "5 \r\nhello\r\n", ";x\r\n", "5;=\r\n", "5;a=\"\x01\"\r\n",
                               "0\r\nBad Field: x\r\n\r\n", "0\r\nX: \x01\r\n\r\n", "0\r\n\rX"}) {
    const auto d = decode(bad);
    EXPECT_EQ(d.status, ChunkedDecoder::Status::kError) << bad;
    EXPECT_EQ(d.error_status, 400) << bad;
  }
  EXPECT_EQ(decode("fffffffffffffffff\r\n").status, ChunkedDecoder::Status::kError)
      << "a size that overflows";
}

TEST(ChunkedDecoder, EveryPartIsBounded) {
  ChunkedLimits limits;
  limits.max_body = 10;
  EXPECT_EQ(decode("5\r\nhello\r\n5\r\nhello\r\n0\r\n\r\n", 64, limits).status,
            ChunkedDecoder::Status::kDone);
  const auto big = decode("5\r\nhello\r\n6\r\n", 64, limits);
  EXPECT_EQ(big.error_status, 413) << "refused at the size line, before the data";
  EXPECT_EQ(decode("1" + std::string(5000, ';') + "\r\n").error_status, 400) << "long line";
  limits = {};
  limits.max_trailer_fields = 1;
  EXPECT_EQ(decode("0\r\nA: 1\r\nB: 2\r\n\r\n", 64, limits).error_status, 431);
  limits = {};
  limits.max_trailer_bytes = 16;
  EXPECT_EQ(decode("0\r\nA: " + std::string(64, 'x') + "\r\n\r\n", 8, limits).error_status, 431);
}

TEST(ChunkedDecoder, AFailedDecoderStaysFailedUntilReset) {
  ChunkedDecoder d;
  std::string body;
  std::size_t used = 0;
  EXPECT_EQ(d.feed("x", body, used), ChunkedDecoder::Status::kError);
  EXPECT_EQ(d.feed("0\r\n\r\n", body, used), ChunkedDecoder::Status::kError);
  d.reset({});
  EXPECT_EQ(d.feed("0\r\n\r\n", body, used), ChunkedDecoder::Status::kDone);
  EXPECT_TRUE(d.done());
}

}  // namespace
}  // namespace squadron::http
