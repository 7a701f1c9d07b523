// The HTTP/1.1 server: N I/O threads, each with its own io_context, serving keep-alive and
// pipelined connections with C++20 coroutines, every wait bounded by a deadline.
//
//   Server server{config, handler};
//   if (auto ec = server.listen()) fail(ec);
//   server.run();                               // until stop(grace) is called
//
// Connections are accepted on thread 0 and spread round-robin over the threads; a connection
// stays on its thread. Between requests a connection holds a small record and one read into its
// own 128 bytes; a request's state and read buffer come from its thread's pool, and a busy
// connection keeps them while it stays busy (decision 0009). Responses to pipelined requests
// leave in one write.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include "squadron/http/parser.hpp"
#include "squadron/http/request.hpp"
#include "squadron/http/response.hpp"
#include "squadron/http/tls.hpp"

namespace squadron::http {

// HTTP/2 on the server's listeners: h2 chosen by ALPN on TLS ones (TlsConfig::alpn offers it),
// h2c by prior knowledge on plain ones (a connection that opens with the client preface).
struct Http2Config {
  bool enabled = true;
  // Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS; nginx 128, HAProxy
  // 100). Handlers still running for streams the client reset count too: past the limit a new
  // stream is refused (REFUSED_STREAM, safe to retry), so resets cannot pile up work.
  std::uint32_t max_concurrent_streams = 128;
  // What a client may send ahead of what a handler read: per stream (SETTINGS_INITIAL_WINDOW_SIZE)
  // and per connection. A connection holds at most this much of unread request bodies.
  std::uint32_t stream_window = 64 * 1024;
  std::uint32_t connection_window = 1024 * 1024;
  // Frames that make no progress (PING, SETTINGS, PRIORITY, empty DATA, a request refused or
  // rejected; a stream reset before its answer counts ten) a connection may send: `glitch_burst`
  // at once, then `glitches_per_second`; past that it is sent GOAWAY(ENHANCE_YOUR_CALM) and
  // closed (HAProxy's glitches, nginx's flood checks). Floods of resets, pings and settings end
  // here.
  std::uint32_t glitch_burst = 1000;
  std::uint32_t glitches_per_second = 100;
  // WebSockets over HTTP/2 (RFC 8441: SETTINGS_ENABLE_CONNECT_PROTOCOL, then an extended CONNECT
  // per WebSocket): each reaches the handler as HTTP/1.1's handshake would (a GET with
  // `Upgrade: websocket` and a key of the server's making); a 101 with `upgraded` is answered
  // 200 and the stream carries the tunnel. Off by default: a client that sees it offered does
  // not fall back, so only a handler that answers upgrades through `upgraded` turns it on (the
  // gateway does).
  bool websocket = false;
};

struct ServerConfig {
  std::string host = "127.0.0.1";  // address to listen on
  std::uint16_t port = 8080;       // 0 picks a free port (see Server::port())
  std::size_t threads = 0;         // I/O threads; 0 means one per core
  ParserLimits limits;             // 414 / 431 / 413 limits (defaults in ParserLimits)
  // A request head not complete this long after its first byte (or after accept) -> 408.
  std::chrono::milliseconds header_timeout = std::chrono::seconds(10);
  // A keep-alive connection with no request this long is closed.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  // A body read or a response write making no progress this long ends the connection.
  std::chrono::milliseconds io_timeout = std::chrono::seconds(60);
  // A connection upgraded (101: a WebSocket, a tunnel) with no byte either way this long is cut
  // (HAProxy's `timeout tunnel`; a WebSocket's pings keep it open).
  std::chrono::milliseconds tunnel_timeout = std::chrono::hours(1);
  int backlog = 4096;
  // Open connections at most, over all threads and listeners; 0: the descriptor limit less a
  // reserve (a tenth, at least 64), as HAProxy derives maxconn from ulimit. Past it the oldest
  // connection that waits for a request is closed to make room (nginx reuses idle keep-alive
  // connections the same way); when none waits, the new one is answered 503 and closed. Either
  // way nobody else stalls, and descriptors stay for what the process must still open.
  std::size_t max_connections = 0;
  // Connections per thread at most that wait for their next request with their request state
  // kept (some 5-9 KiB each: the parser, the request, an 8 KiB read buffer's touched pages), so
  // a request costs no coroutine start. A connection earns it while busy: a request came within
  // a sweeper tick of the one before. The others park in a small record between requests
  // (decision 0009). A proxy keeps a connection per request in flight to an instance: past this
  // many, its requests cost more.
  std::size_t hot_connections = 4096;
  Http2Config http2;
};

// What the server calls for every parsed request. Implementations are shared by all threads.
class Handler {
 public:
  virtual ~Handler() = default;
  // Fills `res` for `req` and returns true, or returns false to have handle_async() called
  // (for handlers that suspend). Called on I/O thread `worker`; must not block.
  // Exceptions thrown here become a 500 answer.
  virtual bool handle(Request& req, Response& res, std::size_t worker) = 0;
  virtual boost::asio::awaitable<void> handle_async(Request& req, Response& res,
                                                    std::size_t worker) = 0;
  // The server answered on its own (400/408/413/414/431/501/505) without calling handle().
  virtual void on_rejected(int status, std::size_t worker) noexcept = 0;
};

class Server final {
 public:
  Server(ServerConfig config, Handler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the listening socket. Errors: address in use, permission, bad host.
  [[nodiscard]] boost::system::error_code listen();
  // Opens one more listening socket (before run()); requests on it carry its port as
  // Request::local_port(). `bound` gets the port (useful with 0). With `tls` its connections
  // speak TLS (its current certificates when each connects; Request::secure()).
  [[nodiscard]] boost::system::error_code listen_also(const std::string& host, std::uint16_t port,
                                                      std::uint16_t* bound = nullptr,
                                                      std::shared_ptr<TlsListener> tls = nullptr);
  // Serves on a socket that already listens (handed over by a parent, as systemd's socket
  // activation does): the first one given becomes the server's port(). `bound` gets its port.
  // Errors: not a socket, or not listening.
  [[nodiscard]] boost::system::error_code adopt_listener(
      int fd, std::uint16_t* bound = nullptr, std::shared_ptr<TlsListener> tls = nullptr);
  // The listener opened by listen() (the first) speaks TLS: call before listen().
  void set_tls(std::shared_ptr<TlsListener> tls) { tls_ = std::move(tls); }
  // Requests arriving on listener `port` (bound already) go to `handler` instead of the
  // server's own (an admin listener beside the data path). Before run(); `handler` outlives
  // the server.
  void serve_port_with(std::uint16_t port, Handler& handler);
  // The bound port (after listen()).
  std::uint16_t port() const noexcept { return port_; }
  std::size_t threads() const noexcept;

  // Serves on the calling thread and threads()-1 more until stop() has finished.
  void run();

  // Graceful stop, callable from any thread, once: stops accepting, closes idle connections,
  // lets requests in flight finish (their responses carry `Connection: close`), and after
  // `grace` closes whatever is left. run() returns when every connection is gone.
  void stop(std::chrono::milliseconds grace);

  // The io_context of thread 0, for timers and signals of the embedding program.
  boost::asio::io_context& main_context() noexcept;
  // The io_context of I/O thread `i` (0 <= i < threads()): handlers get their thread's index.
  boost::asio::io_context& context(std::size_t i) noexcept;

  // Number of open connections, summed over threads (approximate while serving).
  std::size_t connections() const noexcept;
  // Connections closed to keep within max_connections: idle ones closed for a newcomer, and
  // newcomers refused (503) when none was idle; summed over threads.
  std::size_t evicted() const noexcept;
  std::size_t refused() const noexcept;
  // The cap in force (max_connections, or the one derived from the descriptor limit).
  std::size_t max_connections() const noexcept { return max_connections_; }

  // What the open connections hold, summed over threads (approximate while serving): a record
  // per connection (socket, deadline, its small read buffer), and request states (parser,
  // request, a read buffer) in use by connections serving or waiting hot, and pooled for reuse.
  struct Memory {
    std::size_t connections = 0;
    std::size_t states_in_use = 0;
    std::size_t states_pooled = 0;
    std::size_t record_bytes = 0;  // connections × one record
    std::size_t in_use_bytes = 0;  // states in use × one state (the capacity they grew not counted)
    std::size_t pooled_bytes = 0;
  };
  Memory memory() const noexcept;

  class Worker;

 private:
  ServerConfig config_;
  Handler& handler_;
  std::vector<std::pair<std::uint16_t, Handler*>> by_port_;  // before workers_: they refer to it
  std::vector<std::unique_ptr<Worker>> workers_;
  std::uint16_t port_ = 0;
  std::size_t max_connections_ = 0;
  std::shared_ptr<TlsListener> tls_;  // listen()'s
  std::atomic<bool> stopping_{false};
};

}  // namespace squadron::http
