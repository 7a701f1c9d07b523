#include "squadron/http/internal/h2_connection.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <nghttp2/nghttp2.h>
#include <openssl/evp.h>
#include <optional>
#include <sys/mman.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "squadron/core/scope_exit.hpp"
#include "squadron/core/splitmix.hpp"
#include "squadron/http/internal/chars.hpp"
#include "squadron/http/internal/nghttp2_blocks.hpp"
#include "squadron/http/internal/nghttp2_setup.hpp"
#include "squadron/http/parser.hpp"

namespace squadron::http::internal {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// Frames gathered before a write: the answers of one turn of the event loop leave together.
constexpr std::size_t kWriteBatch = 64 * 1024;
// A streamed answer's bytes waiting for the client's window, at most, before its producer waits.
constexpr std::size_t kStreamBuffered = 64 * 1024;
// What a stream reset before its answer counts as, in frames that make no progress.
constexpr double kResetGlitches = 10;
// Stream records a connection keeps for reuse (a request's parser and buffers with them) while it
// is busy: as many as it may have streams (a record costs an allocation or three to make); when
// it falls idle, this many.
constexpr std::size_t kIdleSpareStreams = 4;

void log_exception(std::exception_ptr e) noexcept {
  log_task_exception(e, "an HTTP/2 stream's task");
}

}  // namespace

// A streamed request body: DATA as it arrives, the window opened only as the handler reads it.
class H2Body final : public BodyReader {
 public:
  H2Body(H2Connection& c, H2Stream& s) : c_(c), s_(s) {}
  asio::awaitable<bool> read(std::string& out) override;
  bool complete() const noexcept override;
  int error_status() const noexcept override;
  std::string_view error() const noexcept override;

 private:
  H2Connection& c_;
  H2Stream& s_;
};

// One stream: the request gathered from its HEADERS and DATA, the handler's answer going out.
class H2Tunnel;
// Wakes a tunnel's reads and writes: its stream or connection ended.
void wake(H2Tunnel& tunnel);

struct H2Stream {
  explicit H2Stream(const ParserLimits& limits) : parser(limits) {}

  void reset() {
    parser.reset(req);
    res = Response{};
    method.clear();
    protocol.clear();
    path.clear();
    authority.clear();
    cookie.clear();
    fields.clear();
    spans.clear();
    in.clear();
    if (out.capacity() > kStreamBuffered) std::string().swap(out);
    out.clear();
    trailers.clear();
    body.reset();
    id = 0;
    reading = 0;
    header_bytes = header_count = in_bytes = 0;
    out_off = 0;
    refused = 0;
    body_status = 0;
    streams_body = in_end = dispatched = running = closed = answered = discard = handled = false;
    tunnel = false;
    side = nullptr;
    out_end = deferred = false;
  }

  std::int32_t id = 0;
  H2Stream* prev = nullptr;  // in the connection's list of live streams
  H2Stream* next = nullptr;
  // The request's head as it arrives: the pseudo-fields and the cookie's crumbs apart, the
  // other fields' names and values one after the other in `fields`, each where `spans` says.
  std::string method, protocol, path, authority, cookie, fields;
  struct FieldSpan {
    std::uint32_t at, name_size, value_size;
  };
  std::vector<FieldSpan> spans;
  bool tunnel = false;       // an extended CONNECT (RFC 8441): a WebSocket over this stream
  H2Tunnel* side = nullptr;  // ... while its handler has it
  std::size_t header_bytes = 0;
  std::size_t header_count = 0;
  int refused = 0;  // > 0: answer this status instead; -1: refuse the stream (REFUSED_STREAM)
  RequestParser parser;
  Request req;
  Response res;
  std::optional<H2Body> body;  // the handler's reader when the body streams
  bool streams_body = false;   // the handler runs before the body has arrived
  std::string in;              // streamed body bytes received and not read yet
  std::uint64_t in_bytes = 0;  // body bytes received in all
  int body_status = 0;         // 413 when the streamed body grew past max_body
  bool in_end = false;         // the client ended its side
  bool dispatched = false;     // the handler was called
  bool running = false;        // ... and has not finished (its answer's body included)
  int reading = 0;             // body reads in progress (a duplex answer's, after the handler)
  bool closed = false;         // nghttp2 closed the stream
  bool answered = false;       // the answer's HEADERS were submitted
  bool handled = false;        // the synchronous handler answered (run_stream() goes on)
  bool discard = false;        // the body is not wanted: consumed as it comes
  // The answer's body: bytes from out_off on are still to go; out_end when no more come.
  std::string out;
  std::size_t out_off = 0;
  bool out_end = false;
  Fields trailers;        // sent after the body's last DATA
  bool deferred = false;  // nghttp2 waits for resume_data
  // Wake its body's reader (data, its end, the stream's) and its answer's producer (room in the
  // window, the stream's end): one each, as a wait re-arms its timer and would cancel another's.
  std::unique_ptr<asio::steady_timer> signal;
  std::unique_ptr<asio::steady_timer> room;
};

