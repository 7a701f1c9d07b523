#include "squadron/service/service.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "squadron/core/check.hpp"
#include "squadron/core/duration.hpp"
#include "squadron/core/limits.hpp"
#include "squadron/core/prometheus.hpp"
#include "squadron/core/splitmix.hpp"
#include "squadron/http/connection_metrics.hpp"
#include "squadron/http/router.hpp"
#include "squadron/service/metrics.hpp"

namespace squadron::service {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace internal {
namespace {

// Route indices for answers that matched no registered route.
constexpr std::string_view kUnmatchedRoute = "(unmatched)";
constexpr std::string_view kRejectedRoute = "(rejected)";

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 200) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// W3C Trace Context: version "00", 32 hex trace-id (not all zero), 16 hex parent-id, flags.
bool valid_traceparent(std::string_view tp) {
  if (tp.size() < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return false;
  if (tp.substr(0, 2) == "ff") return false;
  if (tp.substr(0, 2) == "00" && tp.size() != 55) return false;
  auto hex = [](std::string_view s) {
    for (char c : s)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
  };
  const auto trace = tp.substr(3, 32), parent = tp.substr(36, 16);
  return hex(tp.substr(0, 2)) && hex(trace) && hex(parent) && hex(tp.substr(53, 2)) &&
         trace != std::string(32, '0') && parent != std::string(16, '0');
}

using core::SplitMix64;

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u >= 0x7f) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", u);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace

class ServiceHandler final : public http::Handler {
 public:
  explicit ServiceHandler(std::string name) : name_(std::move(name)) {}

  void add_route(std::string_view method, std::string_view pattern, RouteHandler h) {
    SQUADRON_CHECK(!prepared_,
                   "routes are registered before the service runs or handles a request");
    const std::size_t id = routes_.size();
    const auto ec = router_.add(method, pattern, id);
    if (ec) {
      std::fprintf(stderr, "squadron: cannot register route %.*s %.*s: %s\n",
                   static_cast<int>(method.size()), method.data(), static_cast<int>(pattern.size()),
                   pattern.data(), ec.message().c_str());
      std::exit(2);
    }
    routes_.push_back({std::string(pattern), std::move(h)});
  }
  void set_fallback(RouteHandler h) { fallback_ = std::move(h); }
  void add_before(std::function<std::optional<Response>(Request&)> mw) {
    before_.push_back(std::move(mw));
  }
  void add_after(std::function<void(const Request&, Response&)> mw) {
    after_.push_back(std::move(mw));
  }

