#include "squadron/http/parser.hpp"

#include <array>
#include <limits>

#include "squadron/http/internal/chars.hpp"
#include "squadron/http/request.hpp"

namespace squadron::http {
namespace {

using internal::is_alpha;
using internal::is_digit;
using internal::kFieldVchar;
using internal::kTchar;
using internal::make_table;
using internal::scan_field_value;
using internal::scan_token;
using internal::uc;

// request-target characters: visible ASCII (no space, no control, no raw UTF-8)
constexpr internal::CharTable kTargetChar =
    make_table([](unsigned c) { return c >= 0x21 && c <= 0x7e; });

struct KnownMethod {
  std::string_view name;
  Method method;
};
// The registered methods llhttp and common servers know (IANA HTTP Method Registry, WebDAV,
// and a few de-facto ones such as PURGE). Anything else is answered 501.
constexpr std::array<KnownMethod, 35> kKnownMethods{{
    {"GET", Method::kGet},          {"HEAD", Method::kHead},         {"POST", Method::kPost},
    {"PUT", Method::kPut},          {"DELETE", Method::kDelete},     {"PATCH", Method::kPatch},
    {"OPTIONS", Method::kOptions},  {"TRACE", Method::kTrace},       {"CONNECT", Method::kConnect},
    {"COPY", Method::kOther},       {"LOCK", Method::kOther},        {"MKCOL", Method::kOther},
    {"MOVE", Method::kOther},       {"PROPFIND", Method::kOther},    {"PROPPATCH", Method::kOther},
    {"SEARCH", Method::kOther},     {"UNLOCK", Method::kOther},      {"BIND", Method::kOther},
    {"REBIND", Method::kOther},     {"UNBIND", Method::kOther},      {"ACL", Method::kOther},
    {"REPORT", Method::kOther},     {"MKACTIVITY", Method::kOther},  {"CHECKOUT", Method::kOther},
    {"MERGE", Method::kOther},      {"M-SEARCH", Method::kOther},    {"NOTIFY", Method::kOther},
    {"SUBSCRIBE", Method::kOther},  {"UNSUBSCRIBE", Method::kOther}, {"PURGE", Method::kOther},
    {"MKCALENDAR", Method::kOther}, {"LINK", Method::kOther},        {"UNLINK", Method::kOther},
    {"SOURCE", Method::kOther},     {"QUERY", Method::kOther},
}};

bool lookup_method(std::string_view name, Method& out) {
  // GET and POST dominate; check them before the table.
  if (name == "GET") return out = Method::kGet, true;
  if (name == "POST") return out = Method::kPost, true;
  for (const auto& m : kKnownMethods) {
    if (m.name == name) return out = m.method, true;
  }
  return false;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(element) for each comma-separated element of a list header, trimmed.
template <typename F>
void for_each_element(std::string_view list, F&& f) {
  while (true) {
    auto comma = list.find(',');
    f(trim_ows(list.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

bool starts_with_icase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace

ParseResult RequestParser::fail(int status, std::string_view detail,
                                std::size_t consumed) noexcept {
  error_ = {status, detail};
  state_ = State::kDone;
  failed_ = true;
  return {ParseStatus::kError, consumed};
}

void RequestParser::reset(Request& req) noexcept {
  req.reset();
  state_ = State::kStart;
  error_ = {};
  failed_ = false;
  line_start_ = token_start_ = name_end_ = value_end_ = 0;
  method_end_ = target_start_ = target_end_ = version_pos_ = fields_start_ = 0;
  fields_.clear();
  content_length_ = body_remaining_ = body_seen_ = 0;
  host_count_ = 0;
  has_content_length_ = has_transfer_encoding_ = chunked_ = false;
  coding_after_chunked_ = other_coding_ = conn_close_ = conn_keep_alive_ = false;
}

bool RequestParser::end_request_line(Request& req) {
  const std::string_view head = req.head_;
  const std::string_view method = head.substr(line_start_, method_end_ - line_start_);
  if (!lookup_method(method, req.method_)) {
    fail(501, "the request method is not implemented by this server", 0);
    return false;
  }
  if (req.method_ == Method::kConnect) {
    fail(501, "CONNECT tunnels are not supported", 0);
    return false;
  }
  const char major = head[version_pos_ + 5];
  const char minor = head[version_pos_ + 7];
  req.version_minor_ = (major == '1' && minor == '0') ? 0 : 1;
  return true;
}

bool RequestParser::content_length_field(std::string_view value) {
  if (has_transfer_encoding_) {
    fail(400, "Content-Length and Transfer-Encoding together make the framing ambiguous", 0);
    return false;
  }
  if (value.empty() || value.size() > 18) {
    fail(400, "Content-Length is not a valid number", 0);
    return false;
  }
  std::uint64_t n = 0;
  for (char c : value) {
    if (!is_digit(uc(c))) {
      fail(400, "Content-Length is not a valid number", 0);
      return false;
    }
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  if (has_content_length_ && n != content_length_) {
    fail(400, "two different Content-Length values", 0);
    return false;
  }
  has_content_length_ = true;
  content_length_ = n;
  return true;
}

bool RequestParser::transfer_encoding_field(std::string_view value) {
  if (has_content_length_) {
    fail(400, "Content-Length and Transfer-Encoding together make the framing ambiguous", 0);
    return false;
  }
  if (value.empty()) {
    fail(400, "empty Transfer-Encoding", 0);
    return false;
  }
  has_transfer_encoding_ = true;
  bool bad = false;
  for_each_element(value, [&](std::string_view coding) {
    coding = trim_ows(coding.substr(0, coding.find(';')));
    if (coding.empty()) return;
    for (char c : coding) bad |= !kTchar[uc(c)];
    if (chunked_) coding_after_chunked_ = true;
    if (iequals(coding, "chunked"))
      chunked_ = true;
    else
      other_coding_ = true;
  });
  if (bad) {
    fail(400, "invalid Transfer-Encoding", 0);
    return false;
  }
  return true;
}

bool RequestParser::end_field(Request& req) {
  const std::string_view head = req.head_;
  const std::string_view name = head.substr(token_start_, name_end_ - token_start_);
  const std::string_view value = head.substr(value_off_, value_end_ - value_off_);
  if (fields_.size() >= limits_.max_headers) {
    fail(431, "too many header fields", 0);
    return false;
  }
  fields_.push_back(
      {static_cast<std::uint32_t>(token_start_), static_cast<std::uint32_t>(name.size()),
       static_cast<std::uint32_t>(value_off_), static_cast<std::uint32_t>(value.size())});
  switch (name.size()) {
    case 4:
      if (iequals(name, "host")) ++host_count_;
      break;
    case 6:
      if (iequals(name, "expect")) {
        if (!iequals(value, "100-continue")) {
          fail(417, "the only expectation supported is 100-continue", 0);
          return false;
        }
        req.expect_continue_ = true;
      }
      break;
    case 10:
      if (iequals(name, "connection")) {
        for_each_element(value, [&](std::string_view opt) {
          if (iequals(opt, "close"))
            conn_close_ = true;
          else if (iequals(opt, "keep-alive"))
            conn_keep_alive_ = true;
        });
      }
      break;
    case 14:
      if (iequals(name, "content-length")) return content_length_field(value);
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) return transfer_encoding_field(value);
      break;
    default:
      break;
  }
  return true;
}

// The request-target into path and query: origin-form, absolute-form or asterisk-form (RFC 9112
// §3.2).
bool RequestParser::split_target(std::string_view target, Request& req) {
  std::string_view rest = target;
  if (target.front() != '/') {
    if (target == "*") {
      req.path_ = target;
      req.query_ = {};
      rest = {};
    } else if (starts_with_icase(target, "http://") || starts_with_icase(target, "https://")) {
      rest = target.substr(target.find("//") + 2);
      const auto authority_end = rest.find_first_of("/?#");
      if (authority_end == 0) {
        fail(400, "absolute-form request-target without a host", 0);
        return false;
      }
      rest =
          authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
      if (rest.empty() || rest.front() != '/') {
        // "http://h?x" has an empty path: the path is "/" and the rest is query/fragment
        static constexpr std::string_view kRoot = "/";
        req.path_ = kRoot;
        const auto q = rest.find('?');
        const auto hash = rest.find('#');
        req.query_ =
            q == std::string_view::npos || (hash != std::string_view::npos && hash < q)
                ? std::string_view{}
                : rest.substr(q + 1, hash == std::string_view::npos ? rest.npos : hash - q - 1);
        rest = {};
      }
    } else {
      fail(400, "invalid request-target", 0);
      return false;
    }
  }
  if (!rest.empty()) {
    const auto hash = rest.find('#');
    if (hash != std::string_view::npos) rest = rest.substr(0, hash);
    const auto q = rest.find('?');
    req.path_ = rest.substr(0, q);
    req.query_ = q == std::string_view::npos ? std::string_view{} : rest.substr(q + 1);
  }

  return true;
}

bool RequestParser::end_head(Request& req) {
  const std::string_view head = req.head_;
  req.headers_.clear();
  req.headers_.reserve(fields_.size());
  for (const auto& f : fields_) {
    req.headers_.push_back(
        {head.substr(f.name_off, f.name_len), head.substr(f.value_off, f.value_len)});
  }
  req.method_name_ = head.substr(line_start_, method_end_ - line_start_);
  const std::string_view target = head.substr(target_start_, target_end_ - target_start_);
  req.target_ = target;

  if (req.version_minor_ == 1) {
    if (host_count_ == 0) {
      fail(400, "an HTTP/1.1 request must carry a Host header", 0);
      return false;
    }
  }
  if (host_count_ > 1) {
    fail(400, "more than one Host header", 0);
    return false;
  }
  req.keep_alive_ = req.version_minor_ == 1 ? !conn_close_ : (conn_keep_alive_ && !conn_close_);

  if (!split_target(target, req)) return false;

  if (has_transfer_encoding_) {
    if (req.version_minor_ == 0) {
      fail(400, "Transfer-Encoding in an HTTP/1.0 request", 0);
      return false;
    }
    if (!chunked_ || coding_after_chunked_) {
      fail(400, "chunked must be the final transfer coding of a request", 0);
      return false;
    }
    if (other_coding_) {
      fail(501, "transfer codings other than chunked are not implemented", 0);
      return false;
    }
  } else if (content_length_ > limits_.max_body) {
    fail(413, "the request body is larger than this server accepts", 0);
    return false;
  }
  return true;
}

ParseResult RequestParser::head_complete(Request& req, std::size_t consumed) {
  if (!end_head(req)) return {ParseStatus::kError, consumed};
  if (chunked_) {
    // Trailer fields count with the header fields against the same limits.
    chunked_body_.reset({limits_.max_body, limits_.max_header_bytes,
                         limits_.max_headers - std::min(limits_.max_headers, fields_.size())});
    state_ = State::kChunked;
    return {ParseStatus::kHeadersDone, consumed};
  }
  if (content_length_ > 0) {
    body_remaining_ = content_length_;
    req.body_.reserve(static_cast<std::size_t>(
        streams_body() ? std::min<std::uint64_t>(content_length_, 64 * 1024) : content_length_));
    state_ = State::kBodyLength;
    return {ParseStatus::kHeadersDone, consumed};
  }
  state_ = State::kDone;
  return {ParseStatus::kComplete, consumed};
}

ParseResult RequestParser::feed_split(std::string_view method, std::string_view target,
                                      std::span<const Header> fields, Request& req) {
  if (failed_ || state_ != State::kStart || !req.head_.empty())
    return fail(500, "parser state error", 0);
  // The request line, with feed()'s checks of its parts.
  if (method.empty() ||
      scan_token(method.data(), method.data() + method.size()) != method.data() + method.size())
    return fail(400, "invalid character in the request method", 0);
  if (target.empty()) return fail(400, "empty request-target", 0);
  for (const char c : target) {
    if (!kTargetChar[uc(c)]) return fail(400, "invalid character in the request-target", 0);
  }
  constexpr std::string_view kVersion = " HTTP/1.1\r\n";
  const std::size_t line = method.size() + 1 + target.size() + kVersion.size();
  if (line > limits_.max_request_line)
    return fail(414, "the request line is longer than this server accepts", 0);
  std::size_t size = line + 2;
  for (const Header& f : fields) size += f.name.size() + f.value.size() + 4;
  // Written in place, grown once: appends cost twice the instructions (callgrind).
  std::string& head = req.head_;
  head.resize(size);
  char* const base = head.data();
  char* p = base;
  const auto put = [&p](std::string_view part) {
    std::char_traits<char>::copy(p, part.data(), part.size());
    p += part.size();
  };
  put(method);
  *p++ = ' ';
  put(target);
  put(kVersion);
  line_start_ = 0;
  method_end_ = method.size();
  target_start_ = method_end_ + 1;
  target_end_ = target_start_ + target.size();
  version_pos_ = target_end_ + 1;
  if (!end_request_line(req)) return {ParseStatus::kError, 0};
  fields_start_ = line;
  for (const Header& f : fields) {
    const char* const name_end = f.name.data() + f.name.size();
    if (f.name.empty() || scan_token(f.name.data(), name_end) != name_end)
      return fail(400, "invalid character in a header name", 0);
    const char* const value_end = f.value.data() + f.value.size();
    if (scan_field_value(f.value.data(), value_end) != value_end)
      return fail(400, "invalid character in a header value", 0);
    // The offsets feed() would have noted: the value without the whitespace around it.
    token_start_ = static_cast<std::size_t>(p - base);
    name_end_ = token_start_ + f.name.size();
    const std::string_view value = trim_ows(f.value);
    value_off_ = name_end_ + 2 + static_cast<std::size_t>(value.data() - f.value.data());
    value_end_ = value_off_ + value.size();
    p = internal::write_field_line(p, f.name, f.value);
    if (static_cast<std::size_t>(p - base) - fields_start_ > limits_.max_header_bytes)
      return fail(431, "the header section is larger than this server accepts", 0);
    if (!end_field(req)) return {ParseStatus::kError, 0};
  }
  *p++ = '\r';
  *p = '\n';
  return head_complete(req, size);
}

ParseResult RequestParser::feed(std::string_view data, Request& req) {
  if (failed_) return {ParseStatus::kError, 0};
  if (state_ == State::kDone) return {ParseStatus::kComplete, 0};
  return state_ < State::kBodyLength ? feed_head(data, req) : feed_body(data, req);
}

// The request line and header fields: one table-driven switch over the byte at hand, each state
// a few lines (as llhttp and picohttpparser keep theirs), so that every byte is looked at once.
ParseResult RequestParser::feed_head(std::string_view data, Request& req) {
  const char* const begin = data.data();
  const char* const end = begin + data.size();
  const char* p = begin;
  const char* span = begin;  // head bytes not yet appended to req.head_
  auto pos = [&](const char* q) { return req.head_.size() + static_cast<std::size_t>(q - span); };
  auto flush = [&](const char* q) {
    req.head_.append(span, static_cast<std::size_t>(q - span));
    span = q;
  };
  auto consumed = [&](const char* q) { return static_cast<std::size_t>(q - begin); };

  // ---- the head: request line and header fields ----
  while (p < end && state_ < State::kBodyLength) {
    const unsigned char c = uc(*p);
    switch (state_) {
      case State::kStart:
        if (c == '\r') {
          state_ = State::kStartLf;
          ++p;
          continue;
        }
        line_start_ = token_start_ = pos(p);
        state_ = State::kMethod;
        continue;
      case State::kStartLf:
        if (c != '\n')
          return fail(400, "expected LF after CR before the request line", consumed(p));
        state_ = State::kStart;
        ++p;
        continue;
      case State::kMethod:
        while (p < end && kTchar[uc(*p)]) ++p;
        if (p == end) continue;
        if (*p != ' ' || pos(p) == token_start_) {
          return fail(400, "invalid character in the request method", consumed(p));
        }
        method_end_ = pos(p);
        ++p;
        target_start_ = pos(p);
        state_ = State::kTarget;
        continue;
      case State::kTarget:
        while (p < end && kTargetChar[uc(*p)]) ++p;
        if (p == end) continue;
        if (*p != ' ') {
          return fail(400,
                      (*p == '\r' || *p == '\n') ? "missing HTTP version in the request line"
                                                 : "invalid character in the request-target",
                      consumed(p));
        }
        if (pos(p) == target_start_) return fail(400, "empty request-target", consumed(p));
        target_end_ = pos(p);
        ++p;
        version_pos_ = pos(p);
        state_ = State::kVersion;
        continue;
      case State::kVersion: {
        const std::size_t i = pos(p) - version_pos_;
        if (i < 5) {
          if (c != uc("HTTP/"[i]))
            return fail(400, "expected HTTP/ in the request line", consumed(p));
        } else if (i == 5 || i == 7) {
          if (!is_digit(c)) return fail(400, "invalid HTTP version", consumed(p));
          if (i == 7) {
            const char major =
                (pos(p) - 2 >= req.head_.size()) ? p[-2] : req.head_[version_pos_ + 5];
            if (major != '1')
              return fail(505, "only HTTP/1.0 and HTTP/1.1 are supported", consumed(p));
          }
        } else if (i == 6) {
          if (c != '.') return fail(400, "invalid HTTP version", consumed(p));
        } else if (i == 8) {
          if (c != '\r') return fail(400, "expected CRLF after the HTTP version", consumed(p));
          state_ = State::kRequestLineLf;
        }
        ++p;
        continue;
      }
      case State::kRequestLineLf:
        if (c != '\n') return fail(400, "expected LF after CR in the request line", consumed(p));
        ++p;
        flush(p);
        if (req.head_.size() - line_start_ > limits_.max_request_line) {
          return fail(414, "the request line is longer than this server accepts", consumed(p));
        }
        if (!end_request_line(req)) return {ParseStatus::kError, consumed(p)};
        fields_start_ = pos(p);
        state_ = State::kFieldStart;
        continue;
      case State::kFieldStart:
        if (c == '\r') {
          state_ = State::kHeadEndLf;
          ++p;
          continue;
        }
        if (!kTchar[c]) {
          return fail(400,
                      (c == ' ' || c == '\t') ? "header line folding (obs-fold) is not accepted"
                      : c == '\n'             ? "bare LF where CRLF is required"
                                              : "invalid character in a header name",
                      consumed(p));
        }
        token_start_ = pos(p);
        state_ = State::kFieldName;
        continue;
      case State::kFieldName:
        p = scan_token(p, end);
        if (p == end) continue;
        if (*p != ':') return fail(400, "invalid character in a header name", consumed(p));
        name_end_ = pos(p);
        ++p;
        state_ = State::kFieldOws;
        continue;
      case State::kFieldOws:
        if (c == ' ' || c == '\t') {
          ++p;
          continue;
        }
        value_off_ = value_end_ = pos(p);
        state_ = State::kFieldValue;
        continue;
      case State::kFieldValue: {
        // To the first byte that cannot be in a value (CR, normally), eight at a time; the
        // value ends after its last visible byte (trailing spaces are not part of it).
        const char* const from = p;
        p = scan_field_value(p, end);
        const char* last = p;
        while (last > from && (last[-1] == ' ' || last[-1] == '\t')) --last;
        if (last > from) value_end_ = pos(last);
        if (p == end) continue;
        if (*p != '\r') {
          return fail(
              400,
              *p == '\n' ? "bare LF where CRLF is required" : "invalid character in a header value",
              consumed(p));
        }
        ++p;
        state_ = State::kFieldLf;
        continue;
      }
      case State::kFieldLf:
        if (c != '\n') return fail(400, "expected LF after CR in a header line", consumed(p));
        ++p;
        flush(p);
        if (req.head_.size() - fields_start_ > limits_.max_header_bytes) {
          return fail(431, "the header section is larger than this server accepts", consumed(p));
        }
        if (!end_field(req)) return {ParseStatus::kError, consumed(p)};
        state_ = State::kFieldStart;
        continue;
      case State::kHeadEndLf:
        if (c != '\n')
          return fail(400, "expected LF after CR at the end of the header section", consumed(p));
        ++p;
        flush(p);
        return head_complete(req, consumed(p));
      default:
        break;
    }
  }
  if (state_ < State::kBodyLength) {
    flush(p);
    if (state_ <= State::kRequestLineLf && state_ >= State::kMethod &&
        req.head_.size() - line_start_ > limits_.max_request_line) {
      return fail(414, "the request line is longer than this server accepts", consumed(p));
    }
    if (state_ > State::kRequestLineLf &&
        req.head_.size() - fields_start_ > limits_.max_header_bytes) {
      return fail(431, "the header section is larger than this server accepts", consumed(p));
    }
    if (state_ < State::kMethod && req.head_.size() > limits_.max_header_bytes) {
      return fail(400, "too many empty lines before the request line", consumed(p));
    }
    return {ParseStatus::kNeedMore, consumed(p)};
  }
  return {ParseStatus::kNeedMore, consumed(p)};
}

ParseResult RequestParser::feed_body(std::string_view data, Request& req) {
  const char* const begin = data.data();
  const char* const end = begin + data.size();
  const char* p = begin;
  auto consumed = [&](const char* q) { return static_cast<std::size_t>(q - begin); };
  while (p < end) {
    switch (state_) {
      case State::kBodyLength: {
        const std::size_t n =
            std::min<std::size_t>(static_cast<std::size_t>(end - p), body_remaining_);
        req.body_.append(p, n);
        body_seen_ += n;
        p += n;
        body_remaining_ -= n;
        if (body_remaining_ == 0) {
          state_ = State::kDone;
          return {ParseStatus::kComplete, consumed(p)};
        }
        continue;
      }
      case State::kChunked: {
        std::size_t used = 0;
        const auto r = chunked_body_.feed(std::string_view(p, static_cast<std::size_t>(end - p)),
                                          req.body_, used);
        p += used;
        body_seen_ = chunked_body_.body_bytes();
        if (r == ChunkedDecoder::Status::kError)
          return fail(chunked_body_.error().status, chunked_body_.error().detail, consumed(p));
        if (r == ChunkedDecoder::Status::kDone) {
          state_ = State::kDone;
          return {ParseStatus::kComplete, consumed(p)};
        }
        continue;
      }
      default:
        return fail(500, "parser state error", consumed(p));
    }
  }
  return {ParseStatus::kNeedMore, consumed(p)};
}

}  // namespace squadron::http
