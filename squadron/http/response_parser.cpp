#include "squadron/http/response_parser.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "squadron/http/internal/chars.hpp"
#include "squadron/http/request.hpp"

namespace squadron::http {

namespace {

constexpr std::size_t kMaxLine = 4096;    // the trailer section
constexpr std::size_t kMaxHeaders = 100;  // as requests (ParserLimits::max_headers)

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_token_char(char c) { return internal::kTchar[internal::uc(c)]; }

// The last coding of a Transfer-Encoding list.
std::string_view last_coding(std::string_view value) {
  const auto comma = value.rfind(',');
  return trim(comma == std::string_view::npos ? value : value.substr(comma + 1));
}

}  // namespace

void ResponseParser::reset(bool head_request) noexcept {
  head_request_ = head_request;
  upgrade_ = false;
  state_ = State::kHead;
  started_ = false;
  keep_alive_ = false;
  status_ = 0;
  head_.clear();
  headers_.clear();
  body_.clear();
  remaining_ = 0;
  declared_length_ = -1;
  error_ = {};
}

ResponseParser::Result ResponseParser::fail(std::string_view why) {
  state_ = State::kError;
  error_ = why;
  return Result::kError;
}

ResponseParser::Result ResponseParser::feed(std::string_view data, std::size_t& used) {
  used = 0;
  if (!data.empty()) started_ = true;
  while (used < data.size() || state_ == State::kDone) {
    switch (state_) {
      case State::kDone:
        return Result::kDone;
      case State::kError:
        return Result::kError;
      case State::kHead: {
        // Append, then look for the blank line, starting a little before the new bytes.
        const std::size_t old = head_.size();
        const std::size_t room = max_head_ + 4 > old ? max_head_ + 4 - old : 0;
        const std::size_t take = std::min(data.size() - used, room);
        head_.append(data.substr(used, take));
        const auto end = head_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
        if (end == std::string::npos) {
          used += take;
          if (head_.size() > max_head_) return fail("response head too large");
          if (take == 0) return fail("response head too large");
          continue;
        }
        used += end + 4 - old;
        head_.resize(end + 4);
        const auto r = parse_head(end + 4);
        if (r == Result::kError) return r;
        if (state_ == State::kHead) {  // a 1xx interim answer: the real one follows
          head_.clear();
          headers_.clear();
        }
        continue;
      }
      case State::kLength: {
        const auto n =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - used));
        body_.append(data.substr(used, n));
        used += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kDone;
        continue;
      }
      case State::kUntilClose:
        body_.append(data.substr(used));
        used = data.size();
        continue;
      default: {
        std::size_t n = 0;
        const auto r = feed_chunked(data.substr(used), n);
        used += n;
        if (r == Result::kError) return r;
        continue;
      }
    }
  }
  return state_ == State::kDone ? Result::kDone : Result::kNeedMore;
}

bool ResponseParser::note_field(std::string_view name, std::string_view value,
                                std::string_view& content_length, bool& chunked, bool& has_te,
                                bool& close, bool& keep) {
  if (iequals(name, "content-length")) {
    if (!content_length.empty() && content_length != value) {
      fail("differing Content-Length fields");
      return false;
    }
    content_length = value;
  } else if (iequals(name, "transfer-encoding")) {
    has_te = true;
    chunked = iequals(last_coding(value), "chunked");
  } else if (iequals(name, "connection")) {
    close = close || has_token(value, "close");
    keep = keep || has_token(value, "keep-alive");
  }
  return true;
}

