#include "commands.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <optional>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <boost/json.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>

#include "squadron/control/state.hpp"
#include "squadron/core/quantity.hpp"

namespace squadron::apps {

namespace json = boost::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

std::optional<ControlClient> connect_or_report(const control::Manifest& m) {
  std::string why;
  auto client = ControlClient::for_manifest(m, why);
  if (!client) std::fprintf(stderr, "squadron: %s\n", why.c_str());
  return client;
}

std::optional<json::value> parse_body(const HttpResult& r) {
  if (!r.ok()) {
    std::fprintf(stderr, "squadron: %s\n", r.explain().c_str());
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec) {
    std::fprintf(stderr, "squadron: the control API answered something that is not JSON\n");
    return std::nullopt;
  }
  return v;
}

std::string str(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}
std::int64_t num(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  return 0;
}

// A JSON value that may be null (not measured yet): the value, or nothing.
std::optional<double> maybe(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return std::nullopt;
}

std::string human_uptime(std::int64_t s) {
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{}h", s / 86400, (s % 86400) / 3600);
}

// Lines of the last output of `id`, indented, for a failure report.
std::string last_output(const ControlClient& client, const std::string& id, int lines) {
  const auto r = client.get(fmt::format("/api/v1/logs?service={}&tail={}", id, lines), 5s);
  if (!r.ok() || r.body.empty()) return "";
  std::string out;
  std::size_t start = 0;
  while (start < r.body.size()) {
    const auto nl = r.body.find('\n', start);
    const auto end = nl == std::string::npos ? r.body.size() : nl;
    out += "    " + r.body.substr(start, end - start) + "\n";
    start = end + 1;
  }
  return out;
}

}  // namespace

void wait_for_gateway(const boost::json::object& fleet, std::uint64_t revision);

