// The request as an upstream sees it: same method, the target (the route's prefix stripped if
// asked), the end-to-end fields, X-Forwarded-For/-Proto/-Host, a request id, the deadline and
// the body's framing; and the exchange's options (deadline, streaming, response fields dropped).
//
//   ensure_request_id(req, rng);
//   UpstreamRequest up{buffers};            // a head buffer of the thread's, back at the end
//   up.build(req, match, trusted, timeout, started_at);
//   co_await attempts.run(..., up.bytes(), up.options, up.replayable, ...);
//
// Thread safety: on the request's I/O thread.
#pragma once

#include <array>
#include <chrono>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "squadron/core/splitmix.hpp"
#include "squadron/gateway/route_table.hpp"
#include "squadron/http/client.hpp"
#include "squadron/http/request.hpp"

namespace squadron::gateway {

// Whether `req` is a gRPC call (Content-Type application/grpc or application/grpc+...; not
// gRPC-Web): its deadline is its grpc-timeout, its answers end in a grpc-status.
bool is_grpc(const http::Request& req);

// Whether `req` asks to switch protocols (a WebSocket's handshake, any `Connection: Upgrade`
// with an `Upgrade` field) and carries no body: such a request is passed on with its Upgrade
// and the upstream's 101 makes its connection a tunnel (tunnel.hpp).
bool wants_upgrade(const http::Request& req);

// A request without an id gets the client's X-Request-Id (if sane) or 16 new hex digits.
void ensure_request_id(http::Request& req, core::SplitMix64& rng);

// Fields of an upstream's answer the gateway does not pass on: hop-by-hop ones, and those it
// writes itself (Date, X-Request-Id).
bool dropped_response_field(std::string_view name);

// Head buffers of one thread, reused so that a request allocates none. A proxy has a head out
// per request in flight (1,600 under bench/h2.sh's load): as many usual ones (a head and a small
// body, up to 2 KiB) are kept, a few large ones.
class HeadBuffers final {
 public:
  static constexpr std::size_t kSmall = 2048;      // capacity of a usual head
  static constexpr std::size_t kSmallKept = 2048;  // at most 4 MiB a thread
  static constexpr std::size_t kLargeKept = 64;    // up to 64 KiB each
  static constexpr std::size_t kLarge = 64 * 1024;
  std::string take() {
    if (spare_.empty()) return {};
    std::string s = std::move(spare_.back());
    spare_.pop_back();
    if (s.capacity() > kSmall) --large_;
    s.clear();
    return s;
  }
  void give_back(std::string s) {
    const bool large = s.capacity() > kSmall;
    if (large ? (s.capacity() > kLarge || large_ >= kLargeKept) : spare_.size() >= kSmallKept)
      return;
    large_ += large ? 1 : 0;
    spare_.push_back(std::move(s));
  }
  std::size_t spare() const noexcept { return spare_.size(); }

 private:
  std::vector<std::string> spare_;
  std::size_t large_ = 0;  // among spare_
};

class UpstreamRequest final {
 public:
  explicit UpstreamRequest(HeadBuffers& buffers) : buffers_(&buffers), head_(buffers.take()) {}
  ~UpstreamRequest() {
    if (buffers_ != nullptr) buffers_->give_back(std::move(head_));
  }
  // Moves with the request into the coroutine that sends it (views into its own head stay
  // valid: bytes() is computed when asked).
  UpstreamRequest(UpstreamRequest&& o) noexcept
      : options(o.options),
        replayable(o.replayable),
        upgrade(o.upgrade),
        grpc(o.grpc),
        buffers_(std::exchange(o.buffers_, nullptr)),
        head_(std::move(o.head_)),
        body_(o.body_),
        inline_body_(o.inline_body_) {}
  UpstreamRequest& operator=(UpstreamRequest&&) = delete;

  // `trusted_peer`: the client is a trusted proxy, whose X-Forwarded-For is kept; `timeout`:
  // this request's bound from `started_at`.
  void build(http::Request& req, const RouteMatch& match, bool trusted_peer,
             std::chrono::milliseconds timeout, std::chrono::steady_clock::time_point started_at);

  // The bytes to send: the head, with a small body inline, or head and body apart. Valid until
  // the next call or the request's end.
  std::span<const boost::asio::const_buffer> bytes() noexcept {
    out_ = {boost::asio::buffer(head_), boost::asio::buffer(body_)};
    return {out_.data(), inline_body_ ? std::size_t{1} : std::size_t{2}};
  }
  const std::string& head() const noexcept { return head_; }
  http::ExchangeOptions options;
  // Whether the request may be sent again (idempotent, its body not streamed).
  bool replayable = false;
  // Whether it asks to switch protocols (wants_upgrade): it goes by forward_upgrade().
  bool upgrade = false;
  // Whether it is a gRPC call (is_grpc).
  bool grpc = false;

 private:
  HeadBuffers* buffers_;
  std::string head_;
  std::string_view body_;  // the request's, when not inline
  bool inline_body_ = true;
  std::array<boost::asio::const_buffer, 2> out_{};
};

}  // namespace squadron::gateway
