#include "squadron/service/websocket.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/websocket.hpp>

#include "squadron/core/spawn.hpp"

namespace squadron::service {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// One write to the connection gathers a frame's header and payload up to this much.
constexpr std::size_t kGather = 64 * 1024;

// The upgraded connection (TLS or not) as the stream Beast's websocket stream sits on: each
// read and write one awaited call of http::Upgraded.
class UpgradedStream {
 public:
  using executor_type = asio::any_io_executor;
  UpgradedStream(http::Upgraded& up, executor_type ex) : up_(&up), ex_(std::move(ex)) {}
  executor_type get_executor() const noexcept { return ex_; }
  void shutdown() { up_->shutdown_send(); }
  void close() { up_->close(); }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    asio::mutable_buffer first;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      if (asio::mutable_buffer(*it).size() != 0) {
        first = *it;
        break;
      }
    }
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, asio::mutable_buffer b) {
          asio::co_spawn(ex_, read(b),
                         [h = std::move(handler), want = b.size()](std::exception_ptr e,
                                                                   std::size_t n) mutable {
                           error_code ec;
                           if (e)
                             ec = asio::error::operation_aborted;
                           else if (n == 0 && want != 0)
                             ec = asio::error::eof;
                           std::move(h)(ec, n);
                         });
        },
        token, first);
  }

  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    std::string bytes;
    bytes.reserve(std::min(asio::buffer_size(buffers), kGather));
    for (auto it = asio::buffer_sequence_begin(buffers);
         it != asio::buffer_sequence_end(buffers) && bytes.size() < kGather; ++it) {
      const asio::const_buffer b(*it);
      bytes.append(static_cast<const char*>(b.data()), std::min(b.size(), kGather - bytes.size()));
    }
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, std::string out) {
          const std::size_t size = out.size();
          asio::co_spawn(ex_, write(std::move(out)),
                         [h = std::move(handler), size](std::exception_ptr e, bool ok) mutable {
                           const bool sent = !e && ok;
                           std::move(h)(sent ? error_code() : error_code(asio::error::broken_pipe),
                                        sent ? size : 0);
                         });
        },
        token, std::move(bytes));
  }

 private:
  asio::awaitable<std::size_t> read(asio::mutable_buffer b) {
    if (b.size() == 0) co_return 0;
    co_return co_await up_->read_some(static_cast<char*>(b.data()), b.size());
  }
  asio::awaitable<bool> write(std::string bytes) { co_return co_await up_->write(bytes); }

  http::Upgraded* up_;
  executor_type ex_;
};

// Beast's websocket stream ends the connection through these (found by argument lookup): our
// side is shut; the server closes the socket once the handler returns.
template <class Handler>
void async_teardown(beast::role_type, UpgradedStream& s, Handler&& handler) {
  s.shutdown();
  asio::post(s.get_executor(),
             [h = std::forward<Handler>(handler)]() mutable { std::move(h)(error_code()); });
}
[[maybe_unused]] void teardown(beast::role_type, UpgradedStream& s, error_code& ec) {
  s.shutdown();
  ec = {};
}
// ... and cut it with this (a timeout, a protocol fault).
[[maybe_unused]] void beast_close_socket(UpgradedStream& s) { s.close(); }

}  // namespace

class WebSocket::Impl : public std::enable_shared_from_this<WebSocket::Impl> {
 public:
  Impl(http::Upgraded& up, const asio::any_io_executor& ex, Origin o)
      : ws(up, ex), origin(std::move(o)), going_away(ex), settled(ex) {}

  // The connection ended with `ec` (a read's or a close's).
  void ended(const error_code& ec) {
    if (code != 0) return;
    if (ec == websocket::error::closed) {
      code = ws.reason().code != 0 ? static_cast<std::uint16_t>(ws.reason().code) : 1005;
    } else {
      code = 1006;
    }
  }

