#include "squadron/http/client.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <deque>
#include <functional>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <stdexcept>
#include <sys/socket.h>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "squadron/core/spawn.hpp"
#include "squadron/http/internal/per_context.hpp"
#include "squadron/http/internal/read_buffer.hpp"
#include "squadron/http/outbound.hpp"
#include "squadron/http/request.hpp"
#include "squadron/http/response_parser.hpp"

namespace squadron::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::size_t kReadBufferBytes = internal::ReadBuffer::kBytes;

// Read buffers a pool keeps for its next exchanges at least; as many as were in use at once
// since the last burst ended, when more (see ConnectionPool::Impl::put_idle).
constexpr std::size_t kPooledBuffers = 64;

// What every pool of the process holds (ConnectionPool::memory()).
struct Held {
  std::atomic<std::int64_t> idle{0};
  std::atomic<std::int64_t> buffers_in_use{0};
  std::atomic<std::int64_t> buffers_pooled{0};
  std::atomic<std::int64_t> waiting{0};  // exchanges waiting for a place (max_connections)
};
Held& held() {
  static Held h;
  return h;
}
void count(std::atomic<std::int64_t>& n, std::int64_t delta) {
  n.fetch_add(delta, std::memory_order_relaxed);
}

// A pooled connection: a plain socket (no timer per operation: the pool's sweeper enforces
// deadlines), its parser, and while it is in use a read buffer of its own. The buffer must be
// the connection's while it reads: the reactor performs the reads of every socket that an
// epoll round found readable before it runs any completion, so reads of two connections into
// one shared buffer overwrite each other (one answer lost, or handed to the wrong request).
// An idle connection gives its buffer back to the pool: it holds only its socket and parser.
struct Connection {
  explicit Connection(const asio::io_context::executor_type& ex) : socket(ex) {}
  ~Connection() {
    if (!buffer) return;
    count(held().buffers_in_use, -1);
    if (owner_alive && *owner_alive) --*owner_in_use;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  tcp::socket socket;
  ResponseParser parser;
  internal::ReadBuffer buffer;  // none while idle
  // The pool's count of buffers in use, while the pool lives (set when it first lends one).
  std::shared_ptr<bool> owner_alive;
  std::size_t* owner_in_use = nullptr;
};

// An operation's deadline, linked in place into the pool's list (no allocation per request).
struct Deadline {
  tcp::socket* socket = nullptr;
  std::chrono::steady_clock::time_point at;
  bool expired = false;
  Deadline* prev = nullptr;
  Deadline* next = nullptr;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

bool framing_header(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "connection") || iequals(name, "keep-alive");
}

// Whether the `Connection` fields among `headers` name `name` (a hop-by-hop header of the sender's,
// RFC 9110 §7.6.1: not passed on).
bool named_in_connection(const std::vector<std::pair<std::string_view, std::string_view>>& headers,
                         std::string_view name) {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) {
    return iequals(h.first, "connection") && has_token(h.second, name);
  });
}

// A Content-Type value the answer's own field can be told by a constant (Response::content_type)
// instead of a string of its own: the usual ones. (A proxied answer then costs no allocation.)
std::string_view interned_content_type(std::string_view value) noexcept {
  for (const std::string_view known :
       {kTextPlain, kApplicationJson, kProblemJson, std::string_view("application/grpc"),
        std::string_view("text/html; charset=utf-8"), std::string_view("text/html")}) {
    if (value == known) return known;
  }
  return {};
}

