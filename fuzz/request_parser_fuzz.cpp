// libFuzzer target: the request parser must never crash, read out of bounds, loop, or report
// consumed bytes it was not given — whatever the bytes and however they are split.
// The first input byte picks the split points, so one input also tests incremental feeding.
// A second parser streams bodies (ParserLimits::stream_above, the body taken away after every
// slice, as the server's BodyReader does): it must consume and answer exactly as the first,
// and the pieces it hands over must add up to the first one's body.
// The first head it reads whole (HTTP/1.1) is given again in its parts, as HTTP/2 carries it,
// to feed_split(): it must be read the same (RFC 9113's requests take HTTP/1.1's checks).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "squadron/core/check.hpp"
#include "squadron/http/parser.hpp"
#include "squadron/http/request.hpp"

using squadron::http::ParseStatus;

namespace {

// The first request of `input`, read whole by feed() and then by feed_split() from the parts
// feed() found: the same verdict and the same request.
void same_when_split(std::string_view input, const squadron::http::ParserLimits& limits) {
  squadron::http::RequestParser whole(limits);
  squadron::http::Request req;
  const auto r = whole.feed(input, req);
  if (r.status != ParseStatus::kComplete && r.status != ParseStatus::kHeadersDone) return;
  if (req.version_minor() != 1) return;  // HTTP/2's heads are given as HTTP/1.1's
  std::vector<squadron::http::Header> fields(req.headers().begin(), req.headers().end());
  squadron::http::RequestParser split(limits);
  squadron::http::Request sreq;
  const auto s = split.feed_split(req.method_name(), req.target(), fields, sreq);
  // The parts are written out as "name: value\r\n": a head sent as "name:value" may grow past
  // the limit by the spaces added, and must then be refused with 431, not read.
  std::size_t written = 0;
  for (const auto& f : fields) written += f.name.size() + f.value.size() + 4;
  if (written > limits.max_header_bytes) {
    SQUADRON_CHECK(s.status == ParseStatus::kError && split.error().status == 431,
                   "split: a head past the limit once written out is not refused with 431");
    return;
  }
  SQUADRON_CHECK(s.status != ParseStatus::kError, "a head feed() read is refused in its parts");
  SQUADRON_CHECK(s.status == r.status, "split: another body state");
  SQUADRON_CHECK(sreq.method() == req.method() && sreq.method_name() == req.method_name() &&
                     sreq.target() == req.target() && sreq.path() == req.path() &&
                     sreq.query() == req.query() && sreq.keep_alive() == req.keep_alive() &&
                     sreq.expects_continue() == req.expects_continue() &&
                     split.content_length() == whole.content_length(),
                 "split: another request line or framing");
  SQUADRON_CHECK(sreq.headers().size() == req.headers().size(), "split: other fields");
  for (std::size_t i = 0; i < fields.size(); ++i) {
    SQUADRON_CHECK(
        sreq.headers()[i].name == fields[i].name && sreq.headers()[i].value == fields[i].value,
        "split: another field");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = 1 + data[0] % 64;  // feed in slices of 1..64 bytes
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  squadron::http::ParserLimits limits;
  limits.max_body = 4096;  // small limits reach the 413/431/414 paths with small inputs
  limits.max_header_bytes = 2048;
  limits.max_request_line = 512;
  limits.max_headers = 16;
  same_when_split(input, limits);
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
