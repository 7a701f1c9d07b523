#include "squadron/http/response.hpp"

#include <ctime>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "squadron/http/internal/chars.hpp"
#include "squadron/http/request.hpp"

namespace squadron::http {

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 425:
      return "Too Early";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

Response Response::text(std::string body, int status) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::json(const boost::json::value& v, int status) {
  Response r;
  r.status = status;
  r.content_type = kApplicationJson;
  r.body = boost::json::serialize(v);
  return r;
}

Response Response::problem(int status, std::string_view detail) {
  boost::json::object o;
  o["type"] = "about:blank";
  o["title"] = reason_phrase(status);
  o["status"] = status;
  if (!detail.empty()) o["detail"] = detail;
  Response r = json(o, status);
  r.content_type = kProblemJson;
  return r;
}

std::optional<std::string_view> Response::header(std::string_view name) const noexcept {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return std::string_view(v);
  }
  if (!content_type.empty() && iequals(name, "content-type")) return content_type;
  return std::nullopt;
}

namespace {
void append_uint(std::string& out, std::size_t v) {
  char buf[24];
  char* e = buf + sizeof buf;
  char* b = e;
  do {
    *--b = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out.append(b, static_cast<std::size_t>(e - b));
}
}  // namespace

void serialize_head(const Response& res, std::string_view date, std::string_view request_id,
                    bool keep_alive, bool chunked, std::string& out) {
  const int status = (res.status >= 100 && res.status <= 999) ? res.status : 500;
  if (status == 200) {
    out.append("HTTP/1.1 200 OK\r\n");
  } else {
    out.append("HTTP/1.1 ");
    append_uint(out, static_cast<std::size_t>(status));
    out.push_back(' ');
    out.append(reason_phrase(status));
    out.append("\r\n");
  }
  bool custom_type = false;
  for (const auto& [n, v] : res.headers) {
    custom_type |= iequals(n, "content-type");
    internal::append_field_line(out, n, v);
  }
  const bool no_body = status_has_no_body(status);
  if (!custom_type && !no_body && !res.content_type.empty())  // empty: none (a proxied answer)
    out.append("Content-Type: ").append(res.content_type).append("\r\n");
  if (chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  } else if (!no_body && (!res.stream || res.stream_length >= 0)) {
    // A stream of unknown length not sent chunked (to HTTP/1.0) ends with the connection.
    out.append("Content-Length: ");
    // (A bodiless answer to HEAD may carry the length a GET would get in stream_length.)
    append_uint(out, res.stream || (res.body.empty() && res.stream_length >= 0)
                         ? static_cast<std::size_t>(res.stream_length)
                         : res.body.size());
    out.append("\r\n");
  }
  if (!date.empty()) out.append("Date: ").append(date).append("\r\n");
  if (!request_id.empty()) out.append("X-Request-Id: ").append(request_id).append("\r\n");
  if (!keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n");
}

std::string format_http_date(long long t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  const std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

}  // namespace squadron::http