// The answer's status and end-to-end headers into `response` (a fresh one).
void fill_head(const ResponseParser& parser, const ExchangeOptions& options, Response& response) {
  response = Response{};
  response.status = parser.status();
  response.content_type = {};
  const auto& all = parser.headers();
  const bool has_connection = std::any_of(all.begin(), all.end(), [](const auto& h) {
    return iequals(h.first, "connection");
  });  // usually absent: an HTTP/1.1 answer that keeps the connection says nothing
  bool several_types = false;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& [name, value] = all[i];
    // An answer to HEAD announces the length a GET would get: kept as it was said.
    if (options.head && iequals(name, "content-length")) {
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec == std::errc() && end == value.data() + value.size())
        response.stream_length = static_cast<std::int64_t>(n);
      continue;
    }
    if (framing_header(name) || (options.drop_header != nullptr && options.drop_header(name)) ||
        (has_connection && named_in_connection(all, name)))
      continue;
    if (iequals(name, "content-type")) {
      if (several_types || !response.content_type.empty()) {  // all go on as they came
        if (!response.content_type.empty())
          response.headers.emplace_back("Content-Type", std::string(response.content_type));
        response.content_type = {};
        several_types = true;
      } else if (const auto known = interned_content_type(value); !known.empty()) {
        response.content_type = known;  // written where the Content-Type goes
        continue;
      }
    }
    if (response.headers.empty()) response.headers.reserve(all.size() - i);
    response.headers.emplace_back(std::string(name), std::string(value));
  }
}

// An exchange waiting for a place among an upstream's connections (max_connections).
struct Waiter {
  asio::steady_timer* timer;
  bool granted = false;  // a place was handed on to it: it is counted in Peer::busy already
};

// What the pool keeps of one upstream (a key): its idle connections, and how many of its
// connections are in use, with the exchanges waiting for one (ExchangeOptions::max_connections).
struct Peer {
  std::vector<std::unique_ptr<Connection>> idle;  // the last one put back is taken first
  std::size_t busy = 0;                           // places taken: in use or being opened
  std::deque<Waiter*> waiting;                    // first come, first served
};

// One exchange's place among its upstream's connections, and then its streamed body's, given
// back at the end: to the first waiter if there is one (it then takes the connection just put
// back idle, or opens one in place of one closed), else to the count.
class Place {
 public:
  explicit Place(Peer* peer) noexcept : peer_(peer) {}
  Place(Place&& other) noexcept : peer_(std::exchange(other.peer_, nullptr)) {}
  Place& operator=(Place&&) = delete;
  ~Place() { release(); }
  void release() noexcept {
    if (peer_ == nullptr) return;
    Peer& peer = *std::exchange(peer_, nullptr);
    if (peer.waiting.empty()) {
      --peer.busy;
      return;
    }
    Waiter* next = peer.waiting.front();
    peer.waiting.pop_front();
    next->granted = true;
    next->timer->cancel();
  }
  void forget() noexcept { peer_ = nullptr; }  // the pool is gone

 private:
  Peer* peer_;
};

}  // namespace