int wait_ready(const ControlClient& client, const std::vector<std::string>& services,
               std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  const std::set<std::string> only(services.begin(), services.end());
  std::uint64_t revision = 0;
  std::string last_progress;
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  while (true) {
    const auto fleet = parse_body(client.get("/api/v1/fleet", 10s));
    if (!fleet) return 1;
    const auto& fo = fleet->as_object();
    if (fo.at("stopping").as_bool()) {
      std::fprintf(stderr, "squadron: the fleet is stopping\n");
      return 1;
    }
    const auto snapshot =
        parse_body(client.get(fmt::format("/api/v1/watch?since={}&timeout=1s", revision), 10s));
    if (!snapshot) return 1;
    revision = static_cast<std::uint64_t>(num(snapshot->as_object(), "revision"));
    // desired per service, and whether a restart runs
    std::map<std::string, std::int64_t> desired;
    std::set<std::string> tasks, blocked;
    std::map<std::string, std::vector<std::string>> depends_on;
    bool restarting = false;
    std::vector<std::string> failed, not_ready;
    for (const auto& s : fo.at("services").as_array()) {
      const auto& so = s.as_object();
      const std::string name = str(so, "name");
      if (!only.empty() && only.count(name) == 0) continue;
      desired[name] = num(so, "desired");
      restarting = restarting || so.at("restarting").as_bool();
      if (str(so, "kind") == "task") tasks.insert(name);
      if (const auto* deps = so.if_contains("depends_on"); deps != nullptr && deps->is_object()) {
        for (const auto& d : deps->as_object()) depends_on[name].emplace_back(d.key());
      }
      // Not started yet: waiting for a dependency, or blocked by one that failed.
      const std::string waiting = str(so, "waiting");
      if (waiting.rfind("blocked:", 0) == 0) {
        blocked.insert(name);
        failed.push_back(fmt::format("{}: not started, {}\n", name, waiting));
      } else if (!waiting.empty()) {
        not_ready.push_back(fmt::format("{}: {}", name, waiting));
      }
    }
    std::map<std::string, std::int64_t> have, ready;
    for (const auto& iv : snapshot->as_object().at("instances").as_array()) {
      const auto& i = iv.as_object();
      const std::string service = str(i, "service");
      if (desired.count(service) == 0) continue;
      const std::string state = str(i, "state");
      ++have[service];
      if (state == "ready") ++ready[service];
      // A task is done once it exited 0 (a migration ran to its end).
      if (tasks.count(service) != 0 && state == "stopped" && str(i, "last_exit") == "exit 0") {
        ++ready[service];
        continue;
      }
      if (state == "backoff" || state == "failed" || state == "stopped") {  // it exited
        failed.push_back(fmt::format("{}: {} after {} (restarts: {})", str(i, "id"), state,
                                     str(i, "last_exit"), num(i, "restarts")) +
                         "\n" + last_output(client, str(i, "id"), 5));
      } else if (state != "ready") {
        not_ready.push_back(fmt::format("{}: {}", str(i, "id"), state));
      }
    }
    // A dependency that failed for good blocks what waits for it (said now, not at the fleet's
    // next reconcile).
    std::map<std::string, std::string> failed_exit;
    for (const auto& iv : snapshot->as_object().at("instances").as_array()) {
      const auto& i = iv.as_object();
      if (str(i, "state") == "failed") failed_exit[str(i, "service")] = str(i, "last_exit");
    }
    for (const auto& [name, deps] : depends_on) {
      if (have[name] > 0 || blocked.count(name) != 0) continue;
      for (const auto& d : deps) {
        if (auto it = failed_exit.find(d); it != failed_exit.end()) {
          failed.push_back(
              fmt::format("{}: not started, blocked: {} failed ({})\n", name, d, it->second));
          break;
        }
      }
    }
    std::int64_t want = 0, ok = 0;
    bool done = !restarting;
    for (const auto& [name, n] : desired) {
      want += n;
      ok += std::min(ready[name], n);
      done = done && have[name] == n && ready[name] == n;
    }
    const std::string progress = fmt::format("{}/{} ready", ok, want);
    if (progress != last_progress) {
      std::fprintf(stderr, tty ? "\rsquadron: %s " : "squadron: %s\n", progress.c_str());
      last_progress = progress;
    }
    if (done) {
      if (tty) std::fputc('\n', stderr);
      wait_for_gateway(fo, revision);
      return 0;
    }
    if (!failed.empty()) {
      if (tty) std::fputc('\n', stderr);
      std::fprintf(stderr, "squadron: %zu instance%s failed to start:\n", failed.size(),
                   failed.size() == 1 ? "" : "s");
      for (const auto& f : failed) std::fprintf(stderr, "  %s", f.c_str());
      return 1;
    }
    if (steady::now() >= deadline) {
      if (tty) std::fputc('\n', stderr);
      std::fprintf(stderr, "squadron: not ready after %lld s:\n",
                   static_cast<long long>(
                       std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
      for (const auto& n : not_ready) std::fprintf(stderr, "  %s\n", n.c_str());
      if (restarting) std::fprintf(stderr, "  (a restart is still in progress)\n");
      return 1;
    }
  }
}

// With a gateway: until its routing table is at `revision` (when all were ready), at most 2 s, so
// that what a command reports ready is also routed when it returns (the gateway follows the
// registry within milliseconds; `scale x=1 && curl` should not meet the gap).
void wait_for_gateway(const boost::json::object& fleet, std::uint64_t revision) {
  const auto* url = fleet.if_contains("gateway_metrics");
  if (url == nullptr || !url->is_string()) return;
  const std::string text(url->as_string());  // http://127.0.0.1:PORT/metrics
  const auto colon = text.rfind(':');
  const int port = colon == std::string::npos ? 0 : std::atoi(text.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return;
  const ControlClient gateway("127.0.0.1", static_cast<std::uint16_t>(port), "");
  for (const auto until = steady::now() + 2s; steady::now() < until;) {
    const auto r = gateway.get("/upstreams", 1s);
    boost::system::error_code ec;
    const auto doc = r.ok() ? boost::json::parse(r.body, ec) : boost::json::value();
    if (!ec && doc.is_object()) {
      const auto* rev = doc.as_object().if_contains("revision");
      if (rev != nullptr && rev->is_number() && rev->to_number<std::uint64_t>() >= revision) return;
    }
    std::this_thread::sleep_for(10ms);
  }
}

void print_endpoints(const control::Manifest& m, const ControlClient& client) {
  const auto v = parse_body(client.get("/api/v1/instances", 10s));
  if (!v) return;
  std::printf("%-16s %-14s %s\n", "SERVICE", "INSTANCE", "URL");
  for (const auto& iv : v->as_array()) {
    const auto& i = iv.as_object();
    std::printf("%-16s %-14s %s://%s\n", str(i, "service").c_str(), str(i, "id").c_str(),
                control::url_scheme(m, str(i, "service")), str(i, "address").c_str());
  }
}

int ps(const control::Manifest& m, bool as_json) {
  const auto client = connect_or_report(m);
  if (!client) return 1;
  const auto v = parse_body(client->get("/api/v1/instances", 10s));
  if (!v) return 1;
  if (as_json) {
    // Exactly these keys: the stable contract of `ps --json`.
    json::array out;
    for (const auto& iv : v->as_array()) {
      const auto& i = iv.as_object();
      out.push_back(
          json::object{{"service", str(i, "service")},
                       {"id", str(i, "id")},
                       {"pid", num(i, "pid")},
                       {"port", num(i, "port")},
                       {"state", str(i, "state")},
                       {"restarts", num(i, "restarts")},
                       {"uptime_s", num(i, "uptime_s")},
                       {"revision", str(i, "revision")},
                       {"rss_bytes", i.contains("rss_bytes") ? i.at("rss_bytes") : nullptr},
                       {"cpu_percent", i.contains("cpu_percent") ? i.at("cpu_percent") : nullptr},
                       {"memory_limit_bytes",
                        i.contains("memory_limit_bytes") ? i.at("memory_limit_bytes") : nullptr},
                       {"cpus", i.contains("cpus") ? i.at("cpus") : nullptr},
                       {"oom_kills", num(i, "oom_kills")},
                       {"last_exit", str(i, "last_exit")}});
      // In a cluster, the host it runs on (by the name its agent gave).
      if (i.contains("node")) out.back().as_object()["host"] = str(i, "node");
    }
    std::printf("%s\n", json::serialize(out).c_str());
    return 0;
  }
  // A cluster's instances run on several hosts: a HOST column says which.
  bool hosts = false;
  for (const auto& iv : v->as_array()) hosts = hosts || iv.as_object().contains("node");
  std::printf("%-14s %-14s ", "SERVICE", "INSTANCE");
  if (hosts) std::printf("%-10s ", "HOST");
  std::printf("%-8s %-6s %-9s %-8s %-8s %-18s %-7s %-8s %s\n", "PID", "PORT", "STATE", "RESTARTS",
              "UPTIME", "RSS/LIMIT", "CPU", "REVISION", "LAST EXIT");
  for (const auto& iv : v->as_array()) {
    const auto& i = iv.as_object();
    std::string state = str(i, "state");
    const auto rss = maybe(i, "rss_bytes");
    const auto limit = maybe(i, "memory_limit_bytes");
    std::string memory = rss ? core::format_bytes(static_cast<std::uint64_t>(*rss)) : "-";
    if (limit) memory += "/" + core::format_bytes(static_cast<std::uint64_t>(*limit));
    const auto cpu = maybe(i, "cpu_percent");
    const std::string cpu_text = cpu ? fmt::format("{:.1f}%", *cpu) : "-";
    // The last exit says why an instance restarted: "oom-killed (limit 64 MiB)", "exit 3".
    const std::string last = num(i, "restarts") > 0 || state == "backoff" || state == "failed"
                                 ? str(i, "last_exit")
                                 : "";
    std::printf("%-14s %-14s ", str(i, "service").c_str(), str(i, "id").c_str());
    if (hosts) std::printf("%-10s ", str(i, "node").c_str());
    std::printf("%-8lld %-6lld %-9s %-8lld %-8s %-18s %-7s %-8s %s\n",
                static_cast<long long>(num(i, "pid")), static_cast<long long>(num(i, "port")),
                state.c_str(), static_cast<long long>(num(i, "restarts")),
                human_uptime(num(i, "uptime_s")).c_str(), memory.c_str(), cpu_text.c_str(),
                str(i, "revision").c_str(), last.c_str());
  }
  return 0;
}

int scale(const control::Manifest& m, const std::vector<std::string>& assignments, bool wait,
          std::chrono::milliseconds timeout) {
  std::vector<std::pair<std::string, int>> wanted;
  for (const auto& a : assignments) {
    const auto eq = a.find('=');
    char* end = nullptr;
    const long n = eq == std::string::npos ? -1 : std::strtol(a.c_str() + eq + 1, &end, 10);
    if (eq == std::string::npos || eq == 0 || end == a.c_str() + eq + 1 || *end != '\0' || n < 0 ||
        n > 100000) {
      std::fprintf(stderr, "squadron: \"%s\": write SERVICE=N, like hello=3\n", a.c_str());
      return 2;
    }
    const std::string name = a.substr(0, eq);
    if (m.find(name) == nullptr) {
      std::string names;
      for (const auto& s : m.services) names += (names.empty() ? "" : ", ") + s.name;
      std::fprintf(stderr, "squadron: no service \"%s\" in %s (services: %s)\n", name.c_str(),
                   m.file.c_str(), names.c_str());
      return 2;
    }
    wanted.emplace_back(name, static_cast<int>(n));
  }
  const auto client = connect_or_report(m);
  if (!client) return 1;
  std::vector<std::string> names;
  for (const auto& [name, n] : wanted) {
    const auto r = client->post(fmt::format("/api/v1/services/{}/scale", name),
                                json::serialize(json::object{{"replicas", n}}));
    if (!r.ok()) {
      std::fprintf(stderr, "squadron: scale %s=%d: %s\n", name.c_str(), n, r.explain().c_str());
      return 1;
    }
    names.push_back(name);
  }
  if (!wait) return 0;
  const auto start = steady::now();
  const int rc = wait_ready(*client, names, timeout);
  if (rc == 0) {
    for (const auto& [name, n] : wanted) {
      std::printf("%s: %d/%d ready (%.2f s)\n", name.c_str(), n, n,
                  std::chrono::duration<double>(steady::now() - start).count());
    }
  }
  return rc;
}

int restart(const control::Manifest& m, const std::vector<std::string>& services, bool wait,
            std::chrono::milliseconds timeout) {
  for (const auto& s : services) {
    if (m.find(s) == nullptr) {
      std::fprintf(stderr, "squadron: no service \"%s\" in %s\n", s.c_str(), m.file.c_str());
      return 2;
    }
  }
  const auto client = connect_or_report(m);
  if (!client) return 1;
  for (const auto& s : services) {
    const auto r = client->post(fmt::format("/api/v1/services/{}/restart", s));
    if (!r.ok()) {
      std::fprintf(stderr, "squadron: restart %s: %s\n", s.c_str(), r.explain().c_str());
      return 1;
    }
  }
  if (!wait) return 0;
  const int rc = wait_ready(*client, services, timeout);
  if (rc == 0) {
    for (const auto& s : services) std::printf("%s: restarted\n", s.c_str());
  }
  return rc;
}

namespace {

// The service's JSON from the control API (nullopt after saying why).
std::optional<boost::json::object> service_state(const ControlClient& client,
                                                 const std::string& service) {
  const auto r = client.get(fmt::format("/api/v1/services/{}", service), 10s);
  boost::system::error_code ec;
  const auto doc = r.ok() ? boost::json::parse(r.body, ec) : boost::json::value();
  if (!r.ok() || ec || !doc.is_object()) {
    std::fprintf(stderr, "squadron: %s: %s\n", service.c_str(),
                 r.ok() ? "unreadable answer" : r.explain().c_str());
    return std::nullopt;
  }
  return doc.as_object();
}

// After a deploy or rollback to `revision`: waits for the rollout and says how it ended.
int wait_rollout(const ControlClient& client, const std::string& service, int revision, bool wait,
                 std::chrono::milliseconds timeout) {
  if (!wait) {
    std::printf("%s: rolling out revision %d\n", service.c_str(), revision);
    return 0;
  }
  const int rc = wait_ready(client, {service}, timeout);
  const auto state = service_state(client, service);
  if (!state) return 1;
  const auto now = state->at("revision").to_number<int>();
  if (now != revision) {
    std::fprintf(
        stderr,
        "squadron: %s: revision %d failed and was rolled back: revision %d runs (`squadron "
        "events %s` says why)\n",
        service.c_str(), revision, now, service.c_str());
    return 1;
  }
  if (rc == 0) std::printf("%s: revision %d runs on every instance\n", service.c_str(), revision);
  return rc;
}

}  // namespace

int deploy(const control::Manifest& m, const std::string& service,
           const std::vector<std::string>& env, const std::string& command, bool wait,
           std::chrono::milliseconds timeout) {
  if (m.find(service) == nullptr) {
    std::fprintf(stderr, "squadron: no service \"%s\" in %s\n", service.c_str(), m.file.c_str());
    return 2;
  }
  boost::json::object body;
  boost::json::object vars;
  for (const auto& kv : env) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr,
                   "squadron: --env takes NAME=VALUE (NAME= with nothing removes it), got "
                   "\"%s\"\n",
                   kv.c_str());
      return 2;
    }
    const std::string name = kv.substr(0, eq);
    const std::string value = kv.substr(eq + 1);
    if (value.empty()) {
      vars[name] = nullptr;
    } else {
      vars[name] = value;
    }
  }
  if (!vars.empty()) body["env"] = std::move(vars);
  if (!command.empty()) body["command"] = command;
  if (body.empty()) {
    std::fprintf(stderr,
                 "squadron: deploy %s: say what changes: --env NAME=VALUE or --command "
                 "\"...\" (to roll out the manifest's edits, restart the fleet)\n",
                 service.c_str());
    return 2;
  }
  const auto client = connect_or_report(m);
  if (!client) return 1;
  const auto r = client->post(fmt::format("/api/v1/services/{}/deploy", service),
                              boost::json::serialize(body));
  if (!r.ok()) {
    std::fprintf(stderr, "squadron: deploy %s: %s\n", service.c_str(), r.explain().c_str());
    return 1;
  }
  boost::system::error_code ec;
  const auto doc = boost::json::parse(r.body, ec);
  const int revision = ec ? 0 : doc.at("revision").to_number<int>();
  return wait_rollout(*client, service, revision, wait, timeout);
}

