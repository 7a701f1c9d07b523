#include "squadron/http/request.hpp"

#include <charconv>
#include <cstring>

#include <boost/json/parse.hpp>
#include <boost/url/decode_view.hpp>
#include <boost/url/params_encoded_view.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/pct_string_view.hpp>

#include "squadron/core/check.hpp"
#include "squadron/http/parser.hpp"

namespace squadron::http {

std::string_view method_name(Method m) noexcept {
  switch (m) {
    case Method::kGet:
      return "GET";
    case Method::kHead:
      return "HEAD";
    case Method::kPost:
      return "POST";
    case Method::kPut:
      return "PUT";
    case Method::kDelete:
      return "DELETE";
    case Method::kPatch:
      return "PATCH";
    case Method::kOptions:
      return "OPTIONS";
    case Method::kTrace:
      return "TRACE";
    case Method::kConnect:
      return "CONNECT";
    case Method::kOther:
      break;
  }
  return "OTHER";
}

namespace {

// Eight bytes with their ASCII capitals in lower case; every other byte (0x80 and up included)
// as it was.
std::uint64_t lower8(std::uint64_t x) noexcept {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  const std::uint64_t low7 = x & ~kHigh;  // each byte's sum below stays within its byte
  const std::uint64_t from_a = low7 + kOnes * (0x80 - 'A');      // high bit: byte >= 'A'
  const std::uint64_t past_z = low7 + kOnes * (0x80 - 'Z' - 1);  // high bit: byte > 'Z'
  const std::uint64_t capital = from_a & ~past_z & ~x & kHigh;
  return x | (capital >> 2);
}

std::uint64_t load8(const char* p) noexcept {
  std::uint64_t x;
  std::memcpy(&x, p, sizeof x);
  return x;
}

}  // namespace

bool iequals_n(const char* a, const char* b, std::size_t n) noexcept {
  // Most calls compare names of the same size that differ (a field against a list): the first
  // byte settles those. Names of 8 bytes or more go eight at a time (the last eight overlapping
  // what came before), shorter ones a byte at a time. callgrind, bench/h2_ir.sh's load: the
  // response's two Content-Type comparisons 111 -> 88 instructions each.
  if (n == 0) return true;
  if ((static_cast<unsigned char>(a[0]) | 0x20) != (static_cast<unsigned char>(b[0]) | 0x20))
    return false;
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
      const std::uint64_t x = load8(a + i), y = load8(b + i);
      if (x != y && lower8(x) != lower8(y)) return false;
    }
    const std::uint64_t x = load8(a + n - 8), y = load8(b + n - 8);
    return x == y || lower8(x) == lower8(y);
  }
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = static_cast<unsigned char>(a[i]);
    const unsigned char y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    if ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z') return false;
  }
  return true;
}

bool has_token(std::string_view value, std::string_view token) noexcept {
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  while (!value.empty()) {
    const auto comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

Request::Request() {
  head_.reserve(1024);
  headers_.reserve(16);
}

void Request::reset() noexcept {
  method_ = Method::kGet;
  method_name_ = target_ = path_ = query_ = {};
  version_minor_ = 1;
  keep_alive_ = true;
  expect_continue_ = false;
  head_.clear();
  headers_.clear();
  body_.clear();
  params_.clear();
  request_id_.clear();
  traceparent_ = {};
  route_ = {};
  route_index_ = 0;
  deadline_ = std::chrono::steady_clock::time_point::max();
  body_reader_ = nullptr;
  cancel_ = nullptr;
  cancelled_ = false;
}

std::optional<std::int64_t> grpc_timeout_ms(std::string_view v) noexcept {
  // TimeoutValue TimeoutUnit: at most 8 digits, then H, M, S, m, u or n (gRPC over HTTP/2).
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  std::int64_t n = 0;
  const char* end = v.data() + v.size() - 1;
  auto [p, ec] = std::from_chars(v.data(), end, n);
  if (ec != std::errc() || p != end || n < 0) return std::nullopt;
  switch (*end) {
    case 'H':
      return n * 3'600'000;
    case 'M':
      return n * 60'000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return (n + 999) / 1000;
    case 'n':
      return (n + 999'999) / 1'000'000;
    default:
      return std::nullopt;
  }
}

std::optional<std::int64_t> Request::timeout_left_ms() const noexcept {
  const auto v = header(kTimeoutHeader);
  if (!v || v->empty()) {
    if (const auto g = header("grpc-timeout")) return grpc_timeout_ms(*g);
    return std::nullopt;
  }
  std::int64_t ms = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), ms);
  if (ec != std::errc() || p != v->data() + v->size()) return std::nullopt;
  return ms;
}

std::optional<std::string_view> Request::header(std::string_view name) const noexcept {
  for (const auto& h : headers_) {
    if (iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

boost::system::result<boost::json::value> Request::json() const {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body_, ec);
  if (ec) return ec;
  return v;
}

std::string_view Request::param(std::string_view name) const noexcept {
  for (const auto& [n, v] : params_) {
    if (n == name) return v;
  }
  return {};
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  if (query_.empty()) return std::nullopt;
  // Boost.URL 1.81's query iteration finds the end of the last value by the terminating NUL
  // (it read past query_ into the rest of the head), so hand it a NUL-terminated copy.
  const std::string query(query_);
  auto params = boost::urls::parse_query(query);
  if (!params) return std::nullopt;
  boost::urls::encoding_opts opts;
  opts.space_as_plus = true;
  for (auto p : *params) {
    const boost::urls::decode_view key(p.key, opts);
    if (key != boost::core::string_view(name.data(), name.size())) continue;
    if (!p.has_value) return std::string();
    const boost::urls::decode_view value(p.value, opts);
    return std::string(value.begin(), value.end());
  }
  return std::nullopt;
}

Request Request::make_for_test(std::string_view method, std::string_view target,
                               std::vector<std::pair<std::string, std::string>> raw_headers,
                               std::string body) {
  std::string raw;
  raw.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  bool has_host = false;
  for (const auto& [n, v] : raw_headers) {
    has_host |= iequals(n, "host");
    raw.append(n).append(": ").append(v).append("\r\n");
  }
  if (!has_host) raw.append("Host: test\r\n");
  if (!body.empty())
    raw.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  raw.append("\r\n").append(body);
  Request req;
  RequestParser parser;
  auto r = parser.feed(raw, req);
  if (r.status == ParseStatus::kHeadersDone)
    r = parser.feed(std::string_view(raw).substr(r.consumed), req);
  SQUADRON_CHECK(r.status == ParseStatus::kComplete, "make_for_test needs a valid request");
  return req;
}

}  // namespace squadron::http