  // A close frame goes out now, or after the write in progress.
  void start_close(std::uint16_t with, std::string reason) {
    if (code != 0 || closing) return;
    if (writing) {
      pending = {with, std::move(reason)};
      return;
    }
    closing = true;
    ++closes;
    core::spawn(settled.get_executor(), close_now(shared_from_this(), with, std::move(reason)),
                "a WebSocket's close");
  }

  // Sends the close frame (a reason of at most 123 bytes) and waits for the client's; counted in
  // `closes` by its caller.
  static asio::awaitable<void> close_now(std::shared_ptr<Impl> self, std::uint16_t with,
                                         std::string reason) {
    websocket::close_reason why(static_cast<websocket::close_code>(with),
                                std::string_view(reason).substr(0, 123));
    auto [ec] = co_await self->ws.async_close(why, kAwait);
    if (self->code == 0) self->code = ec ? 1006 : with;
    --self->closes;
    self->settled.cancel();
  }

  // After the service's stop: 1001 at `when`.
  void arm(Clock::time_point when) {
    going_away.expires_at(when);
    going_away.async_wait([weak = weak_from_this()](error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->start_close(1001, "the service is stopping");
    });
  }

  // Until no close (close_now()) is in flight.
  asio::awaitable<void> quiet() {
    while (closes > 0) {
      settled.expires_after(std::chrono::seconds(1));
      co_await settled.async_wait(kAwait);
    }
  }

  websocket::stream<UpgradedStream> ws;
  beast::flat_buffer buffer;
  Origin origin;
  std::uint16_t code = 0;  // how it ended; 0 while open
  bool writing = false;
  bool closing = false;  // a close frame is going or went out
  std::optional<std::pair<std::uint16_t, std::string>> pending;  // a close after the write
  int closes = 0;
  asio::steady_timer going_away;
  asio::steady_timer settled;
};

asio::awaitable<std::optional<WebSocket::Message>> WebSocket::receive() {
  if (impl_.code != 0) co_return std::nullopt;
  impl_.buffer.clear();
  auto [ec, n] = co_await impl_.ws.async_read(impl_.buffer, kAwait);
  if (ec) {
    impl_.ended(ec);
    co_return std::nullopt;
  }
  Message m{beast::buffers_to_string(impl_.buffer.data()), impl_.ws.got_binary()};
  impl_.buffer.consume(n);
  co_return m;
}

asio::awaitable<bool> WebSocket::send(std::string_view data, bool binary) {
  if (impl_.code != 0 || impl_.closing || impl_.writing) co_return false;
  impl_.writing = true;
  impl_.ws.binary(binary);
  auto [ec, n] = co_await impl_.ws.async_write(asio::buffer(data.data(), data.size()), kAwait);
  impl_.writing = false;
  if (impl_.pending) {
    auto [with, reason] = std::move(*impl_.pending);
    impl_.pending.reset();
    impl_.start_close(with, std::move(reason));
  }
  if (ec && ec != websocket::error::closed) impl_.ended(ec);
  co_return !ec;
}

asio::awaitable<void> WebSocket::close(std::uint16_t code, std::string_view reason) {
  if (impl_.code != 0 || impl_.closing || impl_.writing) co_return;
  impl_.closing = true;
  ++impl_.closes;
  co_await Impl::close_now(impl_.shared_from_this(), code, std::string(reason));
}

std::uint16_t WebSocket::close_code() const noexcept { return impl_.code; }
bool WebSocket::is_open() const noexcept { return impl_.code == 0 && impl_.ws.is_open(); }
const WebSocket::Origin& WebSocket::origin() const noexcept { return impl_.origin; }

std::string_view WebSocket::param(std::string_view name) const noexcept {
  for (const auto& [n, v] : impl_.origin.params) {
    if (n == name) return v;
  }
  return {};
}

