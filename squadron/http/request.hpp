// An HTTP/1.1 request as the server hands it to a handler: method, target split into path and
// query, header fields, the (already de-chunked) body, and the route's path parameters.
//
//   std::string_view id = req.param("id");
//   if (auto ua = req.header("user-agent")) log(*ua);
//   auto doc = req.json();   // boost::system::result<boost::json::value>
//
// Thread safety: a Request belongs to one connection and is used on that connection's I/O
// thread only. Views it returns stay valid until the handler's response has been produced.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

namespace squadron::http {

// The methods Squadron dispatches on directly; every other registered method is kOther and
// keeps its name in Request::method_name().
enum class Method : std::uint8_t {
  kGet,
  kHead,
  kPost,
  kPut,
  kDelete,
  kPatch,
  kOptions,
  kTrace,
  kConnect,
  kOther,
};
inline constexpr std::size_t kMethodCount = 10;

// Upper-case name of a method ("GET"); "OTHER" for kOther.
std::string_view method_name(Method m) noexcept;

// A header field as received: name in its original case, value without surrounding whitespace.
struct Header {
  std::string_view name;
  std::string_view value;
};

// ASCII case-insensitive equality of two strings of `n` bytes each.
bool iequals_n(const char* a, const char* b, std::size_t n) noexcept;
// ASCII case-insensitive equality, as header names compare (RFC 9110 §5.1). The sizes are
// compared inline: most comparisons (a field name against the ones a proxy drops) end there.
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && iequals_n(a.data(), b.data(), a.size());
}
// Whether the comma-separated list `value` (a Connection field, say) has `token`, ignoring case
// and the spaces and tabs around each element.
bool has_token(std::string_view value, std::string_view token) noexcept;

class RequestParser;

// The header carrying a request's deadline from hop to hop, as the milliseconds left when it
// was sent (gRPC's grpc-timeout, userver's deadline propagation). The gateway caps its route
// timeout by it and sets it on what it forwards; the SDK answers 504 at once when it is spent.
inline constexpr std::string_view kTimeoutHeader = "X-Squadron-Timeout-Ms";

// A request body streamed to the handler in pieces as it arrives (see
// ParserLimits::stream_above): a gateway passes a 1 GiB upload on with constant memory.
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  // Replaces `out` with the next piece of the body; false at its end or when it failed.
  virtual boost::asio::awaitable<bool> read(std::string& out) = 0;
  // Whether the whole body has been read.
  virtual bool complete() const noexcept = 0;
  // Why reading failed: an HTTP status (400 malformed chunk, 408 too slow, 413 too large;
  // 0 when the client went away) and a reason; status 0 and empty when nothing failed.
  virtual int error_status() const noexcept = 0;
  virtual std::string_view error() const noexcept = 0;
};

// A gRPC call's grpc-timeout ("100m", "5S", "1H") in milliseconds, rounded up; nullopt when
// it is not one.
std::optional<std::int64_t> grpc_timeout_ms(std::string_view value) noexcept;

class Request final {
 public:
  Request();
  // Views point into the request's own heap buffers, so a move keeps them valid; a copy would not.
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  Request(Request&&) = default;
  Request& operator=(Request&&) = default;
  ~Request() = default;

  Method method() const noexcept { return method_; }
  // The method token exactly as received ("GET", "PURGE", "M-SEARCH").
  std::string_view method_name() const noexcept { return method_name_; }
  // The request-target as received (origin-form "/a?b", absolute-form "http://h/a", or "*").
  std::string_view target() const noexcept { return target_; }
  // The path of the target, still percent-encoded, without query or fragment ("/" at least).
  std::string_view path() const noexcept { return path_; }
  // The query string without '?' (empty when there is none).
  std::string_view query() const noexcept { return query_; }
  // 0 for HTTP/1.0, 1 for HTTP/1.1.
  int version_minor() const noexcept { return version_minor_; }

  std::span<const Header> headers() const noexcept { return headers_; }
  // The first header field named `name` (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const noexcept;

  // The message body, de-chunked. Empty when the request had none, or when it is streamed.
  const std::string& body() const noexcept { return body_; }
  // The streamed body, when the server streams this request's (nullptr: body() has it all).
  BodyReader* body_reader() const noexcept { return body_reader_; }
  void set_body_reader(BodyReader* r) noexcept { body_reader_ = r; }
  // Appends to the body (the HTTP/2 server, whose DATA frames carry it).
  void append_body(std::string_view bytes) { body_.append(bytes); }
  // Moves the body received so far into `out` (the server's body reader).
  void take_body(std::string& out) noexcept {
    out.swap(body_);
    body_.clear();
  }
  // The body parsed as JSON; an error code (never an exception) when it is not valid JSON.
  boost::system::result<boost::json::value> json() const;

