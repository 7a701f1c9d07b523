#include "gateway.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>

#include "squadron/gateway/proxy.hpp"
#include "squadron/gateway/watcher.hpp"
#include "squadron/http/server.hpp"

namespace squadron::apps {

using namespace std::chrono_literals;

int run_gateway(const GatewayOptions& options) {
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
  gateway::ProxyConfig proxy_config;
  proxy_config.threads = config.threads;
  gateway::Proxy proxy(proxy_config);
  http::Server server(config, proxy);
  if (auto ec = server.listen()) {
    std::fprintf(stderr, "squadron gateway: cannot listen on %s:%d: %s\n", config.host.c_str(),
                 port, ec.message().c_str());
    return 1;
  }
  auto log = [](const std::string& line) {
    std::fprintf(stderr, "squadron gateway: %s\n", line.c_str());
    std::fflush(stderr);
  };
  gateway::Follower follower(server.main_context().get_executor(), proxy, target, log);
  boost::asio::co_spawn(server.main_context(), follower.run(), boost::asio::detached);
  boost::asio::signal_set signals(server.main_context(), SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    follower.stop();
    server.stop(10s);
  });
  std::printf("squadron gateway listening on http://%s:%u (%zu I/O thread%s), following %s\n",
              config.host.c_str(), server.port(), server.threads(),
              server.threads() == 1 ? "" : "s", options.control.c_str());
  std::fflush(stdout);
  server.run();
  return 0;
}

}  // namespace squadron::apps
