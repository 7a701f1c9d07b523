#include "squadron/http/outbound.hpp"

#include <charconv>

#include <fmt/format.h>

#include "squadron/http/request.hpp"

namespace squadron::http {

namespace {

void append_number(std::string& out, std::uint64_t n) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, n);
  out.append(digits, r.ptr);
}

bool sends_length_zero(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

}  // namespace

RequestHead& RequestHead::deadline(std::chrono::milliseconds left) {
  out_.append(kTimeoutHeader).append(": ");
  append_number(out_, static_cast<std::uint64_t>(std::max<std::int64_t>(0, left.count())));
  out_.append("\r\n");
  return *this;
}

void RequestHead::end_with_body(std::size_t length) {
  if (length > 0 || sends_length_zero(method_)) {
    out_.append("Content-Length: ");
    append_number(out_, length);
    out_.append("\r\n");
  }
  out_.append("\r\n");
}

void RequestHead::end_with_declared_length(std::string_view content_length) {
  out_.append("Content-Length: ").append(content_length.empty() ? "0" : content_length);
  out_.append("\r\n\r\n");
}

void RequestHead::end_chunked() { out_.append("Transfer-Encoding: chunked\r\n\r\n"); }

bool hop_by_hop_field(std::string_view name) noexcept {
  static constexpr std::string_view kNames[] = {
      "connection", "keep-alive",     "proxy-connection",
      "te",         "trailer",        "transfer-encoding",
      "upgrade",    "content-length", "proxy-authorization",
      "expect",     kTimeoutHeader};
  for (auto n : kNames) {
    if (iequals(n, name)) return true;
  }
  return false;
}

Response failure_answer(Outcome outcome, std::string_view who, std::string_view detail,
                        std::chrono::milliseconds timeout) {
  switch (outcome) {
    case Outcome::kTimeout:
    case Outcome::kConnectTimeout:
      return Response::problem(504,
                               fmt::format("{} did not answer within {} ms", who, timeout.count()));
    case Outcome::kMalformed:
      return Response::problem(
          502, fmt::format("{} answered what cannot be passed on: {}", who, detail));
    case Outcome::kFailed:
      return Response::problem(502, fmt::format("{} failed during the request: {}", who, detail));
    case Outcome::kAnswered:
    case Outcome::kRefused:
      break;
  }
  auto res = Response::problem(503, fmt::format("{} is unreachable: {}", who,
                                                detail.empty() ? "no instance answered" : detail));
  res.set_header("Retry-After", "1");
  return res;
}

}  // namespace squadron::http