struct ConnectionPool::Impl {
  Impl(asio::io_context::executor_type ex, std::size_t idle_cap)
      : executor(std::move(ex)), max_idle(idle_cap) {}
  asio::io_context::executor_type executor;
  std::size_t max_idle;
  using List = std::vector<std::unique_ptr<Connection>>;
  std::unordered_map<std::string, Peer, StringHash, std::equal_to<>> peers;
  // The upstream `key` (found without allocating), made when missing. The last one found is
  // remembered: an exchange asks twice, and a gateway's thread mostly for the same few instances
  // (hashing the key was 1 % of a proxied request). Peers stay where they are while the pool
  // lives: exchanges and streamed bodies hold their places by pointer.
  Peer& peer(std::string_view key) {
    if (last_peer != nullptr && key == last_key) return *last_peer;
    auto it = peers.find(key);
    if (it == peers.end()) it = peers.emplace(std::string(key), Peer{}).first;
    last_key.assign(key);
    last_peer = &it->second;
    return it->second;
  }
  std::string last_key;
  Peer* last_peer = nullptr;
  std::vector<internal::ReadBuffer> buffers;  // read buffers for the next exchanges
  std::size_t buffers_in_use = 0;
  std::size_t peak_in_use = 0;  // since the last trim()
  std::size_t last_peak = 0;    // in the second before it
  // A connection goes into use: it gets a read buffer.
  void in_use(Connection& conn) {
    if (conn.buffer) return;
    if (buffers.empty()) {
      conn.buffer = internal::ReadBuffer::make();
    } else {
      conn.buffer = std::move(buffers.back());
      buffers.pop_back();
      count(held().buffers_pooled, -1);
    }
    count(held().buffers_in_use, 1);
    if (!conn.owner_alive) {
      conn.owner_alive = alive;
      conn.owner_in_use = &buffers_in_use;
    }
    peak_in_use = std::max(peak_in_use, ++buffers_in_use);
  }
  // `conn` goes idle in `list`, its read buffer back to the pool. The pool keeps as many as were
  // in use at once lately: under a steady 1,600 exchanges at once, freeing those past 64 cost an
  // mmap and an munmap (a TLB flush) per exchange, 40 % of the gateway's time (perf, bench/h2.sh).
  // The sweeper trims it each second to the last second's peak (trim()).
  void put_idle(List& list, std::unique_ptr<Connection> conn) {
    if (conn->buffer) {
      count(held().buffers_in_use, -1);
      --buffers_in_use;
      if (buffers.size() < std::max({kPooledBuffers, peak_in_use, last_peak})) {
        buffers.push_back(std::move(conn->buffer));
        count(held().buffers_pooled, 1);
      }
      conn->buffer.reset();
    }
    list.push_back(std::move(conn));
    count(held().idle, 1);
  }
  // Frees the pooled buffers past the peak in use since the last trim (a burst's go back to the
  // system a second or two after it). Between trims the pool keeps up to the higher of this
  // second's peak and the last one's: what in use falls from comes back within the second.
  void trim() {
    const std::size_t keep = std::max(kPooledBuffers, peak_in_use);
    if (buffers.size() > keep) {
      count(held().buffers_pooled, -static_cast<std::int64_t>(buffers.size() - keep));
      buffers.resize(keep);
    }
    last_peak = peak_in_use;
    peak_in_use = buffers_in_use;
  }
  std::unique_ptr<Connection> take_idle(List& list) {
    auto conn = std::move(list.back());
    list.pop_back();
    count(held().idle, -1);
    return conn;
  }
  void drop_idle() {
    std::int64_t n = 0;
    for (auto& [key, peer] : peers) {
      n += static_cast<std::int64_t>(peer.idle.size());
      peer.idle.clear();
    }
    count(held().idle, -n);
  }
  ~Impl() {
    drop_idle();
    count(held().buffers_pooled, -static_cast<std::int64_t>(buffers.size()));
  }
  Deadline* deadlines = nullptr;  // the first of a doubly linked list
  bool sweeping = false;
  // Set while the pool lives; the sweeper stops when it is gone.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

namespace {

// Cancels the socket of every operation past its deadline, every 50 ms while there are any.
asio::awaitable<void> sweep(ConnectionPool::Impl* pool, std::shared_ptr<bool> alive) {
  asio::steady_timer timer(pool->executor);
  unsigned ticks = 0;
  unsigned quiet = 0;  // ticks in a row with nothing in flight
  // With more than the usual buffers pooled it goes on two seconds after the last exchange: a
  // load comes in waves (every answer of a wave back, then its clients' next requests), and
  // trimming at each gap would free what the next wave needs again. (Else it ends at once: a
  // command's io_context runs until its few exchanges are done, not two seconds more.)
  while (*alive &&
         (pool->deadlines != nullptr || (quiet < 40 && pool->buffers.size() > kPooledBuffers))) {
    quiet = pool->deadlines == nullptr ? quiet + 1 : 0;
    timer.expires_after(std::chrono::milliseconds(50));
    co_await timer.async_wait(kAwait);
    if (!*alive) co_return;
    if (++ticks % 20 == 0) pool->trim();
    const auto now = std::chrono::steady_clock::now();
    for (auto* d = pool->deadlines; d != nullptr; d = d->next) {
      if (!d->expired && d->at <= now) {
        d->expired = true;
        boost::system::error_code ec;
        d->socket->cancel(ec);
      }
    }
  }
  if (!*alive) co_return;
  pool->sweeping = false;
  for (int i = 0; i < 3; ++i) pool->trim();  // quiet for long: the last burst's buffers go
}

// Lists `d` with the pool's sweeper for as long as it lives.
class Watched {
 public:
  Watched(ConnectionPool::Impl& pool, Deadline& d) : pool_(pool), d_(d) {
    d.prev = nullptr;
    d.next = pool.deadlines;
    if (pool.deadlines != nullptr) pool.deadlines->prev = &d;
    pool.deadlines = &d;
    if (!pool.sweeping) {
      pool.sweeping = true;
      // Should it end by an exception, the next watched operation starts another.
      core::spawn(pool.executor, sweep(&pool, pool.alive), "the upstream deadline sweeper",
                  [p = &pool, alive = pool.alive] {
                    if (*alive) p->sweeping = false;
                  });
    }
  }
  ~Watched() {
    if (d_.prev != nullptr) d_.prev->next = d_.next;
    if (d_.next != nullptr) d_.next->prev = d_.prev;
    if (pool_.deadlines == &d_) pool_.deadlines = d_.next;
  }
  Watched(const Watched&) = delete;
  Watched& operator=(const Watched&) = delete;

