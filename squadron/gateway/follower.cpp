#include "squadron/gateway/follower.hpp"

#include <charconv>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>

namespace squadron::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

bool parse_control_url(std::string_view url, WatchTarget& out) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) return false;
  url.remove_prefix(kScheme.size());
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  const auto colon = url.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  unsigned port = 0;
  const auto digits = url.substr(colon + 1);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || p != digits.data() + digits.size() || port == 0 || port > 65535)
    return false;
  out.host = std::string(url.substr(0, colon));
  if (out.host == "localhost" || out.host == "0.0.0.0") out.host = "127.0.0.1";
  out.port = static_cast<std::uint16_t>(port);
  return true;
}

Follower::Follower(asio::any_io_executor executor, Proxy& proxy, WatchTarget target,
                   std::function<void(const std::string&)> log)
    : proxy_(proxy),
      target_(std::move(target)),
      log_(std::move(log)),
      stream_(executor),
      pause_(executor) {}

void Follower::stop() {
  stopping_ = true;
  boost::system::error_code ec;
  stream_.socket().close(ec);
  pause_.cancel();
}

asio::awaitable<void> Follower::run() {
  std::uint64_t revision = 0;
  bool connected_before = false;
  bool complained = false;
  while (!stopping_) {
    boost::system::error_code ec;
    stream_.socket().close(ec);
    const auto address = asio::ip::make_address(target_.host, ec);
    if (!ec) {
      stream_.expires_after(2s);
      std::tie(ec) = co_await stream_.async_connect(tcp::endpoint(address, target_.port), kAwait);
    }
    beast::flat_buffer buffer;
    while (!ec && !stopping_) {
      if (!connected_before || complained) {
        log_("following the control plane at http://" + target_.host + ":" +
             std::to_string(target_.port));
        connected_before = true;
        complained = false;
      }
      bhttp::request<bhttp::empty_body> req(
          bhttp::verb::get, "/api/v1/watch?since=" + std::to_string(revision) + "&timeout=25s", 11);
      req.set(bhttp::field::host, target_.host);
      req.set(bhttp::field::user_agent, "squadron-gateway");
      stream_.expires_after(40s);
      std::size_t n = 0;
      std::tie(ec, n) = co_await bhttp::async_write(stream_, req, kAwait);
      if (ec) break;
      bhttp::response<bhttp::string_body> res;
      std::tie(ec, n) = co_await bhttp::async_read(stream_, buffer, res, kAwait);
      if (ec) break;
      if (res.result_int() != 200) {
        log_("the control plane answered " + std::to_string(res.result_int()) + " to the watch");
        ec = asio::error::connection_aborted;
        break;
      }
      boost::system::error_code jec;
      const auto doc = boost::json::parse(res.body(), jec);
      std::string error;
      auto table = jec ? nullptr : RouteTable::from_watch(doc, error);
      if (!table) {
        log_("unreadable watch answer: " + (jec ? jec.message() : error));
        ec = asio::error::invalid_argument;
        break;
      }
      if (table->revision() != revision || revision == 0) {
        revision = table->revision();
        proxy_.publish(std::move(table));
      }
      if (!res.keep_alive()) break;
    }
    if (stopping_) break;
    if (!complained) {
      log_("the control plane is unreachable (" + ec.message() +
           "); serving from the last routes, retrying every second");
      complained = true;
    }
    pause_.expires_after(1s);
    co_await pause_.async_wait(kAwait);
  }
}

}  // namespace squadron::gateway
