// A strict, incremental HTTP/1.1 request parser (RFC 9112), fed bytes as they arrive.
//
//   RequestParser parser{limits};
//   auto r = parser.feed(bytes, req);      // consumes what it can
//   if (r.status == ParseStatus::kComplete) handle(req), parser.reset(req);
//
// It validates every byte once, in one pass, and rejects as soon as a byte cannot start a
// valid message (so a bad header is answered before the client finishes sending). Framing
// that a proxy could read two ways (Content-Length with Transfer-Encoding, two different
// Content-Lengths, a bare LF or CR, obs-fold, whitespace before ':') is an error, never guessed.
// Thread safety: one parser per connection; not shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "squadron/http/chunked.hpp"

namespace squadron::http {

class Request;
struct Header;

// Limits on what one request may be; each has its own answer.
struct ParserLimits {
  std::size_t max_request_line = std::size_t{8} * 1024;   // longer -> 414 URI Too Long
  std::size_t max_header_bytes = std::size_t{64} * 1024;  // whole head larger -> 431
  std::size_t max_headers = 100;                          // more fields -> 431
  std::size_t max_body = std::size_t{8} * 1024 * 1024;    // larger body -> 413, from the headers
  // Bodies larger than this, or chunked, are streamed: the parser appends what arrives to
  // Request::body() and the reader takes it away as it goes (memory stays bounded). 0: never
  // (every body is read whole before the request is handled).
  std::size_t stream_above = 0;
};

enum class ParseStatus : std::uint8_t {
  kNeedMore,     // every byte consumed; feed more
  kHeadersDone,  // the head is complete and a body follows (time to send 100 Continue)
  kComplete,     // a whole request is parsed; bytes after `consumed` belong to the next one
  kError,        // the request is invalid: answer error().status and close the connection
};

struct ParseResult {
  ParseStatus status;
  std::size_t consumed;  // bytes of the input used by this call
};

// Why a request was rejected: the HTTP status to answer and a one-line reason.
struct ParseError {
  int status = 0;
  std::string_view detail;
};

class RequestParser final {
 public:
  explicit RequestParser(ParserLimits limits = {}) noexcept : limits_(limits) {}

  // Consumes bytes of `data` into `req`. Returns at the first of: head complete with a body to
  // come (kHeadersDone, once per request), request complete, error, or input exhausted.
  // After kComplete call reset(req) before feeding the next request's bytes.
  ParseResult feed(std::string_view data, Request& req);

  // A head that arrived split into its parts, as HTTP/2's HEADERS carry it (RFC 9113 §8.3):
  // the method, the target and the fields (lower-case names). It is held in `req` as HTTP/1.1
  // would have carried it ("METHOD target HTTP/1.1", a line a field), so a handler reads the
  // same either way, and it gets the checks, limits and answers feed() gives that head: only the
  // scan for the line and field ends, which the split already made, is not done again. Returns
  // kHeadersDone (a body follows), kComplete or kError; `consumed` is the head's size. Called
  // once, on a parser reset for it.
  ParseResult feed_split(std::string_view method, std::string_view target,
                         std::span<const Header> fields, Request& req);

  // Prepares for the next request on the same connection, keeping allocated capacity.
  void reset(Request& req) noexcept;

  const ParseError& error() const noexcept { return error_; }
  // True once a byte of the current request has arrived (a timeout then earns a 408).
  bool started() const noexcept { return state_ != State::kStart || head_bytes_ != 0; }
  bool in_body() const noexcept { return state_ >= State::kBodyLength; }
  // After kHeadersDone: whether this request's body is streamed (see ParserLimits::stream_above).
  bool streams_body() const noexcept {
    return limits_.stream_above != 0 && (chunked_ || content_length_ > limits_.stream_above);
  }
  // The declared Content-Length (0 when none or chunked), and whether the body is chunked.
  std::uint64_t content_length() const noexcept { return content_length_; }
  bool chunked() const noexcept { return chunked_; }
  // The current request is complete.
  bool done() const noexcept { return state_ == State::kDone && !failed_; }
  const ParserLimits& limits() const noexcept { return limits_; }

 private:
  enum class State : std::uint8_t {
    kStart,
    kStartLf,
    kMethod,
    kTarget,
    kVersion,
    kRequestLineLf,
    kFieldStart,
    kFieldName,
    kFieldOws,
    kFieldValue,
    kFieldLf,
    kHeadEndLf,
    // body states (ordered after the head ones: in_body() relies on it)
    kBodyLength,
    kChunked,  // the chunked decoder has the body
    kDone,
  };
  struct FieldOffsets {
    std::uint32_t name_off, name_len, value_off, value_len;
  };

  ParseResult fail(int status, std::string_view detail, std::size_t consumed) noexcept;
  ParseResult feed_head(std::string_view data, Request& req);
  ParseResult feed_body(std::string_view data, Request& req);
  bool end_request_line(Request& req);
  bool end_field(Request& req);
  bool content_length_field(std::string_view value);
  bool transfer_encoding_field(std::string_view value);
  bool split_target(std::string_view target, Request& req);
  bool end_head(Request& req);
  // After the blank line: the head's verdict, then the body's state (kHeadersDone, kComplete).
  ParseResult head_complete(Request& req, std::size_t consumed);

  ParserLimits limits_;
  State state_ = State::kStart;
  ParseError error_;
  std::size_t head_bytes_ = 0;   // bytes of the head (incl. leading CRLFs) consumed so far
  std::size_t line_start_ = 0;   // offset in the head of the current line
  std::size_t token_start_ = 0;  // offset of the current method/target/name/value
  std::size_t name_end_ = 0;
  std::size_t value_end_ = 0;  // end of the value without trailing whitespace
  std::size_t method_end_ = 0;
  std::size_t target_start_ = 0, target_end_ = 0;
  std::size_t version_pos_ = 0;
  std::size_t fields_start_ = 0;  // offset of the first header line
  std::size_t value_off_ = 0;
  std::vector<FieldOffsets> fields_;
  ChunkedDecoder chunked_body_;
  // framing gathered from the fields
  std::uint64_t content_length_ = 0;
  std::uint64_t body_remaining_ = 0;
  std::uint64_t body_seen_ = 0;  // body bytes appended so far (a streamed body is taken away)
  int host_count_ = 0;
  bool has_content_length_ = false;
  bool has_transfer_encoding_ = false;
  bool chunked_ = false;  // "chunked" seen in Transfer-Encoding
  bool coding_after_chunked_ = false;
  bool other_coding_ = false;  // a transfer coding other than chunked
  bool conn_close_ = false;
  bool conn_keep_alive_ = false;
  bool failed_ = false;
};

}  // namespace squadron::http