 private:
  ConnectionPool::Impl& pool_;
  Deadline& d_;
};

// A response body still arriving when exchange() returned: owns the connection until the body
// has been handed on, then gives it back to the pool.
struct Pump {
  explicit Pump(Place p) : place(std::move(p)) {}
  ~Pump() {
    if (alive && !*alive) place.forget();
  }
  Pump(const Pump&) = delete;
  Pump& operator=(const Pump&) = delete;
  ConnectionPool::Impl* pool;
  std::shared_ptr<bool> alive;  // the pool's
  std::string key;
  Place place;  // among the upstream's connections, given back once the body has come
  std::unique_ptr<Connection> conn;
  std::chrono::steady_clock::time_point deadline;
  std::chrono::milliseconds idle{0};  // each piece within this of the one before (0: deadline)
  bool leftover = false;
};

asio::awaitable<BodyPiece> pump_next(std::shared_ptr<Pump> pump) {
  Pump& p = *pump;
  if (!p.conn || !*p.alive) co_return BodyPiece::failure("the upstream connection is gone");
  ResponseParser& parser = p.conn->parser;
  while (true) {
    if (!parser.body().empty()) {
      std::string out;
      out.swap(parser.body());
      co_return BodyPiece::more(std::move(out));
    }
    if (parser.done()) {
      auto& idle = p.pool->peer(p.key).idle;
      if (parser.keep_alive() && !p.leftover && idle.size() < p.pool->max_idle)
        p.pool->put_idle(idle, std::move(p.conn));
      p.conn.reset();
      p.place.release();  // after the connection went idle: a waiter takes it
      co_return BodyPiece::last();
    }
    Deadline limit;
    limit.socket = &p.conn->socket;
    limit.at = p.idle.count() > 0 ? std::chrono::steady_clock::now() + p.idle : p.deadline;
    Watched watched(*p.pool, limit);
    auto [ec, n] = co_await p.conn->socket.async_read_some(
        asio::buffer(p.conn->buffer.get(), kReadBufferBytes), kAwait);
    if (!*p.alive) co_return BodyPiece::failure("the connection pool is gone");
    if (limit.expired) {
      co_return BodyPiece::failure(p.idle.count() > 0
                                       ? "the upstream's body stopped arriving"
                                       : "the upstream's body did not arrive in time");
    }
    if (ec == asio::error::eof) {
      if (parser.finish_eof() != ResponseParser::Result::kDone)
        co_return BodyPiece::failure("the upstream cut its body off");
      continue;
    }
    if (ec) co_return BodyPiece::failure("the upstream's body failed: " + ec.message());
    std::size_t used = 0;
    const auto r = parser.feed(std::string_view(p.conn->buffer.get(), n), used);
    if (r == ResponseParser::Result::kError)
      co_return BodyPiece::failure("the upstream's body is malformed: " +
                                   std::string(parser.error()));
    p.leftover = used < n;
  }
}

}  // namespace

ConnectionPool::ConnectionPool(asio::io_context::executor_type executor,
                               std::size_t max_idle_per_upstream)
    : impl_(std::make_unique<Impl>(std::move(executor), max_idle_per_upstream)) {}

ConnectionPool& ConnectionPool::of(asio::io_context& context, std::size_t max_idle_per_upstream) {
  return internal::PerContext<ConnectionPool>::of(context, context.get_executor(),
                                                  max_idle_per_upstream);
}

ConnectionPool::~ConnectionPool() {
  if (impl_) *impl_->alive = false;
}

namespace {

// A new connection to `upstream` within the connect timeout; null with `x` saying why.
asio::awaitable<std::unique_ptr<Connection>> connect(ConnectionPool::Impl& p, Upstream upstream,
                                                     const ExchangeOptions& options, Exchange& x) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(upstream.host, ec);
  if (ec) {
    x.outcome = Outcome::kRefused;
    x.error = "bad address " + std::string(upstream.host);
    co_return nullptr;
  }
  auto conn = std::make_unique<Connection>(p.executor);
  Deadline limit;
  limit.socket = &conn->socket;
  limit.at = std::min(options.deadline, std::chrono::steady_clock::now() + options.connect_timeout);
  Watched watched(p, limit);
  auto [cec] = co_await conn->socket.async_connect(tcp::endpoint(address, upstream.port), kAwait);
  if (cec || limit.expired) {
    x.outcome = limit.expired ? Outcome::kConnectTimeout : Outcome::kRefused;
    x.error = limit.expired ? "connect timeout" : cec.message();
    co_return nullptr;  // nothing was sent
  }
  conn->socket.set_option(tcp::no_delay(true), ec);
  co_return conn;
}

// Sends a streamed request body as the reader yields it (chunk-framed if asked); false when
// the upstream stopped taking it (`x.error` says so).
asio::awaitable<bool> send_body(Connection& conn, const ExchangeOptions& options,
                                const Deadline& limit, Exchange& x) {
  std::string piece;
  char size_line[24];
  while (co_await options.body->read(piece)) {
    if (limit.expired) co_return true;
    boost::system::error_code bec;
    if (options.chunked_body) {
      const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", piece.size());
      const std::array<asio::const_buffer, 3> framed{
          asio::buffer(size_line, static_cast<std::size_t>(n)), asio::buffer(piece),
          asio::buffer("\r\n", 2)};
      std::tie(bec, std::ignore) = co_await asio::async_write(conn.socket, framed, kAwait);
    } else {
      std::tie(bec, std::ignore) =
          co_await asio::async_write(conn.socket, asio::buffer(piece), kAwait);
    }
    if (bec) {
      x.error = "sending the body: " + bec.message();
      co_return false;
    }
  }
  if (!limit.expired && options.body->complete() && options.chunked_body) {
    auto [bec, n] = co_await asio::async_write(conn.socket, asio::buffer("0\r\n\r\n", 5), kAwait);
    if (bec) {
      x.error = "sending the body: " + bec.message();
      co_return false;
    }
  }
  co_return true;
}

// The upstream stopped reading a streamed body: it may have answered already (a 413 before the
// body's end). That answer is the client's, as the upstream sent it; true if there was one.
asio::awaitable<bool> read_early_answer(Connection& conn, const ExchangeOptions& options,
                                        const Deadline& limit, Response& response) {
  ResponseParser& early = conn.parser;
  early.reset(options.head);
  auto r = ResponseParser::Result::kNeedMore;
  while (r == ResponseParser::Result::kNeedMore && !limit.expired) {
    auto [rec, rn] = co_await conn.socket.async_read_some(
        asio::buffer(conn.buffer.get(), kReadBufferBytes), kAwait);
    if (rec) {
      r = rec == asio::error::eof ? early.finish_eof() : ResponseParser::Result::kError;
      break;
    }
    std::size_t used = 0;
    r = early.feed(std::string_view(conn.buffer.get(), rn), used);
  }
  if (r != ResponseParser::Result::kDone) co_return false;
  fill_head(early, options, response);
  response.body = std::move(early.body());
  response.close = true;  // the request was not read to its end
  co_return true;
}

// Whether an answer whose head is in should come back now with its body streamed: a large or
// open-ended body.
bool streams(const ResponseParser& parser, const ExchangeOptions& options) {
  return options.stream_above != 0 && parser.head_done() &&
         (parser.declared_length() < 0 ||
          static_cast<std::uint64_t>(parser.declared_length()) > options.stream_above);
}

// The answer is in `response` with its body to be pulled through (Response::stream); the pump
// owns the connection until the body's end.
void hand_over_stream(ConnectionPool::Impl& p, Upstream upstream, const ExchangeOptions& options,
                      std::unique_ptr<Connection> conn, Place& place, Response& response) {
  fill_head(conn->parser, options, response);
  response.stream_length = conn->parser.declared_length();
  auto pump = std::make_shared<Pump>(std::move(place));
  pump->pool = &p;
  pump->alive = p.alive;
  pump->key = std::string(upstream.key);
  pump->conn = std::move(conn);
  pump->deadline = options.deadline;
  pump->idle = options.body_idle_timeout;
  response.stream = [pump] { return pump_next(pump); };
}

enum class Read { kMore, kWhole, kStreamed, kFailed };

// One read of the answer on `conn` (sent already): `rec`, `rn` what it got. kMore: read again;
// kWhole: the answer is in `response`; kStreamed: its head is, the body to be pulled through
// (`conn` is then the pump's); kFailed with `x` saying why (its outcome left kFailed when the
// connection may have been a stale pooled one: the caller decides).
Read on_read(ConnectionPool::Impl& p, Upstream upstream, std::unique_ptr<Connection>& conn,
             Place& place, const ExchangeOptions& options, const Deadline& limit,
             boost::system::error_code rec, std::size_t rn, Response& response, Exchange& x,
             bool& leftover) {
  ResponseParser& parser = conn->parser;
  auto result = ResponseParser::Result::kNeedMore;
  if (limit.expired) {
    x.outcome = Outcome::kTimeout;
    x.error = "timeout";
    return Read::kFailed;
  }
  if (rec == asio::error::eof) {
    result = parser.finish_eof();
    x.error = parser.error();
  } else if (rec) {
    x.error = rec.message();
    return Read::kFailed;
  } else {
    std::size_t used = 0;
    result = parser.feed(std::string_view(conn->buffer.get(), rn), used);
    leftover = used < rn;
  }
  if (result == ResponseParser::Result::kError) {
    if (rec) return Read::kFailed;
    x.outcome = Outcome::kMalformed;
    x.error = "bad answer: " + std::string(parser.error());
    return Read::kFailed;
  }
  if (result == ResponseParser::Result::kDone) {
    fill_head(parser, options, response);
    response.body = std::move(parser.body());
    return Read::kWhole;
  }
  if (rec) return Read::kFailed;  // closed before the answer was whole
  // Part of an answer came: acknowledge it now. An upstream that writes its head and body
  // separately with Nagle on (Python's http.server keeping the connection alive, say) holds
  // the body until this ACK, which Linux would delay up to 40 ms (measured through the
  // gateway: 43.8 ms a request without this, 0.36 ms with it). Only on this path: a whole
  // answer in one read, the usual case, costs no system call.
  const int one = 1;
  ::setsockopt(conn->socket.native_handle(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  if (streams(parser, options)) {
    hand_over_stream(p, upstream, options, std::move(conn), place, response);
    return Read::kStreamed;
  }
  return Read::kMore;
}

// Waits for a place among `peer`'s connections, first come first served, until the deadline:
// false, with `x` saying so, when none came (nothing was sent).
asio::awaitable<bool> wait_for_place(ConnectionPool::Impl& p, Peer& peer,
                                     const ExchangeOptions& options, Exchange& x) {
  asio::steady_timer timer(p.executor, options.deadline);
  Waiter waiter{&timer};
  peer.waiting.push_back(&waiter);
  count(held().waiting, 1);
  co_await timer.async_wait(kAwait);
  count(held().waiting, -1);
  if (!waiter.granted) {
    std::erase(peer.waiting, &waiter);  // its deadline came (or the pool cancelled everything)
    x.outcome = Outcome::kConnectTimeout;
    x.error = "none of its " + std::to_string(options.max_connections) +
              " connections (max_connections) came free in time";
    co_return false;
  }
  if (options.client != nullptr && options.client->cancelled()) {
    Place(&peer).release();  // its client reset its stream meanwhile: the next one goes instead
    x.error = "the client cancelled the request";
    co_return false;
  }
  co_return true;
}

}  // namespace

asio::awaitable<Exchange> ConnectionPool::exchange(Upstream upstream,
                                                   std::span<const asio::const_buffer> request,
                                                   const ExchangeOptions& options,
                                                   Response& response) {
  Impl& p = *impl_;
  Exchange x;
  // A place among the upstream's connections first: past max_connections, wait for one.
  Peer& peer = p.peer(upstream.key);
  if (options.max_connections != 0 &&
      (peer.busy >= options.max_connections || !peer.waiting.empty())) {
    if (!co_await wait_for_place(p, peer, options, x)) co_return x;
  } else {
    ++peer.busy;
  }
  Place place(&peer);
  // A pooled connection, or a new one. A pooled one the upstream closed meanwhile fails before
  // any answer: then a fresh connection is tried once.
  for (int fresh = 0; fresh < 2; ++fresh) {
    std::unique_ptr<Connection> conn;
    auto& pool = peer.idle;
    const bool reused = fresh == 0 && !pool.empty();
    if (reused) {
      conn = p.take_idle(pool);
    } else {
      fresh = 1;
      conn = co_await connect(p, upstream, options, x);
      if (!conn) co_return x;
    }
    p.in_use(*conn);
    Deadline limit;
    limit.socket = &conn->socket;
    limit.at = options.deadline;
    Watched watched(p, limit);
    // One buffer goes out with send(); more need sendmsg().
    auto [wec, wn] = request.size() == 1
                         ? co_await asio::async_write(conn->socket, request[0], kAwait)
                         : co_await asio::async_write(conn->socket, request, kAwait);
    if (wec || limit.expired) {
      if (reused && !limit.expired) continue;  // a stale pooled connection
      x.sent = wn > 0;
      x.outcome = limit.expired ? Outcome::kTimeout : Outcome::kFailed;
      x.error = limit.expired ? "timeout" : wec.message();
      co_return x;
    }
    x.sent = true;
    if (options.body != nullptr) {
      // The body as it arrives; it cannot be replayed, so no fresh-connection retry after this.
      const bool body_ok = co_await send_body(*conn, options, limit, x);
      if (!body_ok && !limit.expired &&
          co_await read_early_answer(*conn, options, limit, response)) {
        x.outcome = Outcome::kAnswered;
        x.error.clear();
        co_return x;  // the connection (out of step) is dropped
      }
      if (limit.expired || !body_ok || !options.body->complete()) {
        x.outcome = limit.expired ? Outcome::kTimeout : Outcome::kFailed;
        if (limit.expired) x.error = "timeout";
        if (!limit.expired && body_ok) x.error = "the request body was cut off";
        co_return x;  // the connection (out of step) is dropped
      }
    }
    x.outcome = Outcome::kFailed;
    bool leftover = false;
    conn->parser.reset(options.head);
    Read read = Read::kMore;
    while (read == Read::kMore) {
      auto [rec, rn] = co_await conn->socket.async_read_some(
          asio::buffer(conn->buffer.get(), kReadBufferBytes), kAwait);
      read = on_read(p, upstream, conn, place, options, limit, rec, rn, response, x, leftover);
    }
    if (read == Read::kFailed) {
      // Cut off before any answer on a reused connection: it was stale; try a fresh one
      // (unless a streamed body went out: it cannot be sent again).
      const bool silent = !conn->parser.started() && x.outcome == Outcome::kFailed;
      if (reused && silent && options.body == nullptr) continue;
      co_return x;
    }
    if (read == Read::kWhole) {
      if (auto& idle = peer.idle;
          conn->parser.keep_alive() && !leftover && idle.size() < p.max_idle)
        p.put_idle(idle, std::move(conn));
    }
    x.outcome = Outcome::kAnswered;
    x.error.clear();
    co_return x;
  }
  x.outcome = Outcome::kFailed;
  co_return x;
}

asio::awaitable<Exchange> ConnectionPool::send(std::string_view host, std::uint16_t port,
                                               const SimpleRequest& request, Response& response) {
  const std::string key = std::string(host) + ":" + std::to_string(port);
  std::string head;
  RequestHead h(head, request.method, request.target);
  h.field("Host", key).field("User-Agent", "squadron");
  for (const auto& [name, value] : request.fields) h.field(name, value);
  h.end_with_body(request.body.size());
  const std::array<asio::const_buffer, 2> out{asio::buffer(head), asio::buffer(request.body)};
  ExchangeOptions options;
  options.deadline = request.deadline;
  options.connect_timeout = request.connect_timeout;
  options.head = request.method == "HEAD";
  options.stream_above = request.stream_above;
  options.body_idle_timeout = request.body_idle_timeout;
  co_return co_await exchange({key, host, port}, out, options, response);
}

asio::awaitable<Exchange> ConnectionPool::get(std::string_view host, std::uint16_t port,
                                              std::string_view target,
                                              std::chrono::steady_clock::time_point deadline,
                                              Response& response) {
  SimpleRequest request;
  request.target = target;
  request.deadline = deadline;
  co_return co_await send(host, port, request, response);
}

void ConnectionPool::cancel_all() {
  boost::system::error_code ec;
  for (auto* d = impl_->deadlines; d != nullptr; d = d->next) {
    d->expired = true;  // as a timeout: nothing is tried again
    d->socket->cancel(ec);
  }
  for (auto& [key, peer] : impl_->peers) {
    for (Waiter* w : std::exchange(peer.waiting, {})) w->timer->cancel();
  }
  impl_->drop_idle();
}

ConnectionPool::Memory ConnectionPool::memory() noexcept {
  const auto n = [](const std::atomic<std::int64_t>& a) {
    return static_cast<std::size_t>(std::max<std::int64_t>(0, a.load(std::memory_order_relaxed)));
  };
  Memory m;
  m.idle_connections = n(held().idle);
  m.buffers_in_use = n(held().buffers_in_use);
  m.buffers_pooled = n(held().buffers_pooled);
  m.waiting_exchanges = n(held().waiting);
  m.idle_bytes = m.idle_connections * sizeof(Connection);
  m.buffer_bytes_in_use = m.buffers_in_use * kReadBufferBytes;
  m.buffer_bytes_pooled = m.buffers_pooled * kReadBufferBytes;
  return m;
}

}  // namespace squadron::http
