// libFuzzer target: the request parser must never crash, read out of bounds, loop, or report
// consumed bytes it was not given — whatever the bytes and however they are split.
// The first input byte picks the split points, so one input also tests incremental feeding.
// A second parser streams bodies (ParserLimits::stream_above, the body taken away after every
// slice, as the server's BodyReader does): it must consume and answer exactly as the first,
// and the pieces it hands over must add up to the first one's body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "squadron/core/check.hpp"
#include "squadron/http/parser.hpp"
#include "squadron/http/request.hpp"

using squadron::http::ParseStatus;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = 1 + data[0] % 64;  // feed in slices of 1..64 bytes
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  squadron::http::ParserLimits limits;
  limits.max_body = 4096;  // small limits reach the 413/431/414 paths with small inputs
  limits.max_header_bytes = 2048;
  limits.max_request_line = 512;
  limits.max_headers = 16;
  squadron::http::RequestParser parser(limits);
  squadron::http::Request req;
  auto stream_limits = limits;
  stream_limits.stream_above = 16;
  squadron::http::RequestParser streaming(stream_limits);
  squadron::http::Request sreq;
  std::string streamed;  // the streamed body's pieces so far
  std::string piece;
  std::size_t pos = 0;
  int requests = 0;
  while (pos < input.size()) {
    const std::string_view slice = input.substr(pos, step);
    const auto r = parser.feed(slice, req);
    SQUADRON_CHECK(r.consumed <= slice.size(), "consumed more than it was given");
    const auto sr = streaming.feed(slice, sreq);
    SQUADRON_CHECK(sr.status == r.status && sr.consumed == r.consumed,
                   "streaming the body changes how the request is parsed");
    sreq.take_body(piece);
    streamed += piece;
    pos += r.consumed;
    if (r.status == ParseStatus::kError) {
      const int s = parser.error().status;
      SQUADRON_CHECK(s >= 400 && s <= 599, "error status out of range");
      break;
    }
    if (r.status == ParseStatus::kComplete) {
      // Touch everything a handler could read.
      SQUADRON_CHECK(!req.path().empty(), "a complete request has a path");
      std::size_t total =
          req.method_name().size() + req.target().size() + req.query().size() + req.body().size();
      for (const auto& h : req.headers()) total += h.name.size() + h.value.size();
      SQUADRON_CHECK(total < (1u << 30), "sizes are sane");
      (void)req.query_param("a");
      (void)req.json();
      SQUADRON_CHECK(streamed == req.body(), "the streamed pieces add up to the body");
      streamed.clear();
      streaming.reset(sreq);
      parser.reset(req);
      if (++requests > 1000) break;
      continue;
    }
    if (r.status == ParseStatus::kNeedMore && r.consumed < slice.size()) {
      SQUADRON_CHECK(false, "kNeedMore must consume the whole slice");
    }
  }
  return 0;
}