asio::awaitable<bool> H2Body::read(std::string& out) {
  out.clear();
  // A duplex answer's reader may still wait here when the stream ends: the record (and the
  // connection) stay until it has returned, and a turn after, for its caller to ask complete()
  // and error().
  ++s_.reading;
  ++c_.reading_;
  core::ScopeExit left([this] {
    asio::post(c_.host_.h2_context(), [c = &c_, s = &s_] {
      --s->reading;
      --c->reading_;
      c->erase_if_done(*s);
      if (c->reading_ == 0) H2Connection::notify(c->done_signal_);
    });
  });
  while (true) {
    if (!s_.in.empty()) {
      out.swap(s_.in);
      s_.in.clear();
      c_.consume(s_, out.size());
      co_return true;
    }
    if (s_.in_end || s_.closed || c_.dead_ || s_.body_status != 0) co_return false;
    co_await c_.wait(s_.signal);
  }
}

bool H2Body::complete() const noexcept { return s_.in_end && s_.in.empty(); }

int H2Body::error_status() const noexcept { return s_.body_status; }

std::string_view H2Body::error() const noexcept {
  if (s_.body_status == 413) return "the request body is too large";
  return (s_.closed && !s_.in_end) || c_.dead_ ? "the client reset the stream" : "";
}

// nghttp2's callbacks, into the connection (its user data) and the stream (the stream's).
struct H2Callbacks {
  static H2Connection& self(void* user) { return *static_cast<H2Connection*>(user); }
  static H2Stream* stream_of(nghttp2_session* session, std::int32_t id) {
    return static_cast<H2Stream*>(nghttp2_session_get_stream_user_data(session, id));
  }

  // Trailing fields in lower case (nghttp2 copies them).
  static void submit_trailers(nghttp2_session* session, std::int32_t id, Fields& fields) {
    std::vector<nghttp2_nv> nva;
    nva.reserve(fields.size());
    for (auto& [n, v] : fields) {
      if (connection_specific(n)) continue;
      for (char& ch : n) ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch;
      nva.push_back(field_nv(n, v));
    }
    nghttp2_submit_trailer(session, id, nva.data(), nva.size());
  }

