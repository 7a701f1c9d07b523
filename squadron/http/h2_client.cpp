#include "squadron/http/h2_client.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <nghttp2/nghttp2.h>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "squadron/core/spawn.hpp"
#include "squadron/http/internal/nghttp2_blocks.hpp"
#include "squadron/http/internal/nghttp2_setup.hpp"
#include "squadron/http/internal/per_context.hpp"

namespace squadron::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadBytes = 16 * 1024;
constexpr std::size_t kWriteBatch = 64 * 1024;
// A streamed request body: read at most this far ahead of what the upstream has taken, and its
// first this many bytes kept for another attempt (gRPC's retry buffer; Envoy's is 64 KiB too).
constexpr std::size_t kFeedAhead = 64 * 1024;
constexpr std::size_t kReplayBytes = 64 * 1024;
// Our receive windows: an answer's body waits in them until the client takes it.
constexpr std::int32_t kStreamWindow = 1 << 20;
constexpr std::int32_t kConnectionWindow = 16 << 20;

// A timer used as a condition with one waiter: wait() until notify() (or `until`).
class Signal {
 public:
  explicit Signal(const asio::any_io_executor& ex) : timer_(ex) {}
  asio::awaitable<void> wait(Clock::time_point until = Clock::time_point::max()) {
    timer_.expires_at(until);
    co_await timer_.async_wait(kAwait);
  }
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

// Fields HTTP/2 does not carry (RFC 9113 §8.2.2), and Host (the :authority).
bool not_sent(std::string_view name, std::string_view value) {
  if (iequals(name, "te")) return value != "trailers";
  return internal::connection_specific(name) || iequals(name, "host");
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

struct UpStream;

// One connection to an upstream, with its nghttp2 client session.
struct UpConn : std::enable_shared_from_this<UpConn> {
  UpConn(const asio::any_io_executor& ex, std::string k)
      : socket(ex), writer(ex), key(std::move(k)) {}
  ~UpConn() {
    if (session != nullptr) nghttp2_session_del(session);
  }
  UpConn(const UpConn&) = delete;
  UpConn& operator=(const UpConn&) = delete;

  // Whether a new stream may go on this connection now.
  bool has_room() const {
    return ready && !dead && !goaway &&
           streams.size() < nghttp2_session_get_remote_settings(
                                session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  }
  void wake_writer() { writer.notify(); }
  void wake_waiting() {
    for (auto* t : waiting) t->cancel();
  }
  // The connection is lost: every stream on it ends, failed.
  void fail(std::string why);

  tcp::socket socket;
  Signal writer;
  std::string key;
  nghttp2_session* session = nullptr;
  std::unordered_map<std::int32_t, std::shared_ptr<UpStream>> streams;
  std::vector<asio::steady_timer*> waiting;  // exchanges waiting for it to be ready
  std::string out;                           // frames to write
  std::string error;                         // why it died
  bool ready = false;                        // connected, its preface and SETTINGS queued
  bool dead = false;                         // closed: no stream goes on it any more
  bool goaway = false;  // the upstream said GOAWAY: streams before it finish, no new ones
};

// A streamed request body as read from the client, shared by the attempts of one request: the
// bytes from `base` on (the first kReplayBytes kept while no attempt went past them).
struct BodyFeed {
  BodyFeed(BodyReader* r, const asio::any_io_executor& ex) : reader(r), room(ex) {}
  BodyReader* reader;
  std::string bytes;
  std::uint64_t base = 0;        // the body offset of bytes[0]
  bool end = false;              // the reader is done
  bool failed = false;           // ... without the body's end (the client reset, too large)
  bool trimmed = false;          // bytes before `base` are gone: no attempt can start again
  bool pumping = false;          // a pump reads it
  bool stopped = false;          // no attempt needs it any more: the pump ends
  UpStream* attached = nullptr;  // the stream it feeds now
  Signal room;                   // wakes the pump: the upstream took some, or it stops
  std::uint64_t total() const { return base + bytes.size(); }
};

// What options.body_state holds: stops the feed's pump when the request's attempts are done.
struct FeedHandle {
  explicit FeedHandle(std::shared_ptr<BodyFeed> f) : feed(std::move(f)) {}
  ~FeedHandle() {
    feed->stopped = true;
    feed->room.notify();
  }
  std::shared_ptr<BodyFeed> feed;
};

// One exchange's stream.
struct UpStream {
  explicit UpStream(std::shared_ptr<UpConn> c)
      : conn(std::move(c)), signal(conn->socket.get_executor()) {}
  ~UpStream() { detach(); }
  void detach() {
    if (feed && feed->feed->attached == this) {
      feed->feed->attached = nullptr;
      feed->feed->room.notify();
    }
  }
  // Resets the stream (the client gave up, or the deadline passed).
  void cancel() {
    if (closed || conn->dead || id <= 0) return;
    nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    conn->wake_writer();
  }

  std::shared_ptr<UpConn> conn;
  std::int32_t id = 0;
  Signal signal;  // wakes whoever waits for its head or body
  // The request's body: whole, or fed from a streamed one.
  std::string body;
  std::size_t body_off = 0;
  std::shared_ptr<FeedHandle> feed;
  std::uint64_t fed = 0;  // feed bytes given to nghttp2
  bool deferred = false;  // nghttp2 waits for resume_data
  bool sent = false;      // its HEADERS left
  bool gave_up = false;   // its client cancelled it: it goes nowhere else
  // The answer.
  int status = 0;
  Fields headers;
  Fields trailers;
  bool head = false;    // the final head arrived
  bool in_end = false;  // ... and the body's end
  bool closed = false;
  std::uint32_t error_code = 0;
  std::string in;  // DATA not taken yet
  std::string why;
};

void UpConn::fail(std::string why) {
  if (dead) return;
  dead = true;
  error = std::move(why);
  boost::system::error_code ec;
  socket.close(ec);
  auto gone = std::move(streams);
  streams.clear();
  for (auto& [id, st] : gone) {
    st->closed = true;
    if (st->why.empty()) st->why = error;
    st->detach();
    st->signal.notify();
  }
  wake_waiting();
  wake_writer();
}

struct H2Pool::Impl {
  explicit Impl(asio::io_context::executor_type ex) : executor(std::move(ex)) {}
  ~Impl() {
    for (auto& [key, list] : conns) {
      for (auto& c : list) c->fail("the pool is closing");
    }
  }
  asio::any_io_executor executor;
  std::unordered_map<std::string, std::vector<std::shared_ptr<UpConn>>> conns;
  std::uint64_t acquires = 0;
};

namespace {

UpStream* stream_of(void* user, std::int32_t id) {
  auto& c = *static_cast<UpConn*>(user);
  const auto it = c.streams.find(id);
  return it == c.streams.end() ? nullptr : it->second.get();
}

int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
              const uint8_t* value, size_t valuelen, uint8_t, void* user) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  UpStream* st = stream_of(user, frame->hd.stream_id);
  if (st == nullptr) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (st->head) {
    st->trailers.emplace_back(n, v);
  } else if (n == ":status") {
    std::from_chars(v.data(), v.data() + v.size(), st->status);
  } else if (n.empty() || n[0] != ':') {
    st->headers.emplace_back(n, v);
  }
  return 0;
}

int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto& c = *static_cast<UpConn*>(user);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    c.goaway = true;  // nghttp2 closes the streams past its last one (REFUSED_STREAM)
    return 0;
  }
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  UpStream* st = stream_of(user, frame->hd.stream_id);
  if (st == nullptr) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && !st->head) {
    if (st->status >= 200) {
      st->head = true;
    } else {  // an interim answer (100, 103): the final one follows
      st->status = 0;
      st->headers.clear();
    }
  }
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) st->in_end = true;
  st->signal.notify();
  return 0;
}

