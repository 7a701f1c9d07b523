// A response a handler produces: status, content type, extra headers and a body that is
// either a string sent whole (with Content-Length) or a stream of chunks (chunked encoding).
//
//   return Response::text("Hello World!");
//   return Response::json(boost::json::object{{"id", 7}}, 201);
//   return Response::problem(404, "no user 7");          // application/problem+json (RFC 9457)
//
// Thread safety: a value type; not shared between threads while being written.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/json/fwd.hpp>

namespace squadron::http {

inline constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
inline constexpr std::string_view kApplicationJson = "application/json";
inline constexpr std::string_view kProblemJson = "application/problem+json";

// Header fields as name and value (a response's, a body's trailers).
using Fields = std::vector<std::pair<std::string, std::string>>;

// A piece of a streamed body: bytes, the body's end, or a failure (the body cannot be finished:
// the server closes the connection so that the client sees it cut short).
struct BodyPiece {
  std::string data;
  bool end = false;
  std::string error;  // not empty: failed, and why
  // With `end`: fields sent after the body (gRPC's grpc-status): an HTTP/2 trailing HEADERS, a
  // chunked body's trailer section (a body of announced length has none).
  Fields trailers;
  static BodyPiece more(std::string bytes) { return {std::move(bytes), false, {}, {}}; }
  static BodyPiece last() { return {{}, true, {}, {}}; }
  static BodyPiece last(Fields trailers) { return {{}, true, {}, std::move(trailers)}; }
  static BodyPiece failure(std::string why) { return {{}, true, std::move(why), {}}; }
  bool failed() const noexcept { return !error.empty(); }
};

// Produces the next piece of a streamed body. Runs on the connection's I/O thread; may suspend
// (await a timer, another service...).
using BodyStream = std::function<boost::asio::awaitable<BodyPiece>()>;

// The client's connection after a 101 (Switching Protocols) answer, TLS or not: its bytes both
// ways, for whatever protocol it switched to (a WebSocket, a tunnel). Each wait is bounded by
// the server's tunnel timeout (no byte either way that long: the connection is cut).
class Upgraded {
 public:
  virtual ~Upgraded() = default;
  // Some bytes from the client (first those that came with its request) into `buffer`; 0 when
  // it ended its side, failed, or was quiet too long.
  virtual boost::asio::awaitable<std::size_t> read_some(char* buffer, std::size_t size) = 0;
  // All of `bytes` to the client; false when it is gone.
  virtual boost::asio::awaitable<bool> write(std::string_view bytes) = 0;
  // Ends the writing side towards the client (a half-close passed on).
  virtual void shutdown_send() = 0;
  // Cuts the connection now (both ways): a pending read_some returns 0.
  virtual void close() = 0;
};
using UpgradeHandler = std::function<boost::asio::awaitable<void>(Upgraded&)>;

struct Response {
  int status = 200;
  // Must refer to storage that outlives the response (a literal); for a computed type,
  // set a "Content-Type" header instead, which takes precedence.
  std::string_view content_type = kTextPlain;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is this stream, sent chunked (close-delimited to HTTP/1.0 clients);
  // `body` is ignored.
  BodyStream stream;
  // The streamed body's length when known in advance: sent with Content-Length instead of
  // chunked (the stream must then yield exactly this many bytes). -1: unknown.
  std::int64_t stream_length = -1;
  // Close the connection after this response even if the client wants keep-alive.
  bool close = false;
  // The stream goes on reading the request's body after the head is sent (a gRPC call
  // streaming both ways through the gateway): over HTTP/2 the rest of the body is not discarded
  // when the answer starts. HTTP/1.1 reads the body before answering, whatever this says.
  bool duplex = false;
  // With status 101: once the head is sent, the connection belongs to this handler until it
  // returns, then it closes. The head should carry `Connection: Upgrade` and `Upgrade`.
  UpgradeHandler upgraded;
  // With `upgraded`: the server sends no head; the handler writes its own 101 (Beast's
  // WebSocket accept does, after its checks of the request).
  bool upgrade_writes_head = false;

  static Response text(std::string body, int status = 200);
  static Response json(const boost::json::value& v, int status = 200);
  // An RFC 9457 problem document: {"type":"about:blank","title":<reason>,"status":..,"detail":..}.
  static Response problem(int status, std::string_view detail);

  // Adds a header (no check for duplicates; names are sent as given).
  Response& set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  // The value of header `name` set on this response (case-insensitive), if any; for
  // Content-Type, content_type when no such header is set (what goes out either way).
  std::optional<std::string_view> header(std::string_view name) const noexcept;
};

// The reason phrase of a status code ("Not Found"); "Unknown" for unregistered codes.
std::string_view reason_phrase(int status) noexcept;

// Whether a response with this status carries no body by definition (1xx, 204, 304).
constexpr bool status_has_no_body(int status) noexcept {
  return status < 200 || status == 204 || status == 304;
}

// Appends the status line and header section of `res` to `out`. `date` is the IMF-fixdate to
// send; `request_id` is echoed as X-Request-Id when not empty; `chunked` announces a streamed
// body; `keep_alive` false adds `Connection: close`.
void serialize_head(const Response& res, std::string_view date, std::string_view request_id,
                    bool keep_alive, bool chunked, std::string& out);

// Formats `t` (seconds since the epoch) as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string format_http_date(long long t);

}  // namespace squadron::http
