#include "squadron/gateway/grpc.hpp"

#include <charconv>
#include <memory>
#include <utility>

#include <boost/json.hpp>

#include "squadron/http/request.hpp"

namespace squadron::gateway {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr int kCancelled = 1;
constexpr int kDeadlineExceeded = 4;
constexpr int kUnavailable = 14;

void count(Stats* stats, int code) {
  if (stats != nullptr && code >= 0 && static_cast<std::size_t>(code) < kGrpcCodes)
    stats->grpc[static_cast<std::size_t>(code)].add();
}

std::optional<int> status_field(const http::Fields& fields) {
  for (const auto& [name, value] : fields) {
    if (!http::iequals(name, "grpc-status")) continue;
    int code = -1;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), code);
    if (ec == std::errc() && end == value.data() + value.size()) return code;
    return std::nullopt;
  }
  return std::nullopt;
}

// The problem document's detail (the gateway's own answers), else the status's reason.
std::string detail_of(const http::Response& res) {
  boost::system::error_code ec;
  const auto v = json::parse(res.body, ec);
  if (!ec && v.is_object()) {
    if (const auto* d = v.as_object().if_contains("detail"); d != nullptr && d->is_string())
      return std::string(d->as_string());
  }
  return std::string(http::reason_phrase(res.status));
}

// A streamed answer: its pieces passed on; a cut one ends with UNAVAILABLE (or what
// grpc_code_of_cut() says it was). One given up before its end (its client reset the stream
// and the server stopped pulling) is counted when it goes.
struct Relay {
  Relay(http::BodyStream in, Stats* s, std::chrono::steady_clock::time_point d)
      : inner(std::move(in)), stats(s), deadline(d) {}
  ~Relay() {
    if (!counted)
      count(stats, grpc_code_of_cut(cancelled, std::chrono::steady_clock::now(), deadline));
  }
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  http::BodyStream inner;
  Stats* stats = nullptr;
  std::chrono::steady_clock::time_point deadline;
  bool cancelled = false;  // its client gave up (Request::cancel())
  bool counted = false;
};

asio::awaitable<http::BodyPiece> relay_piece(std::shared_ptr<Relay> r) {
  http::BodyPiece piece = co_await r->inner();
  if (piece.failed()) {
    const int code = grpc_code_of_cut(r->cancelled, std::chrono::steady_clock::now(), r->deadline);
    count(r->stats, code);
    r->counted = true;
    co_return http::BodyPiece::last(
        {{"grpc-status", std::to_string(code)},
         {"grpc-message", grpc_message("the upstream: " + piece.error)}});
  }
  if (piece.end) {
    count(r->stats, status_field(piece.trailers).value_or(2));  // none: UNKNOWN
    r->counted = true;
  }
  co_return piece;
}

}  // namespace

int grpc_status_of_http(int status) noexcept {
  switch (status) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 413:
      return 8;
    case 429:
    case 502:
    case 503:
      return kUnavailable;
    case 504:
      return kDeadlineExceeded;
    default:
      return 2;
  }
}

std::string grpc_message(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(ch);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

int grpc_code_of_cut(bool client_cancelled, std::chrono::steady_clock::time_point now,
                     std::chrono::steady_clock::time_point deadline) noexcept {
  constexpr auto kSlack = std::chrono::milliseconds(5);
  if (deadline != std::chrono::steady_clock::time_point::max() && now + kSlack >= deadline)
    return kDeadlineExceeded;
  return client_cancelled ? kCancelled : kUnavailable;
}

void grpc_answer(http::Response& res, http::Request& call, Stats* stats) {
  if (call.cancelled()) {  // nobody reads the answer: what the call ended as is counted
    count(stats, grpc_code_of_cut(true, std::chrono::steady_clock::now(), call.deadline()));
    return;
  }
  if (const auto code = status_field(res.headers)) {  // trailers only: the call's end
    count(stats, *code);
    return;
  }
  if (res.status == 200 && res.stream) {
    auto relay = std::make_shared<Relay>(std::move(res.stream), stats, call.deadline());
    // Told when the client gives up, before what the transport does then (it resets the
    // upstream's stream).
    call.on_cancel([weak = std::weak_ptr<Relay>(relay), then = call.release_on_cancel()] {
      if (auto r = weak.lock()) r->cancelled = true;
      if (then) then();
    });
    res.stream = [relay] { return relay_piece(relay); };
    return;
  }
  if (res.status == 200) {  // whole, without a status: not a gRPC server's answer
    count(stats, 2);
    return;
  }
  const int code = grpc_status_of_http(res.status);
  std::string message = grpc_message(detail_of(res));
  http::Response trailers_only;
  trailers_only.status = 200;
  trailers_only.content_type = "application/grpc";
  trailers_only.set_header("grpc-status", std::to_string(code));
  trailers_only.set_header("grpc-message", std::move(message));
  for (auto& [name, value] : res.headers) {  // Retry-After and the like: still worth knowing
    if (!http::iequals(name, "content-type"))
      trailers_only.headers.emplace_back(std::move(name), std::move(value));
  }
  res = std::move(trailers_only);
  count(stats, code);
}

}  // namespace squadron::gateway
