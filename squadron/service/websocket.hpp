// A WebSocket connection of the service SDK, on Boost.Beast's websocket stream:
//
//   app.websocket("/rooms/{room}", [](squadron::WebSocket& ws) -> squadron::Task<void> {
//     while (auto m = co_await ws.receive()) co_await ws.send(m->data, m->binary);
//   });
//
// Beast checks the handshake (key, version) and writes the 101; messages arrive whole (fragments
// joined, at most 16 MiB each: more closes with 1009), pings are answered, a close frame is
// answered and ends receive(). When the handler returns, an open connection is closed with 1000.
// On the service's stop (SIGTERM), open connections stay until shortly before the stop grace
// ends (a tenth of it, at most 1 s, before), then each gets a close frame 1001 (Going Away) so
// that its client reconnects elsewhere; the server cuts what is left at the grace.
//
// Thread safety: a WebSocket lives on its connection's I/O thread; one receive() and one send()
// may be pending at once (a reader and a writer coroutine), not two of either.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "squadron/http/request.hpp"
#include "squadron/http/response.hpp"

namespace squadron::service {

class WebSocket {
 public:
  struct Message {
    std::string data;
    bool binary = false;  // else text (UTF-8, checked by Beast)
  };
  // What the upgrade request carried (copied: the request itself is gone once upgraded).
  struct Origin {
    std::string path;
    std::vector<std::pair<std::string, std::string>> params;   // the route's {name} values
    std::vector<std::pair<std::string, std::string>> headers;  // as received
  };

  class Impl;
  explicit WebSocket(Impl& impl) noexcept : impl_(impl) {}
  WebSocket(const WebSocket&) = delete;
  WebSocket& operator=(const WebSocket&) = delete;

  // The next message; nullopt once the connection ended (a close frame, an error, the server's
  // stop): close_code() says how.
  boost::asio::awaitable<std::optional<Message>> receive();
  // Sends one message; false when the connection is gone or closing.
  boost::asio::awaitable<bool> send(std::string_view data, bool binary = false);
  // Sends a close frame (`code`, `reason` at most 123 bytes) and waits for the client's.
  boost::asio::awaitable<void> close(std::uint16_t code = 1000, std::string_view reason = {});

  // The close code the connection ended with (the peer's, or ours), 1006 when it ended without
  // a close frame, 0 while open.
  std::uint16_t close_code() const noexcept;
  bool is_open() const noexcept;

  const Origin& origin() const noexcept;
  std::string_view path() const noexcept { return origin().path; }
  // A path parameter by name; "" when the route has none such.
  std::string_view param(std::string_view name) const noexcept;
  // A request header by name (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const noexcept;

 private:
  Impl& impl_;
};

using WebSocketHandler = std::function<boost::asio::awaitable<void>(WebSocket&)>;

namespace internal {

// The open WebSockets of a service, for its stop. Thread-safe.
class WebSocketSessions {
 public:
  WebSocketSessions();
  ~WebSocketSessions();
  WebSocketSessions(const WebSocketSessions&) = delete;
  WebSocketSessions& operator=(const WebSocketSessions&) = delete;
  // Each open connection (and any opened after) gets its close frame 1001 at `when`.
  void go_away_at(std::chrono::steady_clock::time_point when);
  std::size_t open() const;

  struct State;
  std::shared_ptr<State> state;
};

// The route handler behind app.websocket(): a request that is no WebSocket upgrade gets 426
// (Upgrade Required, problem+json); one is answered by `handler` once Beast accepted it.
http::Response accept_websocket(http::Request& req, std::shared_ptr<const WebSocketHandler> handler,
                                WebSocketSessions& sessions);

}  // namespace internal

}  // namespace squadron::service