  static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    H2Stream& s = self(user).open_stream(frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, &s);
    return 0;
  }

  static int on_header(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t /*flags*/,
                       void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    H2Stream* s = stream_of(session, frame->hd.stream_id);
    if (s == nullptr || s->refused != 0) return 0;
    const ParserLimits& limits = self(user).config_.limits;
    // HPACK's own measure of a field (RFC 9113 §6.5.2): an HPACK bomb is cut here, before
    // anything of it is kept.
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > limits.max_header_bytes + 32 * 4 ||
        ++s->header_count > limits.max_headers + 4) {
      s->refused = 431;
      return 0;
    }
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (!n.empty() && n[0] == ':') {
      if (n == ":method") {
        s->method.assign(v);
      } else if (n == ":path") {
        s->path.assign(v);
      } else if (n == ":authority") {
        s->authority.assign(v);
      } else if (n == ":protocol") {  // extended CONNECT (RFC 8441)
        s->protocol.assign(v);
      }  // :scheme is the connection's
      return 0;
    }
    if (n == "cookie") {  // crumbs, joined again (RFC 9113 §8.2.3)
      if (!s->cookie.empty()) s->cookie.append("; ");
      s->cookie.append(v);
      return 0;
    }
    // The pseudo-fields came first (nghttp2 holds to it): :authority, when there was one, is the
    // Host (RFC 9113 §8.3.1), a host field then adds nothing.
    if (n == "host" && !s->authority.empty()) return 0;
    const std::size_t at = s->fields.size();
    s->fields.resize(at + namelen + valuelen);
    std::char_traits<char>::copy(s->fields.data() + at, n.data(), namelen);
    std::char_traits<char>::copy(s->fields.data() + at + namelen, v.data(), valuelen);
    s->spans.push_back({static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(namelen),
                        static_cast<std::uint32_t>(valuelen)});
    return 0;
  }

  static int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    H2Connection& c = self(user);
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        H2Stream* s = stream_of(session, frame->hd.stream_id);
        if (s == nullptr) return 0;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          c.headers_done(*s, end_stream);
        } else if (end_stream) {  // trailers end the body (their fields are not kept)
          end_body(c, *s);
        }
        break;
      }
      case NGHTTP2_DATA: {
        H2Stream* s = stream_of(session, frame->hd.stream_id);
        if (frame->hd.length == 0 && !end_stream && !c.glitch())
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        if (s != nullptr && end_stream) end_body(c, *s);
        break;
      }
      case NGHTTP2_RST_STREAM: {  // a stream reset before its answer: rapid reset's pattern
        // Ten times a ping's weight: it made the server parse a request and perhaps start
        // its handler; a browser cancels a few, an attack thousands (100 at once, then 10/s).
        H2Stream* s = stream_of(session, frame->hd.stream_id);
        if (s != nullptr && !s->answered && !c.glitch(kResetGlitches))
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        break;
      }
      case NGHTTP2_PING:
      case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0 && !c.glitch())
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        break;
      case NGHTTP2_PRIORITY:
        if (!c.glitch()) return NGHTTP2_ERR_CALLBACK_FAILURE;
        break;
      default:
        break;
    }
    return 0;
  }

  static void end_body(H2Connection& c, H2Stream& s) {
    s.in_end = true;
    if (!s.dispatched && s.refused == 0 && !s.discard) c.dispatch(s);
    H2Connection::notify(s.signal);
  }

  static int on_invalid_frame(nghttp2_session*, const nghttp2_frame*, int, void* user) {
    return self(user).glitch() ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
  }

  static int on_data_chunk(nghttp2_session* session, uint8_t /*flags*/, int32_t stream_id,
                           const uint8_t* data, size_t len, void* user) {
    H2Connection& c = self(user);
    H2Stream* s = stream_of(session, stream_id);
    if (s == nullptr || s->refused != 0 || s->closed || s->discard) {
      nghttp2_session_consume_connection(session, len);
      if (s != nullptr && !s->closed) nghttp2_session_consume_stream(session, stream_id, len);
      return 0;
    }
    s->in_bytes += len;
    const std::string_view bytes(reinterpret_cast<const char*>(data), len);
    if (s->in_bytes > c.config_.limits.max_body && !s->tunnel) {
      c.consume(*s, len);
      s->discard = true;
      if (s->streams_body) {
        s->body_status = 413;
        H2Connection::notify(s->signal);
      } else {
        c.reject(*s, 413, "the request body is too large");
      }
      return 0;
    }
    if (s->streams_body) {
      s->in.append(bytes);  // its window opens as the handler reads it
      H2Connection::notify(s->signal);
    } else {
      s->req.append_body(bytes);
      c.consume(*s, len);
    }
    return 0;
  }

  static int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void*) {
    // An answer complete before the request was (413, a handler that did not read the body):
    // the client is told to stop sending (RFC 9113 §8.1).
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 &&
        nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) == 0)
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
  }

  static int on_stream_close(nghttp2_session* session, int32_t stream_id, uint32_t /*error*/,
                             void* user) {
    H2Connection& c = self(user);
    H2Stream* s = stream_of(session, stream_id);
    if (s == nullptr) return 0;
    s->closed = true;
    --c.open_streams_;
    if (s->running) s->req.cancel();  // the client gave up: the handler's upstream may stop
    if (!s->in.empty()) {             // never to be read: the connection's window gets it back
      nghttp2_session_consume_connection(session, s->in.size());
      s->in.clear();
    }
    H2Connection::notify(s->signal);
    H2Connection::notify(s->room);
    if (s->side != nullptr) wake(*s->side);
    c.erase_if_done(*s);
    c.update_deadline();
    return 0;
  }

  static ssize_t read_body(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source* source, void*) {
    H2Stream& s = *static_cast<H2Stream*>(source->ptr);
    const std::size_t n = std::min(length, s.out.size() - s.out_off);
    std::memcpy(buf, s.out.data() + s.out_off, n);
    s.out_off += n;
    if (s.out_off == s.out.size()) {
      s.out.clear();
      s.out_off = 0;
      if (s.out_end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!s.trailers.empty()) {  // the stream ends with them, not with this DATA
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
          submit_trailers(session, id, s.trailers);
        }
      } else if (n == 0) {
        s.deferred = true;
        return NGHTTP2_ERR_DEFERRED;
      }
    }
    if (n > 0) H2Connection::notify(s.room);  // its producer may go on
    return static_cast<ssize_t>(n);
  }
};

namespace {

void install_server_callbacks(nghttp2_session_callbacks* cb) {
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &H2Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, &H2Callbacks::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &H2Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, &H2Callbacks::on_invalid_frame);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &H2Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, &H2Callbacks::on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &H2Callbacks::on_stream_close);
}

const Nghttp2Setup& session_setup() {
  static const Nghttp2Setup setup(&install_server_callbacks);
  return setup;
}

}  // namespace

bool H2Connection::starts_preface(std::string_view bytes) noexcept {
  const std::size_t n = std::min(bytes.size(), kPreface.size());
  return n >= 3 && bytes.substr(0, n) == kPreface.substr(0, n);
}

H2Connection::H2Connection(Connection& conn, H2Host& host, const ServerConfig& config, char* buffer,
                           char* cipher)
    : conn_(conn), host_(host), config_(config), buffer_(buffer), cipher_(cipher) {
  const Nghttp2Setup& setup = session_setup();
  if (nghttp2_session_server_new3(&session_, setup.callbacks, this, setup.option,
                                  nghttp2_blocks()) != 0)
    throw std::bad_alloc();
  const Http2Config& h2 = config_.http2;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<std::uint32_t>(config_.limits.max_header_bytes)},
      {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, h2.websocket ? 1u : 0u},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<std::int32_t>(h2.connection_window));
  glitch_tokens_ = h2.glitch_burst;
  glitch_time_ = host_.h2_now();
}

H2Connection::~H2Connection() {
  while (live_ != nullptr) {
    std::unique_ptr<H2Stream> gone(live_);
    live_ = live_->next;
  }
  nghttp2_session_del(session_);
}

