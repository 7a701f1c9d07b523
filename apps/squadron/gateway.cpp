#include "gateway.hpp"

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "squadron/control/gateway_file.hpp"
#include "squadron/core/address.hpp"
#include "squadron/core/limits.hpp"
#include "squadron/core/spawn.hpp"
#include "squadron/gateway/admin.hpp"
#include "squadron/gateway/follower.hpp"
#include "squadron/gateway/proxy.hpp"
#include "squadron/gateway/redirect.hpp"
#include "squadron/gateway/resolver.hpp"
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

// The front door's server: `threads` I/O threads (0: one per core; the proxy keeps state per
// thread and gets the same count). Bodies over 64 KiB, and chunked ones, pass through as they
// arrive (constant memory, no size limit here: each upstream applies its own); smaller ones
// travel in one send.
http::ServerConfig front_config(std::string host, std::uint16_t port, std::size_t threads,
                                int idle_timeout) {
  http::ServerConfig config;
  if (idle_timeout > 0) config.idle_timeout = std::chrono::seconds(idle_timeout);
  config.host = std::move(host);
  config.port = port;
  config.threads =
      threads != 0 ? threads : std::max<std::size_t>(1, std::thread::hardware_concurrency());
  config.limits.stream_above = 64 * 1024;
  config.limits.max_body = std::numeric_limits<std::size_t>::max();
  config.http2.websocket = true;  // WebSockets over HTTP/2 to the usual upgrade path
  return config;
}

// The front door's TLS from certificate and key files in pairs: null without any; `error` set
// when they do not load.
std::shared_ptr<http::TlsListener> front_tls(const std::vector<http::TlsCertificate>& certificates,
                                             bool hsts, std::string& error) {
  if (certificates.empty()) return nullptr;
  http::TlsConfig config;
  config.certificates = certificates;
  if (hsts) config.hsts = std::chrono::hours(2 * 365 * 24);  // two years (Mozilla's advice)
  return http::TlsListener::make(std::move(config), error);
}

// Reloads the front door's certificates on SIGHUP and when a file changes (checked each second):
// new connections get the new ones; open ones keep theirs; files that do not load leave the last
// good ones in place.
class TlsReloader {
 public:
  TlsReloader(boost::asio::io_context& io, std::shared_ptr<http::TlsListener> tls,
              std::function<void(const std::string&)> log)
      : tls_(std::move(tls)), log_(std::move(log)), hangup_(io, SIGHUP), poll_(io) {}
  void start() {
    if (!tls_) return;
    wait_hangup();
    wait_poll();
  }
  void stop() {
    hangup_.cancel();
    poll_.cancel();
  }
  // Reloads now (`why` for the log).
  void reload(const char* why) {
    if (!tls_) return;
    std::string error;
    if (tls_->reload(error)) {
      log_(std::string("TLS certificates reloaded (") + why + ")");
    } else {
      log_(std::string("TLS certificates not reloaded (") + why + "): " + error +
           "; still serving the last good ones");
    }
  }

 private:
  void wait_hangup() {
    hangup_.async_wait([this](boost::system::error_code ec, int) {
      if (ec) return;
      reload("SIGHUP");
      wait_hangup();
    });
  }
  void wait_poll() {
    poll_.expires_after(1s);
    poll_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      if (tls_->files_changed()) reload("a file changed");
      wait_poll();
    });
  }
  std::shared_ptr<http::TlsListener> tls_;
  std::function<void(const std::string&)> log_;
  boost::asio::signal_set hangup_;
  boost::asio::steady_timer poll_;
};

}  // namespace