  // The value of path parameter `name` ("{id}" in the route), percent-decoded; empty if absent.
  std::string_view param(std::string_view name) const noexcept;
  // Every path parameter, in the pattern's order.
  std::span<const std::pair<std::string_view, std::string>> params() const noexcept {
    return params_;
  }
  // The first query parameter `name`, percent-decoded ('+' is a space); nullopt if absent.
  std::optional<std::string> query_param(std::string_view name) const;

  // Whether the connection stays open after this request (HTTP/1.1 default, Connection header).
  bool keep_alive() const noexcept { return keep_alive_; }
  // Whether the client sent `Expect: 100-continue`.
  bool expects_continue() const noexcept { return expect_continue_; }

  // The peer's address ("127.0.0.1"), set by the server.
  std::string_view remote_address() const noexcept { return remote_address_; }
  // The port of the server's listener the request arrived on (0 when not served by a Server).
  std::uint16_t local_port() const noexcept { return local_port_; }
  // Whether it came over TLS (the gateway then says X-Forwarded-Proto: https).
  bool secure() const noexcept { return secure_; }
  // Whether it came as an HTTP/2 stream (its head is then given as HTTP/1.1's would be: the
  // :authority as Host, the cookie crumbs joined).
  bool http2() const noexcept { return http2_; }
  // The X-Request-Id of this request: the client's when it sent a valid one, otherwise made up.
  std::string_view request_id() const noexcept { return request_id_; }
  // The W3C trace context (`traceparent`) when the client sent a valid one, else empty.
  std::string_view traceparent() const noexcept { return traceparent_; }

  // The milliseconds left that the caller's X-Squadron-Timeout-Ms gives (negative or zero:
  // already spent), or else a gRPC call's grpc-timeout (rounded up to a millisecond); nullopt
  // when neither is there or readable.
  std::optional<std::int64_t> timeout_left_ms() const noexcept;
  // When the caller stops waiting (set by the SDK from X-Squadron-Timeout-Ms on arrival);
  // time_point::max() when the caller said nothing.
  std::chrono::steady_clock::time_point deadline() const noexcept { return deadline_; }
  void set_deadline(std::chrono::steady_clock::time_point d) noexcept { deadline_ = d; }

  // The pattern of the route that matched ("/users/{id}"), empty before routing or if none.
  std::string_view route() const noexcept { return route_; }
  std::size_t route_index() const noexcept { return route_index_; }

  // Mutators used by the server and the router.
  void set_route(std::size_t index, std::string_view pattern) noexcept {
    route_index_ = index;
    route_ = pattern;
  }
  void set_remote_address(std::string_view a) { remote_address_.assign(a); }
  void set_local_port(std::uint16_t p) noexcept { local_port_ = p; }
  void set_secure(bool secure) noexcept { secure_ = secure; }
  void set_http2(bool h2) noexcept { http2_ = h2; }
  void set_request_id(std::string_view id) { request_id_.assign(id); }
  void set_traceparent(std::string_view tp) { traceparent_ = tp; }
  void clear_params() noexcept { params_.clear(); }
  void add_param(std::string_view name, std::string value) {
    params_.emplace_back(name, std::move(value));
  }

  // What to do when the client gives up on this request while its handler or its answer's
  // stream runs (an HTTP/2 stream reset, the connection lost): the gateway resets the upstream
  // stream. Set by the handler, cleared with an empty function; called at most once, on the
  // request's thread.
  void on_cancel(std::function<void()> f) { cancel_ = std::move(f); }
  // Called by the server: runs (and clears) what on_cancel() set.
  void cancel() {
    cancelled_ = true;
    if (!cancel_) return;
    auto f = std::move(cancel_);
    cancel_ = nullptr;
    f();
  }
  // What on_cancel() set, taken from the request (to run it from a step of one's own).
  std::function<void()> release_on_cancel() noexcept { return std::exchange(cancel_, nullptr); }
  // The client gave up on this request (cancel() ran).
  bool cancelled() const noexcept { return cancelled_; }

  // Builds a request directly (tests, in-process dispatch). `raw_headers` are "name: value" pairs.
  static Request make_for_test(std::string_view method, std::string_view target,
                               std::vector<std::pair<std::string, std::string>> raw_headers = {},
                               std::string body = {});

 private:
  friend class RequestParser;
  void reset() noexcept;

  Method method_ = Method::kGet;
  std::string_view method_name_;
  std::string_view target_;
  std::string_view path_;
  std::string_view query_;
  int version_minor_ = 1;
  bool keep_alive_ = true;
  bool expect_continue_ = false;
  std::string head_;  // raw bytes of the request head; every view above points into it
  std::vector<Header> headers_;
  std::string body_;
  std::vector<std::pair<std::string_view, std::string>> params_;
  std::string remote_address_;
  std::uint16_t local_port_ = 0;
  bool secure_ = false;
  bool http2_ = false;
  std::string request_id_;
  std::string_view traceparent_;
  std::string_view route_;
  std::size_t route_index_ = 0;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  BodyReader* body_reader_ = nullptr;
  std::function<void()> cancel_;
  bool cancelled_ = false;
};

}  // namespace squadron::http