int apply(const control::Manifest& m, bool dry_run, bool wait, std::chrono::milliseconds timeout) {
  std::string text;
  if (std::FILE* f = std::fopen(m.file.c_str(), "rb")) {
    char buf[65536];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  } else {
    std::fprintf(stderr, "squadron: cannot read %s: %s\n", m.file.c_str(), std::strerror(errno));
    return 2;
  }
  const auto client = connect_or_report(m);
  if (!client) return 1;
  const json::object body{{"manifest", text}, {"file", m.file.string()}, {"dry_run", dry_run}};
  const auto r = client->post("/api/v1/apply", json::serialize(body), 30s);
  boost::system::error_code ec;
  const auto doc = json::parse(r.body, ec);
  if (r.status == 422 && !ec && doc.is_object() && doc.as_object().contains("errors")) {
    for (const auto& e : doc.at("errors").as_array())
      std::fprintf(stderr, "%s\n", str(e.as_object(), "text").c_str());
    std::fprintf(stderr, "squadron: apply: %s\n", r.explain().c_str());
    return 2;
  }
  if (!r.ok() || ec || !doc.is_object()) {
    std::fprintf(stderr, "squadron: apply: %s\n",
                 r.ok() ? "unreadable answer" : r.explain().c_str());
    return 1;
  }
  const auto& o = doc.as_object();
  for (const auto& w : o.at("warnings").as_array())
    std::fprintf(stderr, "squadron: warning: %s\n", std::string(w.as_string()).c_str());
  std::printf("%-20s %-10s %-9s %s\n", "SERVICE", "ACTION", "REVISION", "WHAT CHANGED");
  std::vector<std::string> waits;
  std::vector<std::pair<std::string, int>> deploys;
  for (const auto& v : o.at("services").as_array()) {
    const auto& s = v.as_object();
    const auto service = str(s, "service");
    const auto action = str(s, "action");
    const int revision = static_cast<int>(num(s, "revision"));
    std::printf("%-20s %-10s %-9d %s\n", service.c_str(), action.c_str(), revision,
                str(s, "detail").c_str());
    if (action == "deploy") deploys.emplace_back(service, revision);
    if (action == "deploy" || action == "add" || action == "update") waits.push_back(service);
  }
  if (dry_run) {
    std::printf("(dry run: nothing was changed)\n");
    return 0;
  }
  if (!o.at("changes").as_bool()) {
    std::printf("the fleet already runs this manifest\n");
    return 0;
  }
  if (!wait || waits.empty()) return 0;
  int rc = wait_ready(*client, waits, timeout);
  for (const auto& [service, revision] : deploys) {
    const auto state = service_state(*client, service);
    if (!state) return 1;
    const auto now = state->at("revision").to_number<int>();
    if (now != revision) {
      std::fprintf(stderr,
                   "squadron: %s: revision %d failed and was rolled back: revision %d runs "
                   "(`squadron events %s` says why)\n",
                   service.c_str(), revision, now, service.c_str());
      rc = 1;
    }
  }
  if (rc == 0) std::printf("applied: every changed service runs its new definition\n");
  return rc;
}

