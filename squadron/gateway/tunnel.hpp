// The gateway's L4 front for services with `protocol: tcp` (Redis, Postgres, MariaDB): each
// connection accepted on such a service's listener (its SQUADRON_<NAME>_ADDR) is passed through,
// byte for byte both ways, to one ready instance of the service the watch names for that port.
// The instance is picked by the proxy's balancer on the connection's thread (least connections
// of two, skipping ejected ones); a refused or timed-out connect ejects as an HTTP failure does
// and is tried on another instance (nothing was sent: always safe), up to 1 + `retries`. With no
// instance ready while one is starting (or the service is scaled to zero, which wakes it), the
// connection is held up to the route timeout, as an HTTP request is. An open connection counts as
// a request in flight to its instance (the fleet's drain waits for it, at most stop_grace) and to
// its service (`max_in_flight` caps them); its time to connect is its latency. Half-closes pass
// through (shutdown of the write side); an error or reset on either side closes both.
//
//   TcpFront front{proxy, contexts};         // contexts[i]: the proxy's I/O thread i
//   front.adopt(fd);                         // a listening socket (or listen(host, port))
//   front.start();
//   ... front.stop(10s);                     // no new connections; open ones closed after 10 s
//
// Thread safety: adopt/listen/start before the contexts run; stop() from any thread; each
// connection lives on one I/O thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include "squadron/gateway/accounting.hpp"
#include "squadron/gateway/attempts.hpp"
#include "squadron/gateway/route_table.hpp"
#include "squadron/gateway/upstream_request.hpp"
#include "squadron/http/response.hpp"
#include "squadron/resilience/balancer.hpp"

namespace squadron::gateway {

class Proxy;
struct Stats;

// An HTTP request that asks to switch protocols (wants_upgrade: a WebSocket's handshake), sent to
// one ready instance of `service` over a connection of its own (another instance is tried when
// one refuses the connection: nothing was sent), its answer in `res`. A 101 makes `res.upgraded`
// the tunnel: the server sends the 101, then bytes pass both ways until either side ends, fails
// or nothing moves for the server's tunnel timeout; while it lasts it is in flight to its
// instance (a draining instance keeps it, at most stop_grace) and counted in the service's
// `tunnels`. Any other answer is relayed as it came (up to 1 MiB) and the connection closes.
// `table` keeps `service` alive; `balancer` and `stats` are this thread's, living as long as the
// proxy.
boost::asio::awaitable<void> forward_upgrade(resilience::Balancer& balancer, Stats& stats,
                                             const Cluster& service, UpstreamRequest up,
                                             std::shared_ptr<const void> table, http::Response& res,
                                             RequestAccount account, Affinity affinity = {});

class TcpFront final {
 public:
  TcpFront(Proxy& proxy, std::vector<boost::asio::io_context*> contexts);
  ~TcpFront();
  TcpFront(const TcpFront&) = delete;
  TcpFront& operator=(const TcpFront&) = delete;

  // A socket that already listens (handed over by the fleet). Errors: not a listening socket.
  [[nodiscard]] boost::system::error_code adopt(int fd, std::uint16_t* bound = nullptr);
  [[nodiscard]] boost::system::error_code listen(const std::string& host, std::uint16_t port,
                                                 std::uint16_t* bound = nullptr);
  // Accepts on contexts[0] from now on.
  void start();
  // Stops accepting; connections waiting for an instance end at once, those passing bytes are
  // closed after `grace`. Any thread, once.
  void stop(std::chrono::milliseconds grace);
  // Connections passing through now, over all threads (approximate while serving).
  std::size_t open() const noexcept { return open_.load(std::memory_order_relaxed); }

  struct Worker;
  struct Listener;
  struct Route;

 private:
  using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp>;
  boost::asio::awaitable<void> accept_loop(Listener& listener);
  boost::asio::awaitable<void> serve(int fd, std::uint16_t port, std::size_t worker);
  // Holds the connection until its service has a ready instance (false: none came in time).
  boost::asio::awaitable<bool> await_ready(Route& r, std::uint16_t port, std::size_t worker,
                                           std::chrono::steady_clock::time_point start);
  // Up to 1 + retries connects to instances not tried yet; the one that accepted.
  boost::asio::awaitable<std::optional<Endpoint>> connect(Route& r, Socket& upstream,
                                                          std::size_t worker, Stats& stats,
                                                          bool& timed_out);
  // After every instance tried refused: true once they left the ready set and another is
  // ready or coming (then connect again), false if they stay listed for 2 s or time runs out.
  boost::asio::awaitable<bool> await_other(Route& r, std::uint16_t port, std::size_t worker,
                                           std::chrono::steady_clock::time_point start);

  Proxy& proxy_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::size_t next_ = 0;  // round-robin over the workers (contexts[0] only)
  std::atomic<std::size_t> open_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace squadron::gateway
