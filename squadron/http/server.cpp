#include "squadron/http/server.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <exception>
#include <fcntl.h>
#include <list>
#include <malloc.h>
#include <mutex>
#include <optional>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "squadron/core/check.hpp"
#include "squadron/core/limits.hpp"
#include "squadron/core/scope_exit.hpp"
#include "squadron/core/spawn.hpp"
#include "squadron/core/thread_cache.hpp"
#include "squadron/http/internal/connection.hpp"
#include "squadron/http/internal/h2_connection.hpp"
#include "squadron/http/internal/read_buffer.hpp"
#include "squadron/http/internal/tls_session.hpp"

namespace squadron::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using internal::Connection;
using internal::kAwait;
using internal::kReadBufferBytes;
using internal::send_now;
using internal::Socket;
using internal::SteadyClock;
using internal::tls_read;

namespace internal {

asio::awaitable<std::tuple<error_code, std::size_t>> tls_read(Connection& conn, char* buffer,
                                                              char* cipher) {
  TlsSession& tls = *conn.tls;
  while (true) {
    // Only when it has something: a read with nothing to decrypt would make OpenSSL set up its
    // 17 KiB record buffer to wait in (SSL_MODE_RELEASE_BUFFERS frees it once a record is read).
    if (tls.pending() || !tls.handshake_done()) {
      const long n = tls.read(buffer, kReadBufferBytes);
      if (n > 0) co_return std::tuple{error_code{}, static_cast<std::size_t>(n)};
      if (n < 0) co_return std::tuple{error_code(asio::error::eof), std::size_t{0}};
    }
    if (!tls.output().empty()) {  // the handshake's answer (or a ticket, a key update)
      // At once if the socket takes it all (it nearly always does): no trip through the queue.
      error_code wec;
      std::size_t sent = conn.socket.write_some(asio::buffer(tls.output()), wec);
      if (wec == asio::error::would_block || wec == asio::error::try_again) {
        wec = {};
        sent = 0;
      }
      if (!wec && sent < tls.output().size()) {
        // The rest waits for the socket in a string of its own: a tunnel's write meanwhile
        // (UpgradedConnection::write) sends what OpenSSL writes next, never these bytes again.
        std::string rest = tls.output().substr(sent);
        tls.output().clear();
        std::tie(wec, std::ignore) =
            co_await asio::async_write(conn.socket, asio::buffer(rest), kAwait);
      }
      tls.output().clear();
      if (wec) co_return std::tuple{wec, std::size_t{0}};
    }
    auto [ec, got] =
        co_await conn.socket.async_read_some(asio::buffer(cipher, kReadBufferBytes), kAwait);
    if (ec) co_return std::tuple{ec, std::size_t{0}};
    tls.feed(std::string_view(cipher, got));
  }
}

void send_now(Connection& conn, std::string& out) {
  error_code ec;
  if (conn.tls) {
    if (!conn.tls->write(out)) return;
    conn.socket.write_some(asio::buffer(conn.tls->output()), ec);
    conn.tls->output().clear();
  } else {
    conn.socket.write_some(asio::buffer(out), ec);
  }
}

void log_task_exception(std::exception_ptr e, const char* what) noexcept {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "squadron: %s ended by exception: %s\n", what, ex.what());
  } catch (...) {
    std::fprintf(stderr, "squadron: %s ended by an unknown exception\n", what);
  }
}

}  // namespace internal

namespace {

// Responses to pipelined requests are batched up to this size before a write.
constexpr std::size_t kMaxBatchedOutput = 64 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// Request states (parser, request, output, read buffer) a thread keeps for reuse at least. More
// stay pooled while they are needed: the sweeper frees those none took in a whole tick.
constexpr std::size_t kPooledStates = 64;
// The sweeper gives the allocator's free memory back to the system (malloc_trim) when it freed at
// least this many states at once.
constexpr std::size_t kTrimAfterFreeing = 64;
// ... or when a tick freed this many bytes of the blocks its operator new kept (those none took
// during the tick before, core::thread_cache::trim_unused).
constexpr std::size_t kTrimAfterFreeingBytes = 256 * 1024;

// What a connection needs while it serves a request, taken from its thread's pool when bytes
// arrive and given back when the answers are written.
struct RequestState {
  explicit RequestState(const ParserLimits& limits) : parser(limits) {}
  Request req;
  RequestParser parser;
  std::string out;  // answers not written yet (those of one read go out in one send)
  internal::ReadBuffer read_buffer = internal::ReadBuffer::make();
  // What a TLS connection reads from its socket (read_buffer gets the plaintext); made for the
  // first TLS connection that takes this state.
  internal::ReadBuffer cipher_buffer;
};

void log_exception(std::exception_ptr e) noexcept {
  internal::log_task_exception(e, "connection task");
}

}  // namespace

// The body of a request handled before its body has arrived (ParserLimits::stream_above): each
// read() feeds the parser what is buffered or reads more from the socket, and hands over what
// the parser de-framed. Lives on the connection's coroutine frame for one request.
class StreamedBody final : public BodyReader {
 public:
  StreamedBody(Connection& conn, RequestParser& parser, Request& req, std::string_view& data,
               char* buffer, char* cipher, const SteadyClock::time_point& now,
               std::chrono::milliseconds io_timeout)
      : conn_(conn),
        parser_(parser),
        req_(req),
        data_(data),
        buffer_(buffer),
        cipher_(cipher),
        now_(now),
        io_timeout_(io_timeout) {}

