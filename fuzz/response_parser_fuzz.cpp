// Fuzzes the upstream response parser: any bytes, in two slices at a point the input chooses,
// must end in a result, never a crash, and the same result whatever the slicing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "squadron/http/response_parser.hpp"

using squadron::http::ResponseParser;

static ResponseParser::Result run(std::string_view text, std::size_t split, std::string& body) {
  ResponseParser p(false, 4096);
  ResponseParser::Result r = ResponseParser::Result::kNeedMore;
  for (std::string_view piece : {text.substr(0, split), text.substr(split)}) {
    while (!piece.empty() && r == ResponseParser::Result::kNeedMore) {
      std::size_t used = 0;
      r = p.feed(piece, used);
      piece.remove_prefix(used);
      if (used == 0 && r == ResponseParser::Result::kNeedMore) __builtin_trap();  // no progress
    }
  }
  if (r == ResponseParser::Result::kNeedMore) r = p.finish_eof();
  body = p.body();
  return r;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t split = data[0] % size;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string a, b;
  const auto ra = run(text, std::min(split, text.size()), a);
  const auto rb = run(text, text.size(), b);
  if (ra != rb || (ra == ResponseParser::Result::kDone && a != b)) __builtin_trap();
  return 0;
}