std::optional<std::string_view> WebSocket::header(std::string_view name) const noexcept {
  for (const auto& [n, v] : impl_.origin.headers) {
    if (http::iequals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

namespace internal {

struct WebSocketSessions::State {
  std::mutex mutex;
  std::uint64_t next = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<WebSocket::Impl>> open;
  std::optional<Clock::time_point> going_away;

  static void arm(const std::weak_ptr<WebSocket::Impl>& weak, asio::any_io_executor ex,
                  Clock::time_point when) {
    asio::post(ex, [weak, when] {
      if (auto impl = weak.lock()) impl->arm(when);
    });
  }
  std::uint64_t add(const std::shared_ptr<WebSocket::Impl>& impl) {
    std::lock_guard lock(mutex);
    const auto id = next++;
    open.emplace(id, impl);
    if (going_away) arm(impl, impl->going_away.get_executor(), *going_away);
    return id;
  }
  void remove(std::uint64_t id) {
    std::lock_guard lock(mutex);
    open.erase(id);
  }
};

WebSocketSessions::WebSocketSessions() : state(std::make_shared<State>()) {}
WebSocketSessions::~WebSocketSessions() = default;

void WebSocketSessions::go_away_at(Clock::time_point when) {
  std::lock_guard lock(state->mutex);
  state->going_away = when;
  for (const auto& [id, weak] : state->open) {
    if (auto impl = weak.lock()) State::arm(weak, impl->going_away.get_executor(), when);
  }
}

std::size_t WebSocketSessions::open() const {
  std::lock_guard lock(state->mutex);
  return state->open.size();
}

namespace {

using UpgradeRequest = beast::http::request<beast::http::empty_body>;

asio::awaitable<void> run_session(http::Upgraded& conn,
                                  std::shared_ptr<const WebSocketHandler> handler,
                                  std::shared_ptr<WebSocketSessions::State> sessions,
                                  UpgradeRequest request, WebSocket::Origin origin) {
  const auto ex = co_await asio::this_coro::executor;
  auto impl = std::make_shared<WebSocket::Impl>(conn, ex, std::move(origin));
  // The handshake within 30 s; idleness is the server's tunnel timeout's to judge.
  impl->ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(30),
                                                      websocket::stream_base::none(), false});
  impl->ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(beast::http::field::server, "squadron"); }));
  auto [ec] = co_await impl->ws.async_accept(request, kAwait);
  if (ec) co_return;  // Beast answered the handshake's fault (400) itself
  const auto id = sessions->add(impl);
  WebSocket ws(*impl);
  try {
    co_await (*handler)(ws);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "squadron: a WebSocket handler (%s) failed: %s\n",
                 impl->origin.path.c_str(), e.what());
    impl->start_close(1011, "the handler failed");
  }
  sessions->remove(id);
  if (impl->code == 0 && !impl->closing && !impl->writing) co_await ws.close(1000);
  co_await impl->quiet();
}

}  // namespace

http::Response accept_websocket(http::Request& req, std::shared_ptr<const WebSocketHandler> handler,
                                WebSocketSessions& sessions) {
  UpgradeRequest up;
  up.method_string(req.method_name());
  up.target(req.target());
  up.version(req.version_minor() == 1 ? 11 : 10);
  for (const auto& h : req.headers()) up.insert(h.name, h.value);
  if (!websocket::is_upgrade(up)) {
    auto res = http::Response::problem(
        426,
        "this is a WebSocket endpoint: connect with GET over HTTP/1.1, `Connection: Upgrade` "
        "and `Upgrade: websocket`");
    res.set_header("Upgrade", "websocket");
    res.set_header("Sec-WebSocket-Version", "13");
    return res;
  }
  WebSocket::Origin origin;
  origin.path = std::string(req.path());
  for (const auto& [n, v] : req.params()) origin.params.emplace_back(std::string(n), v);
  for (const auto& h : req.headers()) origin.headers.emplace_back(h.name, h.value);
  http::Response res;
  res.status = 101;
  res.upgrade_writes_head = true;
  res.upgraded = [handler = std::move(handler), sessions = sessions.state, up = std::move(up),
                  origin = std::move(origin)](http::Upgraded& conn) mutable {
    return run_session(conn, handler, sessions, std::move(up), std::move(origin));
  };
  return res;
}

}  // namespace internal

}  // namespace squadron::service
