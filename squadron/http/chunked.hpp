// The one decoder of the chunked transfer coding (RFC 9112 §7.1), strict and incremental, for
// request bodies (the server's parser) and response bodies (the upstream client's): chunk sizes
// in hex without overflow, extensions validated and skipped, CRLF exactly, trailer fields
// validated and dropped, every part bounded.
//
//   ChunkedDecoder d{{.max_body = 8 << 20}};
//   std::size_t used = 0;
//   switch (d.feed(bytes, body, used)) { case kDone: ...; case kError: answer(d.error()); }
//
// Thread safety: one decoder per message; not shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace squadron::http {

struct ChunkedLimits {
  std::uint64_t max_body = std::numeric_limits<std::uint64_t>::max();  // more -> 413
  std::size_t max_trailer_bytes = 64 * 1024;                           // more -> 431
  std::size_t max_trailer_fields = 100;                                // more -> 431
};

class ChunkedDecoder final {
 public:
  enum class Status : std::uint8_t { kNeedMore, kDone, kError };
  // Why decoding failed: the status a server answers (400, 413, 431) and a reason.
  struct Error {
    int status = 0;
    std::string_view detail;
  };

  explicit ChunkedDecoder(ChunkedLimits limits = {}) noexcept : limits_(limits) {}
  // For the next message, with `limits`.
  void reset(ChunkedLimits limits) noexcept;

  // Decodes what it can of `data`, appending the body's bytes to `body`; `used` gets how much of
  // `data` it took (everything on kNeedMore; up to the end of the message on kDone).
  Status feed(std::string_view data, std::string& body, std::size_t& used);

  const Error& error() const noexcept { return error_; }
  bool done() const noexcept { return state_ == State::kDone; }
  std::uint64_t body_bytes() const noexcept { return body_seen_; }

 private:
  enum class State : std::uint8_t {
    kSize,
    kExtName,
    kExtValueStart,
    kExtToken,
    kExtQuoted,
    kExtQuotedEscape,
    kExtAfterQuoted,
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailerStart,
    kTrailerName,
    kTrailerValue,
    kTrailerLf,
    kTrailerEndLf,
    kDone,
    kFailed,
  };
  Status fail(int status, std::string_view detail) noexcept;
  // One byte of a chunk-size line (size, extensions, CRLF); false after fail().
  bool size_line(unsigned char c);
  // After a size, an extension or its value: ';' starts another extension, CR ends the line;
  // false for any other byte.
  bool extension_or_end(unsigned char c) noexcept;
  // One byte of the trailer section; false after fail().
  bool trailer(unsigned char c);

  ChunkedLimits limits_;
  Error error_;
  State state_ = State::kSize;
  std::uint64_t size_ = 0;
  std::uint64_t body_seen_ = 0;
  std::size_t line_bytes_ = 0;
  std::size_t ext_token_len_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::size_t trailer_fields_ = 0;
  bool size_digits_ = false;
};

}  // namespace squadron::http
