// Follows the control API's watch (long-poll with revisions, over http::ConnectionPool) and
// publishes each new routing table to the proxy. If the control plane is unreachable, the proxy
// keeps the last table and the follower tries again every second, like an Envoy that lost its xDS
// server.
//
//   Follower f{io.get_executor(), proxy, target, log};
//   co_spawn(io, f.run(), detached);
//   f.stop();                                // ends run() at once
//
// Thread safety: all calls on the executor's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "squadron/gateway/proxy.hpp"
#include "squadron/http/client.hpp"

namespace squadron::gateway {

struct WatchTarget {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9900;
};

// "http://127.0.0.1:9900" -> {host, port}; false if it is not such a URL.
bool parse_control_url(std::string_view url, WatchTarget& out);

// "http://a:9900,http://b:9900" (one or more, comma-separated) -> targets; false if any part is
// not such a URL.
bool parse_control_urls(std::string_view urls, std::vector<WatchTarget>& out);

class Follower final {
 public:
  Follower(boost::asio::io_context::executor_type executor, Proxy& proxy, WatchTarget target,
           std::function<void(const std::string&)> log);
  // Several control APIs (a cluster's servers, any of which answers): the watch stays with the
  // one that answers and moves to the next when it does not.
  Follower(boost::asio::io_context::executor_type executor, Proxy& proxy,
           std::vector<WatchTarget> targets, std::function<void(const std::string&)> log);
  // The gateway's own address in a cluster: instances on it are preferred (RouteTable::from).
  void set_local_host(std::string host) { local_host_ = std::move(host); }
  // Until stop(). `log` gets a line on each change of connectivity.
  boost::asio::awaitable<void> run();
  void stop();

 private:
  Proxy& proxy_;
  std::vector<WatchTarget> targets_;  // at least one
  std::size_t current_ = 0;
  std::function<void(const std::string&)> log_;
  http::ConnectionPool pool_;  // its own: stop() cancels the long poll outstanding
  boost::asio::steady_timer pause_;
  bool stopping_ = false;
  std::string local_host_;
};

}  // namespace squadron::gateway