  asio::awaitable<bool> read(std::string& out) override {
    out.clear();
    while (true) {
      if (!req_.body().empty()) {
        req_.take_body(out);
        co_return true;
      }
      if (parser_.done() || status_ != 0 || failed_) co_return false;
      if (!data_.empty()) {
        const ParseResult r = parser_.feed(data_, req_);
        data_.remove_prefix(r.consumed);
        if (r.status == ParseStatus::kError) {
          status_ = parser_.error().status;
          error_ = parser_.error().detail;
          co_return false;
        }
        continue;
      }
      conn_.deadline = now_ + io_timeout_;
      error_code ec;
      std::size_t n = 0;
      if (conn_.tls) {
        std::tie(ec, n) = co_await tls_read(conn_, buffer_, cipher_);
      } else {
        std::tie(ec, n) =
            co_await conn_.socket.async_read_some(asio::buffer(buffer_, kReadBufferBytes), kAwait);
      }
      if (ec) {
        failed_ = true;
        if (conn_.timed_out) {
          status_ = 408;
          error_ = "the request body stopped arriving";
        } else {
          error_ = "the client closed the connection during the request body";
        }
        co_return false;
      }
      data_ = std::string_view(buffer_, n);
    }
  }
  bool complete() const noexcept override { return parser_.done(); }
  int error_status() const noexcept override { return status_; }
  std::string_view error() const noexcept override { return error_; }
  bool failed() const noexcept { return failed_ || status_ != 0; }

 private:
  Connection& conn_;
  RequestParser& parser_;
  Request& req_;
  std::string_view& data_;
  char* buffer_;
  char* cipher_;
  const SteadyClock::time_point& now_;
  std::chrono::milliseconds io_timeout_;
  int status_ = 0;
  bool failed_ = false;
  std::string_view error_;
};

// A connection after its 101: the client's bytes both ways, those that came after the request
// first; TLS or not. Every read and write moves the connection's deadline one tunnel timeout on,
// so the sweeper cuts a tunnel only when nothing moved either way that long.
class UpgradedConnection final : public Upgraded {
 public:
  UpgradedConnection(Connection& conn, std::string_view early, char* buffer, char* cipher,
                     std::chrono::milliseconds timeout)
      : conn_(conn), early_(early), buffer_(buffer), cipher_(cipher), timeout_(timeout) {}

  asio::awaitable<std::size_t> read_some(char* out, std::size_t size) override {
    while (early_.empty()) {
      if (closed_) co_return 0;
      conn_.deadline = SteadyClock::now() + timeout_;
      error_code ec;
      std::size_t n = 0;
      if (conn_.tls) {
        std::tie(ec, n) = co_await tls_read(conn_, buffer_, cipher_);
        if (!ec) early_ = std::string_view(buffer_, n);
      } else {
        std::tie(ec, n) = co_await conn_.socket.async_read_some(asio::buffer(out, size), kAwait);
        if (!ec) {
          conn_.deadline = SteadyClock::now() + timeout_;
          co_return n;
        }
      }
      if (ec) co_return 0;
      conn_.deadline = SteadyClock::now() + timeout_;
    }
    const std::size_t n = std::min(size, early_.size());
    std::memcpy(out, early_.data(), n);
    early_.remove_prefix(n);
    co_return n;
  }

  asio::awaitable<bool> write(std::string_view bytes) override {
    if (closed_) co_return false;
    std::string cipher;  // this write's own: a read's handshake output may go out meanwhile
    if (conn_.tls) {
      if (!conn_.tls->write(bytes)) co_return false;
      cipher.swap(conn_.tls->output());
      bytes = cipher;
    }
    conn_.deadline = SteadyClock::now() + timeout_;
    // At once when the socket takes it all (nearly always): no trip through the reactor.
    error_code ec;
    std::size_t sent = conn_.socket.write_some(asio::buffer(bytes), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      sent = 0;
    }
    if (!ec && sent < bytes.size()) {
      std::tie(ec, std::ignore) =
          co_await asio::async_write(conn_.socket, asio::buffer(bytes.substr(sent)), kAwait);
    }
    conn_.deadline = SteadyClock::now() + timeout_;
    co_return !ec;
  }

  void shutdown_send() override {
    error_code ec;
    if (conn_.tls) {
      conn_.tls->close_notify();
      conn_.socket.write_some(asio::buffer(conn_.tls->output()), ec);
      conn_.tls->output().clear();
    }
    conn_.socket.shutdown(tcp::socket::shutdown_send, ec);
  }

  void close() override {
    closed_ = true;
    error_code ec;
    conn_.socket.shutdown(tcp::socket::shutdown_both, ec);
    conn_.socket.cancel(ec);
  }

 private:
  Connection& conn_;
  std::string_view early_;  // plaintext not handed out yet
  char* buffer_;
  char* cipher_;
  std::chrono::milliseconds timeout_;
  bool closed_ = false;
};

// An io_context whose pending handlers (suspended coroutines) can be destroyed on demand.
class Context : public asio::io_context {  // not final: Asio probes it as an executor
 public:
  using asio::io_context::io_context;
  void destroy_pending() { shutdown(); }
};

class Server::Worker final : public internal::H2Host {
 public:
  Worker(std::size_t index, const ServerConfig& config, Handler& handler,
         const std::vector<std::pair<std::uint16_t, Handler*>>& by_port)
      : index_(index), config_(config), handler_(handler), by_port_(by_port) {
    const auto shortest = std::min({config.header_timeout, config.idle_timeout, config.io_timeout});
    tick_ = std::clamp<std::chrono::milliseconds>(shortest / 4, std::chrono::milliseconds(10),
                                                  std::chrono::seconds(1));
  }

  ~Worker() {
    if (spare_fd_ >= 0) ::close(spare_fd_);
    // (Sessions still open hold references of their own: the BIO goes with the last.)
    if (tls_bio_ != nullptr) internal::TlsSession::free_bio(tls_bio_);
    // Coroutines still suspended (requests cut off after the grace period) are destroyed here,
    // while every member they refer to is still alive.
    destroying_ = true;
    ctx_.destroy_pending();
  }

  asio::io_context& context() noexcept { return ctx_; }

  // internal::H2Host
  asio::io_context& h2_context() noexcept override { return ctx_; }
  std::size_t h2_worker() const noexcept override { return index_; }
  std::string_view h2_date() override { return date(); }
  SteadyClock::time_point h2_now() const noexcept override { return coarse_now_; }
  bool h2_stopping() const noexcept override { return stopping_; }
  std::size_t connections() const noexcept { return count_.load(std::memory_order_relaxed); }

  // The deadline sweeper; should it ever end by an exception it starts again (without it no
  // deadline would fire).
  void start() {
    core::spawn(ctx_, sweep_loop(), "the connection deadline sweeper", [this] {
      if (!finished_ && !destroying_) start();
    });
  }

