#include "squadron/http/chunked.hpp"

#include <algorithm>

#include "squadron/http/internal/chars.hpp"

namespace squadron::http {

using internal::kFieldVchar;
using internal::kQdtext;
using internal::kTchar;

namespace {
constexpr std::size_t kMaxChunkLine = 4096;  // a chunk-size line with its extensions
}  // namespace

void ChunkedDecoder::reset(ChunkedLimits limits) noexcept { *this = ChunkedDecoder(limits); }

ChunkedDecoder::Status ChunkedDecoder::fail(int status, std::string_view detail) noexcept {
  error_ = {status, detail};
  state_ = State::kFailed;
  return Status::kError;
}

ChunkedDecoder::Status ChunkedDecoder::feed(std::string_view data, std::string& body,
                                            std::size_t& used) {
  used = 0;
  if (state_ == State::kFailed) return Status::kError;
  while (used < data.size() && state_ != State::kDone) {
    if (state_ == State::kData) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(size_, data.size() - used));
      body.append(data.data() + used, n);
      body_seen_ += n;
      used += n;
      size_ -= n;
      if (size_ == 0) state_ = State::kDataCr;
      continue;
    }
    const auto c = internal::uc(data[used]);
    ++used;
    const bool ok = state_ >= State::kTrailerStart ? trailer(c) : size_line(c);
    if (!ok) return Status::kError;
  }
  if (state_ == State::kDone) return Status::kDone;
  if (trailer_bytes_ > limits_.max_trailer_bytes)
    return fail(431, "the trailer section is larger than this server accepts");
  return Status::kNeedMore;
}

bool ChunkedDecoder::extension_or_end(unsigned char c) noexcept {
  if (c == ';') {
    ext_token_len_ = 0;
    state_ = State::kExtName;
    return true;
  }
  if (c == '\r') {
    state_ = State::kSizeLf;
    return true;
  }
  return false;
}

bool ChunkedDecoder::size_line(unsigned char c) {
  auto bad = [&](int status, std::string_view detail) {
    fail(status, detail);
    return false;
  };
  // Extensions count toward the line's bound (kExtName .. kExtQuotedEscape, in that order).
  if (state_ >= State::kExtName && state_ <= State::kExtQuotedEscape &&
      ++line_bytes_ > kMaxChunkLine)
    return bad(400, "chunk extensions too long");
  switch (state_) {
    case State::kSize: {
      if (++line_bytes_ > kMaxChunkLine) return bad(400, "chunk line too long");
      const int h = internal::hex_value(static_cast<char>(c));
      if (h >= 0) {
        if (size_ > (std::numeric_limits<std::uint64_t>::max() >> 4))
          return bad(400, "chunk size overflows");
        size_ = size_ * 16 + static_cast<unsigned>(h);
        if (body_seen_ > limits_.max_body || size_ > limits_.max_body - body_seen_)
          return bad(413, "the request body is larger than this server accepts");
        size_digits_ = true;
        return true;
      }
      if (!size_digits_ || !extension_or_end(c)) return bad(400, "invalid character in chunk size");
      return true;
    }
    case State::kExtName:
    case State::kExtToken:
      if (kTchar[c]) {
        ++ext_token_len_;
      } else if (ext_token_len_ == 0) {
        return bad(400, "invalid character in chunk extensions");
      } else if (c == '=' && state_ == State::kExtName) {
        state_ = State::kExtValueStart;
      } else if (!extension_or_end(c)) {
        return bad(400, "invalid character in chunk extensions");
      }
      return true;
    case State::kExtValueStart:
      if (c == '"') {
        state_ = State::kExtQuoted;
      } else if (kTchar[c]) {
        ext_token_len_ = 1;
        state_ = State::kExtToken;
      } else {
        return bad(400, "invalid character in chunk extension value");
      }
      return true;
    case State::kExtQuoted:
      if (c == '"') {
        state_ = State::kExtAfterQuoted;
      } else if (c == '\\') {
        state_ = State::kExtQuotedEscape;
      } else if (!kQdtext[c]) {
        return bad(400, "invalid character in a quoted chunk extension value");
      }
      return true;
    case State::kExtQuotedEscape:
      if (!(c == '\t' || c == ' ' || kFieldVchar[c]))
        return bad(400, "invalid escape in a quoted chunk extension value");
      state_ = State::kExtQuoted;
      return true;
    case State::kExtAfterQuoted:
      if (!extension_or_end(c))
        return bad(400, "invalid character after a quoted chunk extension value");
      return true;
    case State::kSizeLf:
      if (c != '\n') return bad(400, "expected LF after the chunk size");
      state_ = size_ == 0 ? State::kTrailerStart : State::kData;
      return true;
    case State::kDataCr:
      if (c != '\r') return bad(400, "expected CRLF after chunk data");
      state_ = State::kDataLf;
      return true;
    case State::kDataLf:
      if (c != '\n') return bad(400, "expected LF after chunk data");
      size_ = 0;
      size_digits_ = false;
      line_bytes_ = 0;
      state_ = State::kSize;
      return true;
    default:
      return bad(500, "chunked decoder state error");
  }
}

bool ChunkedDecoder::trailer(unsigned char c) {
  auto bad = [&](int status, std::string_view detail) {
    fail(status, detail);
    return false;
  };
  switch (state_) {
    case State::kTrailerStart:
      ++trailer_bytes_;
      if (c == '\r') {
        state_ = State::kTrailerEndLf;
      } else if (kTchar[c]) {
        state_ = State::kTrailerName;
      } else {
        return bad(400, "invalid trailer field");
      }
      return true;
    case State::kTrailerName:
      ++trailer_bytes_;
      if (c == ':') {
        state_ = State::kTrailerValue;
      } else if (!kTchar[c]) {
        return bad(400, "invalid character in a trailer field name");
      }
      return true;
    case State::kTrailerValue:
      ++trailer_bytes_;
      if (c == '\r') {
        state_ = State::kTrailerLf;
      } else if (!(kFieldVchar[c] || c == ' ' || c == '\t')) {
        return bad(400, "invalid character in a trailer field value");
      }
      return true;
    case State::kTrailerLf:
      if (c != '\n') return bad(400, "expected LF after CR in a trailer field");
      if (++trailer_fields_ > limits_.max_trailer_fields)
        return bad(431, "too many header and trailer fields");
      if (trailer_bytes_ > limits_.max_trailer_bytes)
        return bad(431, "the trailer section is larger than this server accepts");
      state_ = State::kTrailerStart;
      return true;
    case State::kTrailerEndLf:
      if (c != '\n') return bad(400, "expected LF at the end of the trailer section");
      state_ = State::kDone;
      return true;
    default:
      return bad(500, "chunked decoder state error");
  }
}

}  // namespace squadron::http