H2Stream& H2Connection::open_stream(std::int32_t id) {
  std::unique_ptr<H2Stream> s;
  if (spare_.empty()) {
    s = std::make_unique<H2Stream>(config_.limits);
  } else {
    s = std::move(spare_.back());
    spare_.pop_back();
  }
  s->id = id;
  s->req.set_remote_address(conn_.remote_address);
  s->req.set_local_port(conn_.local_port);
  s->req.set_secure(conn_.tls != nullptr);
  s->req.set_http2(true);
  // Handlers still running count against the limit, those of streams the client reset too:
  // resetting cannot pile up work (CVE-2023-44487).
  if (running_ >= config_.http2.max_concurrent_streams) s->refused = -1;
  if (open_streams_ == 0 && running_ == 0 && conn_.tls) conn_.tls->busy();
  last_busy_ = host_.h2_now();
  trimmed_ = false;
  ++open_streams_;
  H2Stream* ref = s.release();  // owned by the list of live streams until erase_if_done()
  ref->prev = nullptr;
  ref->next = live_;
  if (live_ != nullptr) live_->prev = ref;
  live_ = ref;
  return *ref;
}

void H2Connection::erase_if_done(H2Stream& s) {
  if (!s.closed || s.running || s.reading > 0) return;
  if (s.prev != nullptr) {
    s.prev->next = s.next;
  } else {
    live_ = s.next;
  }
  if (s.next != nullptr) s.next->prev = s.prev;
  std::unique_ptr<H2Stream> gone(&s);
  if (spare_.size() < config_.http2.max_concurrent_streams && !dead_) {
    gone->reset();
    spare_.push_back(std::move(gone));
  }
}

void H2Connection::consume(H2Stream& s, std::size_t n) {
  if (n == 0 || dead_) return;
  nghttp2_session_consume_connection(session_, n);
  if (!s.closed) nghttp2_session_consume_stream(session_, s.id, n);
  wake_writer();
}

void H2Connection::headers_done(H2Stream& s, bool end_stream) {
  if (s.refused == -1) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_REFUSED_STREAM);
    s.discard = true;
    glitch();
    return;
  }
  if (s.refused > 0) {
    reject(s, s.refused, "the request's header fields are too large");
    return;
  }
  // The head for the same checks as HTTP/1.1's, without writing it out to be scanned again.
  std::vector<Header>& fields = split_;
  fields.clear();
  std::string_view method = s.method;
  std::string_view target = s.method == "CONNECT" ? s.authority : s.path;
  if (!s.protocol.empty()) {
    if (end_stream) {
      reject(s, 400, "an extended CONNECT has no end: its stream carries the tunnel");
      return;
    }
    if (!connect_head(s)) return;
    method = "GET";
    target = s.path;
  }
  if (!s.authority.empty()) fields.push_back({"host", s.authority});
  if (!s.cookie.empty()) fields.push_back({"cookie", s.cookie});
  const std::string_view block = s.fields;
  for (const H2Stream::FieldSpan& f : s.spans) {
    fields.push_back(
        {block.substr(f.at, f.name_size), block.substr(f.at + f.name_size, f.value_size)});
  }
  const ParseResult r = s.parser.feed_split(method, target, fields, s.req);
  if (r.status == ParseStatus::kError) {
    reject(s, s.parser.error().status, s.parser.error().detail);
    return;
  }
  if (end_stream) {
    s.in_end = true;
    dispatch(s);
    return;
  }
  if (s.tunnel) {  // the handler's upgrade path at once; the DATA wait in `in` for the tunnel
    s.streams_body = true;
    dispatch(s);
    return;
  }
  const ParserLimits& limits = config_.limits;
  const bool known = s.req.header("content-length").has_value();
  const std::uint64_t length = s.parser.content_length();
  if (known && length > limits.max_body) {
    s.discard = true;
    reject(s, 413, "the request body is too large");
    return;
  }
  // As HTTP/1.1's parser decides: a body of unknown length, or a large one, reaches the handler
  // as it arrives.
  s.streams_body = limits.stream_above != 0 && (!known || length > limits.stream_above);
  if (s.streams_body) dispatch(s);  // else when the body is complete
}

void H2Connection::reject(H2Stream& s, int status, std::string_view detail) {
  conn_.handler->on_rejected(status, host_.h2_worker());
  glitch();
  if (s.answered || s.closed) return;
  s.discard = true;
  Response res = Response::problem(status, detail);
  submit(s, res, false);
}

void H2Connection::dispatch(H2Stream& s) {
  s.dispatched = true;
  if (s.streams_body && !s.tunnel) {
    s.body.emplace(*this, s);
    s.req.set_body_reader(&*s.body);
  }
  Handler& handler = *conn_.handler;
  bool done = false;
  try {  // the synchronous handler answers here, inside the read: no coroutine for it
    done = handler.handle(s.req, s.res, host_.h2_worker());
  } catch (const std::exception&) {
    s.res = Response::problem(500, "the handler failed");
    done = true;
  }
  if (done && !s.res.stream && !(s.tunnel && s.res.upgraded)) {
    respond(s);
    return;
  }
  s.running = true;
  ++running_;
  s.handled = done;
  // Started once the read is processed (start_streams()): co_spawn would run it at once, inside
  // nghttp2's callback, before the rest of the read, in which the client may reset the stream.
  starting_.push_back(&s);
}