int rollback(const control::Manifest& m, const std::string& service, bool wait,
             std::chrono::milliseconds timeout) {
  const auto client = connect_or_report(m);
  if (!client) return 1;
  const auto r = client->post(fmt::format("/api/v1/services/{}/rollback", service));
  if (!r.ok()) {
    std::fprintf(stderr, "squadron: rollback %s: %s\n", service.c_str(), r.explain().c_str());
    return 1;
  }
  boost::system::error_code ec;
  const auto doc = boost::json::parse(r.body, ec);
  const int revision = ec ? 0 : doc.at("revision").to_number<int>();
  return wait_rollout(*client, service, revision, wait, timeout);
}

int history(const control::Manifest& m, const std::string& service) {
  const auto client = connect_or_report(m);
  if (!client) return 1;
  const auto r = client->get(fmt::format("/api/v1/services/{}/history", service), 10s);
  boost::system::error_code ec;
  const auto doc = r.ok() ? boost::json::parse(r.body, ec) : boost::json::value();
  if (!r.ok() || ec || !doc.is_array()) {
    std::fprintf(stderr, "squadron: history %s: %s\n", service.c_str(),
                 r.ok() ? "unreadable answer" : r.explain().c_str());
    return 1;
  }
  std::printf("%-9s %-9s %-20s %-8s %s\n", "REVISION", "HASH", "DEPLOYED", "STATE", "CAUSE");
  for (const auto& v : doc.as_array()) {
    const auto& o = v.as_object();
    const auto at = std::chrono::system_clock::time_point(
        std::chrono::milliseconds(o.at("at_ms").to_number<std::int64_t>()));
    const char* state = o.at("current").as_bool()  ? "current"
                        : o.at("failed").as_bool() ? "failed"
                                                   : "";
    std::printf(
        "%-9d %-9s %-20s %-8s %s\n", o.at("revision").to_number<int>(),
        std::string(o.at("hash").as_string()).c_str(),
        fmt::format("{:%F %T}", fmt::localtime(std::chrono::system_clock::to_time_t(at))).c_str(),
        state, std::string(o.at("cause").as_string()).c_str());
  }
  return 0;
}