  // Adopts an accepted socket (on this worker's thread), within this thread's share of the
  // connection cap: past it, the oldest connection waiting for a request makes room, or the
  // newcomer is told 503 and closed.
  void adopt(Socket socket, const TlsListener* tls) {
    if (stopping_) return;  // socket closes on destruction
    if (count_.load(std::memory_order_relaxed) >= cap_ && !make_room()) {
      error_code ec;
      if (tls != nullptr) {  // no plaintext answer on a TLS port: the client sees the close
        socket.shutdown(tcp::socket::shutdown_both, ec);
        refused_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
          "Retry-After: 1\r\nConnection: close\r\nContent-Length: 97\r\n\r\n"
          "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,"
          "\"detail\":\"too many connections\"}";
      socket.non_blocking(true, ec);
      socket.write_some(asio::buffer(kBusy), ec);  // best effort; never waits
      socket.shutdown(tcp::socket::shutdown_both, ec);
      refused_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::unique_ptr<internal::TlsSession> session;
    if (tls != nullptr) {
      if (tls_bio_ == nullptr) tls_bio_ = internal::TlsSession::new_shared_bio();
      if (!(session = internal::TlsSession::make(tls->current(), tls_bio_))) return;
    }
    Connection& conn = conns_.emplace_front(std::move(socket), handler_);
    conn.self = conns_.begin();
    conn.tls = std::move(session);
    count_.fetch_add(1, std::memory_order_relaxed);
    prepare(conn);
    conn.handler = &handler_for(conn.local_port);
    park(conn);
  }

  std::size_t states_in_use() const noexcept { return in_use_.load(std::memory_order_relaxed); }
  std::size_t states_pooled() const noexcept { return pooled_.load(std::memory_order_relaxed); }

  void set_cap(std::size_t cap) noexcept { cap_ = std::max<std::size_t>(cap, 1); }
  std::size_t evicted() const noexcept { return evicted_.load(std::memory_order_relaxed); }
  std::size_t refused() const noexcept { return refused_.load(std::memory_order_relaxed); }

  void add_acceptor(std::unique_ptr<tcp::acceptor> a, std::shared_ptr<TlsListener> tls) {
    acceptors_.push_back(std::move(a));
    acceptor_tls_.push_back(std::move(tls));
  }
  bool has_acceptor() const noexcept { return !acceptors_.empty(); }
  std::size_t acceptors() const noexcept { return acceptors_.size(); }

  // Accepts on acceptor `index` of this (first) worker and spreads connections round-robin over
  // `workers`.
  asio::awaitable<void> accept_loop(const std::vector<std::unique_ptr<Worker>>* workers,
                                    std::size_t index) {
    std::size_t next = index;
    asio::steady_timer backoff(ctx_);
    tcp::acceptor* acceptor = acceptors_[index].get();
    const TlsListener* tls = acceptor_tls_[index].get();  // held by this worker for its life
    while (true) {
      auto [ec, socket] = co_await acceptor->async_accept(kAwait);
      if (ec) {
        if (stopping_ || ec == asio::error::operation_aborted) co_return;
        if (ec == asio::error::no_descriptors && spare_fd_ >= 0) {
          // Out of descriptors: the spare one makes room to accept and close the newcomer, so it
          // hears "no" at once instead of waiting in the listen queue (libev's trick).
          ::close(spare_fd_);
          const int fd = ::accept4(acceptor->native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
          if (fd >= 0) ::close(fd);
          refused_.fetch_add(1, std::memory_order_relaxed);
          spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
          continue;
        }
        // Out of descriptors or memory: the listen queue holds clients while we back off.
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(kAwait);
        continue;
      }
      Worker& target = *(*workers)[next++ % workers->size()];
      if (&target == this) {
        adopt(std::move(socket), tls);
        continue;
      }
      // Hand the descriptor to the target thread, which registers it with its own reactor.
      const auto protocol = acceptor->local_endpoint(ec).protocol();
      error_code release_ec;
      const auto fd = socket.release(release_ec);
      if (release_ec) continue;
      asio::post(target.ctx_, [&target, protocol, fd, tls] {
        Socket s(target.ctx_);
        error_code assign_ec;
        s.assign(protocol, fd, assign_ec);
        if (!assign_ec) target.adopt(std::move(s), tls);
      });
    }
  }

  // Closes the oldest connection that waits for its next request; false if none does.
  bool make_room() {
    error_code ec;
    for (auto it = conns_.rbegin(); it != conns_.rend(); ++it) {
      Connection& c = *it;
      if (!c.idle || c.evicted) continue;
      c.evicted = true;
      c.socket.cancel(ec);
      evicted_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    return false;
  }

  void begin_stop(std::chrono::milliseconds grace) {
    stopping_ = true;
    error_code ec;
    for (auto& a : acceptors_) a->close(ec);
    for (Connection& c : conns_) {
      if (c.h2 != nullptr) {
        c.h2->shutdown();  // GOAWAY: its streams finish, then it closes
      } else if (c.idle) {
        c.socket.cancel(ec);
      }
    }
    grace_timer_.expires_after(grace);
    grace_timer_.async_wait([this](error_code wait_ec) {
      if (wait_ec) return;
      // Grace is over: whatever is still running is cut off.
      error_code close_ec;
      for (Connection& c : conns_) c.socket.close(close_ec);
      ctx_.stop();
    });
    maybe_finish();
  }

 private:
  asio::awaitable<void> sweep_loop() {
    while (true) {
      sweeper_.expires_after(tick_);
      auto [ec] = co_await sweeper_.async_wait(kAwait);
      if (ec || finished_) co_return;
      const auto now = SteadyClock::now();
      coarse_now_ = now;
      error_code cancel_ec;
      for (Connection& c : conns_) {
        if (!c.timed_out && c.deadline <= now) {
          c.timed_out = true;
          c.socket.cancel(cancel_ec);
        } else if (c.hot && !c.parking && c.deadline - config_.idle_timeout + tick_ <= now) {
          c.parking = true;  // quiet for a tick: its state goes back to the pool
          c.socket.cancel(cancel_ec);
        } else if (c.h2 != nullptr && c.idle && c.deadline - config_.idle_timeout + tick_ <= now) {
          c.h2->trim_idle();  // an HTTP/2 connection quiet for a tick keeps only its session
        }
      }
      trim_pool();
    }
  }

  // Frees the pooled states that none took in the tick that ended (those beyond kPooledStates).
  // A state given back is freed no sooner: under a load of many connections that park between
  // requests (a proxy's pool of ~1,600 to an instance), freeing whatever came back beyond a fixed
  // number cost an mmap and a munmap of a read buffer for every third request.
  void trim_pool() {
    const std::size_t unused =
        std::min(pool_low_, pool_.size() > kPooledStates ? pool_.size() - kPooledStates : 0);
    if (unused > 0) {  // the least recently given back: the front
      pool_.erase(pool_.begin(), pool_.begin() + static_cast<std::ptrdiff_t>(unused));
      pooled_.store(pool_.size(), std::memory_order_relaxed);
    }
    pool_low_ = pool_.size();
    if (unused >= kTrimAfterFreeing) {
      give_back_memory();
    } else if (core::thread_cache::trim_unused() >= kTrimAfterFreeingBytes) {
      ::malloc_trim(0);  // the blocks the program's operator new kept follow the same rule
    }
  }

  // What this thread's operator new keeps (squadron::new_cache), and what the allocator keeps
  // free, goes back to the system: the blocks of the states just freed are among them.
  static void give_back_memory() noexcept {
    core::thread_cache::trim();
    ::malloc_trim(0);
  }

  // When the states in use fell to a quarter of their peak, by 64 or more (a burst of requests
  // is over and its states went back to the pool or were freed), what the allocator keeps free
  // goes back to the system: else the memory of the burst stays in the RSS, shared out over the
  // connections that stay.
  void after_burst() {
    const std::size_t now = in_use_.load(std::memory_order_relaxed);
    if (peak_in_use_ < now + 64 || now * 4 > peak_in_use_) return;
    peak_in_use_ = now;
    asio::post(ctx_, [] { give_back_memory(); });  // after what runs now
  }

  void maybe_finish() {
    if (!stopping_ || !conns_.empty() || finished_) return;
    finished_ = true;
    sweeper_.cancel();
    grace_timer_.cancel();
  }

  std::string_view date() {
    const std::time_t now = std::time(nullptr);
    if (now != date_second_) {
      date_second_ = now;
      date_ = format_http_date(now);
    }
    return date_;
  }

  // Writes `plain` whole (encrypted first on a TLS connection): first a non-blocking attempt,
  // then asynchronously under io_timeout.
  asio::awaitable<bool> flush(Connection& conn, std::string& plain) {
    std::string* cipher = &plain;
    if (conn.tls) {
      const bool ok = plain.empty() || conn.tls->write(plain);
      plain.clear();
      if (!ok) co_return false;
      cipher = &conn.tls->output();
    }
    std::string& out = *cipher;
    std::size_t written = 0;
    error_code ec;
    written = conn.socket.write_some(asio::buffer(out), ec);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
      out.clear();
      co_return false;
    }
    if (ec) written = 0;
    if (written < out.size()) {
      conn.deadline = SteadyClock::now() + config_.io_timeout;
      auto [wec, n] = co_await asio::async_write(
          conn.socket, asio::buffer(out.data() + written, out.size() - written), kAwait);
      if (wec) {
        out.clear();
        co_return false;
      }
      // Written: no deadline until the next wait sets one (a stream may be quiet for long
      // between its pieces; io_timeout bounds a write that makes no progress, not the quiet).
      conn.deadline = SteadyClock::time_point::max();
    }
    out.clear();
    co_return true;
  }

  // Streams a chunked (or, to HTTP/1.0, close-delimited) body.
  asio::awaitable<bool> write_stream(Connection& conn, Response& res, bool chunked, bool head_only,
                                     std::string& out) {
    if (!co_await flush(conn, out)) co_return false;
    if (head_only) co_return true;
    std::uint64_t sent = 0;
    Fields trailers;
    while (true) {
      BodyPiece piece;
      try {  // a handler's own stream may still throw: the same as a failed piece
        piece = co_await res.stream();
      } catch (const std::exception& e) {
        piece = BodyPiece::failure(e.what());
      }
      // A failed body cannot be finished: closing tells the client it is cut.
      if (piece.failed()) co_return false;
      if (piece.end) trailers = std::move(piece.trailers);
      if (piece.end && piece.data.empty()) break;
      std::string* const chunk = &piece.data;
      if (chunk->empty()) continue;
      sent += chunk->size();
      // A stream of announced length must not say more than announced.
      if (res.stream_length >= 0 && sent > static_cast<std::uint64_t>(res.stream_length))
        co_return false;
      if (chunked) {
        char size[20];
        const int len = std::snprintf(size, sizeof size, "%zx\r\n", chunk->size());
        out.append(size, static_cast<std::size_t>(len));
        out.append(*chunk);
        out.append("\r\n");
      } else {
        out.append(*chunk);
      }
      if (!co_await flush(conn, out)) co_return false;
      if (piece.end) break;
    }
    if (chunked) {  // the trailer section after the last chunk (RFC 9112 §7.1.2)
      out.append("0\r\n");
      for (const auto& [name, value] : trailers)
        out.append(name).append(": ").append(value).append("\r\n");
      out.append("\r\n");
      if (!co_await flush(conn, out)) co_return false;
    }
    // Fewer bytes than announced: only closing tells the client the body is cut.
    if (res.stream_length >= 0 && sent != static_cast<std::uint64_t>(res.stream_length))
      co_return false;
    co_return true;
  }

  Handler& handler_for(std::uint16_t local_port) const noexcept {
    for (const auto& [port, h] : by_port_) {
      if (port == local_port) return *h;
    }
    return handler_;
  }

  // The connection's socket options, and what every request on it carries: the peer's address
  // and the listener's port.
  static void prepare(Connection& conn) {
    error_code ec;
    conn.socket.non_blocking(true, ec);
    conn.socket.set_option(tcp::no_delay(true), ec);
    const auto remote = conn.socket.remote_endpoint(ec);
    if (!ec) conn.remote_address = remote.address().to_string();
    const auto local = conn.socket.local_endpoint(ec);
    if (!ec) conn.local_port = local.port();
  }

  // The server's own answer `status` (the connection closes after it).
  void refuse(int status, std::string_view detail, Handler& handler, std::string& out) {
    const Response res = Response::problem(status, detail);
    serialize_head(res, date(), {}, false, false, out);
    out.append(res.body);
    handler.on_rejected(status, index_);
  }

  // The synchronous handler: true when it answered; an exception is a 500.
  bool call_handler(Handler& handler, Request& req, Response& res) {
    try {
      return handler.handle(req, res, index_);
    } catch (const std::exception&) {
      res = Response::problem(500, "the handler failed");
      return true;
    }
  }

  enum class BodyEnd { kRead, kRefused, kClientGone };
  // After the handler of a request whose body was streamed: a malformed, too large or too slow
  // body is the answer (kRefused); a client gone ends the connection.
  BodyEnd after_streamed_body(const StreamedBody& body, Handler& handler, Response& res) {
    if (body.error_status() != 0) {
      res = Response::problem(body.error_status(), body.error());
      handler.on_rejected(body.error_status(), index_);
      return BodyEnd::kRefused;
    }
    return body.failed() ? BodyEnd::kClientGone : BodyEnd::kRead;
  }

  // A whole answer into `out`.
  void answer(const Request& req, const Response& res, bool keep, std::string& out) {
    serialize_head(res, date(), req.request_id(), keep, false, out);
    if (req.method() != Method::kHead && !status_has_no_body(res.status)) out.append(res.body);
  }

  // A streamed answer's head into `out`; whether its body goes chunked (else close-delimited to
  // HTTP/1.0, or by its known length). May turn `keep` off.
  bool answer_streamed(const Request& req, const Response& res, bool& keep, std::string& out) {
    const bool chunked =
        req.version_minor() >= 1 && !status_has_no_body(res.status) && res.stream_length < 0;
    if (!chunked && res.stream_length < 0) keep = false;
    serialize_head(res, date(), req.request_id(), keep, chunked, out);
    return chunked;
  }

  // The deadline of a read inside a request: the I/O timeout inside a body, the header timeout
  // inside a head. (Between requests the connection is parked: see park().)
  void arm_deadline(Connection& conn, const RequestParser& parser,
                    SteadyClock::time_point head_started) {
    conn.deadline =
        parser.in_body() ? coarse_now_ + config_.io_timeout : head_started + config_.header_timeout;
  }

  // One connection's state while it serves, shared by the loop and the request being served:
  // the connection's own part and the pooled one.
  struct Session {
    Session(Connection& c, RequestState& state, SteadyClock::time_point now)
        : conn(c),
          handler(*c.handler),
          req(state.req),
          parser(state.parser),
          out(state.out),
          read_buffer(state.read_buffer.get()),
          head_started(now) {
      if (c.tls) {
        if (!state.cipher_buffer) state.cipher_buffer = internal::ReadBuffer::make();
        cipher_buffer = state.cipher_buffer.get();
      }
    }
    Connection& conn;
    Handler& handler;
    Request& req;
    RequestParser& parser;
    std::string& out;
    char* read_buffer;
    char* cipher_buffer = nullptr;  // a TLS connection's socket reads (read_buffer: plaintext)
    std::unique_ptr<RequestState>* owner = nullptr;  // the state's, in serve()
    std::string_view data;  // received bytes not parsed yet (in conn.parked or read_buffer)
    bool close_after = false;
    bool linger = false;  // refused while the client may still be sending: drain before close
    SteadyClock::time_point head_started;
  };
  // Before the handler of the request the parser just completed (or, `body_streams`, whose
  // head it completed: the handler reads the body as it arrives): calls the synchronous
  // handler; true when it answered.
  bool begin_request(Session& s, bool body_streams, std::optional<StreamedBody>& streamed,
                     Response& res) {
    s.conn.served_any = true;
    s.conn.deadline = SteadyClock::time_point::max();
    if (body_streams) {
      streamed.emplace(s.conn, s.parser, s.req, s.data, s.read_buffer, s.cipher_buffer, coarse_now_,
                       config_.io_timeout);
      s.req.set_body_reader(&*streamed);
    }
    return call_handler(s.handler, s.req, res);
  }

  enum class Served { kNext, kClose, kGone };
  // After the handler: a streamed body's verdict, then the answer's head (and a whole body)
  // into `s.out`; `chunked` says how a streamed answer's body goes on.
  Served end_request(Session& s, const std::optional<StreamedBody>& streamed, Response& res,
                     bool& chunked) {
    if (s.conn.tls && !s.conn.tls->hsts().empty())
      res.set_header("Strict-Transport-Security", s.conn.tls->hsts());
    // A 101 says `Connection: Upgrade` itself, never `close`: the connection goes on as a tunnel.
    bool keep =
        (s.req.keep_alive() && !res.close && !stopping_) || (res.status == 101 && res.upgraded);
    if (streamed) {
      s.conn.deadline = SteadyClock::time_point::max();
      const auto after = after_streamed_body(*streamed, s.handler, res);
      if (after == BodyEnd::kClientGone) return Served::kGone;
      s.linger |= after == BodyEnd::kRefused;
      // A body not read to its end leaves the connection out of step: close it after.
      if (!streamed->complete()) keep = false;
    }
    if (res.status == 101 && res.upgraded && res.upgrade_writes_head) {
      // Its handler answers (below, in upgrade()).
    } else if (res.stream) {
      chunked = answer_streamed(s.req, res, keep, s.out);
    } else {
      answer(s.req, res, keep, s.out);
    }
    return keep ? Served::kNext : Served::kClose;
  }

  // A connection between requests (and a new one) waits with no coroutine frame and no pooled
  // state: a read into its own small buffer, under the keep-alive timeout (the header timeout
  // before its first request). Bytes start serve(); an error, the deadline, an eviction or the
  // stop closes it.
  void park(Connection& conn) {
    if (stopping_) {
      close(conn);
      return;
    }
    conn.idle = true;
    conn.deadline = coarse_now_ + (conn.served_any ? config_.idle_timeout : config_.header_timeout);
    if (conn.tls) conn.tls->idle();
    conn.socket.async_read_some(
        asio::buffer(conn.parked), [this, &conn](error_code ec, std::size_t n) {
          conn.idle = false;
          // Parked at (deadline - idle timeout), at the coarse clock's tick.
          conn.busy = conn.served_any && coarse_now_ < conn.deadline - config_.idle_timeout + tick_;
          if (ec || n == 0) {
            close(conn);
            return;
          }
          asio::co_spawn(ctx_, serve(conn, n), [this, &conn](std::exception_ptr e, bool again) {
            log_exception(e);
            if (again && !e) {
              park(conn);
            } else {
              close(conn);
            }
          });
        });
  }

  // Ends what the connection sends: a TLS one's close_notify first (best effort: it tells the
  // client the answers are complete, not cut off, and lets it keep the session for resumption),
  // then the FIN.
  static void end_output(Connection& conn) {
    error_code ec;
    if (conn.tls && conn.tls->handshake_done() && !conn.tls->sent_close_notify() && !conn.evicted &&
        !conn.timed_out) {
      conn.tls->close_notify();
      conn.socket.write_some(asio::buffer(conn.tls->output()), ec);
      conn.tls->output().clear();
    }
    conn.socket.shutdown(tcp::socket::shutdown_send, ec);
  }

  void close(Connection& conn) {
    error_code ec;
    end_output(conn);
    conn.socket.close(ec);
    conns_.erase(conn.self);
    count_.fetch_sub(1, std::memory_order_relaxed);
    maybe_finish();
  }

  std::unique_ptr<RequestState> take_state(const Connection& conn) {
    std::unique_ptr<RequestState> state;
    if (pool_.empty()) {
      state = std::make_unique<RequestState>(config_.limits);
    } else {
      state = std::move(pool_.back());
      pool_.pop_back();
      pooled_.store(pool_.size(), std::memory_order_relaxed);
      pool_low_ = std::min(pool_low_, pool_.size());
    }
    in_use_.fetch_add(1, std::memory_order_relaxed);
    peak_in_use_ = std::max(peak_in_use_, in_use_.load(std::memory_order_relaxed));
    state->req.set_remote_address(conn.remote_address);
    state->req.set_local_port(conn.local_port);
    state->req.set_secure(conn.tls != nullptr);
    return state;
  }

  void give_back(std::unique_ptr<RequestState> state) {
    if (!state) return;  // given back already (an upgraded connection's, before its tunnel)
    in_use_.fetch_sub(1, std::memory_order_relaxed);
    if (!destroying_) after_burst();
    if (destroying_) return;  // freed (pooled ones are freed by trim_pool() when unused)
    state->parser.reset(state->req);
    state->out.clear();
    if (state->out.capacity() > kMaxBatchedOutput) std::string().swap(state->out);
    pool_.push_back(std::move(state));
    pooled_.store(pool_.size(), std::memory_order_relaxed);
  }

  // Serves the requests of the `n` bytes that arrived in conn.parked, and of whatever follows
  // them until the connection is between requests again: true to park it, false to close it.
  asio::awaitable<bool> serve(Connection& conn, std::size_t n) {
    std::unique_ptr<RequestState> state = take_state(conn);
    core::ScopeExit back([this, &state] { give_back(std::move(state)); });
    Session s(conn, *state, coarse_now_);
    s.owner = &state;
    if (conn.tls) {
      conn.tls->feed(std::string_view(conn.parked, n));  // plaintext comes by tls_read()
    } else {
      s.data = std::string_view(conn.parked, n);
      if (config_.http2.enabled && !conn.served_any &&
          internal::H2Connection::starts_preface(s.data))
        co_return co_await serve_h2(s);  // h2c by prior knowledge
    }
    const bool again = co_await serve_requests(s);
    if (again) co_return true;
    end_output(conn);
    if (s.linger && !stopping_) co_await discard_input(conn, s.read_buffer);
    co_return false;
  }

  // The connection speaks HTTP/2 from here to its end (`s.data`: its first bytes); false: close.
  asio::awaitable<bool> serve_h2(Session& s) {
    s.conn.served_any = true;
    std::optional<internal::H2Connection> h2;
    try {
      h2.emplace(s.conn, *this, config_, s.read_buffer, s.cipher_buffer);
    } catch (const std::bad_alloc&) {
      co_return false;
    }
    const std::string_view first = s.data;
    s.data = {};
    co_await h2->run(first);
    co_return false;
  }

  // After a 101's head: the connection is the handler's (with the bytes that followed the
  // request), then it closes.
  asio::awaitable<bool> upgrade(Session& s, Response& res) {
    if (!co_await flush(s.conn, s.out)) co_return false;
    // A plain tunnel reads into its handler's buffers: its request state goes back to the pool
    // now (nothing below reads it), rather than stay with the tunnel for its life. A TLS one
    // keeps it: its buffers take the ciphertext and the plaintext.
    std::string early;
    if (!s.conn.tls) {
      early.assign(s.data);
      s.data = {};
      if (s.owner != nullptr) give_back(std::move(*s.owner));
    }
    UpgradedConnection up(s.conn, s.conn.tls ? s.data : std::string_view(early),
                          s.conn.tls ? s.read_buffer : nullptr,
                          s.conn.tls ? s.cipher_buffer : nullptr, config_.tunnel_timeout);
    s.data = {};
    try {
      co_await res.upgraded(up);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "squadron: an upgraded connection's handler failed: %s\n", e.what());
    }
    co_return false;
  }

  asio::awaitable<bool> serve_requests(Session& s) {
    Connection& conn = s.conn;
    error_code ec;
    while (true) {
      // Every request of what has arrived, in order (their answers batched into one send).
      while (!s.data.empty() && !s.close_after) {
        if (!s.parser.started()) s.head_started = coarse_now_;
        const ParseResult r = s.parser.feed(s.data, s.req);
        s.data.remove_prefix(r.consumed);
        if (r.status == ParseStatus::kNeedMore) break;
        if (r.status == ParseStatus::kHeadersDone) {
          if (s.req.expects_continue() && s.data.empty()) {
            s.out.append(kContinue);
            if (!co_await flush(s.conn, s.out)) co_return false;
          }
          if (!s.parser.streams_body()) continue;  // else the handler reads it as it arrives
        }
        if (r.status == ParseStatus::kError) {
          refuse(s.parser.error().status, s.parser.error().detail, s.handler, s.out);
          s.close_after = s.linger = true;  // the client may still be sending what we refused
          break;
        }
        std::optional<StreamedBody> streamed;
        Response res;
        if (!begin_request(s, r.status == ParseStatus::kHeadersDone, streamed, res)) {
          try {
            co_await s.handler.handle_async(s.req, res, index_);
          } catch (const std::exception&) {
            res = Response::problem(500, "the handler failed");
          }
        }
        bool chunked = false;
        const Served served = end_request(s, streamed, res, chunked);
        if (served == Served::kGone) co_return false;
        if (res.status == 101 && res.upgraded) co_return co_await upgrade(s, res);
        if (res.stream &&
            !co_await write_stream(s.conn, res, chunked, s.req.method() == Method::kHead, s.out))
          co_return false;
        s.parser.reset(s.req);
        s.close_after = served == Served::kClose;
        if (s.out.size() >= kMaxBatchedOutput && !co_await flush(s.conn, s.out)) co_return false;
      }
      if (!s.out.empty() && !co_await flush(conn, s.out)) co_return false;
      if (s.close_after) co_return false;
      if (!s.data.empty()) continue;  // a flush happened mid-batch; keep parsing
      if (!s.parser.started()) {      // between requests
        if (stopping_) co_return false;
        if (conn.tls && conn.tls->pending()) {
          // A handshake, or a request whose records came with the last ones: not idle.
          conn.deadline = s.head_started + config_.header_timeout;
          auto [tls_ec, got] = co_await tls_read(conn, s.read_buffer, s.cipher_buffer);
          if (tls_ec) {
            if (conn.timed_out) {
              refuse(408, "the request did not arrive in time", s.handler, s.out);
              if (conn.tls->handshake_done()) send_now(conn, s.out);
            }
            co_return false;
          }
          s.data = std::string_view(s.read_buffer, got);
          // ALPN chose h2 in the handshake just done: the client's first bytes are its preface.
          if (!conn.served_any && config_.http2.enabled && conn.tls->alpn() == "h2")
            co_return co_await serve_h2(s);
          continue;
        }
        if (!conn.busy || hot_ >= config_.hot_connections) co_return true;  // park
        ++hot_;
        conn.idle = conn.hot = true;
        conn.deadline = coarse_now_ + config_.idle_timeout;
        error_code idle_ec;
        std::size_t got = 0;
        if (conn.tls) {
          std::tie(idle_ec, got) = co_await tls_read(conn, s.read_buffer, s.cipher_buffer);
        } else {
          std::tie(idle_ec, got) = co_await conn.socket.async_read_some(
              asio::buffer(s.read_buffer, kReadBufferBytes), kAwait);
        }
        --hot_;
        conn.idle = conn.hot = false;
        const bool park = conn.parking && !conn.timed_out && !conn.evicted;
        conn.parking = false;
        if (idle_ec) co_return park&& idle_ec == asio::error::operation_aborted && !stopping_;
        s.data = std::string_view(s.read_buffer, got);
        continue;
      }
      // Inside a request: wait for the rest under the deadline that fits where it is.
      arm_deadline(conn, s.parser, s.head_started);
      error_code read_ec;
      std::size_t n = 0;
      if (conn.tls) {
        std::tie(read_ec, n) = co_await tls_read(conn, s.read_buffer, s.cipher_buffer);
      } else {
        std::tie(read_ec, n) = co_await conn.socket.async_read_some(
            asio::buffer(s.read_buffer, kReadBufferBytes), kAwait);
      }
      if (read_ec == asio::error::operation_aborted || (read_ec && conn.timed_out)) {
        if (conn.timed_out) {
          refuse(408, "the request did not arrive in time", s.handler, s.out);
          send_now(conn, s.out);  // best effort
        }
        co_return false;
      }
      if (read_ec) co_return false;  // EOF or reset
      s.data = std::string_view(s.read_buffer, n);
    }
  }

  // Lingering close (as nginx's lingering_close): after refusing a request whose body may still
  // be arriving (413, 431, 400), read and drop input for a while before closing. Closing with
  // unread input sends a reset, and a reset can destroy our answer before the client reads it.
  asio::awaitable<void> discard_input(Connection& conn, char* buffer) {
    constexpr std::size_t kMaxDiscard = 8 * 1024 * 1024;
    conn.timed_out = false;
    conn.deadline = coarse_now_ + std::chrono::seconds(2);
    std::size_t discarded = 0;
    while (discarded < kMaxDiscard) {
      auto [ec, n] =
          co_await conn.socket.async_read_some(asio::buffer(buffer, kReadBufferBytes), kAwait);
      if (ec) break;  // EOF: the client closed; or the deadline passed
      discarded += n;
    }
  }

  const std::size_t index_;
  const ServerConfig& config_;
  Handler& handler_;
  const std::vector<std::pair<std::uint16_t, Handler*>>& by_port_;  // the Server's
  // One thread per context, and every socket of a context is touched only by its thread (accepted
  // descriptors are handed over by post()), so the reactor may skip its per-descriptor locks.
  Context ctx_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::steady_timer sweeper_{ctx_};
  asio::steady_timer grace_timer_{ctx_};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;   // worker 0 only
  std::vector<std::shared_ptr<TlsListener>> acceptor_tls_;  // each acceptor's, or null
  std::chrono::milliseconds tick_{1000};
  // The time at the last sweep: deadlines are only checked at sweeps, so they are set from this
  // instead of reading the clock twice per request (a deadline fires within two ticks of due).
  SteadyClock::time_point coarse_now_ = SteadyClock::now();
  std::list<Connection> conns_;  // newest first (after ctx_: their sockets go before it)
  std::size_t hot_ = 0;          // connections waiting hot (config_.hot_connections)
  std::vector<std::unique_ptr<RequestState>> pool_;  // the most recently given back last
  std::size_t pool_low_ = 0;  // the fewest pooled since the last sweep: none took those
  std::atomic<std::size_t> in_use_{0};
  std::atomic<std::size_t> pooled_{0};
  std::size_t peak_in_use_ = 0;  // since the last after_burst() trim
  std::atomic<std::size_t> count_{0};
  std::size_t cap_ = SIZE_MAX;  // this thread's share of max_connections
  std::atomic<std::size_t> evicted_{0};
  std::atomic<std::size_t> refused_{0};
  // Kept open to be closed when accept() fails for want of descriptors (worker 0 only).
  int spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  BIO* tls_bio_ = nullptr;  // what this thread's TLS sessions share (TlsSession::new_shared_bio)
  std::string date_;
  std::time_t date_second_ = 0;
  bool stopping_ = false;
  bool finished_ = false;
  bool destroying_ = false;
};

Server::Server(ServerConfig config, Handler& handler)
    : config_(std::move(config)), handler_(handler) {
  std::size_t n = config_.threads;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  for (std::size_t i = 0; i < n; ++i)
    workers_.push_back(std::make_unique<Worker>(i, config_, handler_, by_port_));
  max_connections_ = config_.max_connections;
  if (max_connections_ == 0) {
    const std::size_t limit = core::fd_limit();
    const std::size_t reserve = std::max<std::size_t>(64, limit / 10);
    max_connections_ = limit > reserve + 16 ? limit - reserve : 16;
  }
  // Each thread keeps its share: a connection stays on the thread that adopted it.
  for (auto& w : workers_) w->set_cap((max_connections_ + n - 1) / n);
}

std::size_t Server::evicted() const noexcept {
  std::size_t n = 0;
  for (const auto& w : workers_) n += w->evicted();
  return n;
}

std::size_t Server::refused() const noexcept {
  std::size_t n = 0;
  for (const auto& w : workers_) n += w->refused();
  return n;
}

Server::Memory Server::memory() const noexcept {
  Memory m;
  for (const auto& w : workers_) {
    m.connections += w->connections();
    m.states_in_use += w->states_in_use();
    m.states_pooled += w->states_pooled();
  }
  constexpr std::size_t kState = sizeof(RequestState) + kReadBufferBytes;
  m.record_bytes = m.connections * sizeof(Connection);
  m.in_use_bytes = m.states_in_use * kState;
  m.pooled_bytes = m.states_pooled * kState;
  return m;
}

Server::~Server() = default;

std::size_t Server::threads() const noexcept { return workers_.size(); }

asio::io_context& Server::main_context() noexcept { return workers_[0]->context(); }

asio::io_context& Server::context(std::size_t i) noexcept { return workers_.at(i)->context(); }

std::size_t Server::connections() const noexcept {
  std::size_t n = 0;
  for (const auto& w : workers_) n += w->connections();
  return n;
}

error_code Server::listen() { return listen_also(config_.host, config_.port, &port_, tls_); }

error_code Server::adopt_listener(int fd, std::uint16_t* bound, std::shared_ptr<TlsListener> tls) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  int listening = 0;
  socklen_t optlen = sizeof listening;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0)
    return {errno, boost::system::system_category()};
  if (listening == 0 || (addr.ss_family != AF_INET && addr.ss_family != AF_INET6))
    return asio::error::invalid_argument;
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  const bool primary = !workers_[0]->has_acceptor();
  auto acceptor = std::make_unique<tcp::acceptor>(main_context());
  error_code ec;
  acceptor->assign(addr.ss_family == AF_INET ? tcp::v4() : tcp::v6(), fd, ec);
  if (ec) return ec;
  const auto port = acceptor->local_endpoint(ec).port();
  if (ec) return ec;
  if (bound != nullptr) *bound = port;
  if (primary) port_ = port;
  workers_[0]->add_acceptor(std::move(acceptor), std::move(tls));
  return {};
}

