// `squadron up`: the fleet's process. One io_context (the control API server's only thread)
// carries the supervisor, the registry, the control plane and the API, so none of them locks.
// In the foreground every instance's output is streamed with a coloured prefix (like docker
// compose) and Ctrl-C stops everything gracefully; with -d the same runs in a background
// process while this one waits for readiness through the control API.
#include "up.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <optional>
#include <random>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <variant>

#include <boost/asio/signal_set.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>

#include "client.hpp"
#include "commands.hpp"
#include "squadron/control/api.hpp"
#include "squadron/control/fleet.hpp"
#include "squadron/control/state.hpp"
#include "squadron/core/address.hpp"
#include "squadron/core/limits.hpp"
#include "squadron/core/ports.hpp"
#include "squadron/http/tls.hpp"
#include "squadron/registry/memory_registry.hpp"
#include "squadron/supervisor/cgroups.hpp"
#include "squadron/supervisor/guardian.hpp"
#include "squadron/supervisor/supervisor.hpp"

namespace squadron::apps {

namespace sv = squadron::supervisor;
using namespace std::chrono_literals;

namespace {

// "127.0.0.1:9900" -> host, port; nullopt if malformed (the manifest validated it already).
std::optional<std::pair<std::string, std::uint16_t>> split_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  const int port = std::atoi(listen.c_str() + colon + 1);
  if (port < 0 || port > 65535) return std::nullopt;
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  return std::pair{host, static_cast<std::uint16_t>(port)};
}

// `up`'s side of the fleet's seams (control::ApplyHooks, control::FleetObserver): what it adds
// to an applied manifest, and what the foreground shows; filled in once what they need exists.
struct UpHooks final : control::ApplyHooks, control::FleetObserver {
  std::function<void(control::Manifest&, bool dry_run)> prepare_manifest;
  std::function<void(const std::vector<std::string>& added)> after_apply;
  std::function<void(const registry::Event&)> show_event;
  std::function<void(const sv::InstanceStatus&, std::string_view)> show_output;

  void prepare(control::Manifest& next, bool dry_run) override {
    if (prepare_manifest) prepare_manifest(next, dry_run);
  }
  void applied(const std::vector<std::string>& added) override {
    if (after_apply) after_apply(added);
  }
  void on_event(const registry::Event& e) override {
    if (show_event) show_event(e);
  }
  void on_output(const sv::InstanceStatus& st, std::string_view line) override {
    if (show_output) show_output(st, line);
  }
};

// Everything of a running fleet, constructed in dependency order on the server's io_context.
struct Runtime {
  Runtime(const control::Manifest& m, http::ServerConfig config, std::string token,
          const control::StateDir& dir, control::FleetOptions options,
          std::uint16_t gateway_admin_port)
      : server(std::move(config), api),
        reg(server.main_context().get_executor()),
        sup(server.main_context(), launcher, clock),
        store(dir.state(), dir.revisions()),
        traffic(server.main_context().get_executor(), gateway_admin_port),
        fleet(server.main_context(), sup, reg, clock, m, std::move(options),
              {&store, gateway_admin_port != 0 ? &traffic : nullptr, &hooks, &hooks}),
        scaling(server.main_context(), fleet, reg, gateway_admin_port != 0 ? &traffic : nullptr),
        usage(server.main_context(), sup),
        api(fleet, reg, std::move(token), [this] { stop(); }),
        signals(server.main_context(), SIGINT, SIGTERM) {
    if (gateway_admin_port != 0) api.traffic = &traffic;
    api.scaling = &scaling;
    api.usage = &usage;
    // The autoscaler decides as soon as each second's traffic is in.
    traffic.on_sample = [this] {
      if (fleet.stopping()) return;
      scaling.evaluate(std::chrono::steady_clock::now());
      note_gateway_events();
    };
  }