void H2Connection::start_streams() {
  for (std::size_t i = 0; i < starting_.size(); ++i) start(*starting_[i]);
  starting_.clear();
}

void H2Connection::start(H2Stream& s) {
  asio::co_spawn(host_.h2_context(), run_stream(s), [this, &s](std::exception_ptr e) {
    log_exception(e);
    s.running = false;
    --running_;
    erase_if_done(s);
    update_deadline();
    notify(done_signal_);
    wake_writer();
  });
}

asio::awaitable<void> H2Connection::run_stream(H2Stream& s) {
  const bool handled = s.handled;
  // Started after the read that opened the stream was processed: a stream the client reset in
  // that read (rapid reset's pattern, CVE-2023-44487) never reaches the handler's upstream.
  if (!handled && (s.closed || dead_)) co_return;
  if (!handled) {
    try {
      co_await conn_.handler->handle_async(s.req, s.res, host_.h2_worker());
    } catch (const std::exception&) {
      s.res = Response::problem(500, "the handler failed");
    }
  }
  if (s.tunnel && !s.closed && !dead_ && !s.answered && s.res.status == 101 && s.res.upgraded) {
    UpgradeHandler upgraded = std::move(s.res.upgraded);
    co_await tunnel(s, std::move(upgraded));
    co_return;
  }
  if (respond(s)) co_await pump(s);
}

bool H2Connection::respond(H2Stream& s) {
  Response& res = s.res;
  if (s.body && s.body->error_status() != 0) {
    res = Response::problem(s.body->error_status(), s.body->error());
    conn_.handler->on_rejected(s.body->error_status(), host_.h2_worker());
  }
  if (s.closed || dead_ || s.answered) return false;
  if (res.status == 101 || res.upgraded) {  // HTTP/2 has no Upgrade (RFC 9113 §8.6)
    res = Response::problem(500, "a protocol upgrade cannot be answered over HTTP/2");
  }
  if (conn_.tls && !conn_.tls->hsts().empty())
    res.set_header("Strict-Transport-Security", conn_.tls->hsts());
  // A body the handler did not read: not wanted any more (the client is told once the answer is
  // complete; what comes meanwhile is consumed). A duplex answer reads it as it goes.
  if (!s.in_end && !(res.duplex && res.stream)) {
    s.discard = true;
    consume(s, s.in.size());
    s.in.clear();
  }
  const bool head_only = s.req.method() == Method::kHead;
  submit(s, res, head_only);
  return res.stream && !head_only && !status_has_no_body(res.status);
}

void H2Connection::submit(H2Stream& s, Response& res, bool head_only) {
  const int status = (res.status >= 200 && res.status <= 999) ? res.status : 500;
  const bool no_body = status_has_no_body(status) || head_only;
  // Digits by hand and to_chars: snprintf cost a thousand instructions an answer (callgrind).
  const char status_text[3] = {static_cast<char>('0' + status / 100),
                               static_cast<char>('0' + status / 10 % 10),
                               static_cast<char>('0' + status % 10)};
  char length_text[24];
  const std::string_view date = host_.h2_date();
  const std::string_view request_id = s.req.request_id();

  // Names in lower case (HTTP/2 requires it), in one arena sized first so that its pointers hold.
  bool custom_type = false;
  std::size_t arena_size = 0;
  for (const auto& [n, v] : res.headers) arena_size += n.size();
  std::string& arena = arena_;
  arena.clear();
  arena.reserve(arena_size);
  std::vector<nghttp2_nv>& nva = nva_;
  nva.clear();
  nva.reserve(res.headers.size() + 6);
  const auto add = [&nva](std::string_view n, std::string_view v) {
    nva.push_back(field_nv(n, v));
  };
  add(":status", std::string_view(status_text, 3));
  for (const auto& [n, v] : res.headers) {
    if (connection_specific(n)) continue;
    custom_type |= iequals(n, "content-type");
    const std::size_t at = arena.size();
    for (const char c : n) arena.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
    add(std::string_view(arena).substr(at, n.size()), v);
  }
  if (!custom_type && !status_has_no_body(status) && !res.content_type.empty())
    add("content-type", res.content_type);
  if (!status_has_no_body(status) && (!res.stream || res.stream_length >= 0)) {
    const std::size_t length = res.stream || (res.body.empty() && res.stream_length >= 0)
                                   ? static_cast<std::size_t>(res.stream_length)
                                   : res.body.size();
    const char* end = std::to_chars(length_text, length_text + sizeof length_text, length).ptr;
    add("content-length",
        std::string_view(length_text, static_cast<std::size_t>(end - length_text)));
  }
  if (!date.empty()) add("date", date);
  if (!request_id.empty()) add("x-request-id", request_id);  // never indexed (field_nv)

  nghttp2_data_provider provider{};
  provider.source.ptr = &s;
  provider.read_callback = &H2Callbacks::read_body;
  bool with_body = false;
  if (!no_body) {
    if (res.stream) {
      with_body = true;
      s.out_end = false;
    } else if (!res.body.empty()) {
      with_body = true;
      s.out = std::move(res.body);
      s.out_off = 0;
      s.out_end = true;
    }
  }
  s.answered = true;
  nghttp2_submit_response(session_, s.id, nva.data(), nva.size(), with_body ? &provider : nullptr);
  wake_writer();
}

