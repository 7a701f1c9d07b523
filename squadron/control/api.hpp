// The control API of a running fleet, served on `control.listen`: REST + JSON under /api/v1,
// documented in docs/control-api.md. The fleet's summary (services, instances, the watch,
// metrics, the dashboard's files, /healthz) is open to whoever reaches the listener (loopback
// unless the manifest exposes it); logs, events, history and every POST need
// `Authorization: Bearer <token>` (the token `up` writes to .squadron/token, mode 0600). A request
// whose Host is a name other than localhost, or whose Origin is another site, is refused (421,
// 403): a web page cannot read the API through DNS rebinding.
//
//   ControlApi api{fleet, registry, token, [&] { fleet.down([&] { server.stop(1s); }); }};
//   http::Server server{{.host = "127.0.0.1", .port = 9900, .threads = 1}, api};
//
// Thread safety: one I/O thread, the fleet's own (the server runs on the fleet's io_context).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "squadron/control/autoscale_loop.hpp"
#include "squadron/control/fleet.hpp"
#include "squadron/control/traffic.hpp"
#include "squadron/control/usage.hpp"
#include "squadron/http/router.hpp"
#include "squadron/http/server.hpp"
#include "squadron/registry/registry.hpp"

namespace squadron::control {

class ControlApi final : public http::Handler {
 public:
  ControlApi(Fleet& fleet, registry::Registry& registry, std::string token,
             std::function<void()> on_down);
  ~ControlApi() override;

  bool handle(http::Request& req, http::Response& res, std::size_t worker) override;
  boost::asio::awaitable<void> handle_async(http::Request& req, http::Response& res,
                                            std::size_t worker) override;
  void on_rejected(int, std::size_t) noexcept override {}

  // How long a long-poll (`watch?since=`, `events?since=&wait=`) waits at most; SSE streams
  // send a comment this often so that proxies and clients see the stream alive.
  std::chrono::milliseconds max_wait = std::chrono::seconds(30);
  std::chrono::milliseconds keepalive = std::chrono::seconds(15);
  // Long-lived requests (watch streams and long-polls, followed logs, waiting events) open at
  // once at most; one more is answered 503 with Retry-After. Below the server's connection cap,
  // so that short requests (/healthz, the CLI's) always find room.
  std::size_t max_streams = 64;
  // The gateway's traffic per service (GET /api/v1/metrics); nullptr: the fleet has no gateway.
  const Traffic* traffic = nullptr;
  // The autoscaler's state per service (in the service's JSON as "autoscale"); may be nullptr.
  AutoscaleLoop* scaling = nullptr;
  // What each instance uses (rss_bytes, cpu_percent in its JSON; /metrics); may be nullptr.
  const UsageMonitor* usage = nullptr;
  // A cluster's hosts (GET /api/v1/hosts, and "hosts" in GET /api/v1/fleet): name, address,
  // labels, cores, memory_bytes, state ("up" or "lost"), lost_at_ms, instances,
  // memory_requested_bytes. Empty: the fleet runs on one machine (404, and no "hosts").
  std::function<boost::json::array()> hosts;

 private:
  enum Route : std::size_t;
  bool authorized(const http::Request& req) const;
  // 421/403 for a foreign Host or Origin, 401 for a guarded route without the token; false if
  // the request may go on.
  bool refuse(const http::Request& req, http::Response& res, std::size_t route) const;
  // A slot for one long-lived request, released when the returned handle goes; nullptr (and
  // `res` set to 503) when max_streams are open.
  std::shared_ptr<void> stream_slot(http::Response& res);
  // A service as the API shows it: the fleet's view, its latest traffic, its autoscaler.
  boost::json::object service_view(const ServiceSpec& spec) const;
  // An instance as the API shows it: the registry's, its limits and what it uses.
  boost::json::object instance_view(const registry::Instance& i,
                                    std::chrono::system_clock::time_point now) const;
  boost::json::array instances_view(std::string_view service) const;
  // GET /metrics: every instance's use, limits, restarts and OOM kills, Prometheus' text format.
  std::string prometheus() const;
  http::Response scale(http::Request& req);
  http::Response deploy(http::Request& req);
  http::Response apply(http::Request& req);
  http::Response logs(http::Request& req);

  Fleet& fleet_;
  registry::Registry& reg_;
  std::string token_;
  std::function<void()> on_down_;
  http::Router router_;
  std::shared_ptr<std::size_t> streams_ = std::make_shared<std::size_t>(0);  // open now
};

}  // namespace squadron::control
