// What the server knows of one open connection, shared by its HTTP/1.1 loop (server.cpp) and its
// HTTP/2 one (h2_connection.cpp): the record it holds between requests, and the reads and writes
// that go through TLS when the connection speaks it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <list>
#include <memory>
#include <string>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "squadron/http/internal/read_buffer.hpp"
#include "squadron/http/internal/tls_session.hpp"

namespace squadron::http {
class Handler;
}

namespace squadron::http::internal {

inline constexpr auto kAwait = boost::asio::as_tuple(boost::asio::use_awaitable);
using SteadyClock = std::chrono::steady_clock;
// A connection's socket. Bound to its io_context's own executor type it and each operation
// pending on it would be ~50 bytes smaller (decision 0009), but every completion into the
// coroutines (whose executor is type-erased) would then go through a posted executor_function:
// some 140 instructions a request more (callgrind).
using Socket = boost::asio::ip::tcp::socket;
// Per-connection read buffer. A read that returns less than this tells Asio's reactor the socket
// is drained (edge-triggered epoll), so the next read waits for readiness without a wasted recv
// or an epoll_ctl: two system calls per request, as nginx makes.
inline constexpr std::size_t kReadBufferBytes = ReadBuffer::kBytes;
// What a connection between requests reads into: its own, so that it needs nothing pooled while
// it waits. A request this small (wrk's, a service's call through the gateway) is parsed from
// here; a larger one goes on in a pooled read buffer.
inline constexpr std::size_t kParkedReadBytes = 128;

class H2Connection;

// One open connection: all it holds between requests (decision 0009).
struct Connection {
  Connection(Socket s, Handler& h) : socket(std::move(s)), handler(&h) {}
  Socket socket;
  Handler* handler;
  std::unique_ptr<TlsSession> tls;  // on a TLS listener's connections
  H2Connection* h2 = nullptr;       // while it speaks HTTP/2
  std::string remote_address;
  SteadyClock::time_point deadline = SteadyClock::time_point::max();
  std::list<Connection>::iterator self;  // in the worker's list
  std::uint16_t local_port = 0;
  bool timed_out = false;   // the sweeper cancelled the socket because the deadline passed
  bool idle = false;        // waiting for the first byte of a request
  bool evicted = false;     // closed to make room for a newer connection
  bool served_any = false;  // a request was answered: the next wait is keep-alive
  bool hot = false;         // between requests with its state kept (see kHotConnections)
  bool parking = false;     // the sweeper asked it to give its state back and park
  bool busy = false;        // its last request came within a tick of the one before: stays hot
  char parked[kParkedReadBytes];
};

// A TLS connection's next plaintext into `buffer` (kReadBufferBytes): what OpenSSL holds first,
// else read from the socket into `cipher` (as many bytes); what a handshake writes meanwhile
// is sent. An error, or EOF when the client closed the session or failed its handshake.
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> tls_read(
    Connection& conn, char* buffer, char* cipher);

// Best effort, never waits: `out` (plaintext) onto `conn`'s socket, encrypted on TLS.
void send_now(Connection& conn, std::string& out);

// Says on stderr that a connection's or a stream's task (`what`) ended by exception `e` (if any).
void log_task_exception(std::exception_ptr e, const char* what) noexcept;

}  // namespace squadron::http::internal