int on_data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t len,
                  void* user) {
  UpStream* st = stream_of(user, id);
  if (st == nullptr) {  // a stream we gave up: its window back at once
    nghttp2_session_consume(session, id, len);
    return 0;
  }
  st->in.append(reinterpret_cast<const char*>(data), len);  // its window opens as it is taken
  st->signal.notify();
  return 0;
}

int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (UpStream* st = stream_of(user, frame->hd.stream_id)) st->sent = true;
  return 0;
}

int on_stream_close(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
  auto& c = *static_cast<UpConn*>(user);
  const auto it = c.streams.find(id);
  if (it == c.streams.end()) return 0;
  std::shared_ptr<UpStream> st = std::move(it->second);
  c.streams.erase(it);
  st->closed = true;
  st->error_code = error_code;
  if (error_code == NGHTTP2_REFUSED_STREAM) {
    st->why = "the upstream refused the stream";
  } else if (error_code != NGHTTP2_NO_ERROR) {
    st->why = std::string("the upstream reset the stream: ") + nghttp2_http2_strerror(error_code);
  }
  st->detach();
  st->signal.notify();
  return 0;
}

// The request's body for nghttp2: whole, or from the feed as the client sends it.
ssize_t read_request_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                          nghttp2_data_source* source, void*) {
  UpStream& st = *static_cast<UpStream*>(source->ptr);
  if (!st.feed) {
    const std::size_t n = std::min(length, st.body.size() - st.body_off);
    std::memcpy(buf, st.body.data() + st.body_off, n);
    st.body_off += n;
    if (st.body_off == st.body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  BodyFeed& f = *st.feed->feed;
  const std::size_t n = std::min<std::uint64_t>(length, f.total() - st.fed);
  std::memcpy(buf, f.bytes.data() + (st.fed - f.base), n);
  st.fed += n;
  if (f.bytes.size() > kReplayBytes && st.fed > f.base) {
    // Past the replay buffer: what this attempt sent is let go, and no other can start over.
    const std::uint64_t drop = st.fed - f.base;
    f.bytes.erase(0, drop);
    f.base += drop;
    f.trimmed = true;
  }
  if (n > 0) f.room.notify();
  if (st.fed == f.total()) {
    if (f.end && f.failed && n == 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // reset
    if (f.end && !f.failed) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
      st.deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

void install_client_callbacks(nghttp2_session_callbacks* cb) {
  nghttp2_session_callbacks_set_on_header_callback(cb, &on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, &on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &on_stream_close);
}

const internal::Nghttp2Setup& client_setup() {
  static const internal::Nghttp2Setup setup(&install_client_callbacks);
  return setup;
}

// Resumes the stream the feed is attached to when it waits for bytes.
void feed_pushed(BodyFeed& f) {
  UpStream* st = f.attached;
  if (st == nullptr || !st->deferred || st->closed || st->conn->dead) return;
  st->deferred = false;
  nghttp2_session_resume_data(st->conn->session, st->id);
  st->conn->wake_writer();
}

// Reads the client's body into the feed, at most kFeedAhead ahead of the stream it feeds. With
// `while_attached`, returns when no stream is attached any more or at `deadline` (an exchange
// that sends its body before it waits for the answer).
asio::awaitable<void> pump(std::shared_ptr<BodyFeed> f, bool while_attached,
                           Clock::time_point deadline = Clock::time_point::max()) {
  f->pumping = true;
  std::string piece;
  const auto done = [&] {
    return f->stopped || (while_attached && (f->attached == nullptr || Clock::now() >= deadline));
  };
  while (!f->end) {
    while (!done() &&
           f->total() - (f->attached != nullptr ? f->attached->fed : f->base) >= kFeedAhead)
      co_await f->room.wait(deadline);
    if (done()) break;
    const bool more = co_await f->reader->read(piece);
    if (!more) {
      f->end = true;
      f->failed = !f->reader->complete();
    } else {
      f->bytes.append(piece);
    }
    feed_pushed(*f);
  }
  f->pumping = false;
}

asio::awaitable<void> read_loop(std::shared_ptr<UpConn> c) {
  std::unique_ptr<char[]> buffer(new char[kReadBytes]);
  while (!c->dead) {
    auto [ec, n] =
        co_await c->socket.async_read_some(asio::buffer(buffer.get(), kReadBytes), kAwait);
    if (c->dead) break;
    if (ec) {
      c->fail(ec == asio::error::eof ? "the upstream closed the connection" : ec.message());
      break;
    }
    const auto r =
        nghttp2_session_mem_recv(c->session, reinterpret_cast<const uint8_t*>(buffer.get()), n);
    if (r < 0) {
      c->fail(std::string("the upstream broke HTTP/2: ") + nghttp2_strerror(static_cast<int>(r)));
      break;
    }
    c->wake_writer();
  }
}

asio::awaitable<void> write_loop(std::shared_ptr<UpConn> c) {
  while (!c->dead) {
    while (c->out.size() < kWriteBatch) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(c->session, &data);
      if (n < 0) {
        c->fail(std::string("HTTP/2: ") + nghttp2_strerror(static_cast<int>(n)));
        co_return;
      }
      if (n == 0) break;
      c->out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    if (c->out.empty()) {
      if (nghttp2_session_want_read(c->session) == 0 &&
          nghttp2_session_want_write(c->session) == 0) {
        c->fail("the connection's HTTP/2 session ended");
        co_return;
      }
      co_await c->writer.wait();
      continue;
    }
    auto [ec, n] = co_await asio::async_write(c->socket, asio::buffer(c->out), kAwait);
    c->out.clear();
    if (ec) {
      c->fail("writing to the upstream failed: " + ec.message());
      co_return;
    }
  }
}

// A connection to `up` with room for a stream: one open already, one being opened by another
// exchange, or a new one. Null with `x` saying why.
asio::awaitable<std::shared_ptr<UpConn>> acquire(H2Pool::Impl& p, Upstream up,
                                                 const ExchangeOptions& options, Exchange& x) {
  if (++p.acquires % 1024 == 0) {  // upstreams gone (instances of past revisions) go too
    std::erase_if(p.conns, [](const auto& entry) {
      return std::all_of(entry.second.begin(), entry.second.end(),
                         [](const auto& c) { return c->dead; });
    });
  }
  const auto limit = std::min(options.deadline, Clock::now() + options.connect_timeout);
  while (true) {
    auto& list = p.conns[std::string(up.key)];
    std::erase_if(list, [](const auto& c) { return c->dead; });
    for (const auto& c : list) {
      if (c->has_room()) co_return c;
    }
    // One being opened: wait for it rather than open another, then look again. A burst of
    // exchanges all wait for the first connection; those it has no room for wait for the next
    // one, opened by one of them (opening one each gave a burst of 1,600 streams 1,400
    // connections, bench/h2.sh's load with `protocol: h2c`).
    const auto opening =
        std::find_if(list.begin(), list.end(), [](const auto& c) { return !c->ready && !c->dead; });
    if (opening == list.end()) break;  // a connection of our own
    const std::shared_ptr<UpConn> c = *opening;
    asio::steady_timer wait(p.executor, limit);
    c->waiting.push_back(&wait);
    co_await wait.async_wait(kAwait);
    std::erase(c->waiting, &wait);
    if (c->has_room()) co_return c;
    if (Clock::now() >= limit) {
      x.outcome = options.deadline <= limit ? Outcome::kTimeout : Outcome::kConnectTimeout;
      x.error = "no connection within the connect timeout";
      co_return nullptr;
    }
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(up.host, ec);
  if (ec) {
    x.outcome = Outcome::kRefused;
    x.error = "bad address " + std::string(up.host);
    co_return nullptr;
  }
  auto c = std::make_shared<UpConn>(p.executor, std::string(up.key));
  p.conns[std::string(up.key)].push_back(c);
  asio::steady_timer watchdog(p.executor, limit);
  bool timed_out = false;
  watchdog.async_wait([c, &timed_out](boost::system::error_code wec) {
    if (wec || c->ready) return;
    timed_out = true;
    boost::system::error_code ignored;
    c->socket.close(ignored);
  });
  auto [cec] = co_await c->socket.async_connect(tcp::endpoint(address, up.port), kAwait);
  watchdog.cancel();
  if (cec || timed_out) {
    c->fail(timed_out ? "no connection within the connect timeout" : cec.message());
    x.outcome = timed_out ? Outcome::kConnectTimeout : Outcome::kRefused;
    x.error = c->error;
    co_return nullptr;
  }
  c->socket.set_option(tcp::no_delay(true), ec);
  const internal::Nghttp2Setup& setup = client_setup();
  if (nghttp2_session_client_new3(&c->session, setup.callbacks, c.get(), setup.option,
                                  internal::nghttp2_blocks()) != 0)
    throw std::bad_alloc();
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(kStreamWindow)},
  };
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  c->ready = true;
  core::spawn(p.executor, read_loop(c), "an HTTP/2 upstream connection's reader",
              [c] { c->fail("its reader failed"); });
  core::spawn(p.executor, write_loop(c), "an HTTP/2 upstream connection's writer",
              [c] { c->fail("its writer failed"); });
  c->wake_waiting();
  co_return c;
}

// The next piece of an answer's body; its trailers with the last.
asio::awaitable<BodyPiece> next_piece(std::shared_ptr<UpStream> st, std::chrono::milliseconds idle,
                                      Clock::time_point deadline) {
  while (true) {
    if (!st->in.empty()) {
      std::string out;
      out.swap(st->in);
      if (!st->closed && !st->conn->dead) {
        nghttp2_session_consume(st->conn->session, st->id, out.size());
        st->conn->wake_writer();
      }
      co_return BodyPiece::more(std::move(out));
    }
    if (st->in_end) co_return BodyPiece::last(std::move(st->trailers));
    if (st->closed || st->conn->dead)
      co_return BodyPiece::failure(st->why.empty() ? "the upstream ended the stream" : st->why);
    const auto until = idle.count() > 0 ? Clock::now() + idle : deadline;
    if (Clock::now() >= until) {
      st->cancel();
      co_return BodyPiece::failure("the upstream's answer stalled");
    }
    co_await st->signal.wait(until);
  }
}

}  // namespace

H2Pool::H2Pool(asio::io_context::executor_type executor)
    : impl_(std::make_shared<Impl>(std::move(executor))) {}

H2Pool::~H2Pool() = default;

H2Pool& H2Pool::of(asio::io_context& context) {
  return internal::PerContext<H2Pool>::of(context, context.get_executor());
}

std::size_t H2Pool::connections() const noexcept {
  std::size_t n = 0;
  for (const auto& [key, list] : impl_->conns) {
    for (const auto& c : list) n += c->dead ? 0 : 1;
  }
  return n;
}

std::size_t H2Pool::streams() const noexcept {
  std::size_t n = 0;
  for (const auto& [key, list] : impl_->conns) {
    for (const auto& c : list) n += c->streams.size();
  }
  return n;
}

asio::awaitable<Exchange> H2Pool::exchange(Upstream upstream,
                                           std::span<const asio::const_buffer> request,
                                           const ExchangeOptions& options, Response& response) {
  const std::shared_ptr<Impl> impl = impl_;  // the pool may go while this waits
  Exchange x;
  x.replayable = options.body == nullptr;
  // The head and a whole body, from the HTTP/1.1 request the gateway built.
  std::string_view first =
      request.empty()
          ? std::string_view()
          : std::string_view(static_cast<const char*>(request[0].data()), request[0].size());
  const auto head_end = first.find("\r\n\r\n");
  const auto line_end = first.find("\r\n");
  const auto sp1 = first.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : first.find(' ', sp1 + 1);
  if (head_end == std::string_view::npos || sp2 == std::string_view::npos || sp2 > line_end) {
    x.error = "the request to send has no head";
    co_return x;
  }
  const std::string_view method = first.substr(0, sp1);
  const std::string_view target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string body(first.substr(head_end + 4));
  for (std::size_t i = 1; i < request.size(); ++i)
    body.append(static_cast<const char*>(request[i].data()), request[i].size());

  std::vector<std::pair<std::string_view, std::string_view>> fields;
  std::string_view authority;
  for (std::string_view rest = first.substr(line_end + 2, head_end - line_end); !rest.empty();) {
    const auto eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "host")) authority = value;
    if (not_sent(name, value)) continue;
    fields.emplace_back(name, value);
  }
  std::string authority_made;
  if (authority.empty()) {
    authority_made = std::string(upstream.host) + ":" + std::to_string(upstream.port);
    authority = authority_made;
  }
  // Names in lower case, in an arena sized first so that its views hold.
  std::size_t arena_size = 0;
  for (const auto& f : fields) arena_size += f.first.size();
  std::string arena(arena_size, '\0');
  char* lower = arena.data();
  std::vector<nghttp2_nv> nva;
  nva.reserve(fields.size() + 4);
  const auto add = [&nva](std::string_view n, std::string_view v) {
    nva.push_back(internal::field_nv(n, v));
  };
  add(":method", method);
  add(":scheme", "http");
  add(":authority", authority);
  add(":path", target);
  for (const auto& [n, v] : fields) {  // written in place (a push_back a byte cost 10 each)
    for (std::size_t i = 0; i < n.size(); ++i) {
      const char ch = n[i];
      lower[i] = ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch + 32) : ch;
    }
    add(std::string_view(lower, n.size()), v);
    lower += n.size();
  }

  // A streamed body's feed: made by the first attempt, kept by the request for the others.
  std::shared_ptr<FeedHandle> feed;
  if (options.body != nullptr) {
    feed = std::static_pointer_cast<FeedHandle>(options.body_state);
    if (!feed) {
      feed = std::make_shared<FeedHandle>(std::make_shared<BodyFeed>(options.body, impl->executor));
      options.body_state = feed;
    }
    if (feed->feed->trimmed) {
      x.error = "the request's streamed body went to another instance and cannot go again";
      x.sent = true;
      co_return x;
    }
  }

  auto conn = co_await acquire(*impl, upstream, options, x);
  if (!conn) {
    x.replayable = !feed || !feed->feed->trimmed;
    co_return x;
  }
  auto st = std::make_shared<UpStream>(conn);
  nghttp2_data_provider provider{};
  provider.source.ptr = st.get();
  provider.read_callback = &read_request_body;
  bool with_body = !body.empty();
  if (feed) {
    st->feed = feed;
    feed->feed->attached = st.get();
    with_body = true;
  } else {
    st->body = std::move(body);
  }
  const std::int32_t id = nghttp2_submit_request(conn->session, nullptr, nva.data(), nva.size(),
                                                 with_body ? &provider : nullptr, nullptr);
  if (id < 0) {
    st->detach();
    x.outcome = Outcome::kRefused;
    x.error = std::string("HTTP/2: ") + nghttp2_strerror(id);
    co_return x;
  }
  st->id = id;
  conn->streams.emplace(id, st);
  conn->wake_writer();
  if (options.client != nullptr) {
    std::weak_ptr<UpStream> weak = st;
    options.client->on_cancel([weak] {
      if (auto s = weak.lock()) {
        s->gave_up = true;
        s->cancel();
      }
    });
  }
  if (feed && !feed->feed->pumping && !feed->feed->end) {
    if (options.duplex) {
      core::spawn(impl->executor, pump(feed->feed, false), "an HTTP/2 upstream request's body",
                  [f = feed->feed] {
                    f->end = f->failed = true;
                    f->pumping = false;
                    feed_pushed(*f);
                  });
    } else {
      // The body goes whole before the answer is awaited (the client's connection is read by
      // its server again once the handler returns).
      co_await pump(feed->feed, true, options.deadline);
    }
  }

  while (!st->head && !st->closed && Clock::now() < options.deadline)
    co_await st->signal.wait(options.deadline);
  const bool kept = !feed || !feed->feed->trimmed;
  x.replayable = kept;
  if (!st->head) {
    st->detach();
    if (st->gave_up) {  // not retried: nobody waits for its answer
      x.outcome = Outcome::kFailed;
      x.sent = true;
      x.replayable = false;
      x.error = "the client cancelled the request";
    } else if (!st->closed) {
      st->cancel();
      x.outcome = Outcome::kTimeout;
      x.sent = true;
      x.error = "no answer within the deadline";
    } else if ((!st->sent || st->error_code == NGHTTP2_REFUSED_STREAM) && kept) {
      x.outcome = Outcome::kRefused;  // nothing of it was processed: it may go elsewhere
      x.error = st->why.empty() ? "the upstream refused the stream" : st->why;
    } else {
      x.outcome = Outcome::kFailed;
      x.sent = true;
      x.error = st->why.empty() ? "the upstream ended the stream without an answer" : st->why;
    }
    co_return x;
  }

  response = Response{};
  response.status = st->status;
  response.content_type = {};
  response.headers.reserve(st->headers.size());
  for (auto& [name, value] : st->headers) {
    if (options.head && name == "content-length") {
      std::int64_t n = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec == std::errc() && end == value.data() + value.size()) response.stream_length = n;
      continue;
    }
    if (name == "content-length" || (options.drop_header != nullptr && options.drop_header(name)))
      continue;
    response.headers.emplace_back(std::move(name), std::move(value));
  }
  x.outcome = Outcome::kAnswered;
  x.sent = true;
  if (st->in_end && st->trailers.empty()) {  // whole already (a gRPC error: trailers only)
    if (!st->in.empty() && !st->closed && !conn->dead)
      nghttp2_session_consume(conn->session, st->id, st->in.size());
    response.body = std::move(st->in);
    st->detach();
    co_return x;
  }
  response.duplex = feed && !feed->feed->end;
  response.stream = [st, idle = options.body_idle_timeout, deadline = options.deadline] {
    return next_piece(st, idle, deadline);
  };
  co_return x;
}

}  // namespace squadron::http
