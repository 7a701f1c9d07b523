#include "gateway.hpp"

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include "squadron/core/address.hpp"
#include "squadron/core/limits.hpp"
#include "squadron/core/spawn.hpp"
#include "squadron/gateway/admin.hpp"
#include "squadron/gateway/follower.hpp"
#include "squadron/gateway/proxy.hpp"
#include "squadron/gateway/tunnel.hpp"
#include "squadron/http/client.hpp"
#include "squadron/http/server.hpp"

namespace squadron::apps {

using namespace std::chrono_literals;

namespace {

// Asks the control plane to wake a service scaled to zero (POST .../wake with the fleet's
// token, which `squadron up` hands the gateway in SQUADRON_CONTROL_TOKEN). On the main thread.
class Waker {
 public:
  Waker(boost::asio::io_context& io, gateway::WatchTarget target, std::string token)
      : io_(io), target_(std::move(target)), token_(std::move(token)) {}

  void wake(const std::string& service) {
    if (token_.empty()) return;
    core::spawn(io_, send(service), "wake " + service);
  }

 private:
  boost::asio::awaitable<void> send(std::string service) {
    const std::string key = target_.host + ":" + std::to_string(target_.port);
    const std::string request = "POST /api/v1/services/" + service +
                                "/wake HTTP/1.1\r\nHost: " + key + "\r\nAuthorization: Bearer " +
                                token_ + "\r\nContent-Length: 0\r\n\r\n";
    const std::array<boost::asio::const_buffer, 1> out{boost::asio::buffer(request)};
    http::ExchangeOptions options;
    options.deadline = std::chrono::steady_clock::now() + 2s;
    http::Response res;
    co_await http::ConnectionPool::of(io_).exchange({key, target_.host, target_.port}, out, options,
                                                    res);
  }