asio::awaitable<void> H2Connection::pump(H2Stream& s) {
  std::uint64_t sent = 0;
  while (true) {
    while (!s.closed && !dead_ && s.out.size() - s.out_off >= kStreamBuffered)
      co_await wait(s.room);
    if (s.closed || dead_) co_return;
    BodyPiece piece;
    try {
      piece = co_await s.res.stream();
    } catch (const std::exception& e) {
      piece = BodyPiece::failure(e.what());
    }
    if (s.closed || dead_) co_return;
    sent += piece.data.size();
    const bool too_long =
        s.res.stream_length >= 0 && sent > static_cast<std::uint64_t>(s.res.stream_length);
    const bool too_short = piece.end && s.res.stream_length >= 0 &&
                           sent < static_cast<std::uint64_t>(s.res.stream_length);
    if (piece.failed() || too_long || too_short) {  // cut: the client must see it was
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
      wake_writer();
      co_return;
    }
    if (s.out_off > 0) {
      s.out.erase(0, s.out_off);
      s.out_off = 0;
    }
    s.out.append(piece.data);
    if (piece.end) {
      s.out_end = true;
      s.trailers = std::move(piece.trailers);
    }
    if (s.deferred) {
      s.deferred = false;
      nghttp2_session_resume_data(session_, s.id);
    }
    wake_writer();
    if (piece.end) co_return;
  }
}

bool H2Connection::connect_head(H2Stream& s) {
  // nghttp2 let :protocol through only as SETTINGS_ENABLE_CONNECT_PROTOCOL allows, with :scheme
  // and :path (RFC 8441 §4).
  if (!config_.http2.websocket || !iequals(s.protocol, "websocket")) {
    reject(s, 501, "only a WebSocket is tunnelled over HTTP/2 here");
    return false;
  }
  // HTTP/1.1's handshake needs a key; the client's own check of the answer is HTTP/2's 200
  // (its instance's Sec-WebSocket-Accept, made from this key, is not passed on).
  unsigned char raw[16];
  for (int i = 0; i < 2; ++i) {
    const std::uint64_t v = core::mix64(++key_seed_ ^ reinterpret_cast<std::uintptr_t>(this));
    std::memcpy(raw + 8 * i, &v, sizeof v);
  }
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(ws_key_), raw, sizeof raw);
  split_.push_back({"connection", "upgrade"});
  split_.push_back({"upgrade", "websocket"});
  split_.push_back({"sec-websocket-key", std::string_view(ws_key_, 24)});
  s.tunnel = true;
  return true;
}

// A tunnel's stream as the handler's upgraded connection: what the client sends in DATA is
// read from it (the stream's window opens as it is), what the handler writes goes out as DATA
// through pump() (a write waits while 64 KiB of it have not gone yet).
class H2Tunnel final : public Upgraded {
 public:
  static constexpr std::size_t kAhead = 64 * 1024;
  H2Tunnel(H2Connection& c, H2Stream& s) : c_(c), s_(s) { s_.side = this; }
  ~H2Tunnel() override { s_.side = nullptr; }
  H2Tunnel(const H2Tunnel&) = delete;
  H2Tunnel& operator=(const H2Tunnel&) = delete;

  // Each wait within the server's tunnel timeout of the last byte either way: a tunnel quiet
  // that long is closed (as an HTTP/1.1 one is).
  asio::awaitable<std::size_t> read_some(char* out, std::size_t size) override {
    while (s_.in.empty() && !s_.in_end && !gone()) {
      const auto until = last_ + c_.config_.tunnel_timeout;
      if (SteadyClock::now() >= until) {
        close();
        co_return 0;
      }
      co_await c_.wait(s_.signal, until);
    }
    if (s_.in.empty() || gone()) co_return 0;
    const std::size_t n = std::min(size, s_.in.size());
    std::memcpy(out, s_.in.data(), n);
    s_.in.erase(0, n);
    c_.consume(s_, n);
    last_ = SteadyClock::now();
    co_return n;
  }

  asio::awaitable<bool> write(std::string_view bytes) override {
    if (ended_ || gone()) co_return false;
    last_ = SteadyClock::now();
    pending_.append(bytes);
    H2Connection::notify(ready_);
    while (pending_.size() >= kAhead && !gone()) co_await c_.wait(drained_);
    co_return !gone();
  }

