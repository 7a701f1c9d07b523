// The fleet manifest, `squadron.yaml`: what services run, how, and where. Parsing validates
// everything before anything starts; each problem comes back as a value with its place.
//
//   auto m = load_manifest("squadron.yaml");
//   if (!m.ok()) { for (auto& e : m.errors) std::cerr << e.to_string() << '\n'; return 2; }
//   for (const auto& s : m.manifest->services) start(s);
//
// Field-by-field documentation: docs/manifest.md. Thread safety: plain values.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "squadron/control/autoscaler.hpp"
#include "squadron/http/tls.hpp"
#include "squadron/registry/watch.hpp"
#include "squadron/supervisor/launcher.hpp"
#include "squadron/supervisor/resources.hpp"

namespace squadron::control {

// How readiness or liveness is checked.
struct Probe {
  std::string path;  // HTTP GET path answering 2xx; empty (no command, not none): a TCP connect
  std::vector<std::string> command;  // exec probe: passes when it exits 0 within the timeout
  // gRPC health probe: grpc.health.v1.Health/Check for this service name ("": the server) over
  // HTTP/2 answers SERVING (`{ grpc: true }` or `{ grpc: NAME }`).
  std::optional<std::string> grpc;
  bool none = false;  // `ready: none`: ready once started (serves no port)
  std::chrono::milliseconds interval = std::chrono::seconds(1);  // default 1 s
  std::chrono::milliseconds timeout = std::chrono::seconds(1);   // default 1 s
  int threshold = 3;  // consecutive failures that count (liveness restarts after them); default 3
  std::uint16_t port = 0;  // Squadron's own services: probe this port, not the instance's
  bool tcp() const { return path.empty() && command.empty() && !grpc && !none; }
  bool operator==(const Probe&) const = default;
};

// A gateway route: a path prefix, optionally stripped and bound to a Host.
// `routes:` and `proxy:` are the watch contract's own types (what the gateway follows).
using Route = registry::Route;

enum class RestartPolicy { kAlways, kOnFailure, kNever };

// How a new revision replaces the old one (`deploy:`), after Kubernetes' RollingUpdate: at most
// `max_surge` instances above the desired count, at most `max_unavailable` below it ready.
// Each is a count or a percentage of the desired count (surge rounded up, unavailable down).
struct DeployPolicy {
  int max_surge = 1;  // default 1
  bool surge_percent = false;
  int max_unavailable = 0;  // default 0
  bool unavailable_percent = false;
  // A new instance not ready within this (or one that exits) fails the rollout: it rolls back.
  std::chrono::milliseconds ready_timeout = std::chrono::seconds(30);  // default 30 s
  // The limits for `desired` instances. Never both 0: then one surge instance (as Kubernetes).
  int surge(int desired) const;
  int unavailable(int desired) const;
  bool operator==(const DeployPolicy&) const = default;
};

using ProxyPolicy = registry::ProxyPolicy;

// depends_on: { ratings: ready, migrate: completed }, as compose's service_started,
// service_healthy and service_completed_successfully.
enum class Condition { kStarted, kReady, kCompleted };
std::string_view to_string(Condition c) noexcept;
struct Dependency {
  std::string service;
  Condition condition = Condition::kStarted;
  bool operator==(const Dependency&) const = default;
};

struct ServiceSpec {
  std::string name;
  std::vector<std::string> command;        // argv; argv[0] resolved against cwd, then PATH
  std::filesystem::path cwd;               // absolute; default: the manifest's folder
  std::map<std::string, std::string> env;  // on top of Squadron's own variables
  // The variables env_file: gave (as read, before env: overrides them): an export's ConfigMap.
  std::map<std::string, std::string> env_file_vars;
  // image: registry/name:tag — only `squadron export kubernetes` reads it; `up` runs command.
  std::string image;
  // placement: { hosts: [h1, h2], labels: { zone: a } } — in a cluster, the hosts it may run on
  // (every label must match). Default: any host. Without cluster: it is not used.
  std::vector<std::string> placement_hosts;
  std::map<std::string, std::string> placement_labels;
  int replicas = 1;                   // default 1; 0 is allowed (scaled to zero)
  std::optional<std::uint16_t> port;  // a fixed port; default: auto (one per instance)
  Probe ready;                        // default: TCP connect
  std::optional<Probe> live;          // default: none
  std::vector<Route> routes;          // default: none
  ProxyPolicy proxy;                  // default: the design doc's
  std::chrono::milliseconds stop_grace = std::chrono::seconds(10);  // default 10 s
  RestartPolicy restart = RestartPolicy::kAlways;                   // default always
  std::optional<AutoscaleSpec> autoscale;                           // default: none (fixed)
  DeployPolicy deploy;                                              // default: surge 1, 0 down
  // resources: { memory: 256Mi, cpu: 0.5, pids: 256 }: each instance's cgroup limits.
  supervisor::Resources resources;  // default: none
  // user: postgres (or "999", "postgres:postgres", "999:999"): who the instances run as,
  // resolved when the manifest is read. Default: the fleet's own user.
  std::string user;
  std::optional<supervisor::RunAs> run_as;
  int stop_signal = 15;  // stop_signal: SIGINT; what a graceful stop sends (default SIGTERM)
  // secrets: [db_password]: files in the instance's SQUADRON_SECRETS_DIR (and variables), read
  // from their source at each start; their values are never in the spec.
  std::vector<supervisor::SecretSpec> secrets;
  // kind: task: runs to completion once per `up` (and once per apply that changes it), a
  // migration; ready once started, never restarted unless restart: on-failure. `completed` is
  // its exit 0.
  bool task = false;
  std::vector<Dependency> depends_on;  // it starts once each one meets its condition
  // protocol: tcp: the gateway's listener for the service (SQUADRON_<NAME>_ADDR) passes TCP
  // connections through to its ready instances (Redis, Postgres); default http.
  bool tcp = false;
  // Squadron's own services only (never from a manifest): listening descriptors the fleet
  // holds for the life of the fleet and hands to each process as 3, 4, ... (the gateway's).
  std::vector<int> inherit_fds;
  bool operator==(const ServiceSpec&) const = default;
};

// A manifest larger than this is refused before it is parsed (a 56 MB one took 28 s and 1.3 GB).
inline constexpr std::size_t kMaxManifestBytes = std::size_t{1} << 20;

// The variable naming `part` (URL, HOST, PORT, ADDR) of a service's address on the gateway:
// ("catalog-api", "URL") -> "SQUADRON_CATALOG_API_URL".
std::string discovery_variable(std::string_view service, std::string_view part);

// Whether `listen` ("HOST:PORT") is on this machine only: 127.0.0.0/8, ::1 or localhost.
bool loopback_listen(std::string_view listen);

// cluster: { etcd: [10.0.0.1:2379, ...], ttl: 5s } — the fleet runs across hosts (`squadron server`
// and `squadron agent`), its state in etcd. Without it everything runs in one process.
struct ClusterSpec {
  std::vector<std::string> etcd;  // members, "ADDRESS:PORT" (http:// allowed)
  std::chrono::seconds ttl{5};    // hosts' and the leader's leases (2s-10m)
};

// gateway: { tls: { cert: FILE, key: FILE } }, or several chosen by the name a client asks for
// (SNI): tls: { certificates: [{ cert: a.pem, key: a.key }, ...] }; redirect: HOST:PORT adds a
// plain listener answering 308 to https://; hsts: true sends Strict-Transport-Security.
struct TlsSpec {
  std::vector<http::TlsCertificate> certificates;  // absolute; the first is the default
  std::string redirect;                            // host:port; empty: none
  bool hsts = false;
  // tls: { self_signed: true }: `up` makes a certificate for localhost, 127.0.0.1 and ::1 in
  // .squadron/tls/ (kept across runs) instead; certificates is then empty.
  bool self_signed = false;
};

struct Manifest {
  std::string name;  // default: the manifest folder's name
  std::optional<ClusterSpec> cluster;
  std::string control_listen = "127.0.0.1:9900";
  // control: { expose: true }: control.listen may be an address other hosts reach (the fleet's
  // summary, unauthenticated, and every request's token then travel the network in clear).
  bool control_expose = false;
  std::string gateway_listen = "127.0.0.1:8080";
  // gateway: { trusted_proxies: [10.0.0.0/8, ...] }: peers whose X-Forwarded-For the gateway
  // believes; default none (the header is replaced by the peer's address).
  std::vector<std::string> trusted_proxies;
  std::optional<TlsSpec> gateway_tls;  // gateway: { tls: ... }: the front door speaks HTTPS
  std::vector<ServiceSpec> services;   // in file order
  std::filesystem::path file;          // absolute path of the manifest
  std::filesystem::path dir() const { return file.parent_path(); }
  const ServiceSpec* find(std::string_view service) const;
};

// The scheme of a URL naming `service`'s address: "tcp" for protocol: tcp, "https" for Squadron's
// own gateway with gateway.tls, else "http".
const char* url_scheme(const Manifest& m, std::string_view service);

// Whether the fleet of `m` runs Squadron's gateway: when any service has routes or protocol: tcp.
bool runs_gateway(const Manifest& m);

// Gives every service of `m` SQUADRON_<NAME>_URL (tcp:// for protocol: tcp), _HOST, _PORT and
// _ADDR for each service of `ports`: its address on the gateway's loopback listener `port`.
void add_service_urls(Manifest& m, const std::vector<std::pair<std::string, std::uint16_t>>& ports);

// A cluster's loopback ports for its services (every host's gateway listens on all of them, so
// SQUADRON_<NAME>_URL names the host's own gateway wherever an instance runs): one of the
// kClusterServicePorts ports from kClusterServicePortBase per service, chosen from its name (so
// a service keeps its port when others come and go; a collision takes the next free one, in
// name order). Services past the range get none.
inline constexpr std::uint16_t kClusterServicePortBase = 41000;
inline constexpr std::uint16_t kClusterServicePorts = 64;
std::vector<std::pair<std::string, std::uint16_t>> cluster_service_ports(const Manifest& m);

// One problem in a manifest: where, which key, what, and what to do.
struct ManifestError {
  std::string file;
  int line = 0;         // 1-based; 0 when the problem has no place (missing file)
  int column = 0;       // 1-based
  std::string path;     // key path, "services.hello.replicas"
  std::string message;  // what is wrong
  std::string hint;     // what to do, or "did you mean ...", may be empty
  // "squadron.yaml:7:15: services.hello.replicas: expected ... (did you mean ...?)"
  std::string to_string() const;
};

struct ManifestResult {
  std::optional<Manifest> manifest;  // set only when there are no errors
  std::vector<ManifestError> errors;
  bool ok() const { return manifest.has_value(); }
};

// Reads and validates the manifest at `file`. Never throws; problems are in `errors`, all of
// them (not only the first), in file order.
ManifestResult load_manifest(const std::filesystem::path& file);
// The same from text; `file` names it in errors and anchors relative paths.
ManifestResult parse_manifest(std::string_view text, const std::filesystem::path& file);

// Splits a command string into argv like a shell would split words, without running one:
// whitespace separates, single and double quotes group, backslash escapes. nullopt on an
// unterminated quote.
std::optional<std::vector<std::string>> split_command(const std::string& s);

}  // namespace squadron::control
