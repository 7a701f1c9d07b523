// An incremental HTTP/1.1 response parser for what upstreams answer the gateway and the SDK's
// client: status line, header fields, and the body by its framing (Content-Length, chunked —
// de-chunked here — or until the connection closes), with 1xx interim answers skipped.
// Ambiguous framing (Content-Length with Transfer-Encoding, differing Content-Lengths) and
// malformed heads are errors: such an answer is never passed on.
//
//   ResponseParser p{/*head_request=*/false};
//   auto r = p.feed(bytes, used);          // kNeedMore, kDone or kError (p.error())
//   if (eof) r = p.finish_eof();           // ends a close-delimited body
//   p.status(); p.headers(); p.body(); p.keep_alive();
//
// Thread safety: a value per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "squadron/http/chunked.hpp"

namespace squadron::http {

class ResponseParser final {
 public:
  enum class Result { kNeedMore, kDone, kError };

  explicit ResponseParser(bool head_request = false, std::size_t max_head = 64 * 1024)
      : head_request_(head_request), max_head_(max_head) {}

  // Prepares for the next response on the same connection, keeping allocated capacity.
  void reset(bool head_request) noexcept;
  // The request asked to switch protocols (Connection: Upgrade): a 101 answer is then done at
  // its head, and what follows it (`used` stops there) belongs to the new protocol. Otherwise
  // a 101 is an error. Cleared by reset().
  void allow_upgrade() noexcept { upgrade_ = true; }
  bool upgraded() const noexcept { return state_ == State::kDone && status_ == 101; }

  // Consumes bytes of `data`; `used` says how many (less than all only when kDone: the rest
  // belongs to whatever follows the response).
  Result feed(std::string_view data, std::size_t& used);
  // The connection closed: a close-delimited body ends here (kDone); anything else is cut off.
  Result finish_eof();

  int status() const noexcept { return status_; }
  // Field names and values as received (values without surrounding whitespace).
  const std::vector<std::pair<std::string_view, std::string_view>>& headers() const noexcept {
    return headers_;
  }
  std::string& body() noexcept { return body_; }
  // Whether the connection may carry another request after this response.
  bool keep_alive() const noexcept { return keep_alive_; }
  // The final head has been parsed (the body, if any, is what follows).
  bool head_done() const noexcept { return state_ != State::kHead && state_ != State::kError; }
  bool done() const noexcept { return state_ == State::kDone; }
  // The body's declared length, when framed by Content-Length; -1 when chunked or until close.
  std::int64_t declared_length() const noexcept { return declared_length_; }
  // True once any byte of the response has been fed.
  bool started() const noexcept { return started_; }
  std::string_view error() const noexcept { return error_; }

 private:
  enum class Body : std::uint8_t { kNone, kLength, kChunked, kUntilClose };
  enum class State : std::uint8_t {
    kHead,
    kLength,
    kChunked,  // chunked_ has the body
    kUntilClose,
    kDone,
    kError,
  };

  Result fail(std::string_view why);
  Result parse_head(std::size_t end);  // head_[0, end) ends with CRLF CRLF
  // What a field of the head says about the framing; false (and failed) when it contradicts.
  bool note_field(std::string_view name, std::string_view value, std::string_view& content_length,
                  bool& chunked, bool& has_te, bool& close, bool& keep);
  Result feed_chunked(std::string_view data, std::size_t& used);

  bool head_request_;
  bool upgrade_ = false;
  std::size_t max_head_;
  State state_ = State::kHead;
  bool started_ = false;
  bool keep_alive_ = false;
  int status_ = 0;
  std::string head_;  // the current head's bytes; headers_ views point into it
  std::vector<std::pair<std::string_view, std::string_view>> headers_;
  std::string body_;
  std::int64_t declared_length_ = -1;
  std::uint64_t remaining_ = 0;  // body bytes still due (kLength)
  ChunkedDecoder chunked_;
  std::string_view error_;
};

}  // namespace squadron::http