error_code Server::listen_also(const std::string& host, std::uint16_t port, std::uint16_t* bound,
                               std::shared_ptr<TlsListener> tls) {
  error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return ec;
  auto acceptor = std::make_unique<tcp::acceptor>(main_context());
  const tcp::endpoint ep(address, port);
  acceptor->open(ep.protocol(), ec);
  // Asio opens sockets without SOCK_CLOEXEC: no program this one starts may hold its listener.
  if (!ec) ::fcntl(acceptor->native_handle(), F_SETFD, FD_CLOEXEC);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(ep, ec);
  if (!ec) acceptor->listen(config_.backlog, ec);
  if (ec) return ec;
  if (bound != nullptr) *bound = acceptor->local_endpoint(ec).port();
  workers_[0]->add_acceptor(std::move(acceptor), std::move(tls));
  return {};
}

void Server::serve_port_with(std::uint16_t port, Handler& handler) {
  SQUADRON_CHECK(port != 0, "serve_port_with() takes a bound port");
  by_port_.emplace_back(port, &handler);
}

void Server::run() {
  SQUADRON_CHECK(workers_[0]->has_acceptor(), "Server::listen() must succeed before run()");
  for (auto& w : workers_) w->start();
  for (std::size_t i = 0; i < workers_[0]->acceptors(); ++i)
    asio::co_spawn(main_context(), workers_[0]->accept_loop(&workers_, i), log_exception);
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers_.size(); ++i) {
    threads.emplace_back([w = workers_[i].get()] { w->context().run(); });
  }
  workers_[0]->context().run();
  for (auto& t : threads) t.join();
}

void Server::stop(std::chrono::milliseconds grace) {
  if (stopping_.exchange(true)) return;
  for (auto& w : workers_) {
    asio::post(w->context(), [w = w.get(), grace] { w->begin_stop(grace); });
  }
}

}  // namespace squadron::http