  // Called once before serving: adds the built-in endpoints and sizes the metrics.
  void prepare(std::size_t workers, const http::Server* server) {
    server_ = server;
    if (!prepared_) {
      prepared_ = true;
      first_builtin_ = routes_.size();
      auto builtin = [this](std::string_view pattern, std::function<Response(Request&)> fn) {
        const std::size_t id = routes_.size();
        if (!router_.add("GET", pattern, id))
          routes_.push_back({std::string(pattern), {std::move(fn), {}}});
      };
      builtin("/healthz", [](Request&) { return Response::text("ok\n"); });
      builtin("/readyz", [this](Request&) {
        if (draining_.load(std::memory_order_relaxed)) return Response::text("draining\n", 503);
        return Response::text("ready\n");
      });
      builtin("/metrics", [this](Request&) {
        Response r;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = metrics_->render(name_);
        if (server_ != nullptr) {
          const std::string labels = fmt::format("service=\"{}\"", core::prometheus_label(name_));
          http::append_connection_metrics(r.body, labels, server_->memory(),
                                          http::ConnectionPool::memory());
        }
        return r;
      });
      unmatched_ = routes_.size();
      rejected_ = unmatched_ + 1;
    }
    // Per-thread state sized for this run (handle_for_test uses one thread, run() the server's).
    if (rngs_.size() == workers) return;
    std::vector<std::string> labels;
    for (const auto& r : routes_) labels.push_back(r.pattern);
    labels.emplace_back(kUnmatchedRoute);
    labels.emplace_back(kRejectedRoute);
    metrics_ = std::make_unique<Metrics>(std::move(labels), workers);
    rngs_.resize(workers);
    start_.resize(workers);
    std::random_device rd;
    for (auto& g : rngs_) g.seed((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  }

  void set_access_log(bool on) { access_log_ = on; }
  void set_draining(bool d) { draining_.store(d, std::memory_order_relaxed); }
  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }

  bool handle(Request& req, Response& res, std::size_t worker) override {
    metrics_->add_in_flight(worker, 1);
    const auto start = SteadyClock::now();
    begin(req, worker);
    const RouteHandler* h = nullptr;
    auto m = router_.match(req);
    if (m.kind == http::Router::Match::kFound) {
      req.set_route(m.id, routes_[m.id].pattern);
      h = &routes_[m.id].handler;
      if (m.id >= first_builtin_) {
        // Probes and scrapes bypass user middleware: an auth rule must not fail /healthz.
        res = h->sync(req);
        finish(req, res, worker, start, /*run_after=*/false);
        return true;
      }
    } else {
      req.set_route(unmatched_, kUnmatchedRoute);
      if (fallback_.sync || fallback_.async) {
        h = &fallback_;
      } else if (m.kind == http::Router::Match::kMethodNotAllowed) {
        res = Response::problem(
            405, fmt::format("{} is not allowed here; allowed: {}", req.method_name(), m.allow));
        res.set_header("Allow", std::move(m.allow));
      } else {
        res = Response::problem(404, fmt::format("no route for {}", req.path()));
      }
    }
    // The caller's deadline (X-Squadron-Timeout-Ms): spent means nobody waits for the answer.
    if (const auto left = req.timeout_left_ms()) {
      if (*left <= 0) {
        res = Response::problem(504, fmt::format("the request's deadline passed before it was "
                                                 "worked on ({}: {})",
                                                 http::kTimeoutHeader, *left));
        finish(req, res, worker, start);
        return true;
      }
      req.set_deadline(start + std::chrono::milliseconds(*left));
    }
    for (const auto& mw : before_) {
      if (auto early = mw(req)) {
        res = std::move(*early);
        finish(req, res, worker, start);
        return true;
      }
    }
    if (h == nullptr) {  // the 404/405 made above
      finish(req, res, worker, start);
      return true;
    }
    if (h->async) {
      start_[worker] = start;
      return false;
    }
    try {
      res = h->sync(req);
    } catch (const std::exception& e) {
      spdlog::error("handler of {} {} threw: {}", req.method_name(), req.route(), e.what());
      res = Response::problem(500, "the handler failed");
    }
    finish(req, res, worker, start);
    return true;
  }

  asio::awaitable<void> handle_async(Request& req, Response& res, std::size_t worker) override {
    // Read before the first suspension: handle() stored it for this request on this thread.
    const auto start = start_[worker];
    const RouteHandler& h =
        req.route_index() < routes_.size() ? routes_[req.route_index()].handler : fallback_;
    try {
      res = co_await h.async(req);
    } catch (const std::exception& e) {
      spdlog::error("handler of {} {} threw: {}", req.method_name(), req.route(), e.what());
      res = Response::problem(500, "the handler failed");
    }
    finish(req, res, worker, start);
  }

  void on_rejected(int status, std::size_t worker) noexcept override {
    metrics_->record(worker, rejected_, status, std::chrono::nanoseconds(0));
  }

  Response handle_inline(Request& req) {
    prepare(1, nullptr);
    Response res;
    if (!handle(req, res, 0)) {
      // A coroutine handler: run it to completion on a private io_context.
      asio::io_context ctx;
      asio::co_spawn(ctx, handle_async(req, res, 0), [&res](const std::exception_ptr& e) {
        if (e) res = Response::problem(500, "the handler failed");
      });
      ctx.run();
    }
    return res;
  }

 private:
  struct Route {
    std::string pattern;
    RouteHandler handler;
  };

  void begin(Request& req, std::size_t worker) {
    auto id = req.header("x-request-id");
    if (id && valid_request_id(*id)) {
      req.set_request_id(*id);
    } else {
      // 128 random bits as 32 hex digits (the shape of a W3C trace-id).
      auto& g = rngs_[worker];
      static constexpr char kHex[] = "0123456789abcdef";
      char buf[32];
      for (int half = 0; half < 2; ++half) {
        std::uint64_t v = g();
        for (int i = 0; i < 16; ++i, v >>= 4) buf[half * 16 + i] = kHex[v & 0xf];
      }
      req.set_request_id(std::string_view(buf, sizeof buf));
    }
    if (auto tp = req.header("traceparent"); tp && valid_traceparent(*tp)) req.set_traceparent(*tp);
  }

  void finish(const Request& req, Response& res, std::size_t worker, SteadyClock::time_point start,
              bool run_after = true) {
    if (run_after) {
      for (const auto& mw : after_) mw(req, res);
    }
    const auto elapsed = SteadyClock::now() - start;
    metrics_->record(worker, req.route_index(), res.status, elapsed);
    metrics_->add_in_flight(worker, -1);
    if (access_log_) log_access(req, res, elapsed);
  }

  void log_access(const Request& req, const Response& res, SteadyClock::duration elapsed) {
    std::string line;
    line.reserve(256);
    char ts[40];
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    line += "{\"time\":\"";
    line += ts;
    line += "\",\"service\":";
    append_json_string(line, name_);
    line += ",\"method\":";
    append_json_string(line, req.method_name());
    line += ",\"path\":";
    append_json_string(line, req.path());
    line += ",\"route\":";
    append_json_string(line, req.route());
    fmt::format_to(std::back_inserter(line), ",\"status\":{},\"duration_ms\":{:.3f},\"bytes\":{}",
                   res.status, std::chrono::duration<double, std::milli>(elapsed).count(),
                   res.body.size());
    line += ",\"request_id\":";
    append_json_string(line, req.request_id());
    if (!req.traceparent().empty()) {
      line += ",\"trace_id\":";
      append_json_string(line, req.traceparent().substr(3, 32));
    }
    line += ",\"remote\":";
    append_json_string(line, req.remote_address());
    line += "}\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  }

  std::string name_;
  http::Router router_;
  std::vector<Route> routes_;
  RouteHandler fallback_;
  std::vector<std::function<std::optional<Response>(Request&)>> before_;
  std::vector<std::function<void(const Request&, Response&)>> after_;
  std::unique_ptr<Metrics> metrics_;
  std::vector<SplitMix64> rngs_;
  std::vector<SteadyClock::time_point> start_;  // per worker: start of the request in handle_async
  std::size_t first_builtin_ =
      0;  // routes from here up to unmatched_ are /healthz, /readyz, /metrics
  std::size_t unmatched_ = 0, rejected_ = 0;
  const http::Server* server_ = nullptr;
  std::atomic<bool> draining_{false};
  bool access_log_ = false;
  bool prepared_ = false;

 public:
  WebSocketSessions websockets;  // app.websocket()'s open connections
};

}  // namespace internal

Service::Service(std::string name)
    : name_(std::move(name)), handler_(std::make_unique<internal::ServiceHandler>(name_)) {}
Service::~Service() = default;

Service& Service::route(std::string_view method, std::string_view pattern,
                        internal::RouteHandler h) {
  handler_->add_route(method, pattern, std::move(h));
  return *this;
}
Service& Service::websocket(std::string_view pattern, WebSocketHandler handler) {
  auto shared = std::make_shared<const WebSocketHandler>(std::move(handler));
  internal::RouteHandler h;
  h.sync = [shared, sessions = &handler_->websockets](Request& req) {
    return internal::accept_websocket(req, shared, *sessions);
  };
  return route("GET", pattern, std::move(h));
}
Service& Service::set_fallback(internal::RouteHandler h) {
  handler_->set_fallback(std::move(h));
  return *this;
}
Service& Service::before(std::function<std::optional<Response>(Request&)> mw) {
  handler_->add_before(std::move(mw));
  return *this;
}
Service& Service::after(std::function<void(const Request&, Response&)> mw) {
  handler_->add_after(std::move(mw));
  return *this;
}
void Service::set_draining(bool draining) noexcept { handler_->set_draining(draining); }
Response Service::handle_for_test(Request& req) { return handler_->handle_inline(req); }

int Service::run(ServiceConfig config) {
  // Before the server sizes its connection cap from it: as many descriptors as allowed.
  core::raise_fd_limit();
  if (const char* s = std::getenv("SQUADRON_SERVICE"); s != nullptr && *s != '\0') {
    name_ = s;
    handler_->set_name(name_);
  }
  // Diagnostics go to stderr; stdout carries only the access log.
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      name_, std::make_shared<spdlog::sinks::stderr_color_sink_mt>()));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  http::Server server(config.server, *handler_);
  handler_->prepare(server.threads(), &server);
  handler_->set_access_log(config.access_log);
  // Signals are caught before the port opens: a SIGTERM right after start still drains.
  asio::io_context& ctx = server.main_context();
  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  asio::steady_timer drain_timer(ctx);
  signals.async_wait([&](boost::system::error_code ec, int signo) {
    if (ec) return;
    spdlog::info("{}: {} received: draining ({} delay, {} grace)", name_,
                 signo == SIGTERM ? "SIGTERM" : "SIGINT", config.drain_delay, config.stop_grace);
    handler_->set_draining(true);
    // A second signal gets the default action (ends the process at once).
    boost::system::error_code ignored;
    signals.clear(ignored);
    drain_timer.expires_after(config.drain_delay);
    drain_timer.async_wait([&](boost::system::error_code) {
      server.stop(config.stop_grace);
      // WebSockets stay open through the grace; each gets its 1001 a little before its end
      // (a tenth of the grace, at most 1 s) so that its client can reconnect elsewhere.
      const auto margin =
          std::min<std::chrono::milliseconds>(config.stop_grace / 10, std::chrono::seconds(1));
      handler_->websockets.go_away_at(SteadyClock::now() + config.stop_grace - margin);
    });
  });
  if (auto ec = server.listen()) {
    spdlog::error(
        "{}: cannot listen on {}:{}: {} (is another process using the port? pick one with --port "
        "or PORT)",
        name_, config.server.host, config.server.port, ec.message());
    return 1;
  }
  spdlog::info("{} listening on http://{}:{} ({} I/O thread{})", name_, config.server.host,
               server.port(), server.threads(), server.threads() == 1 ? "" : "s");

  server.run();
  spdlog::info("{} stopped", name_);
  return 0;
}

}  // namespace squadron::service
