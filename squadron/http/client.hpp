// The upstream HTTP/1.1 client of the gateway, the SDK's service client and the control
// plane's metrics sampler: keep-alive connections pooled per upstream, one request at a time
// per connection, every wait bounded by a deadline that one timer per thread enforces (no
// timer per operation).
//
//   ConnectionPool pool{executor};                      // one per I/O thread
//   Response res;
//   auto x = co_await pool.exchange({"hello-1", "127.0.0.1", 5001}, request_bytes,
//                                   {.deadline = now + 15s}, res);
//   if (x.outcome == Outcome::kAnswered) use(res.status, res.headers, res.body);
//
// A pooled connection the upstream closed meanwhile is noticed before any answer and the
// request goes once more on a fresh connection, so callers see only real failures.
//
// Thread safety: a pool belongs to the thread of its executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>

#include "squadron/http/request.hpp"
#include "squadron/http/response.hpp"

namespace squadron::http {

// Where to send: an address literal and port; `key` names the pool of idle connections (an
// instance id, or "host:port").
struct Upstream {
  std::string_view key;
  std::string_view host;
  std::uint16_t port = 0;
};

struct ExchangeOptions {
  std::chrono::steady_clock::time_point deadline;  // the whole exchange ends by then
  std::chrono::milliseconds connect_timeout{1000};
  bool head = false;  // a HEAD request: the answer has no body whatever it announces
  // Response header names not to copy into the Response (framing headers never are).
  bool (*drop_header)(std::string_view name) = nullptr;
  // A body to send after the request's buffers, piece by piece as the reader yields it
  // (chunk-framed when `chunked_body`; else the head announced its Content-Length). Such a
  // request is never sent twice: once the body is being read it cannot be replayed.
  BodyReader* body = nullptr;
  bool chunked_body = false;
  // An answer whose body is larger than this, chunked or close-delimited comes back at once
  // with Response::stream reading the body from the upstream as the caller sends it on (the
  // connection returns to the pool at its end; a cut body ends in a failed piece). 0: always read
  // whole.
  std::size_t stream_above = 0;
  // A streamed answer's body: each piece must come within this of the one before (the deadline
  // bounds the head only). 0: the deadline bounds the whole body too.
  std::chrono::milliseconds body_idle_timeout{0};
  // The streamed body may still be arriving when the answer starts (an HTTP/2 client's: a gRPC
  // call streaming both ways): an HTTP/2 upstream's answer comes back at its head while the body
  // goes on. false: the body is sent whole before the answer is awaited.
  bool duplex = false;
  // The request this exchange serves: when its client gives up (Request::cancel()), an HTTP/2
  // upstream's stream is reset. May be null.
  Request* client = nullptr;
  // At most this many connections to the upstream in use at once (an exchange's, and then its
  // streamed body's), per pool; the exchanges past it wait for one, first come first served,
  // until the deadline (then kConnectTimeout: nothing was sent). 0: no limit. HTTP/1.1 only.
  std::size_t max_connections = 0;
  // What a transport keeps of a streamed body across the attempts of one request (HTTP/2's
  // replay buffer: the first 64 KiB read, so that a refused stream can be sent again).
  mutable std::shared_ptr<void> body_state;
};

enum class Outcome {
  kAnswered,        // a whole, well-formed response
  kRefused,         // could not connect: the upstream got nothing
  kConnectTimeout,  // no connection within connect_timeout: nothing sent
  kTimeout,         // the deadline passed after (some of) the request left
  kFailed,          // reset or cut off
  kMalformed,       // an answer not to pass on: framing, too many or too large headers,
                    // control bytes (a proxy says 502; it is not retried)
};

struct Exchange {
  Outcome outcome = Outcome::kFailed;
  bool sent = false;  // some of the request reached the socket
  std::string error;  // why, when not answered
  // The request could go again as it was (its streamed body, what was read of it, is kept):
  // a gRPC call its upstream answered UNAVAILABLE may be retried.
  bool replayable = false;
};

// The upstream exchange behind an interface: ConnectionPool (HTTP/1.1 over TCP) implements it;
// a TLS or HTTP/2 upstream can, and tests put a fake in its place. Failures are values (the
// Exchange's outcome), never exceptions.
class Transport {
 public:
  virtual ~Transport() = default;
  // Sends `request` (a whole HTTP/1.1 request: head and body, in one or more buffers) to
  // `upstream` and reads the answer into `response`: status, headers (without framing headers
  // and those `drop_header` names) and the de-chunked body, or a stream of it.
  virtual boost::asio::awaitable<Exchange> exchange(
      Upstream upstream, std::span<const boost::asio::const_buffer> request,
      const ExchangeOptions& options, Response& response) = 0;
};

// What ConnectionPool::send() sends.
struct SimpleRequest {
  std::string_view method = "GET";
  std::string_view target = "/";
  std::span<const std::pair<std::string_view, std::string_view>> fields;  // beside Host
  std::string_view body;  // with Content-Length when not empty (or for POST, PUT, PATCH)
  std::chrono::steady_clock::time_point deadline;
  std::chrono::milliseconds connect_timeout{1000};
  std::size_t stream_above = 0;                    // as ExchangeOptions
  std::chrono::milliseconds body_idle_timeout{0};  // as ExchangeOptions
};

class ConnectionPool final : public Transport {
 public:
  explicit ConnectionPool(boost::asio::io_context::executor_type executor,
                          std::size_t max_idle_per_upstream = 256);
  ~ConnectionPool() override;
  // The pool of `context`, made on first use and kept as one of its services, so that it is
  // destroyed with the context (its sockets closed before the context's reactor goes). For an
  // io_context run by one thread (the server's model): the pool has no lock.
  static ConnectionPool& of(boost::asio::io_context& context,
                            std::size_t max_idle_per_upstream = 256);
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Transport's exchange over a pooled connection, which goes back to the pool when the answer
  // allows keep-alive.
  boost::asio::awaitable<Exchange> exchange(Upstream upstream,
                                            std::span<const boost::asio::const_buffer> request,
                                            const ExchangeOptions& options,
                                            Response& response) override;

  // A whole small request to host:port for control traffic (the watch follower, the CLI, the
  // supervisor's probes, the fleet's sampler): the head is built here (Host, User-Agent, the
  // fields, the body's framing); connections are pooled under "host:port".
  boost::asio::awaitable<Exchange> send(std::string_view host, std::uint16_t port,
                                        const SimpleRequest& request, Response& response);
  // GET `target` from host:port.
  boost::asio::awaitable<Exchange> get(std::string_view host, std::uint16_t port,
                                       std::string_view target,
                                       std::chrono::steady_clock::time_point deadline,
                                       Response& response);
  // Ends every exchange in progress (as kTimeout, at once) and closes the idle connections: for a
  // caller that stops while a long poll is outstanding.
  void cancel_all();

  // What the pools of this process hold, summed over them: idle connections (a socket and a
  // parser each), and read buffers in use by exchanges and pooled for the next ones.
  struct Memory {
    std::size_t idle_connections = 0;
    std::size_t buffers_in_use = 0;
    std::size_t buffers_pooled = 0;
    std::size_t idle_bytes = 0;  // idle connections × one connection record
    std::size_t buffer_bytes_in_use = 0;
    std::size_t buffer_bytes_pooled = 0;
    std::size_t waiting_exchanges = 0;  // for a connection, past ExchangeOptions::max_connections
  };
  static Memory memory() noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace squadron::http