  void shutdown_send() override {
    ended_ = true;
    H2Connection::notify(ready_);
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    ended_ = true;
    if (!s_.closed && !c_.dead_) {
      nghttp2_submit_rst_stream(c_.session_, NGHTTP2_FLAG_NONE, s_.id, NGHTTP2_CANCEL);
      c_.wake_writer();
    }
    H2Connection::notify(s_.signal);
    wake();
  }

  // The answer's body: what write() gave, as it comes; its end at shutdown_send().
  asio::awaitable<BodyPiece> next() {
    while (pending_.empty() && !ended_ && !gone()) co_await c_.wait(ready_);
    if (!pending_.empty()) {
      std::string piece;
      piece.swap(pending_);
      H2Connection::notify(drained_);
      co_return BodyPiece::more(std::move(piece));
    }
    co_return gone() && !ended_ ? BodyPiece::failure("the tunnel was cut") : BodyPiece::last();
  }

  // The handler's side is done: wakes whatever still waits.
  void finish() {
    ended_ = true;
    wake();
  }
  void wake() {
    H2Connection::notify(ready_);
    H2Connection::notify(drained_);
  }

 private:
  bool gone() const noexcept { return closed_ || s_.closed || c_.dead_; }

  H2Connection& c_;
  H2Stream& s_;
  std::string pending_;
  SteadyClock::time_point last_ = SteadyClock::now();
  bool ended_ = false;
  bool closed_ = false;
  std::unique_ptr<asio::steady_timer> ready_;
  std::unique_ptr<asio::steady_timer> drained_;
};

void wake(H2Tunnel& tunnel) { tunnel.wake(); }

asio::awaitable<void> H2Connection::tunnel(H2Stream& s, UpgradeHandler upgraded) {
  // The instance's 101 as HTTP/2's 200 (RFC 8441 §5): its fields but the handshake's own.
  Response& res = s.res;
  res.status = 200;
  res.content_type = {};
  // (submit() leaves out the connection-specific ones: Connection, Upgrade.)
  std::erase_if(res.headers,
                [](const auto& field) { return iequals(field.first, "sec-websocket-accept"); });
  H2Tunnel side(*this, s);
  res.stream = [&side] { return side.next(); };
  res.duplex = true;
  res.stream_length = -1;  // whatever the 101 said: a tunnel has no length
  if (!respond(s)) co_return;
  bool pump_done = false;
  std::unique_ptr<asio::steady_timer> both;
  // The handler's tunnel and the answer's pump, side by side on this thread; this frame (and the
  // stream record) outlive both. The pump ends after the handler's end went out, or when the
  // stream did (the handler's reads and writes see it).
  asio::co_spawn(host_.h2_context(), pump(s), [&](std::exception_ptr e) {
    log_exception(e);
    pump_done = true;
    notify(both);
  });
  try {
    co_await upgraded(side);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "squadron: an HTTP/2 tunnel's handler failed: %s\n", e.what());
  }
  side.finish();
  while (!pump_done) co_await wait(both);
}

asio::awaitable<void> H2Connection::wait(std::unique_ptr<asio::steady_timer>& signal,
                                         SteadyClock::time_point until) {
  if (!signal) signal = std::make_unique<asio::steady_timer>(host_.h2_context());
  signal->expires_at(until);
  co_await signal->async_wait(kAwait);
}

void H2Connection::notify(std::unique_ptr<asio::steady_timer>& signal) {
  if (signal) signal->cancel();
}

bool H2Connection::glitch(double cost) {
  const Http2Config& h2 = config_.http2;
  const auto now = host_.h2_now();
  const double seconds = std::chrono::duration<double>(now - glitch_time_).count();
  glitch_time_ = now;
  glitch_tokens_ =
      std::min<double>(h2.glitch_burst, glitch_tokens_ + seconds * h2.glitches_per_second);
  if (glitch_tokens_ >= cost) {
    glitch_tokens_ -= cost;
    return true;
  }
  terminate(NGHTTP2_ENHANCE_YOUR_CALM);
  return false;
}

void H2Connection::terminate(std::uint32_t error_code) {
  if (terminated_) return;
  terminated_ = true;
  nghttp2_session_terminate_session(session_, error_code);
  wake_writer();
}

void H2Connection::shutdown() {
  if (goaway_ || terminated_ || session_ == nullptr) return;
  goaway_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  wake_writer();
}

void H2Connection::update_deadline() {
  const auto now = host_.h2_now();
  if (running_ > 0) {
    read_deadline_ = SteadyClock::time_point::max();  // handlers have deadlines of their own
  } else if (open_streams_ > 0) {
    read_deadline_ = now + config_.io_timeout;  // the client owes the rest of a request
  } else {
    read_deadline_ = now + config_.idle_timeout;
  }
  const bool was_idle = conn_.idle;
  conn_.idle = open_streams_ == 0 && running_ == 0;
  if (conn_.idle && !was_idle && conn_.tls) conn_.tls->idle();
  // Idle for a second or more (not between two waves of a load): the spare records go.
  if (conn_.idle && spare_.size() > kIdleSpareStreams &&
      now - last_busy_ >= std::chrono::seconds(1))
    spare_.resize(kIdleSpareStreams);
  conn_.deadline = std::min(read_deadline_, write_deadline_);
}