  // What the gateway did to a service in the last second that a person should see among the
  // events (the dashboard's and `squadron events`): ejections and breaker openings, from its
  // counters (they are per service: the gateway's log names the instance).
  void note_gateway_events() {
    for (const auto& spec : fleet.manifest().services) {
      const auto* h = traffic.history(spec.name);
      if (h == nullptr || h->empty()) continue;
      const auto& now = h->back();
      // The first sample's counts are all new (the gateway started with the fleet).
      const control::TrafficSample none;
      const auto& before = h->size() >= 2 ? (*h)[h->size() - 2] : none;
      if (now.ejections > before.ejections) {
        fleet.note(
            spec.name,
            fmt::format("gateway: {} instance{} ejected in the last second after {} "
                        "failures in a row (5xx, refused or reset); back after the "
                        "ejection time",
                        now.ejections - before.ejections,
                        now.ejections - before.ejections == 1 ? "" : "s", spec.proxy.eject_after));
      }
      if (now.breaker_rejections > before.breaker_rejections) {
        fleet.note(spec.name,
                   fmt::format("gateway: {} request{} refused at once (503): more than "
                               "{} in flight (the circuit breaker)",
                               now.breaker_rejections - before.breaker_rejections,
                               now.breaker_rejections - before.breaker_rejections == 1 ? "" : "s",
                               spec.proxy.max_in_flight));
      }
    }
  }

  // Everything stops gracefully; then the server, and with it run(), ends.
  void stop() {
    boost::system::error_code ignored;
    signals.clear(ignored);  // a second Ctrl-C ends squadron at once (its children die with it)
    traffic.stop();
    scaling.stop();
    usage.stop();
    fleet.down([this] {
      boost::system::error_code ec;
      signals.cancel(ec);
      reg.close();  // long-polls answer now, not after their timeout
      server.stop(1s);
    });
  }