int logs(const control::Manifest& m, const std::string& service, bool follow, int tail) {
  const auto client = connect_or_report(m);
  if (!client) return 1;
  std::string target = fmt::format("/api/v1/logs?tail={}", tail);
  if (!service.empty()) target += "&service=" + service;
  if (!follow) {
    const auto r = client->get(target, 10s);
    if (!r.ok()) {
      std::fprintf(stderr, "squadron: %s\n", r.explain().c_str());
      return 1;
    }
    std::fwrite(r.body.data(), 1, r.body.size(), stdout);
    return 0;
  }
  const auto r = client->stream(target + "&follow=1", [](std::string_view chunk) {
    std::fwrite(chunk.data(), 1, chunk.size(), stdout);
    std::fflush(stdout);
  });
  if (!r.ok()) {
    std::fprintf(stderr, "squadron: %s\n", r.explain().c_str());
    return 1;
  }
  return 0;
}

int events(const control::Manifest& m, const std::string& service, bool follow) {
  // A service of the manifest, Squadron's gateway, or an instance of one ("web-6"), as `logs`.
  if (!service.empty() && m.find(service) == nullptr && service != "gateway") {
    const auto dash = service.rfind('-');
    const std::string owner = dash == std::string::npos ? "" : service.substr(0, dash);
    const bool numbered = dash != std::string::npos && dash + 1 < service.size() &&
                          service.find_first_not_of("0123456789", dash + 1) == std::string::npos;
    if (!numbered || (m.find(owner) == nullptr && owner != "gateway")) {
      std::fprintf(stderr,
                   "squadron: no service or instance \"%s\" in %s (`squadron ps` lists them)\n",
                   service.c_str(), m.file.c_str());
      return 2;
    }
  }
  const auto client = connect_or_report(m);
  if (!client) return 1;
  std::uint64_t since = 0;
  while (true) {
    const auto r = client->get(
        fmt::format("/api/v1/events?since={}{}", since, follow && since > 0 ? "&wait=25s" : ""),
        40s);
    if (!r.ok()) {
      // A followed fleet that stopped ends the stream quietly.
      if (follow && since > 0 && r.status == 0) return 0;
      std::fprintf(stderr, "squadron: %s\n", r.explain().c_str());
      return 1;
    }
    boost::system::error_code ec;
    const auto doc = boost::json::parse(r.body, ec);
    if (ec || !doc.is_object()) {
      std::fprintf(stderr, "squadron: unreadable answer from the control API\n");
      return 1;
    }
    for (const auto& v : doc.at("events").as_array()) {
      const auto& e = v.as_object();
      const std::string svc(e.at("service").as_string());
      const std::string inst(e.at("instance").as_string());
      if (!service.empty() && svc != service && inst != service) continue;
      const auto at = std::chrono::system_clock::time_point(
          std::chrono::milliseconds(e.at("at_ms").to_number<std::int64_t>()));
      const auto ms = e.at("at_ms").to_number<std::int64_t>() % 1000;
      std::printf(
          "%s.%03lld  %-12s %s\n",
          fmt::format("{:%H:%M:%S}", fmt::localtime(std::chrono::system_clock::to_time_t(at)))
              .c_str(),
          static_cast<long long>(ms), (inst.empty() ? svc : inst).c_str(),
          std::string(e.at("message").as_string()).c_str());
    }
    std::fflush(stdout);
    since = doc.at("revision").to_number<std::uint64_t>();
    if (!follow) return 0;
  }
}