int run_gateway(const GatewayOptions& options) {
  core::raise_fd_limit();
  std::vector<gateway::WatchTarget> targets;
  if (!gateway::parse_control_urls(options.control, targets)) {
    std::fprintf(
        stderr,
        "squadron gateway: --control needs the control API's URL, like "
        "http://127.0.0.1:9900, or a cluster's servers' separated by commas (got \"%s\")\n",
        options.control.c_str());
    return 2;
  }
  const gateway::WatchTarget target = targets.front();
  int port = options.port;
  if (port < 0) {
    const char* env = std::getenv("PORT");
    port = env != nullptr ? std::atoi(env) : 8080;
  }
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "squadron gateway: port %d is not a port (0-65535)\n", port);
    return 2;
  }
  const http::ServerConfig config = front_config(options.host, static_cast<std::uint16_t>(port),
                                                 options.threads, options.idle_timeout);
  if (options.tls_cert.size() != options.tls_key.size()) {
    std::fprintf(stderr,
                 "squadron gateway: each --tls-cert needs its --tls-key (got %zu certificates and "
                 "%zu keys)\n",
                 options.tls_cert.size(), options.tls_key.size());
    return 2;
  }
  std::vector<http::TlsCertificate> certificates;
  for (std::size_t i = 0; i < options.tls_cert.size(); ++i)
    certificates.push_back({options.tls_cert[i], options.tls_key[i]});
  std::string tls_error;
  const auto tls = front_tls(certificates, options.hsts, tls_error);
  if (!certificates.empty() && !tls) {
    std::fprintf(stderr, "squadron gateway: %s\n", tls_error.c_str());
    return 2;
  }
  if (!options.redirect.empty() && !tls) {
    std::fprintf(stderr,
                 "squadron gateway: --redirect sends clients to https://, which needs "
                 "--tls-cert and --tls-key\n");
    return 2;
  }
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
  server.set_tls(tls);
  if (auto ec =
          options.listen_fds ? server.adopt_listener(next_fd++, nullptr, tls) : server.listen()) {
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
  std::string unheld;  // a cluster host's service ports that something else holds
  for (const int spare : options.spares) {
    if (auto ec = add_listener(next_fd, static_cast<std::uint16_t>(spare))) {
      if (options.listen_fds) {  // the fleet's own, handed over: it must be there
        std::fprintf(stderr, "squadron gateway: cannot listen on 127.0.0.1:%d: %s\n", spare,
                     ec.message().c_str());
        return 1;
      }
      unheld += (unheld.empty() ? "" : ", ") + std::to_string(spare);
    }
  }
  if (!unheld.empty()) {
    // (control::cluster_service_ports) A service whose SQUADRON_<NAME>_URL names one of them is
    // not reached through this gateway; the rest work.
    std::fprintf(stderr,
                 "squadron gateway: cannot listen on 127.0.0.1 port(s) %s (in use): a service "
                 "whose SQUADRON_<NAME>_URL names one is not reached through this gateway\n",
                 unheld.c_str());
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
  gateway::HttpsRedirect redirect(server.port());
  if (!options.redirect.empty()) {
    const auto colon = options.redirect.rfind(':');
    const std::string redirect_host =
        colon == std::string::npos ? "" : options.redirect.substr(0, colon);
    const int redirect_port =
        colon == std::string::npos ? -1 : std::atoi(options.redirect.c_str() + colon + 1);
    std::uint16_t bound = 0;
    boost::system::error_code ec = boost::asio::error::invalid_argument;
    if (redirect_port >= 0 && redirect_port <= 65535) {
      ec = options.listen_fds
               ? server.adopt_listener(next_fd++, &bound)
               : server.listen_also(redirect_host, static_cast<std::uint16_t>(redirect_port),
                                    &bound);
    }
    if (ec) {
      std::fprintf(stderr, "squadron gateway: cannot listen for the https:// redirect on %s: %s\n",
                   options.redirect.c_str(), ec.message().c_str());
      return 1;
    }
    server.serve_port_with(bound, redirect);
    std::printf("squadron gateway: http://%s:%u answers 308 to https://\n", redirect_host.c_str(),
                bound);
  }
  auto log = [](const std::string& line) {
    std::fprintf(stderr, "squadron gateway: %s\n", line.c_str());
    std::fflush(stderr);
  };
  TlsReloader reloader(server.main_context(), tls, log);
  reloader.start();
  gateway::Follower follower(server.main_context().get_executor(), proxy, targets, log);
  // Instances on this gateway's own address first (a cluster host's gateway listens on it).
  follower.set_local_host(options.host);
  core::spawn(server.main_context(), follower.run(), "the control-plane follower", [] {
    // The routes cannot be followed any more: a gateway serving stale routes for good is worse
    // than a restart, which the fleet does at once.
    std::_Exit(1);
  });
  boost::asio::signal_set signals(server.main_context(), SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    follower.stop();
    reloader.stop();
    // Tunnels close a second before the server gives up on its own connections (and stops
    // its contexts): no TCP connection is left suspended when the contexts go.
    tcp.stop(9s);
    server.stop(10s);
  });
  std::printf("squadron gateway listening on %s://%s:%u (%zu I/O thread%s), following %s\n",
              tls ? "https" : "http", config.host.c_str(), server.port(), server.threads(),
              server.threads() == 1 ? "" : "s", options.control.c_str());
  std::fflush(stdout);
  tcp.start();
  server.run();
  return 0;
}

namespace {

// host:port of a listen address the file checked (the port may be 0).
std::pair<std::string, std::uint16_t> host_and_port(const std::string& listen) {
  const auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return {host, static_cast<std::uint16_t>(std::atoi(listen.c_str() + colon + 1))};
}

// The file's text (a ConfigMap update swaps a symlink: followed). Compared whole each second:
// a modification time ticks coarsely (a tick of the kernel's clock), so two writes of the same
// size within one tick would look like none; the file is small (at most 1 MiB, checked).
std::string text_of(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string text;
  char buf[16384];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > control::kMaxManifestBytes) break;
  }
  return text;
}

void print_errors(const std::vector<control::ManifestError>& errors) {
  for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
}

}  // namespace