void H2Connection::trim_idle() noexcept {
  if (trimmed_ || !conn_.idle || reading_ > 0 || !starting_.empty() || dead_) return;
  trimmed_ = true;
  spare_.clear();
  std::vector<Header>().swap(split_);
  std::string().swap(arena_);
  std::vector<nghttp2_nv>().swap(nva_);
  if (!writing_ && out_.empty()) std::string().swap(out_);
  if (!writing_ && cipher_out_.empty()) std::string().swap(cipher_out_);
  // The buffers are pages of their own (ReadBuffer): given back, a pending read faults them in.
  ::madvise(buffer_, kReadBufferBytes, MADV_DONTNEED);
  if (cipher_ != nullptr) ::madvise(cipher_, kReadBufferBytes, MADV_DONTNEED);
}

void H2Connection::produce() {
  while (out_.size() < kWriteBatch) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) {
      if (n < 0) dead_ = true;  // out of memory: nothing sensible can be sent any more
      return;
    }
    out_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
}

asio::awaitable<bool> H2Connection::write_out() {
  writing_ = true;
  core::ScopeExit done([this] { writing_ = false; });
  std::string* bytes = &out_;
  if (conn_.tls) {
    const bool ok = conn_.tls->write(out_);
    out_.clear();
    if (!ok) co_return false;
    // Its own string while it waits: a read meanwhile may send what OpenSSL writes next.
    cipher_out_.swap(conn_.tls->output());
    bytes = &cipher_out_;
  }
  error_code ec;
  std::size_t sent = conn_.socket.write_some(asio::buffer(*bytes), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ec = {};
    sent = 0;
  }
  if (!ec && sent < bytes->size()) {
    write_deadline_ = host_.h2_now() + config_.io_timeout;
    conn_.deadline = std::min(read_deadline_, write_deadline_);
    std::tie(ec, std::ignore) = co_await asio::async_write(
        conn_.socket, asio::buffer(bytes->data() + sent, bytes->size() - sent), kAwait);
    write_deadline_ = SteadyClock::time_point::max();
    conn_.deadline = std::min(read_deadline_, write_deadline_);
  }
  bytes->clear();
  co_return !ec;
}

asio::awaitable<void> H2Connection::write_loop() {
  while (!dead_) {
    produce();
    if (out_.empty()) {
      if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
        // All said (a GOAWAY, and the streams before it answered): the reader stops too.
        error_code ec;
        conn_.socket.cancel(ec);
        co_return;
      }
      co_await wait(writer_signal_);
      continue;
    }
    if (!co_await write_out()) {
      dead_ = true;
      error_code ec;
      conn_.socket.cancel(ec);
      co_return;
    }
  }
}

bool H2Connection::receive(std::string_view bytes) {
  const ssize_t n = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  start_streams();
  if (n >= 0) return true;
  // A protocol error (nghttp2 has queued its GOAWAY), a flood, or a budget spent.
  if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC) terminate(NGHTTP2_PROTOCOL_ERROR);
  return false;
}

asio::awaitable<void> H2Connection::run(std::string_view first) {
  writer_signal_ = std::make_unique<asio::steady_timer>(host_.h2_context());
  done_signal_ = std::make_unique<asio::steady_timer>(host_.h2_context());
  conn_.h2 = this;
  writer_running_ = true;
  asio::co_spawn(host_.h2_context(), write_loop(), [this](std::exception_ptr e) {
    log_exception(e);
    writer_running_ = false;
    notify(done_signal_);
  });
  if (host_.h2_stopping()) shutdown();
  bool ok = first.empty() || receive(first);
  wake_writer();
  while (ok && !dead_) {
    if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0)
      break;
    update_deadline();
    error_code ec;
    std::size_t n = 0;
    if (conn_.tls) {
      std::tie(ec, n) = co_await tls_read(conn_, buffer_, cipher_);
    } else {
      std::tie(ec, n) =
          co_await conn_.socket.async_read_some(asio::buffer(buffer_, kReadBufferBytes), kAwait);
    }
    if (ec) {
      // Quiet past the idle timeout, or closed to make room: said with a GOAWAY.
      if (conn_.timed_out || conn_.evicted) terminate(NGHTTP2_NO_ERROR);
      break;
    }
    ok = receive(std::string_view(buffer_, n));
    wake_writer();
  }
  // What is still to say (a GOAWAY) goes out if the socket takes it now.
  if (!dead_ && !writing_) {
    produce();
    if (!out_.empty()) send_now(conn_, out_);
    out_.clear();
  }
  dead_ = true;
  conn_.h2 = nullptr;
  for (H2Stream* s = live_; s != nullptr; s = s->next) {
    if (s->running) s->req.cancel();
    notify(s->signal);
    notify(s->room);
    if (s->side != nullptr) wake(*s->side);
  }
  wake_writer();
  while (running_ > 0 || reading_ > 0 || writer_running_) co_await wait(done_signal_);
}

}  // namespace squadron::http::internal