ResponseParser::Result ResponseParser::parse_head(std::size_t end) {
  const std::string_view head(head_.data(), end);
  // Status line: HTTP/1.x SP 3DIGIT SP reason CRLF
  const auto eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ')
    return fail("malformed status line");
  int status = 0;
  auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
  if (ec != std::errc() || p != line.data() + 12 || status < 100 || status > 999 ||
      (line.size() > 12 && line[12] != ' '))
    return fail("malformed status code");
  status_ = status;
  const bool http11 = line[7] == '1';
  // Fields
  headers_.clear();
  std::size_t pos = eol + 2;
  std::string_view content_length;
  bool chunked = false, has_te = false, close = !http11, keep = false;
  const char* const stop = head.data() + end;
  while (pos + 2 <= end) {
    // One pass over the line: its name to the ':', its value to the CR. Anything else (the blank
    // line, a malformed field) takes the checks below, which give the verdict.
    const char* const at = head.data() + pos;
    const char* const colon_at = internal::scan_token(at, stop);
    if (colon_at != at && colon_at < stop && *colon_at == ':') {
      const char* v = colon_at + 1;
      while (v < stop && (*v == ' ' || *v == '\t')) ++v;
      const char* const cr = internal::scan_field_value(v, stop);
      if (stop - cr >= 2 && cr[0] == '\r' && cr[1] == '\n') {
        const char* value_end = cr;
        while (value_end > v && (value_end[-1] == ' ' || value_end[-1] == '\t')) --value_end;
        pos = static_cast<std::size_t>(cr + 2 - head.data());
        if (headers_.size() >= kMaxHeaders) return fail("more than 100 header fields");
        const std::string_view name(at, static_cast<std::size_t>(colon_at - at));
        const std::string_view value(v, static_cast<std::size_t>(value_end - v));
        headers_.emplace_back(name, value);
        if (!note_field(name, value, content_length, chunked, has_te, close, keep))
          return Result::kError;
        continue;
      }
    }
    const auto next = head.find("\r\n", pos);
    const std::string_view field = head.substr(pos, next - pos);
    pos = next + 2;
    if (field.empty()) break;
    if (field.front() == ' ' || field.front() == '\t') return fail("obsolete line folding");
    const auto colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail("malformed header field");
    const std::string_view name = field.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_token_char))
      return fail("malformed header field name");
    const std::string_view value = trim(field.substr(colon + 1));
    // As requests are held (RFC 9110 §5.5): no control byte but HTAB passes on to a client.
    if (std::any_of(value.begin(), value.end(), [](char ch) {
          const auto u = static_cast<unsigned char>(ch);
          return (u < 0x20 && u != '\t') || u == 0x7f;
        }))
      return fail("a control character in a header field");
    if (headers_.size() >= kMaxHeaders) return fail("more than 100 header fields");
    headers_.emplace_back(name, value);
    if (!note_field(name, value, content_length, chunked, has_te, close, keep))
      return Result::kError;
  }
  keep_alive_ = http11 ? !close : keep;
  if (status_ < 200 && status_ != 101) return Result::kNeedMore;  // interim: state stays kHead
  if (status_ == 101 && !upgrade_) return fail("a 101 answer to a request that asked no upgrade");
  if (status_ == 101) {  // the connection now speaks what was asked for: no body here
    state_ = State::kDone;
    declared_length_ = 0;
    keep_alive_ = false;
    return Result::kDone;
  }
  if (has_te && !content_length.empty()) return fail("Content-Length with Transfer-Encoding");
  if (head_request_ || status_ == 204 || status_ == 304) {
    state_ = State::kDone;
    declared_length_ = 0;
  } else if (has_te) {
    if (chunked) chunked_.reset({std::numeric_limits<std::uint64_t>::max(), kMaxLine, kMaxHeaders});
    state_ = chunked ? State::kChunked : State::kUntilClose;
    if (!chunked) keep_alive_ = false;
  } else if (!content_length.empty()) {
    std::uint64_t n = 0;
    auto [q, cec] =
        std::from_chars(content_length.data(), content_length.data() + content_length.size(), n);
    if (cec != std::errc() || q != content_length.data() + content_length.size())
      return fail("malformed Content-Length");
    if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return fail("Content-Length too large");
    remaining_ = n;
    declared_length_ = static_cast<std::int64_t>(n);
    state_ = n == 0 ? State::kDone : State::kLength;
  } else {
    state_ = State::kUntilClose;
    keep_alive_ = false;
  }
  return Result::kNeedMore;
}

ResponseParser::Result ResponseParser::feed_chunked(std::string_view data, std::size_t& used) {
  const auto r = chunked_.feed(data, body_, used);
  if (r == ChunkedDecoder::Status::kError) return fail(chunked_.error().detail);
  if (r == ChunkedDecoder::Status::kNeedMore) return Result::kNeedMore;
  state_ = State::kDone;
  return Result::kDone;
}

ResponseParser::Result ResponseParser::finish_eof() {
  if (state_ == State::kUntilClose) {
    state_ = State::kDone;
    return Result::kDone;
  }
  if (state_ == State::kDone) return Result::kDone;
  return fail("the connection closed before the response was complete");
}

}  // namespace squadron::http