int down(const control::Manifest& m, std::chrono::milliseconds timeout) {
  std::string why;
  const auto client = ControlClient::for_manifest(m, why);
  if (!client) {
    std::fprintf(stderr, "squadron: nothing to stop: %s\n", why.c_str());
    return 0;
  }
  const auto r = client->post("/api/v1/down");
  if (!r.ok()) {
    std::fprintf(stderr, "squadron: down: %s\n", r.explain().c_str());
    return 1;
  }
  // The fleet's process holds .squadron/lock until everything it ran is gone (a zombie
  // waiting for its reaper still answers kill(pid, 0); the lock says what matters).
  const control::StateDir dir(m.dir());
  auto gone = [&] {
    std::error_code ec;
    const int fd = control::try_lock(dir.lock(), ec);
    if (fd >= 0) ::close(fd);
    return fd >= 0;
  };
  const auto start = steady::now();
  while (!gone()) {
    if (steady::now() - start > timeout) {
      std::fprintf(stderr, "squadron: the fleet (pid %d) is still stopping after %lld s\n",
                   client->pid(),
                   static_cast<long long>(
                       std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
      return 1;
    }
    std::this_thread::sleep_for(20ms);
  }
  std::fprintf(stderr, "squadron: fleet \"%s\" stopped (%.1f s)\n", m.name.c_str(),
               std::chrono::duration<double>(steady::now() - start).count());
  return 0;
}

int export_kubernetes(const control::Manifest& m, const control::ExportOptions& options,
                      const std::string& output) {
  const auto r = control::export_kubernetes(m, options);
  for (const auto& e : r.errors) std::fprintf(stderr, "squadron: %s\n", e.c_str());
  if (!r.errors.empty()) {
    std::fprintf(stderr, "squadron: nothing exported (%zu problem%s)\n", r.errors.size(),
                 r.errors.size() == 1 ? "" : "s");
    return 2;
  }
  for (const auto& w : r.warnings) std::fprintf(stderr, "squadron: warning: %s\n", w.c_str());
  if (output == "-") {
    std::fwrite(r.yaml.data(), 1, r.yaml.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
  }
  // Whole or not at all, and private when a Secret's value is in it.
  const bool secret = options.secret_values && r.yaml.find("\nkind: Secret\n") != std::string::npos;
  const std::string tmp = output + ".tmp";
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, secret ? 0600 : 0644);
  bool ok = fd >= 0;
  if (ok) {
    if (secret) ::fchmod(fd, 0600);
    ok = ::write(fd, r.yaml.data(), r.yaml.size()) == static_cast<ssize_t>(r.yaml.size()) &&
         ::fsync(fd) == 0;
    ok = ::close(fd) == 0 && ok;
  }
  if (!ok || ::rename(tmp.c_str(), output.c_str()) != 0) {
    std::fprintf(stderr, "squadron: cannot write %s: %s\n", output.c_str(), std::strerror(errno));
    ::unlink(tmp.c_str());
    return 1;
  }
  std::size_t objects = 0;
  for (std::size_t at = 0; (at = r.yaml.find("---\n", at)) != std::string::npos; at += 4) ++objects;
  std::fprintf(stderr, "squadron: wrote %s (%zu object%s)\n", output.c_str(), objects,
               objects == 1 ? "" : "s");
  return 0;
}

}  // namespace squadron::apps