  boost::asio::io_context& io_;
  gateway::WatchTarget target_;
  std::string token_;
};

}  // namespace

int run_gateway(const GatewayOptions& options) {
  core::raise_fd_limit();
  gateway::WatchTarget target;
  if (!gateway::parse_control_url(options.control, target)) {
    std::fprintf(stderr,
                 "squadron gateway: --control needs the control API's URL, like "
                 "http://127.0.0.1:9900 (got \"%s\")\n",
                 options.control.c_str());
    return 2;
  }
  int port = options.port;
  if (port < 0) {
    const char* env = std::getenv("PORT");
    port = env != nullptr ? std::atoi(env) : 8080;
  }
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "squadron gateway: port %d is not a port (0-65535)\n", port);
    return 2;
  }
  http::ServerConfig config;
  config.host = options.host;
  config.port = static_cast<std::uint16_t>(port);
  // The proxy keeps state per I/O thread: both get the same count.
  config.threads = options.threads != 0
                       ? options.threads
                       : std::max<std::size_t>(1, std::thread::hardware_concurrency());
  // Bodies over 64 KiB, and chunked ones, pass through as they arrive (constant memory, no
  // size limit here: each upstream applies its own); smaller ones travel in one send.
  config.limits.stream_above = 64 * 1024;
  config.limits.max_body = std::numeric_limits<std::size_t>::max();
  gateway::ProxyConfig proxy_config;
  proxy_config.threads = config.threads;
  for (const auto& t : options.trusted_proxies) {
    if (!core::AddressBlock::parse(t)) {
      std::fprintf(stderr,
                   "squadron gateway: --trusted-proxy takes an address or CIDR block like "
                   "10.0.0.0/8 (got \"%s\")\n",
                   t.c_str());
      return 2;
    }
  }
  proxy_config.trusted_proxies = options.trusted_proxies;
  for (const auto& spec : options.internal) {  // SERVICE=PORT
    const auto eq = spec.find('=');
    const int p = eq == std::string::npos ? -1 : std::atoi(spec.c_str() + eq + 1);
    if (eq == std::string::npos || eq == 0 || p <= 0 || p > 65535) {
      std::fprintf(stderr, "squadron gateway: --internal takes SERVICE=PORT (got \"%s\")\n",
                   spec.c_str());
      return 2;
    }
    proxy_config.internal.emplace_back(static_cast<std::uint16_t>(p), spec.substr(0, eq));
  }
  // Waking services scaled to zero: the I/O threads ask, the main thread calls the control API.
  std::unique_ptr<Waker> waker;
  boost::asio::io_context* main = nullptr;
  proxy_config.wake = [&waker, &main](const std::string& service) {
    if (main == nullptr) return;
    boost::asio::post(*main, [&waker, service] {
      if (waker) waker->wake(service);
    });
  };
  gateway::Proxy proxy(proxy_config);
  http::Server server(config, proxy);
  main = &server.main_context();
  gateway::Admin admin(proxy);
  admin.set_server(server);
  const char* token = std::getenv("SQUADRON_CONTROL_TOKEN");
  waker = std::make_unique<Waker>(server.main_context(), target, token != nullptr ? token : "");
  std::vector<boost::asio::io_context*> contexts;
  for (std::size_t i = 0; i < server.threads(); ++i) contexts.push_back(&server.context(i));
  gateway::TcpFront tcp(proxy, contexts);
  auto is_tcp = [&](int p) {
    return std::find(options.tcp.begin(), options.tcp.end(), p) != options.tcp.end();
  };
  // A loopback listener of the fleet's (a service's or a spare): HTTP, or TCP passed through.
  auto add_listener = [&](int& fd, std::uint16_t p) {
    if (is_tcp(p)) return options.listen_fds ? tcp.adopt(fd++) : tcp.listen("127.0.0.1", p);
    return options.listen_fds ? server.adopt_listener(fd++) : server.listen_also("127.0.0.1", p);
  };
  int next_fd = 3;  // with --listen-fds: the next inherited listener
  if (auto ec = options.listen_fds ? server.adopt_listener(next_fd++) : server.listen()) {
    std::fprintf(stderr, "squadron gateway: cannot listen on %s:%d: %s\n", config.host.c_str(),
                 port, ec.message().c_str());
    return 1;
  }
  for (const auto& [internal_port, service] : proxy_config.internal) {
    if (auto ec = add_listener(next_fd, internal_port)) {
      std::fprintf(stderr, "squadron gateway: cannot listen for %s on 127.0.0.1:%u: %s\n",
                   service.c_str(), internal_port, ec.message().c_str());
      return 1;
    }
  }
  for (const int spare : options.spares) {
    if (auto ec = add_listener(next_fd, static_cast<std::uint16_t>(spare))) {
      std::fprintf(stderr, "squadron gateway: cannot listen on 127.0.0.1:%d: %s\n", spare,
                   ec.message().c_str());
      return 1;
    }
  }
  proxy.set_front_port(server.port());
  if (options.admin >= 0) {
    std::uint16_t bound = 0;
    if (auto ec = options.listen_fds
                      ? server.adopt_listener(next_fd++, &bound)
                      : server.listen_also("127.0.0.1", static_cast<std::uint16_t>(options.admin),
                                           &bound)) {
      std::fprintf(stderr, "squadron gateway: cannot listen for /metrics on 127.0.0.1:%d: %s\n",
                   options.admin, ec.message().c_str());
      return 1;
    }
    server.serve_port_with(bound, admin);
    std::printf("squadron gateway: admin endpoints on http://127.0.0.1:%u (/metrics, /upstreams)\n",
                bound);
  }
  auto log = [](const std::string& line) {
    std::fprintf(stderr, "squadron gateway: %s\n", line.c_str());
    std::fflush(stderr);
  };
  gateway::Follower follower(server.main_context().get_executor(), proxy, target, log);
  core::spawn(server.main_context(), follower.run(), "the control-plane follower", [] {
    // The routes cannot be followed any more: a gateway serving stale routes for good is worse
    // than a restart, which the fleet does at once.
    std::_Exit(1);
  });
  boost::asio::signal_set signals(server.main_context(), SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    follower.stop();
    // Tunnels close a second before the server gives up on its own connections (and stops
    // its contexts): no TCP connection is left suspended when the contexts go.
    tcp.stop(9s);
    server.stop(10s);
  });
  std::printf("squadron gateway listening on http://%s:%u (%zu I/O thread%s), following %s\n",
              config.host.c_str(), server.port(), server.threads(),
              server.threads() == 1 ? "" : "s", options.control.c_str());
  std::fflush(stdout);
  tcp.start();
  server.run();
  return 0;
}

}  // namespace squadron::apps