  sv::PosixLauncher launcher;
  core::SystemClock clock;
  http::Server server;  // its handler, `api`, is constructed last and used only once it runs
  registry::MemoryRegistry reg;
  sv::Supervisor sup;
  control::FileDesiredStore store;  // .squadron/state.json and revisions.json
  UpHooks hooks;
  control::Traffic traffic;  // the gateway's metrics, sampled every second; the drain gate
  control::Fleet fleet;
  control::AutoscaleLoop scaling;  // the autoscaler, every second
  control::UsageMonitor usage;     // what each instance uses, every second
  control::ControlApi api;
  boost::asio::signal_set signals;
};

// "2026-11-26T00:50:56.123Z"
std::string utc_time(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  return fmt::format("{:%FT%T}.{:03}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(t)),
                     ms.count() % 1000);
}

// A listening socket on host:port (core::hold_port), or -1 with errno set.
int hold_listener(const std::string& host, std::uint16_t port) {
  const auto held = core::hold_port(host, port);
  if (!held) {
    errno = held.error().value();
    return -1;
  }
  return held->fd;
}

// A listener of the fleet's own, held for its life: its port and descriptor (-1: none).
struct Held {
  std::uint16_t port = 0;
  int fd = -1;
  explicit operator bool() const noexcept { return fd >= 0; }
};

// One of the fleet's own listeners on a free port of `host` (the gateway's front door given
// port 0, its per-service, spare and admin listeners), bound and listening now: never chosen,
// released and bound again, so nothing takes it in between. Taken below the kernel's ephemeral
// range (ip_local_port_range): every instance's port (a bind to port 0) and every outgoing
// connection's local port come from that range — with 500 instances one once took a gateway
// port. Falls back to any free port; none (errno set) if even that fails.
Held hold_free_port(const std::string& host) {
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  constexpr int kLowest = 10000;
  static std::mt19937 rng(std::random_device{}());
  if (ephemeral_low - kLowest > 1000) {
    std::uniform_int_distribution<int> pick(kLowest, ephemeral_low - 1);
    for (int attempt = 0; attempt < 500; ++attempt) {
      const auto port = static_cast<std::uint16_t>(pick(rng));
      if (const int fd = hold_listener(host, port); fd >= 0) return {port, fd};
    }
  }
  const auto any = core::hold_port(host, 0);
  if (!any) {
    errno = any.error().value();
    return {};
  }
  return {any->port, any->fd};
}

// With a gateway, every service gets a stable loopback address of its own on the gateway (like
// a Kubernetes ClusterIP), given to every instance as SQUADRON_<NAME>_URL: any language calls
// another service without an SDK. The listener is the fleet's, held for the gateway.
struct Internal {
  std::string service;
  std::uint16_t port = 0;
  int fd = -1;
};
using InternalPorts = std::vector<Internal>;

// Adds SQUADRON_<NAME>_URL (tcp:// for protocol: tcp), _HOST, _PORT and _ADDR for each of
// `internal` to every service of `m`.
void add_service_urls(control::Manifest& m, const InternalPorts& internal) {
  std::vector<std::pair<std::string, std::uint16_t>> ports;
  for (const auto& i : internal) ports.emplace_back(i.service, i.port);
  control::add_service_urls(m, ports);
}

// The gateway's listeners that pass TCP through: those of `internal` whose service in `m` has
// protocol: tcp.
std::vector<std::uint16_t> tcp_ports(const control::Manifest& m, const InternalPorts& internal) {
  std::vector<std::uint16_t> ports;
  for (const auto& i : internal) {
    const auto* s = m.find(i.service);
    if (s != nullptr && s->tcp) ports.push_back(i.port);
  }
  std::sort(ports.begin(), ports.end());
  return ports;
}

// The gateway `spec`'s --tcp ports, sorted.
std::vector<std::uint16_t> tcp_ports(const control::ServiceSpec& spec) {
  std::vector<std::uint16_t> ports;
  for (std::size_t k = 0; k + 1 < spec.command.size(); ++k) {
    if (spec.command[k] == "--tcp")
      ports.push_back(static_cast<std::uint16_t>(std::stoi(spec.command[k + 1])));
  }
  std::sort(ports.begin(), ports.end());
  return ports;
}

// `spec` (the gateway's) with exactly `ports` as its --tcp listeners.
void set_tcp_ports(control::ServiceSpec& spec, const std::vector<std::uint16_t>& ports) {
  auto& c = spec.command;
  for (std::size_t k = 0; k + 1 < c.size();) {
    if (c[k] == "--tcp") {
      c.erase(c.begin() + static_cast<std::ptrdiff_t>(k),
              c.begin() + static_cast<std::ptrdiff_t>(k) + 2);
    } else {
      ++k;
    }
  }
  auto at = std::find(c.begin(), c.end(), "--listen-fds");
  for (const auto p : ports) {
    at = c.insert(at, std::to_string(p));
    at = c.insert(at, "--tcp") + 2;
  }
}

// A held listener per service of `m` (with a gateway), and the variables naming them.
InternalPorts give_service_urls(control::Manifest& m) {
  InternalPorts internal;
  if (!control::runs_gateway(m)) return internal;
  for (const auto& s : m.services) {
    if (const Held h = hold_free_port("127.0.0.1")) internal.push_back({s.name, h.port, h.fd});
  }
  add_service_urls(m, internal);
  return internal;
}

// Loopback listeners the gateway holds for services added by `apply` while it runs.
constexpr int kSpareListeners = 8;

// One more per-service listener for the gateway `spec` (already held as `fd`): its --internal
// goes before --admin, and its descriptor after the other internal ones (the order
// --listen-fds takes them in: front door, each --internal, admin).
void add_internal_listener(control::ServiceSpec& spec, const std::string& service,
                           std::uint16_t port, int fd) {
  auto at = std::find(spec.command.begin(), spec.command.end(), "--admin");
  const auto internal_before = std::count(spec.command.begin(), at, std::string("--internal"));
  at = spec.command.insert(at, service + "=" + std::to_string(port));
  spec.command.insert(at, "--internal");
  spec.inherit_fds.insert(spec.inherit_fds.begin() + 1 + internal_before, fd);
}

// Squadron's gateway as an instance of the fleet (a service named "gateway"), when any service
// has routes: this same binary, `squadron gateway`, on gateway.listen (port 0: a free one),
// following the control API at `control_url`. Supervised and restarted like any instance.
std::optional<control::ServiceSpec> gateway_spec(const control::Manifest& m,
                                                 const std::string& control_url,
                                                 const InternalPorts& internal, const Held& admin,
                                                 const std::string& token, std::string& why,
                                                 std::vector<std::uint16_t>& spares) {
  const auto listen = split_listen(m.gateway_listen);
  if (!control::runs_gateway(m) || !listen) return std::nullopt;
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return std::nullopt;
  control::ServiceSpec spec;
  spec.name = "gateway";
  spec.command = {std::string(self, static_cast<std::size_t>(n)),
                  "gateway",
                  "--control",
                  control_url,
                  "--host",
                  listen->first};
  for (const auto& i : internal) {
    spec.command.push_back("--internal");
    spec.command.push_back(i.service + "=" + std::to_string(i.port));
  }
  if (admin) {
    spec.command.push_back("--admin");
    spec.command.push_back(std::to_string(admin.port));
  }
  for (const auto& t : m.trusted_proxies) {
    spec.command.push_back("--trusted-proxy");
    spec.command.push_back(t);
  }
  if (m.gateway_tls) {
    std::vector<http::TlsCertificate> certificates = m.gateway_tls->certificates;
    if (m.gateway_tls->self_signed) {
      // Made once for this fleet and kept: a client told to trust it (curl --cacert, a browser's
      // exception) goes on trusting it across runs.
      const auto dir = m.dir() / ".squadron" / "tls";
      const http::TlsCertificate made{dir / "self-signed.pem", dir / "self-signed.key"};
      const std::string problem = http::ensure_self_signed(made, {"localhost", "127.0.0.1", "::1"});
      if (!problem.empty()) {
        why = "gateway.tls.self_signed: " + problem;
        return std::nullopt;
      }
      certificates.push_back(made);
    }
    for (const auto& c : certificates) {
      spec.command.insert(spec.command.end(),
                          {"--tls-cert", c.cert.string(), "--tls-key", c.key.string()});
    }
    if (m.gateway_tls->hsts) spec.command.push_back("--hsts");
  }
  spec.cwd = m.dir();
  // To wake services scaled to zero through the control API (a POST needs the token).
  spec.env["SQUADRON_CONTROL_TOKEN"] = token;
  // Every listener of the gateway is bound by the fleet, once, and held for its life: each
  // gateway process inherits them (--listen-fds: the front door, each --internal, each
  // --spare, the admin one), so a restarted gateway never binds again and no other process
  // can take a port meanwhile (connections wait in the listen queues instead). The front door
  // keeps its address across restarts: port 0 becomes one free port, now.
  const Held door = listen->second != 0
                        ? Held{listen->second, hold_listener(listen->first, listen->second)}
                        : hold_free_port(listen->first);
  if (!door) {
    why = fmt::format("gateway.listen {}: {}", m.gateway_listen, std::strerror(errno));
    return std::nullopt;
  }
  spec.port = door.port;
  spec.inherit_fds.push_back(door.fd);
  for (const auto& i : internal) spec.inherit_fds.push_back(i.fd);
  // Spare loopback listeners, for services an apply adds: the watch then names the service of
  // each, and the running gateway serves it at once (no restart).
  for (int i = 0; i < kSpareListeners; ++i) {
    const Held spare = hold_free_port("127.0.0.1");
    if (!spare) break;  // fewer spares: an added service then redeploys the gateway
    spares.push_back(spare.port);
    spec.inherit_fds.push_back(spare.fd);
    spec.command.push_back("--spare");
    spec.command.push_back(std::to_string(spare.port));
  }
  if (admin) spec.inherit_fds.push_back(admin.fd);
  if (m.gateway_tls && !m.gateway_tls->redirect.empty()) {
    // The plain listener answering 308 to https://, held like the front door (after --admin).
    const auto plain = split_listen(m.gateway_tls->redirect);
    const Held held = !plain ? Held{}
                      : plain->second != 0
                          ? Held{plain->second, hold_listener(plain->first, plain->second)}
                          : hold_free_port(plain->first);
    if (!held) {
      why =
          fmt::format("gateway.tls.redirect {}: {}", m.gateway_tls->redirect, std::strerror(errno));
      return std::nullopt;
    }
    spec.inherit_fds.push_back(held.fd);
    spec.command.push_back("--redirect");
    spec.command.push_back(fmt::format("{}:{}", plain->first, held.port));
  }
  spec.command.push_back("--listen-fds");
  set_tcp_ports(spec, tcp_ports(m, internal));
  if (admin) {
    // Ready when it answers: its port accepts connections into the queue before it runs.
    spec.ready.path = "/healthz";
    spec.ready.port = admin.port;
  }
  spec.replicas = 1;
  spec.restart = control::RestartPolicy::kAlways;
  return spec;
}

// Tells the waiting parent of a detached fleet how the start went ("ok" or why not).
void notify(int fd, const std::string& message) {
  if (fd < 0) return;
  const std::string line = message + "\n";
  [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
  ::close(fd);
}

// The fleet's cgroups (cgroups.hpp), or null with the reason in `why` when none can be made or
// one of the limits the manifest asks for has no controller.
std::unique_ptr<sv::Cgroups> make_cgroups(const control::Manifest& m, std::string& why) {
  auto cg = sv::Cgroups::create(sv::detect_cgroups(), sv::fleet_cgroup_name(m.name, m.dir()), &why);
  if (!cg) return nullptr;
  for (const auto& s : m.services) {
    for (const auto& [wanted, controller] :
         {std::pair{s.resources.memory_bytes.has_value(), "memory"},
          std::pair{s.resources.millicores.has_value(), "cpu"},
          std::pair{s.resources.pids.has_value(), "pids"}}) {
      if (wanted && !(*cg)->controls(controller)) {
        why = fmt::format("{} has no {} controller (services.{}.resources.{})", (*cg)->describe(),
                          controller, s.name, controller);
        return nullptr;
      }
    }
  }
  return std::move(*cg);
}

// A folder of the fleet's own (0711: passable, not listable) for its instances' secrets: under /run
// (a memory file system) when this user may write there, else $XDG_RUNTIME_DIR, else a new one in
// the temporary folder.
std::filesystem::path secrets_dir(const control::Manifest& m) {
  const std::string name = sv::fleet_cgroup_name(m.name, m.dir());
  for (const char* base : {static_cast<const char*>("/run/squadron"),
                           static_cast<const char*>(std::getenv("XDG_RUNTIME_DIR"))}) {
    if (base == nullptr) continue;
    std::error_code ec;
    std::filesystem::path root = base;
    if (root.filename() != "squadron") root /= "squadron";
    std::filesystem::create_directories(root, ec);
    // Others may pass through (not list): an instance run as another `user:` reaches its own
    // folder below, which is 0700 and its user's.
    ::chmod(root.c_str(), 0711);
    const auto dir = root / name;
    std::filesystem::remove_all(dir, ec);  // what a crashed run of this fleet left
    if (::mkdir(dir.c_str(), 0711) == 0) return dir;
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / "squadron-secrets-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) != nullptr) {
    ::chmod(tmpl.c_str(), 0711);
    return tmpl;
  }
  return {};
}

// Runs the fleet until it is stopped. `notify_fd` >= 0: detached (no output streaming; the
// parent is told "ok" once the control API listens).
int run_fleet(const control::Manifest& m, const UpOptions& up_options, int notify_fd) {
  const bool foreground = notify_fd < 0;
  const control::StateDir dir(m.dir());
  // Descriptors: as many as the hard limit allows (the instances get the soft limit back).
  const std::size_t fd_limit = core::raise_fd_limit();
  // (Detached, the parent made it before forking: see up_detached.)
  if (auto sec = foreground ? control::secure_state_dir(dir) : std::error_code()) {
    std::fprintf(stderr, "squadron: cannot make %s: %s\n", dir.root.c_str(), sec.message().c_str());
    return 1;
  }
  // First, while few descriptors are open: the guardian kills every instance's process group if
  // squadron dies, even by SIGKILL.
  sv::Guardian guardian;
  std::error_code ec;
  const int lock = control::try_lock(dir.lock(), ec);
  if (lock < 0) {
    const auto run = control::load_run_info(dir.run());
    const std::string msg =
        ec == std::errc::resource_unavailable_try_again || ec == std::errc::operation_would_block
            ? fmt::format(
                  "a fleet is already running from {} (pid {}); `squadron apply` (or `up -d`) "
                  "brings it to this manifest, `squadron ps` shows it, `squadron down` stops it",
                  m.dir().string(), run ? run->pid : 0)
            : fmt::format("cannot lock {}: {}", dir.lock().string(), ec.message());
    std::fprintf(stderr, "squadron: %s\n", msg.c_str());
    notify(notify_fd, msg);
    return 1;
  }
  // Every instance in a cgroup of its own under the fleet's, with its limits (made after the lock:
  // making it kills what a crashed fleet from this folder left in it).
  std::string no_cgroups;
  const auto cgroups = make_cgroups(m, no_cgroups);
  const bool limited = std::any_of(m.services.begin(), m.services.end(),
                                   [](const auto& s) { return s.resources.any(); });
  if (!cgroups && up_options.require_limits) {
    const std::string msg = fmt::format(
        "cannot apply resource limits: {} (--require-limits; without it the fleet runs without "
        "limits)",
        no_cgroups);
    std::fprintf(stderr, "squadron: %s\n", msg.c_str());
    notify(notify_fd, msg);
    return 1;
  }
  if (!cgroups && limited) {
    std::fprintf(stderr,
                 "squadron: warning: resource limits are off: %s; every service runs without "
                 "them (`up --require-limits` refuses to start instead)\n",
                 no_cgroups.c_str());
  }
  if (cgroups) guardian.watch_cgroups(*cgroups);
  const auto token = control::load_or_create_token(dir.token(), ec);
  const auto listen = split_listen(m.control_listen);
  if (!token || !listen) {
    const std::string msg =
        !token ? fmt::format("cannot write {}: {}", dir.token().string(), ec.message())
               : "control.listen: expected HOST:PORT";
    std::fprintf(stderr, "squadron: %s\n", msg.c_str());
    notify(notify_fd, msg);
    return 1;
  }
  http::ServerConfig config;
  config.host = listen->first;
  config.port = listen->second;
  config.threads = 1;
  config.idle_timeout = 5min;  // between requests of one connection (a quiet stream is no idle)
  config.io_timeout = 60s;     // a write to a reader that takes nothing: dropped after this
  // Connections: a quarter of the descriptors, 64 to 4,096 (the rest is the instances': pipes,
  // pidfds, logs, probes); long-lived requests a quarter of that, so /healthz and the CLI
  // always find room, and an idle connection gives way to a new one.
  config.max_connections = std::clamp<std::size_t>(fd_limit / 4, 64, 4096);
  control::FleetOptions options;
  // With a gateway in front, a retired instance first leaves the registry's ready set and keeps
  // serving until the gateway (following the watch within milliseconds) routes without it and
  // has no request in flight to it (Traffic, the fleet's drain gate; if the gateway cannot say,
  // until the service's stop_grace or this second, whichever is longer), then gets SIGTERM.
  if (control::runs_gateway(m)) options.drain = 1s;
  control::Manifest fleet_manifest = m;
  auto internal = give_service_urls(fleet_manifest);
  // The gateway's admin listener (/metrics), fixed for the fleet's life like its front door.
  const Held admin = control::runs_gateway(m) ? hold_free_port("127.0.0.1") : Held{};
  const std::uint16_t admin_port = admin.port;
  Runtime rt(fleet_manifest, config, *token, dir, options, admin_port);
  rt.api.max_streams = config.max_connections / 4;
  rt.sup.set_guardian(&guardian);
  if (cgroups) rt.sup.set_isolation(cgroups.get());
  // Secrets go to a memory file system, never under .squadron/ (nor anywhere a crash leaves them).
  if (const auto secrets = secrets_dir(m); !secrets.empty()) {
    rt.sup.set_secrets_dir(secrets);
    guardian.remove_secrets(secrets);
  }
  rt.sup.log_to(dir.logs());  // <instance>.log, rotated at 1 MiB

  if (auto lec = rt.server.listen()) {
    const std::string msg = fmt::format(
        "control.listen {}: {}{}", m.control_listen, lec.message(),
        lec == boost::asio::error::address_in_use
            ? " (another fleet? give this one its own control.listen in the manifest; port 0 "
              "picks a free one)"
            : "");
    std::fprintf(stderr, "squadron: %s\n", msg.c_str());
    notify(notify_fd, msg);
    return 1;
  }
  const std::string url = fmt::format("http://{}:{}", listen->first, rt.server.port());
  if (!control::loopback_listen(m.control_listen)) {
    std::fprintf(stderr,
                 "squadron: warning: control.listen %s is exposed (control: { expose: true }): "
                 "whoever reaches it reads the fleet's services, instances and metrics without a "
                 "token, and every request's token crosses the network in clear\n",
                 m.control_listen.c_str());
  }
  std::string gateway_problem;
  std::vector<std::uint16_t> spares;  // the gateway's, not yet given to a service
  auto gw = gateway_spec(m, url, internal, admin, *token, gateway_problem, spares);
  if (!gw && control::runs_gateway(m)) {
    const std::string msg =
        fmt::format("cannot start the gateway: {}{}", gateway_problem,
                    gateway_problem.find("in use") != std::string::npos
                        ? " (another fleet? give this one its own gateway.listen; port 0 picks "
                          "a free one)"
                        : "");
    std::fprintf(stderr, "squadron: %s\n", msg.c_str());
    notify(notify_fd, msg);
    return 1;
  }
  if (gw) rt.fleet.add_service(std::move(*gw));
  for (const auto& i : internal) rt.fleet.set_discovery_port(i.service, i.port);
  // A manifest applied later gets the same variables, and a service it adds gets its own
  // listener on the gateway at once: held here like the others and handed to a gateway
  // deployed with it (its port is fixed, so the new process starts as the old one leaves;
  // connections wait in the listen queues meanwhile). Not for a dry run.
  InternalPorts unhanded;  // listeners held for added services, not yet in the gateway's spec
  rt.hooks.prepare_manifest = [&rt, &internal, &unhanded, &spares,
                               gateway = control::runs_gateway(m)](control::Manifest& next,
                                                                   bool dry_run) {
    for (const auto& s : next.services) {
      if (!gateway || dry_run) break;
      if (std::any_of(internal.begin(), internal.end(),
                      [&](const auto& i) { return i.service == s.name; }))
        continue;
      if (!spares.empty()) {  // the running gateway serves it once the watch names it
        internal.push_back({s.name, spares.front(), -1});  // its descriptor is the gateway's
        rt.fleet.set_discovery_port(s.name, spares.front());
        spares.erase(spares.begin());
        continue;
      }
      // No spare left: a listener of its own, and a gateway deployed with it (below).
      const Held held = hold_free_port("127.0.0.1");
      if (!held) continue;  // then reached through its routes only
      internal.push_back({s.name, held.port, held.fd});
      rt.fleet.set_discovery_port(s.name, held.port);
      unhanded.push_back(internal.back());
    }
    add_service_urls(next, internal);
  };
  // A listener changes kind (a service added or changed to protocol: tcp, or back) only in a
  // new gateway process: deployed with the new --tcp list, as for an added listener.
  rt.hooks.after_apply = [&rt, &unhanded, &internal](const std::vector<std::string>&) {
    const auto* now = rt.fleet.manifest().find("gateway");
    if (now == nullptr) return;
    const auto tcp = tcp_ports(rt.fleet.manifest(), internal);
    if (unhanded.empty() && tcp == tcp_ports(*now)) return;
    control::ServiceSpec spec = *now;
    std::string why;
    for (const auto& i : unhanded) {
      add_internal_listener(spec, i.service, i.port, i.fd);
      why += (why.empty() ? "" : ", ") + i.service;
    }
    why = why.empty() ? "apply: the gateway passes TCP for the services with protocol: tcp"
                      : "apply: the gateway listens for " + why + " too";
    set_tcp_ports(spec, tcp);
    const auto r = rt.fleet.deploy("gateway", std::move(spec), why);
    if (std::holds_alternative<int>(r)) unhanded.clear();  // else the next apply tries again
  };
  const auto started = std::chrono::system_clock::now();
  if (auto wec = control::save_run_info(
          dir.run(),
          {::getpid(), url,
           std::chrono::duration_cast<std::chrono::milliseconds>(started.time_since_epoch())
               .count()})) {
    std::fprintf(stderr, "squadron: cannot write %s: %s\n", dir.run().c_str(),
                 wec.message().c_str());
  }

  // Output: in the foreground every line with its coloured instance prefix; events on stderr.
  const bool colour = foreground && ::isatty(STDOUT_FILENO) != 0;
  static constexpr int kColours[] = {36, 33, 32, 35, 34, 31};
  std::map<std::string, int> colour_of;
  std::size_t width = 0;
  for (const auto& s : m.services) {
    colour_of[s.name] = kColours[colour_of.size() % std::size(kColours)];
    width = std::max(width, s.name.size() + 4);
  }
  if (foreground) {
    rt.hooks.show_output = [&](const sv::InstanceStatus& st, std::string_view line) {
      const std::string prefix = fmt::format("{:<{}}|", st.id, width);
      const std::string text =
          colour ? fmt::format("\x1b[{}m{}\x1b[0m {}\n", colour_of[st.service], prefix, line)
                 : fmt::format("{} {}\n", prefix, line);
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    };
  }
  bool announced = false;
  int last_ready = -1;
  rt.hooks.show_event = [&](const registry::Event& e) {
    const std::string who = e.instance.empty() ? e.service : e.instance;
    if (foreground) {
      std::fprintf(stderr, "squadron: %s%s%s\n", who.c_str(), who.empty() ? "" : ": ",
                   e.message.c_str());
    } else {
      std::fprintf(stderr, "%s %s%s%s\n", utc_time(e.at).c_str(), who.c_str(),
                   who.empty() ? "" : ": ", e.message.c_str());
    }
    int ready = 0;
    const auto instances = rt.reg.instances();
    for (const auto& i : instances) ready += i.state == registry::State::kReady;
    const int total = rt.fleet.total_desired();
    if (foreground && !announced && ready != last_ready && total > 0) {
      last_ready = ready;
      std::fprintf(stderr, "squadron: %d/%d ready\n", ready, total);
      if (ready == total) {
        announced = true;
        std::fprintf(stderr, "%-16s %-14s %s\n", "SERVICE", "INSTANCE", "URL");
        for (const auto& i : instances) {
          std::fprintf(stderr, "%-16s %-14s %s://%s:%u\n", i.service.c_str(), i.id.c_str(),
                       control::url_scheme(m, i.service), i.host.c_str(), i.port);
        }
        std::fprintf(stderr, "squadron: fleet \"%s\" is up; control API %s; Ctrl-C stops it\n",
                     m.name.c_str(), url.c_str());
      }
    }
    std::fflush(stderr);
  };

  rt.signals.async_wait([&](boost::system::error_code sec, int) {
    if (!sec) rt.stop();
  });
  if (!foreground) std::signal(SIGHUP, SIG_IGN);

  int total = rt.fleet.total_desired();
  std::fprintf(stderr, "squadron: fleet \"%s\": starting %zu service%s; control API %s\n",
               m.name.c_str(), m.services.size(), m.services.size() == 1 ? "" : "s", url.c_str());
  rt.fleet.start();
  rt.traffic.start();
  rt.scaling.start();
  rt.usage.start();
  total = rt.fleet.total_desired();
  if (total == 0) std::fprintf(stderr, "squadron: no replicas to start\n");
  notify(notify_fd, "ok " + url);
  rt.server.run();
  std::error_code rm;
  std::filesystem::remove(dir.run(), rm);
  ::close(lock);
  std::fprintf(stderr, "squadron: fleet \"%s\" stopped\n", m.name.c_str());
  return 0;
}

// `up -d`: the fleet runs in a child process of its own session; this one waits for it to
// listen, then for every instance to be ready, and returns.
int up_detached(const control::Manifest& m, const UpOptions& options) {
  const control::StateDir dir(m.dir());
  std::error_code ec;
  {
    const int lock = control::try_lock(dir.lock(), ec);  // a clear answer before forking
    if (lock < 0) {
      // As compose converges: the running fleet is brought to this manifest (`apply`).
      const auto run = control::load_run_info(dir.run());
      std::fprintf(stderr,
                   "squadron: a fleet is already running from %s (pid %d): applying the "
                   "manifest to it (as `squadron apply`)\n",
                   m.dir().c_str(), run ? run->pid : 0);
      return apply(m, false, true, options.timeout);
    }
    ::close(lock);
  }
  if (auto sec = control::secure_state_dir(dir)) {
    std::fprintf(stderr, "squadron: cannot make %s: %s\n", dir.root.c_str(), sec.message().c_str());
    return 1;
  }
  const auto log_path = dir.logs() / "squadron.log";
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    std::perror("squadron: pipe");
    return 1;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("squadron: fork");
    return 1;
  }
  if (pid == 0) {
    ::close(pipe_fds[0]);
    ::setsid();
    const int null_fd = ::open("/dev/null", O_RDONLY);
    const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    if (null_fd > 2) ::close(null_fd);
    if (log_fd > 2) ::close(log_fd);
    std::_Exit(run_fleet(m, options, pipe_fds[1]));
  }
  ::close(pipe_fds[1]);
  std::string answer;
  char buf[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  while (!answer.empty() && answer.back() == '\n') answer.pop_back();
  if (answer.rfind("ok ", 0) != 0) {
    std::fprintf(stderr, "squadron: the fleet did not start: %s\n",
                 answer.empty() ? ("see " + log_path.string()).c_str() : answer.c_str());
    ::waitpid(pid, nullptr, WNOHANG);
    return 1;
  }
  std::string why;
  const auto client = ControlClient::for_manifest(m, why);
  if (!client) {
    std::fprintf(stderr, "squadron: %s\n", why.c_str());
    return 1;
  }
  std::fprintf(stderr, "squadron: fleet \"%s\" started (pid %d); control API %s; log %s\n",
               m.name.c_str(), pid, client->url().c_str(), log_path.c_str());
  const int rc = wait_ready(*client, {}, options.timeout);
  if (rc == 0) print_endpoints(m, *client);
  if (rc != 0)
    std::fprintf(stderr,
                 "squadron: the fleet keeps running; `squadron logs`, `squadron ps`, "
                 "`squadron down`\n");
  return rc;
}

}  // namespace

int up(const control::Manifest& m, const UpOptions& options) {
  return options.detach ? up_detached(m, options) : run_fleet(m, options, -1);
}

}  // namespace squadron::apps