int run_gateway_file(const GatewayOptions& options) {
  core::raise_fd_limit();
  auto loaded = control::load_gateway_file(options.config);
  if (!loaded.ok()) {
    print_errors(loaded.errors);
    std::fprintf(stderr, "%s: %zu problem%s; the gateway did not start\n", options.config.c_str(),
                 loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s");
    return 2;
  }
  control::GatewayFile running = std::move(*loaded.config);
  const auto [host, port] = host_and_port(running.listen);
  const http::ServerConfig config = front_config(
      host, port,
      options.threads != 0 ? options.threads : static_cast<std::size_t>(running.threads),
      options.idle_timeout);
  const std::size_t threads = config.threads;
  gateway::ProxyConfig proxy_config;
  proxy_config.threads = threads;
  proxy_config.trusted_proxies = running.trusted_proxies;
  std::string tls_error;
  const auto tls =
      running.tls ? front_tls(running.tls->certificates, running.tls->hsts, tls_error) : nullptr;
  if (running.tls && !tls) {
    std::fprintf(stderr, "squadron gateway: %s\n", tls_error.c_str());
    return 2;
  }
  gateway::Proxy proxy(proxy_config);
  http::Server server(config, proxy);
  server.set_tls(tls);
  gateway::Admin admin(proxy);
  admin.set_server(server);
  if (auto ec = server.listen()) {
    std::fprintf(stderr, "squadron gateway: cannot listen on %s: %s\n", running.listen.c_str(),
                 ec.message().c_str());
    return 1;
  }
  proxy.set_front_port(server.port());
  if (!running.admin.empty()) {
    const auto [admin_host, admin_port] = host_and_port(running.admin);
    std::uint16_t bound = 0;
    if (auto ec = server.listen_also(admin_host, admin_port, &bound)) {
      std::fprintf(stderr, "squadron gateway: cannot listen for /metrics on %s: %s\n",
                   running.admin.c_str(), ec.message().c_str());
      return 1;
    }
    server.serve_port_with(bound, admin);
    std::printf("squadron gateway: admin endpoints on http://%s:%u (/metrics, /upstreams)\n",
                admin_host.c_str(), bound);
  }
  gateway::HttpsRedirect redirect(server.port());
  if (running.tls && !running.tls->redirect.empty()) {
    const auto [redirect_host, redirect_port] = host_and_port(running.tls->redirect);
    std::uint16_t bound = 0;
    if (auto ec = server.listen_also(redirect_host, redirect_port, &bound)) {
      std::fprintf(stderr, "squadron gateway: cannot listen for the https:// redirect on %s: %s\n",
                   running.tls->redirect.c_str(), ec.message().c_str());
      return 1;
    }
    server.serve_port_with(bound, redirect);
    std::printf("squadron gateway: http://%s:%u answers 308 to https://\n", redirect_host.c_str(),
                bound);
  }
  auto log = [](const std::string& line) {
    std::fprintf(stderr, "squadron gateway: %s\n", line.c_str());
    std::fflush(stderr);
  };
  auto& io = server.main_context();
  // The certificates' own watch (a SIGHUP reloads them and the file both); which files they are
  // changes at a restart.
  TlsReloader reloader(io, tls, log);
  reloader.start();
  gateway::EndpointResolver resolver(io.get_executor(), proxy, log);
  resolver.set(running.upstreams);
  core::spawn(io, resolver.run(running.resolve_every), "the gateway's resolver");

  // Reloads: on SIGHUP, and when the file changes (checked each second). A file with problems
  // leaves the running configuration as it is.
  std::string seen = text_of(running.file);
  auto reload = [&](const char* why) {
    // The text that is checked is the text remembered: a change after this read is seen next.
    seen = text_of(running.file);
    auto next = control::parse_gateway_file(seen, running.file);
    if (!next.ok()) {
      print_errors(next.errors);
      log(std::string("reload (") + why + "): " + std::to_string(next.errors.size()) +
          " problem(s) in " + running.file.string() + "; still serving the last good one");
      return;
    }
    const auto& g = *next.config;
    if (g.listen != running.listen || g.admin != running.admin || g.threads != running.threads ||
        g.trusted_proxies != running.trusted_proxies)
      log("listen, admin, threads and trusted_proxies change at a restart; the rest applies now");
    std::size_t routes = 0;
    for (const auto& u : g.upstreams) routes += u.service.routes.size();
    resolver.set(g.upstreams);
    running.upstreams = g.upstreams;
    running.resolve_every = g.resolve_every;
    log(std::string("reloaded ") + running.file.string() + " (" + why +
        "): " + std::to_string(g.upstreams.size()) + " upstream(s), " + std::to_string(routes) +
        " route(s)");
  };
  boost::asio::signal_set hangup(io, SIGHUP);
  std::function<void()> wait_hangup = [&] {
    hangup.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      reload("SIGHUP");
      wait_hangup();
    });
  };
  wait_hangup();
  boost::asio::steady_timer poll(io);
  std::function<void()> watch_file = [&] {
    poll.expires_after(1s);
    poll.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      if (text_of(running.file) != seen) reload("the file changed");
      watch_file();
    });
  };
  watch_file();

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    resolver.stop();
    poll.cancel();
    hangup.cancel();
    reloader.stop();
    server.stop(10s);
  });
  std::printf("squadron gateway listening on %s://%s:%u (%zu I/O thread%s), upstreams from %s\n",
              tls ? "https" : "http", config.host.c_str(), server.port(), server.threads(),
              server.threads() == 1 ? "" : "s", running.file.c_str());
  std::fflush(stdout);
  server.run();
  return 0;
}

}  // namespace squadron::apps
