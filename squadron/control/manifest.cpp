#include "squadron/control/manifest.hpp"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <grp.h>
#include <pwd.h>
#include <set>
#include <sstream>
#include <unistd.h>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "squadron/cluster/etcd_codec.hpp"
#include "squadron/control/env_file.hpp"
#include "squadron/control/gateway_file.hpp"
#include "squadron/core/address.hpp"
#include "squadron/core/duration.hpp"
#include "squadron/core/interpolate.hpp"
#include "squadron/core/quantity.hpp"

namespace squadron::control {
namespace {

namespace fs = std::filesystem;

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string did_you_mean(std::string_view key, const std::vector<std::string_view>& known,
                         std::string_view what = "known keys") {
  std::string_view best;
  std::size_t best_d = 3;  // at most two edits away
  for (auto k : known) {
    const std::size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  std::string known_list;
  for (auto k : known) known_list += (known_list.empty() ? "" : ", ") + std::string(k);
  if (!best.empty()) return fmt::format("did you mean \"{}\"? {}: {}", best, what, known_list);
  return fmt::format("{}: {}", what, known_list);
}

std::string join_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

// docker compose's service keys, and what to write in a squadron.yaml instead.
const std::map<std::string_view, std::string_view> kComposeKeys = {
    {"environment", "write env: { NAME: value }"},
    {"build", "build the program first (make, cargo build, ...), then command: runs it"},
    {"ports",
     "each instance gets its own PORT; reach it by name (SQUADRON_<NAME>_URL, or _HOST and _PORT "
     "with protocol: tcp for a database) or give it routes: [/path] through the gateway; port: "
     "5000 fixes one"},
    {"expose", "each instance gets its own PORT, reached by name through SQUADRON_<NAME>_URL"},
    {"volumes", "an instance runs on this machine's files: cwd: sets its folder"},
    {"working_dir", "write cwd: path (relative to the manifest)"},
    {"entrypoint", "write the whole argv in command: [program, args...]"},
    {"healthcheck",
     "write ready: { command: [...] } (or { path: /readyz }), and live: to restart on failure"},
    {"container_name", "instances are named <service>-<n>; nothing to set"},
    {"networks", "services reach each other by SQUADRON_<NAME>_URL / _HOST / _PORT"},
    {"links", "services reach each other by SQUADRON_<NAME>_URL / _HOST / _PORT"},
    {"mem_limit", "write resources: { memory: 256Mi }"},
    {"cpus", "write resources: { cpu: 0.5 }"},
    {"pids_limit", "write resources: { pids: 256 }"},
    {"stop_grace_period", "write stop_grace: 10s"},
    {"scale", "write replicas: N"},
};

// Walks the YAML tree, converting and validating; every problem becomes a ManifestError.
class Checker {
 public:
  explicit Checker(std::string file) : file_(std::move(file)) {}

  void error(const YAML::Node& at, const std::string& path, std::string message,
             std::string hint = {}) {
    const auto mark = at.Mark();
    errors_.push_back({file_, mark.is_null() ? 0 : mark.line + 1,
                       mark.is_null() ? 0 : mark.column + 1, path, std::move(message),
                       std::move(hint)});
  }
  // An error `offset` characters into the scalar `at` (one line, plain or quoted).
  void error_at(const YAML::Node& at, const std::string& path, std::size_t offset,
                std::string message, std::string hint = {}) {
    const auto mark = at.Mark();
    const bool one_line = at.Scalar().find('\n') == std::string::npos;
    const int shift = one_line ? static_cast<int>(offset) + (at.Tag() == "!" ? 1 : 0) : 0;
    errors_.push_back({file_, mark.is_null() ? 0 : mark.line + 1,
                       mark.is_null() ? 0 : mark.column + 1 + shift, path, std::move(message),
                       std::move(hint)});
  }
  void error_in(std::string file, int line, std::string message, std::string hint = {}) {
    errors_.push_back({std::move(file), line, 1, "", std::move(message), std::move(hint)});
  }
  std::vector<ManifestError> take_errors() {
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const ManifestError& a, const ManifestError& b) {
                       return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                     });
    return std::move(errors_);
  }
  bool failed() const { return !errors_.empty(); }

  static std::string describe(const YAML::Node& n) {
    if (n.IsNull()) return "nothing";
    if (n.IsMap()) return "a mapping";
    if (n.IsSequence()) return "a list";
    return fmt::format("\"{}\"", n.Scalar());
  }

  bool expect_map(const YAML::Node& n, const std::string& path, std::string_view example) {
    if (n.IsMap()) return true;
    error(n, path, fmt::format("expected a mapping, got {}", describe(n)),
          fmt::format("write it as {}", example));
    return false;
  }

  // Reports keys of `map` not in `known`, and duplicate keys. A key of docker compose's gets the
  // Squadron way as its hint (`compose`: key -> hint).
  void check_keys(const YAML::Node& map, const std::string& path,
                  const std::vector<std::string_view>& known,
                  const std::map<std::string_view, std::string_view>* compose = nullptr) {
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
      if (!seen.insert(key).second) {
        error(it->first, join_path(path, key), "this key appears twice", "keep one of them");
      }
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        const auto* hint =
            compose != nullptr && compose->count(key) != 0 ? &compose->at(key) : nullptr;
        if (hint != nullptr) {
          error(it->first, join_path(path, key),
                fmt::format("\"{}\" is docker compose's key, not Squadron's", key),
                std::string(*hint));
        } else {
          error(it->first, join_path(path, key), fmt::format("unknown key \"{}\"", key),
                did_you_mean(key, known));
        }
      }
    }
  }

  std::optional<std::string> string(const YAML::Node& n, const std::string& path) {
    if (n.IsScalar() && !n.Scalar().empty()) return n.Scalar();
    error(n, path, fmt::format("expected a text value, got {}", describe(n)));
    return std::nullopt;
  }

  std::optional<long long> integer(const YAML::Node& n, const std::string& path, long long min,
                                   long long max) {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      long long v = 0;
      std::size_t used = 0;
      bool parsed = false;
      try {
        v = std::stoll(s, &used);
        parsed = used == s.size();
      } catch (const std::exception&) {
      }
      if (parsed && v >= min && v <= max) return v;
    }
    error(n, path,
          fmt::format("expected a whole number from {} to {}, got {}", min, max, describe(n)));
    return std::nullopt;
  }

  std::optional<bool> boolean(const YAML::Node& n, const std::string& path) {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (s == "true" || s == "yes" || s == "on") return true;
      if (s == "false" || s == "no" || s == "off") return false;
    }
    error(n, path, fmt::format("expected true or false, got {}", describe(n)));
    return std::nullopt;
  }

  std::optional<std::chrono::milliseconds> duration(const YAML::Node& n, const std::string& path) {
    if (n.IsScalar()) {
      if (auto d = core::parse_duration(n.Scalar())) return d;
    }
    error(n, path, fmt::format("expected a duration, got {}", describe(n)),
          "write it like 500ms, 10s or 2m (a bare number is seconds)");
    return std::nullopt;
  }

 private:
  std::string file_;
  std::vector<ManifestError> errors_;
};

using supervisor::instance_variable;

// Whether `key` under `path` is resolved per instance at launch: a service's command, env values
// and probe commands.
bool launch_time(const std::string& path, std::string_view key) {
  const auto dot = path.find('.');
  if (path.substr(0, dot) != "services" || dot == std::string::npos) return false;
  const auto second = path.find('.', dot + 1);
  if (second == std::string::npos) return key == "command" || key == "env";
  const std::string_view rest = std::string_view(path).substr(second + 1);
  return (rest == "ready" || rest == "live") && key == "command";
}

// ${VAR} in every value of the manifest, from the environment and .env (compose's rules); in
// launch-time fields the instance's own names are left for the supervisor (and $$ with them).
void interpolate_tree(Checker& c, YAML::Node n, const std::string& path, bool launch,
                      const core::VariableLookup& lookup) {
  if (n.IsScalar()) {
    core::InterpolateOptions options;
    if (launch) {
      options.keep = instance_variable;
      options.for_later_pass = true;
    }
    std::string instance_name;
    auto look = [&](std::string_view name) -> std::optional<std::string> {
      if (!launch && instance_variable(name)) {
        instance_name = name;
        return std::nullopt;
      }
      return lookup(name);
    };
    auto r = core::interpolate(n.Scalar(), look, options);
    if (auto* e = std::get_if<core::VariableError>(&r)) {
      if (!instance_name.empty()) {
        e->message = instance_name + " is given to each instance when it starts";
        e->hint = "only a service's command, env and probe commands may use it";
      }
      c.error_at(n, path, e->offset, e->message, e->hint);
    } else if (std::get<std::string>(r) != n.Scalar()) {
      n = std::get<std::string>(r);
    }
    return;
  }
  if (n.IsSequence()) {
    for (std::size_t i = 0; i < n.size(); ++i)
      interpolate_tree(c, n[i], fmt::format("{}[{}]", path, i), launch, lookup);
    return;
  }
  if (!n.IsMap()) return;
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
    interpolate_tree(c, it->second, join_path(path, key), launch || launch_time(path, key), lookup);
  }
}

// "host:port" with an IP address (or localhost) and a port 1-65535.
bool valid_listen(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  const std::string port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit))
    return false;
  const int p = std::stoi(port);
  if (p > 65535) return false;  // 0: a free port, chosen at start (tests, several fleets)
  const std::string host = s.substr(0, colon);
  if (host == "localhost") return true;
  return std::all_of(
             host.begin(), host.end(),
             [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; }) ||
         (host.front() == '[' && host.back() == ']');
}

int listen_port(const std::string& s) { return std::stoi(s.substr(s.rfind(':') + 1)); }

bool valid_service_name(const std::string& s) {
  if (s.empty() || s.size() > 50 || !std::islower(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

bool valid_env_name(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

}  // namespace

// Splits a command string into argv like a shell would split words, without running one:
// whitespace separates, single and double quotes group, backslash escapes. nullopt on an
// unterminated quote.
std::optional<std::vector<std::string>> split_command(const std::string& s) {
  std::vector<std::string> argv;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < s.size()) {
        cur.push_back(s[++i]);
      } else {
        cur.push_back(c);
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur.push_back(s[++i]);
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) argv.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur.push_back(c);
      in_word = true;
    }
  }
  if (quote != 0) return std::nullopt;
  if (in_word) argv.push_back(std::move(cur));
  return argv;
}

int DeployPolicy::surge(int desired) const {
  int n = surge_percent ? (max_surge * desired + 99) / 100 : max_surge;
  if (n == 0 && unavailable(desired) == 0) n = 1;
  return n;
}

int DeployPolicy::unavailable(int desired) const {
  return unavailable_percent ? max_unavailable * desired / 100 : max_unavailable;
}

namespace {

void parse_autoscale(Checker& c, const YAML::Node& n, const std::string& path, AutoscaleSpec& out) {
  if (!c.expect_map(n, path, "{ min: 1, max: 10, metric: concurrency, target: 8 }")) return;
  c.check_keys(n, path, {"min", "max", "metric", "target", "panic_window", "scale_down_delay"});
  if (n["min"]) {
    if (auto v = c.integer(n["min"], path + ".min", 0, 1000)) out.min = static_cast<int>(*v);
  }
  if (n["max"]) {
    if (auto v = c.integer(n["max"], path + ".max", 1, 1000)) out.max = static_cast<int>(*v);
  }
  if (out.min > out.max) {
    c.error(n["min"] ? n["min"] : n, path + ".min",
            fmt::format("min ({}) is above max ({})", out.min, out.max),
            "min is the fewest replicas, max the most");
  }
  if (n["metric"]) {
    if (auto m = c.string(n["metric"], path + ".metric")) {
      if (*m == "concurrency") {
        out.metric = ScaleMetric::kConcurrency;
      } else if (*m == "rps") {
        out.metric = ScaleMetric::kRps;
      } else if (*m == "cpu") {
        out.metric = ScaleMetric::kCpu;
      } else {
        c.error(n["metric"], path + ".metric", fmt::format("unknown metric \"{}\"", *m),
                did_you_mean(*m, {"concurrency", "rps", "cpu"}, "metrics"));
      }
    }
  }
  if (!n["target"]) {
    c.error(n, path, "autoscale needs a target per instance",
            "for example target: 8 (requests in flight), 100 (rps) or 70 (cpu %)");
  } else {
    const YAML::Node t = n["target"];
    double v = 0;
    bool ok = false;
    if (t.IsScalar()) {
      try {
        std::size_t used = 0;
        v = std::stod(t.Scalar(), &used);
        ok = used == t.Scalar().size() && v > 0 && v <= 1e9;
      } catch (const std::exception&) {
      }
    }
    if (ok) {
      out.target = v;
    } else {
      c.error(t, path + ".target",
              fmt::format("expected a positive number, got {}", Checker::describe(t)),
              "the metric's value one instance should carry: target: 8");
    }
  }
  if (n["panic_window"]) {
    if (auto d = c.duration(n["panic_window"], path + ".panic_window")) out.panic_window = *d;
  }
  if (n["scale_down_delay"]) {
    if (auto d = c.duration(n["scale_down_delay"], path + ".scale_down_delay"))
      out.scale_down_delay = *d;
  }
}

// A count (2) or a percentage of the desired count ("25%"), from 0 to 1000 / 100 %.
void parse_rollout_limit(Checker& c, const YAML::Node& n, const std::string& path, int& value,
                         bool& percent) {
  if (n.IsScalar() && !n.Scalar().empty() && n.Scalar().back() == '%') {
    const std::string digits = n.Scalar().substr(0, n.Scalar().size() - 1);
    if (!digits.empty() && digits.size() <= 3 &&
        std::all_of(digits.begin(), digits.end(), ::isdigit) && std::stoi(digits) <= 100) {
      value = std::stoi(digits);
      percent = true;
      return;
    }
    c.error(n, path,
            fmt::format("expected a percentage from 0% to 100%, got {}", Checker::describe(n)));
    return;
  }
  if (auto v = c.integer(n, path, 0, 1000)) {
    value = static_cast<int>(*v);
    percent = false;
  }
}

void parse_deploy(Checker& c, const YAML::Node& n, const std::string& path, DeployPolicy& out) {
  if (!c.expect_map(n, path, "{ max_surge: 1, max_unavailable: 0, ready_timeout: 30s }")) return;
  static const std::map<std::string_view, std::string_view> kComposeDeploy = {
      {"resources",
       "write resources: { memory: 256Mi, cpu: 0.5 } on the service (Squadron's "
       "deploy: is how a new revision rolls out)"},
      {"replicas", "write replicas: N on the service"},
      {"restart_policy", "write restart: on the service"},
      {"update_config", "write max_surge, max_unavailable and ready_timeout here"}};
  c.check_keys(n, path, {"max_surge", "max_unavailable", "ready_timeout"}, &kComposeDeploy);
  if (n["max_surge"])
    parse_rollout_limit(c, n["max_surge"], path + ".max_surge", out.max_surge, out.surge_percent);
  if (n["max_unavailable"])
    parse_rollout_limit(c, n["max_unavailable"], path + ".max_unavailable", out.max_unavailable,
                        out.unavailable_percent);
  if (out.max_surge == 0 && out.max_unavailable == 0) {
    c.error(n["max_surge"] ? n["max_surge"] : n, path + ".max_surge",
            "max_surge and max_unavailable are both 0: a rollout could never replace anything",
            "allow one extra instance (max_surge: 1) or one fewer ready (max_unavailable: 1)");
  }
  if (n["ready_timeout"]) {
    if (auto d = c.duration(n["ready_timeout"], path + ".ready_timeout")) {
      if (d->count() <= 0) {
        c.error(n["ready_timeout"], path + ".ready_timeout", "the timeout must be above 0",
                "for example ready_timeout: 30s");
      } else {
        out.ready_timeout = *d;
      }
    }
  }
}

void parse_proxy(Checker& c, const YAML::Node& n, const std::string& path, ProxyPolicy& out) {
  if (!c.expect_map(n, path, "{ timeout: 15s, retries: 2, max_in_flight: 1024 }")) return;
  c.check_keys(n, path,
               {"timeout", "connect_timeout", "retries", "max_in_flight", "max_connections",
                "eject_after", "eject_time", "balance", "slow_start", "affinity", "protocol"});
  if (const YAML::Node p = n["protocol"]) {
    if (auto v = c.string(p, path + ".protocol")) {
      if (*v == "h2c") {
        out.protocol = "h2c";
      } else if (*v != "http1" && *v != "http/1.1") {
        c.error(p, path + ".protocol", fmt::format("unknown upstream protocol \"{}\"", *v),
                "use h2c (HTTP/2 without TLS, for gRPC services) or http1 (the default)");
      }
    }
  }
  if (const YAML::Node a = n["affinity"]) {
    static constexpr std::string_view kHint =
        "one of { cookie: NAME } (the gateway sets and follows it), { header: NAME } or "
        "{ source_ip: true }";
    const std::string at = path + ".affinity";
    if (c.expect_map(a, at, kHint)) {
      c.check_keys(a, at, {"cookie", "header", "source_ip"});
      if (a.size() != 1) {
        c.error(a, at, "session affinity takes one key", std::string(kHint));
      } else if (a["source_ip"]) {
        if (auto v = c.boolean(a["source_ip"], at + ".source_ip"); v && *v)
          out.affinity = "source_ip";
      } else {
        const char* kind = a["cookie"] ? "cookie" : "header";
        if (a[kind]) {
          if (auto name = c.string(a[kind], at + "." + kind)) {
            const bool token = !name->empty() && name->size() <= 64 &&
                               std::all_of(name->begin(), name->end(), [](char ch) {
                                 return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' ||
                                        ch == '_' || ch == '.';
                               });
            if (!token) {
              c.error(a[kind], at + "." + kind, fmt::format("\"{}\" cannot name a {}", *name, kind),
                      "letters, digits, '-', '_' and '.', at most 64 (such as sticky or io)");
            } else {
              out.affinity = kind;
              out.affinity_name = *name;
            }
          }
        }
      }
    }
  }
  // The watch contract's bounds: what the manifest accepts, the gateway applies.
  auto bounded = [&](const char* key, std::chrono::milliseconds min,
                     std::chrono::milliseconds& field) {
    if (!n[key]) return;
    const auto d = c.duration(n[key], path + "." + key);
    if (!d) return;
    if (*d < min || *d > registry::bounds::kMaxDuration) {
      c.error(n[key], path + "." + key,
              fmt::format("{} must be {} to 24h", key, min.count() == 0 ? "0" : "1ms"),
              "write it like 500ms, 10s or 2m");
      return;
    }
    field = *d;
  };
  bounded("timeout", std::chrono::milliseconds(1), out.timeout);
  bounded("connect_timeout", std::chrono::milliseconds(1), out.connect_timeout);
  bounded("slow_start", std::chrono::milliseconds(0), out.slow_start);
  bounded("eject_time", std::chrono::milliseconds(1), out.eject_time);
  if (n["retries"]) {
    if (auto v = c.integer(n["retries"], path + ".retries", 0, registry::bounds::kMaxRetries))
      out.retries = static_cast<int>(*v);
  }
  if (n["max_in_flight"]) {
    if (auto v = c.integer(n["max_in_flight"], path + ".max_in_flight", 1,
                           registry::bounds::kMaxInFlight))
      out.max_in_flight = static_cast<int>(*v);
  }
  if (n["max_connections"]) {
    if (auto v = c.integer(n["max_connections"], path + ".max_connections", 1,
                           registry::bounds::kMaxInFlight))
      out.max_connections = static_cast<int>(*v);
  }
  if (n["eject_after"]) {
    if (auto v =
            c.integer(n["eject_after"], path + ".eject_after", 1, registry::bounds::kMaxEjectAfter))
      out.eject_after = static_cast<int>(*v);
  }
  if (n["balance"]) {
    if (auto b = c.string(n["balance"], path + ".balance")) {
      if (!registry::known_balance(*b)) {
        c.error(n["balance"], path + ".balance", fmt::format("unknown balancing \"{}\"", *b),
                "use least-request (the default), round-robin or random");
      } else {
        out.balance = *b;
      }
    }
  }
}

// resources: { memory: 256Mi, cpu: 0.5, pids: 256 }, in Kubernetes' units.
void parse_resources(Checker& c, const YAML::Node& n, const std::string& path,
                     supervisor::Resources& out) {
  if (!c.expect_map(n, path, "{ memory: 256Mi, cpu: 0.5, pids: 256 }")) return;
  c.check_keys(n, path, {"memory", "cpu", "pids"});
  constexpr std::uint64_t kMinMemory = 4ULL << 20;  // below this not even a shell starts
  if (const YAML::Node m = n["memory"]) {
    const auto bytes = m.IsScalar() ? core::parse_bytes(m.Scalar()) : std::nullopt;
    if (!bytes) {
      c.error(m, path + ".memory",
              fmt::format("expected an amount of memory, got {}", Checker::describe(m)),
              "write it like 256Mi, 1Gi or 512M (Ki, Mi, Gi: powers of 1024; k, M, G: of 1000)");
    } else if (*bytes < kMinMemory) {
      c.error(m, path + ".memory",
              fmt::format("{} is below the least an instance can run in (4Mi)",
                          core::format_bytes(*bytes)),
              "a bare number is bytes: write 64Mi, not 64");
    } else {
      out.memory_bytes = bytes;
    }
  }
  if (const YAML::Node cpu = n["cpu"]) {
    const auto milli = cpu.IsScalar() ? core::parse_millicores(cpu.Scalar()) : std::nullopt;
    if (!milli || *milli > 1'000'000) {
      c.error(cpu, path + ".cpu",
              fmt::format("expected a share of CPU in cores, got {}", Checker::describe(cpu)),
              "write it like 0.5 (half a core), 500m (the same) or 2 (two cores)");
    } else {
      out.millicores = milli;
    }
  }
  if (n["pids"]) {
    if (auto v = c.integer(n["pids"], path + ".pids", 1, 4'194'304))
      out.pids = static_cast<std::uint64_t>(*v);
  }
}

// A command as a list ([pg_isready, -q]) or a string split like a shell's words.
std::optional<std::vector<std::string>> parse_argv(Checker& c, const YAML::Node& n,
                                                   const std::string& path) {
  if (n.IsSequence()) {
    std::vector<std::string> argv;
    if (n.size() == 0) c.error(n, path, "the command list is empty", "name the program to run");
    for (std::size_t i = 0; i < n.size(); ++i) {
      if (auto arg = c.string(n[i], fmt::format("{}[{}]", path, i))) argv.push_back(*arg);
    }
    if (argv.size() != n.size() || argv.empty()) return std::nullopt;
    return argv;
  }
  if (n.IsScalar()) {
    auto argv = split_command(n.Scalar());
    if (!argv) {
      c.error(n, path, "unterminated quote in the command", "close the quote");
    } else if (argv->empty()) {
      c.error(n, path, "the command is empty", "name the program to run");
    } else {
      return argv;
    }
    return std::nullopt;
  }
  c.error(n, path, fmt::format("expected a list or a string, got {}", Checker::describe(n)),
          "write [program, args...] or \"program args\"");
  return std::nullopt;
}

void parse_probe(Checker& c, const YAML::Node& n, const std::string& path, Probe& out,
                 bool readiness) {
  if (n.IsScalar() && n.Scalar() == "none") {
    if (!readiness) {
      c.error(n, path, "a liveness probe cannot be none", "remove live: to have no liveness probe");
      return;
    }
    out.none = true;  // ready once started: a worker that serves no port
    return;
  }
  if (!n.IsMap()) {
    c.error(n, path, fmt::format("expected a mapping or none, got {}", Checker::describe(n)),
            readiness ? "write { path: /readyz }, { tcp: true }, { command: [pg_isready, -q] }, "
                        "{ grpc: true } or none (ready once started, for a service that serves no "
                        "port)"
                      : "write { path: /healthz }, { tcp: true }, { command: [...] } or "
                        "{ grpc: true }");
    return;
  }
  c.check_keys(n, path, {"path", "tcp", "command", "grpc", "interval", "timeout", "threshold"});
  std::optional<bool> tcp;
  if (n["tcp"]) tcp = c.boolean(n["tcp"], path + ".tcp");
  if (const YAML::Node g = n["grpc"]) {
    // true: the server's health; a string: that service's (grpc.health.v1's `service`).
    const bool flag = g.IsScalar() && (g.Scalar() == "true" || g.Scalar() == "false");
    if (flag) {
      if (c.boolean(g, path + ".grpc").value_or(false)) out.grpc = "";
    } else if (auto name = c.string(g, path + ".grpc")) {
      out.grpc = *name;
    }
    if (n["path"] || n["command"] || (tcp && *tcp)) {
      c.error(g, path + ".grpc", "a probe is one of an HTTP path, a TCP connect, a command or gRPC",
              "keep grpc, and remove path, command and tcp");
    }
  }
  if (n["command"]) {
    if (auto argv = parse_argv(c, n["command"], path + ".command")) out.command = std::move(*argv);
    if (n["path"] || (tcp && *tcp)) {
      c.error(n["command"], path + ".command",
              "a probe is one of an HTTP path, a TCP connect or a command",
              "keep command, and remove path and tcp");
    }
  } else if (tcp && !*tcp && !n["path"]) {
    c.error(n["tcp"], path + ".tcp", "tcp: false needs another probe instead",
            readiness ? "add path: /readyz or command: [...], or write ready: none for a service "
                        "that serves no port"
                      : "add path: /healthz or command: [...]");
  }
  if (n["path"]) {
    if (auto p = c.string(n["path"], path + ".path")) {
      if (p->front() != '/') {
        c.error(n["path"], path + ".path",
                fmt::format("the probe path must start with '/', got \"{}\"", *p),
                fmt::format("write /{}", *p));
      } else {
        out.path = *p;
      }
    }
    if (tcp && *tcp) {
      c.error(n["tcp"], path + ".tcp", "a probe is either an HTTP path or a TCP connect, not both",
              "remove tcp: true, or remove path");
    }
  }
  if (n["interval"]) {
    if (auto d = c.duration(n["interval"], path + ".interval")) out.interval = *d;
  }
  if (n["timeout"]) {
    if (auto d = c.duration(n["timeout"], path + ".timeout")) out.timeout = *d;
  }
  if (n["threshold"]) {
    if (auto t = c.integer(n["threshold"], path + ".threshold", 1, 100))
      out.threshold = static_cast<int>(*t);
  }
}

void parse_routes(Checker& c, const YAML::Node& n, const std::string& path,
                  std::vector<Route>& out) {
  if (!n.IsSequence()) {
    c.error(n, path, fmt::format("expected a list of routes, got {}", Checker::describe(n)),
            "write it as [/hello] or [{ prefix: /py, strip_prefix: true }]");
    return;
  }
  for (std::size_t i = 0; i < n.size(); ++i) {
    const YAML::Node r = n[i];
    const std::string rpath = fmt::format("{}[{}]", path, i);
    Route route;
    YAML::Node prefix_node = r;
    if (r.IsMap()) {
      c.check_keys(r, rpath, {"prefix", "strip_prefix", "host", "rate_limit"});
      if (!r["prefix"]) {
        c.error(r, rpath, "a route needs a prefix", "add prefix: /path");
        continue;
      }
      prefix_node.reset(r["prefix"]);  // reset rebinds; operator= would overwrite r itself
      if (r["strip_prefix"])
        route.strip_prefix = c.boolean(r["strip_prefix"], rpath + ".strip_prefix").value_or(false);
      if (r["host"]) route.host = c.string(r["host"], rpath + ".host").value_or("");
      if (const auto limit = r["rate_limit"]) {
        const std::string lpath = rpath + ".rate_limit";
        if (c.expect_map(limit, lpath, "{ rate: 100, burst: 200 }")) {
          c.check_keys(limit, lpath, {"rate", "burst"});
          if (!limit["rate"]) {
            c.error(limit, lpath, "a rate limit needs a rate (requests a second)", "add rate: 100");
          } else if (auto v =
                         c.integer(limit["rate"], lpath + ".rate", 1, registry::bounds::kMaxRate)) {
            route.rate = static_cast<int>(*v);
          }
          route.burst = route.rate;
          if (limit["burst"]) {
            if (auto v = c.integer(limit["burst"], lpath + ".burst", 1, registry::bounds::kMaxRate))
              route.burst = static_cast<int>(*v);
          }
        }
      }
    }
    auto prefix = c.string(prefix_node, r.IsMap() ? rpath + ".prefix" : rpath);
    if (!prefix) continue;
    if (prefix->front() != '/') {
      c.error(prefix_node, r.IsMap() ? rpath + ".prefix" : rpath,
              fmt::format("a route prefix must start with '/', got \"{}\"", *prefix),
              fmt::format("write /{}", *prefix));
      continue;
    }
    route.prefix = *prefix;
    out.push_back(std::move(route));
  }
}

// SIGINT, INT or sigint -> 2; nullopt for anything else.
std::optional<int> signal_number(std::string name) {
  for (auto& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (name.rfind("SIG", 0) != 0) name = "SIG" + name;
  static constexpr std::pair<const char*, int> kSignals[] = {
      {"SIGTERM", SIGTERM}, {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},   {"SIGHUP", SIGHUP},
      {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH}, {"SIGKILL", SIGKILL}};
  for (const auto& [n, v] : kSignals) {
    if (name == n) return v;
  }
  return std::nullopt;
}

// user: NAME, UID, NAME:GROUP or UID:GID, resolved on this machine now (as compose's `user:`).
void parse_user(Checker& c, const YAML::Node& n, const std::string& path, ServiceSpec& s) {
  const auto text = c.string(n, path);
  if (!text) return;
  const auto colon = text->find(':');
  const std::string user = text->substr(0, colon);
  const std::string group_name = colon == std::string::npos ? "" : text->substr(colon + 1);
  auto numeric = [](const std::string& v) {
    return !v.empty() && v.size() < 10 && std::all_of(v.begin(), v.end(), ::isdigit);
  };
  supervisor::RunAs who;
  std::string name = user;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (numeric(user)) {
    who.uid = static_cast<uid_t>(std::stoul(user));
    if (::getpwuid_r(who.uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
      who.gid = pw.pw_gid;
      name = pw.pw_name;
    } else {
      who.gid = who.uid;  // a bare number as in a container: its group the same number
      found = nullptr;
    }
  } else if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 ||
             found == nullptr) {
    c.error(n, path, fmt::format("no user \"{}\" on this machine", user),
            "create it (useradd --system " + user + "), or give a number: user: 999");
    return;
  } else {
    who.uid = pw.pw_uid;
    who.gid = pw.pw_gid;
  }
  if (!group_name.empty()) {
    ::group gr{};
    ::group* gfound = nullptr;
    std::vector<char> gbuf(16384);
    if (numeric(group_name)) {
      who.gid = static_cast<gid_t>(std::stoul(group_name));
    } else if (::getgrnam_r(group_name.c_str(), &gr, gbuf.data(), gbuf.size(), &gfound) != 0 ||
               gfound == nullptr) {
      c.error(n, path, fmt::format("no group \"{}\" on this machine", group_name),
              "name a group of /etc/group, or give a number: user: postgres:999");
      return;
    } else {
      who.gid = gr.gr_gid;
    }
  }
  // The user's supplementary groups, as a login would have them (none for a bare uid).
  if (found != nullptr) {
    int count = 64;
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    if (::getgrouplist(name.c_str(), who.gid, groups.data(), &count) < 0) {
      groups.resize(static_cast<std::size_t>(count));
      ::getgrouplist(name.c_str(), who.gid, groups.data(), &count);
    }
    groups.resize(static_cast<std::size_t>(std::max(count, 0)));
    who.groups = std::move(groups);
  } else {
    who.groups = {who.gid};
  }
  s.user = *text;
  s.run_as = who;
}

// env_file: [.env, catalog.env] (or one file): compose's format, relative to the manifest; each
// file's variables join the service's environment (env: overrides them, a later file an
// earlier one). Read now: what `up` starts is what `validate` saw.
void parse_env_files(Checker& c, const YAML::Node& n, const std::string& path, const fs::path& dir,
                     ServiceSpec& s) {
  std::vector<std::pair<YAML::Node, std::string>> files;
  if (n.IsScalar()) {
    files.emplace_back(n, path);
  } else if (n.IsSequence()) {
    for (std::size_t i = 0; i < n.size(); ++i)
      files.emplace_back(n[i], fmt::format("{}[{}]", path, i));
  } else {
    c.error(n, path,
            fmt::format("expected a file or a list of files, got {}", Checker::describe(n)),
            "write env_file: [.env, catalog.env]");
    return;
  }
  for (const auto& [node, at] : files) {
    const auto name = c.string(node, at);
    if (!name) continue;
    fs::path p(*name);
    if (p.is_relative()) p = dir / p;
    std::ifstream in(p);
    if (!in) {
      c.error(node, at, fmt::format("cannot read {}", p.string()),
              "relative paths are relative to the manifest's folder");
      continue;
    }
    std::ostringstream text;
    text << in.rdbuf();
    const auto parsed = parse_env_file(text.str());
    for (const auto& e : parsed.errors)
      c.error(node, at, fmt::format("{}:{}: {}", p.string(), e.line, e.message),
              "compose's format: NAME=value a line");
    for (const auto& [k, v] : parsed.vars) {
      if (instance_variable(k)) {
        c.error(node, at,
                fmt::format("{} sets {}, which Squadron sets for each instance", p.string(), k),
                "remove it from the file");
        continue;
      }
      s.env[k] = core::escape_dollars(v);  // as written: no $ in it is a reference at launch
      s.env_file_vars[k] = v;
    }
  }
}

using Secrets = std::map<std::string, supervisor::SecretSpec>;

// secrets: { db_password: { file: ./secrets/db.txt }, api_key: { env: API_KEY } } at the top:
// where each secret comes from. Its value is read by the supervisor at each start, never here.
Secrets parse_secrets(Checker& c, const YAML::Node& n, const fs::path& dir) {
  Secrets out;
  if (!c.expect_map(n, "secrets", "{ db_password: { file: ./secrets/db.txt } }")) return out;
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
    const std::string path = "secrets." + name;
    if (!core::variable_name(name) && !valid_service_name(name)) {
      c.error(it->first, path, fmt::format("\"{}\" is not a valid secret name", name),
              "use letters, digits, '-' and '_' (it becomes a file's name)");
      continue;
    }
    const YAML::Node v = it->second;
    if (!c.expect_map(v, path, "{ file: ./secrets/db.txt } or { env: DB_PASSWORD }")) continue;
    c.check_keys(v, path, {"file", "env"});
    supervisor::SecretSpec s;
    s.name = name;
    s.target = name;
    if (v["file"] && v["env"]) {
      c.error(v, path, "a secret comes from a file or from a variable, not both",
              "keep file: or env:");
      continue;
    }
    if (v["file"]) {
      const auto file = c.string(v["file"], path + ".file");
      if (!file) continue;
      fs::path p(*file);
      if (p.is_relative()) p = dir / p;
      if (::access(p.c_str(), R_OK) != 0) {
        c.error(v["file"], path + ".file", fmt::format("cannot read {}", p.string()),
                "relative paths are relative to the manifest's folder");
        continue;
      }
      s.file = p.lexically_normal();
    } else if (v["env"]) {
      const auto var = c.string(v["env"], path + ".env");
      if (!var) continue;
      if (std::getenv(var->c_str()) == nullptr) {
        c.error(v["env"], path + ".env", fmt::format("{} is not set", *var),
                "set it in the environment `squadron up` runs in");
        continue;
      }
      s.from_env = *var;
    } else {
      c.error(v, path, "a secret needs a source", "add file: ./secrets/" + name + ".txt");
      continue;
    }
    out[name] = s;
  }
  return out;
}

// A service's secrets: [db_password] or [{ source: db_password, target: pw, env: DB_PASSWORD }].
void parse_service_secrets(Checker& c, const YAML::Node& n, const std::string& path,
                           const Secrets& defined, ServiceSpec& s) {
  if (!n.IsSequence()) {
    c.error(n, path, fmt::format("expected a list of secrets, got {}", Checker::describe(n)),
            "write secrets: [db_password] or [{ source: db_password, env: DB_PASSWORD }]");
    return;
  }
  std::vector<std::string_view> known;
  for (const auto& [name, _] : defined) known.push_back(name);
  for (std::size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string ipath = fmt::format("{}[{}]", path, i);
    YAML::Node source = item;
    std::string target, env;
    if (item.IsMap()) {
      c.check_keys(item, ipath, {"source", "target", "env"});
      if (!item["source"]) {
        c.error(item, ipath, "which secret? add source: NAME");
        continue;
      }
      source.reset(item["source"]);
      if (item["target"]) target = c.string(item["target"], ipath + ".target").value_or("");
      if (item["env"]) env = c.string(item["env"], ipath + ".env").value_or("");
      if (!target.empty() && (target.find('/') != std::string::npos || target[0] == '.')) {
        c.error(item["target"], ipath + ".target", "the target is a file's name, not a path",
                "write target: db_password");
        continue;
      }
      if (!env.empty() && (!core::variable_name(env) || instance_variable(env))) {
        c.error(item["env"], ipath + ".env",
                fmt::format("\"{}\" cannot be the secret's variable", env),
                "a name of letters, digits and _, not PORT, HOST or SQUADRON_*");
        continue;
      }
    }
    const auto name = c.string(source, item.IsMap() ? ipath + ".source" : ipath);
    if (!name) continue;
    const auto it = defined.find(*name);
    if (it == defined.end()) {
      c.error(source, item.IsMap() ? ipath + ".source" : ipath,
              fmt::format("no secret \"{}\" under secrets: at the top", *name),
              known.empty()
                  ? "define it: secrets: { " + *name + ": { file: ./secrets/" + *name + ".txt } }"
                  : did_you_mean(*name, known, "secrets"));
      continue;
    }
    auto spec = it->second;
    if (!target.empty()) spec.target = target;
    spec.env = env;
    s.secrets.push_back(std::move(spec));
  }
}

// A list of text values at `n` (path `path`); nullopt after an error.
std::optional<std::vector<std::string>> strings(Checker& c, const YAML::Node& n,
                                                const std::string& path, std::string_view example) {
  if (!n.IsSequence() || n.size() == 0) {
    c.error(n, path, fmt::format("expected a list, got {}", Checker::describe(n)),
            fmt::format("write it like {}", example));
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n.size(); ++i) {
    auto v = c.string(n[i], fmt::format("{}[{}]", path, i));
    if (!v) return std::nullopt;
    out.push_back(*v);
  }
  return out;
}

// A host's or fleet's name in a cluster: 1-63 of [a-z0-9-], not starting or ending with '-'.
bool host_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
  });
}

void parse_cluster(Checker& c, const YAML::Node& n, Manifest& m) {
  if (!c.expect_map(n, "cluster", "{ etcd: [10.0.0.1:2379, 10.0.0.2:2379, 10.0.0.3:2379] }"))
    return;
  c.check_keys(n, "cluster", {"etcd", "ttl"});
  ClusterSpec spec;
  if (!n["etcd"]) {
    c.error(n, "cluster.etcd", "a cluster needs its etcd members",
            "add etcd: [ADDRESS:PORT, ...] (one member, or three or five)");
  } else if (auto members = strings(c, n["etcd"], "cluster.etcd", "[10.0.0.1:2379]")) {
    for (std::size_t i = 0; i < members->size(); ++i) {
      std::string error;
      if (!cluster::parse_member((*members)[i], error)) {
        c.error(n["etcd"][i], fmt::format("cluster.etcd[{}]", i), error);
      }
    }
    spec.etcd = *members;
  }
  if (n["ttl"]) {
    if (auto d = c.duration(n["ttl"], "cluster.ttl")) {
      if (*d < std::chrono::seconds(2) || *d > std::chrono::minutes(10) || d->count() % 1000 != 0) {
        c.error(n["ttl"], "cluster.ttl", "expected whole seconds from 2s to 10m",
                "a host is declared lost this long after its agent stops answering: 5s is usual");
      } else {
        spec.ttl = std::chrono::duration_cast<std::chrono::seconds>(*d);
      }
    }
  }
  m.cluster = std::move(spec);
}

void parse_placement(Checker& c, const YAML::Node& n, const std::string& path, ServiceSpec& s) {
  if (!c.expect_map(n, path, "{ hosts: [h1, h2] } or { labels: { zone: a } }")) return;
  c.check_keys(n, path, {"hosts", "labels"});
  if (n["hosts"]) {
    if (auto hosts = strings(c, n["hosts"], path + ".hosts", "[h1, h2]")) {
      for (std::size_t i = 0; i < hosts->size(); ++i) {
        if (!host_name((*hosts)[i])) {
          c.error(n["hosts"][i], fmt::format("{}.hosts[{}]", path, i),
                  fmt::format("\"{}\" is not a host's name", (*hosts)[i]),
                  "hosts are named as their agents were (--name): a-z, 0-9 and '-'");
        }
      }
      s.placement_hosts = *hosts;
    }
  }
  if (const YAML::Node labels = n["labels"]) {
    if (c.expect_map(labels, path + ".labels", "{ zone: a }")) {
      for (auto it = labels.begin(); it != labels.end(); ++it) {
        const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
        if (auto v = c.string(it->second, path + ".labels." + key)) s.placement_labels[key] = *v;
      }
    }
  }
}

void parse_service(Checker& c, const std::string& name, const YAML::Node& key, const YAML::Node& n,
                   const fs::path& dir, const Secrets& secrets, ServiceSpec& s) {
  const std::string path = "services." + name;
  s.name = name;
  s.cwd = dir;
  if (!valid_service_name(name)) {
    c.error(key, path, fmt::format("\"{}\" is not a valid service name", name),
            "use lower-case letters, digits, '-' or '_', starting with a letter (it becomes "
            "SQUADRON_<NAME>_URL)");
  }
  if (name == "gateway") {
    c.error(key, path, "the name \"gateway\" is Squadron's own gateway's (it runs as gateway-1)",
            "give this service another name");
  }
  if (!c.expect_map(n, path, "a mapping with at least command: [...]")) return;
  c.check_keys(n, path,
               {"command", "cwd",        "env",        "replicas",    "port",     "ready",
                "live",    "routes",     "stop_grace", "restart",     "proxy",    "autoscale",
                "deploy",  "resources",  "user",       "stop_signal", "env_file", "secrets",
                "kind",    "depends_on", "protocol",   "image",       "placement"},
               &kComposeKeys);

  if (n["image"]) {
    if (auto image = c.string(n["image"], path + ".image")) {
      if (image->empty() || image->find_first_of(" \t\n") != std::string::npos) {
        c.error(n["image"], path + ".image",
                fmt::format("\"{}\" is not an image reference", *image),
                "write image: registry/name:tag (used only by squadron export kubernetes)");
      } else {
        s.image = *image;
      }
    }
  }
  if (!n["command"]) {
    c.error(key, path + ".command", "a service needs a command",
            n["image"] ? "Squadron runs programs, not images (image: is only for squadron export "
                         "kubernetes): add command: [path/to/program, args...]"
                       : "add command: [path/to/program, args...]");
  } else if (n["command"].IsSequence()) {
    const YAML::Node cmd = n["command"];
    if (cmd.size() == 0)
      c.error(cmd, path + ".command", "the command list is empty", "name the program to run");
    for (std::size_t i = 0; i < cmd.size(); ++i) {
      // An empty argument is an argument (redis-server --save ""); an empty program is not.
      if (i > 0 && cmd[i].IsScalar()) {
        s.command.push_back(cmd[i].Scalar());
      } else if (auto arg = c.string(cmd[i], fmt::format("{}.command[{}]", path, i))) {
        s.command.push_back(*arg);
      }
    }
  } else if (n["command"].IsScalar()) {
    auto argv = split_command(n["command"].Scalar());
    if (!argv) {
      c.error(n["command"], path + ".command", "unterminated quote in the command",
              "close the quote");
    } else if (argv->empty()) {
      c.error(n["command"], path + ".command", "the command is empty", "name the program to run");
    } else {
      s.command = std::move(*argv);
    }
  } else {
    c.error(n["command"], path + ".command",
            fmt::format("expected a list or a string, got {}", Checker::describe(n["command"])),
            "write command: [build/bin/hello, --flag] or command: python3 app.py");
  }

  if (n["cwd"]) {
    if (auto cwd = c.string(n["cwd"], path + ".cwd")) {
      fs::path p(*cwd);
      if (p.is_relative()) p = dir / p;
      std::error_code ec;
      p = fs::weakly_canonical(p, ec);
      if (!fs::is_directory(p, ec)) {
        c.error(n["cwd"], path + ".cwd", fmt::format("no such directory: {}", p.string()),
                "relative paths are relative to the manifest's folder");
      } else {
        s.cwd = p;
      }
    }
  }

  if (n["env_file"]) parse_env_files(c, n["env_file"], path + ".env_file", dir, s);
  if (n["env"]) {
    const YAML::Node env = n["env"];
    if (c.expect_map(env, path + ".env", "{ NAME: value }")) {
      for (auto it = env.begin(); it != env.end(); ++it) {
        const std::string k = it->first.Scalar();
        const std::string kpath = path + ".env." + k;
        if (!valid_env_name(k)) {
          c.error(it->first, kpath,
                  fmt::format("\"{}\" is not a valid environment variable name", k),
                  "use letters, digits and '_', not starting with a digit");
          continue;
        }
        if (instance_variable(k)) {
          c.error(it->first, kpath, fmt::format("{} is set by Squadron for each instance", k),
                  k == "PORT" ? "to fix the port, use port: N" : "choose another name");
          continue;
        }
        if (!it->second.IsScalar()) {
          c.error(it->second, kpath,
                  fmt::format("expected a text value, got {}", Checker::describe(it->second)));
          continue;
        }
        s.env[k] = it->second.Scalar();
      }
    }
  }

  if (n["replicas"]) {
    if (auto r = c.integer(n["replicas"], path + ".replicas", 0, 1000))
      s.replicas = static_cast<int>(*r);
  }
  if (n["port"]) {
    const YAML::Node p = n["port"];
    if (!(p.IsScalar() && p.Scalar() == "auto")) {
      if (p.IsScalar() && !std::all_of(p.Scalar().begin(), p.Scalar().end(), ::isdigit)) {
        c.error(p, path + ".port",
                fmt::format("expected auto or a port number, got {}", Checker::describe(p)),
                "write port: auto, or port: 5000");
      } else if (auto v = c.integer(p, path + ".port", 1, 65535)) {
        s.port = static_cast<std::uint16_t>(*v);
        if (s.replicas > 1) {
          c.error(n["replicas"], path + ".replicas",
                  fmt::format("a fixed port ({}) allows only one replica, got {}", *v, s.replicas),
                  "use port: auto so each instance gets its own port, or replicas: 1");
        }
      }
    }
  }
  if (n["ready"]) parse_probe(c, n["ready"], path + ".ready", s.ready, true);
  if (n["live"]) {
    Probe live;
    parse_probe(c, n["live"], path + ".live", live, false);
    s.live = live;
  }
  if (n["user"]) parse_user(c, n["user"], path + ".user", s);
  if (n["secrets"]) parse_service_secrets(c, n["secrets"], path + ".secrets", secrets, s);
  if (n["stop_signal"]) {
    const YAML::Node sig = n["stop_signal"];
    const std::string name = sig.IsScalar() ? sig.Scalar() : "";
    if (auto number = signal_number(name)) {
      s.stop_signal = *number;
    } else {
      c.error(sig, path + ".stop_signal",
              fmt::format("expected a signal's name, got {}", Checker::describe(sig)),
              did_you_mean(name,
                           {"SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2",
                            "SIGWINCH", "SIGKILL"},
                           "signals"));
    }
  }
  if (n["routes"]) parse_routes(c, n["routes"], path + ".routes", s.routes);
  if (const YAML::Node proto = n["protocol"]) {
    const std::string v = proto.IsScalar() ? proto.Scalar() : "";
    if (v == "tcp") {
      s.tcp = true;
      if (!s.routes.empty()) {
        c.error(n["routes"], path + ".routes",
                "routes are HTTP paths, and this service speaks protocol: tcp",
                fmt::format("reach it at {} and {} (or {}), or drop protocol: tcp",
                            discovery_variable(name, "HOST"), discovery_variable(name, "PORT"),
                            discovery_variable(name, "ADDR")));
      }
    } else if (v != "http") {
      c.error(proto, path + ".protocol",
              fmt::format("unknown protocol {}", Checker::describe(proto)),
              did_you_mean(v, {"http", "tcp"}, "protocols"));
    }
  }
  if (n["proxy"]) parse_proxy(c, n["proxy"], path + ".proxy", s.proxy);
  if (n["autoscale"]) {
    AutoscaleSpec a;
    parse_autoscale(c, n["autoscale"], path + ".autoscale", a);
    if (s.port && a.max > 1) {
      c.error(
          n["autoscale"], path + ".autoscale",
          fmt::format("a fixed port ({}) allows only one replica, but max is {}", *s.port, a.max),
          "use port: auto so each instance gets its own port");
    } else if (a.min == 0 && s.routes.empty() && !s.tcp) {
      c.error(n["autoscale"], path + ".autoscale.min",
              "min: 0 needs routes (or protocol: tcp): the gateway is what wakes a service at "
              "zero",
              "add routes: [/path], or use min: 1");
    }
    s.autoscale = a;
  }
  if (n["deploy"]) parse_deploy(c, n["deploy"], path + ".deploy", s.deploy);
  if (n["resources"]) parse_resources(c, n["resources"], path + ".resources", s.resources);
  if (n["placement"]) parse_placement(c, n["placement"], path + ".placement", s);
  if (n["stop_grace"]) {
    if (auto d = c.duration(n["stop_grace"], path + ".stop_grace")) s.stop_grace = *d;
  }
  if (n["restart"]) {
    const YAML::Node r = n["restart"];
    const std::string v = r.IsScalar() ? r.Scalar() : "";
    if (v == "always") {
      s.restart = RestartPolicy::kAlways;
    } else if (v == "on-failure") {
      s.restart = RestartPolicy::kOnFailure;
    } else if (v == "never") {
      s.restart = RestartPolicy::kNever;
    } else {
      // compose's values: "no" -> never, unless-stopped -> always, on-failure:3 -> on-failure.
      const std::string hint =
          v == "no" || v == "false" ? "write restart: never (compose's \"no\")"
          : v == "unless-stopped"   ? "write restart: always (compose's unless-stopped)"
          : v.rfind("on-failure:", 0) == 0
              ? "write restart: on-failure (retried with backoff, without a count)"
              : did_you_mean(v, {"always", "on-failure", "never"}, "allowed values");
      c.error(r, path + ".restart",
              fmt::format("expected always, on-failure or never, got {}", Checker::describe(r)),
              hint);
    }
  }
  if (n["kind"]) {
    const auto kind = c.string(n["kind"], path + ".kind");
    if (kind == "task") {
      s.task = true;
      if (!n["restart"]) s.restart = RestartPolicy::kNever;
      if (!n["ready"]) s.ready.none = true;  // it serves nothing: started is ready
      if (s.autoscale || !s.routes.empty() || s.port) {
        c.error(n["kind"], path + ".kind",
                "a task runs to its end: it has no routes, port or autoscale",
                "make it a service (kind: service), or remove those");
      }
      if (s.restart == RestartPolicy::kAlways) {
        c.error(n["restart"], path + ".restart", "a task with restart: always never completes",
                "use restart: never (the default for a task) or on-failure (retried until it "
                "exits 0)");
      }
    } else if (kind && *kind != "service") {
      c.error(n["kind"], path + ".kind", fmt::format("unknown kind \"{}\"", *kind),
              did_you_mean(*kind, {"service", "task"}, "kinds"));
    }
  }
  if (const YAML::Node deps = n["depends_on"]) {
    const std::string dpath = path + ".depends_on";
    auto condition = [&](const YAML::Node& v, const std::string& at) -> std::optional<Condition> {
      const std::string text = v.IsScalar() ? v.Scalar() : "";
      if (text == "started" || text == "service_started") return Condition::kStarted;
      if (text == "ready" || text == "healthy" || text == "service_healthy")
        return Condition::kReady;
      if (text == "completed" || text == "service_completed_successfully")
        return Condition::kCompleted;
      c.error(v, at, fmt::format("unknown condition {}", Checker::describe(v)),
              did_you_mean(text, {"started", "ready", "healthy", "completed"}, "conditions"));
      return std::nullopt;
    };
    if (deps.IsSequence()) {
      for (std::size_t i = 0; i < deps.size(); ++i) {
        if (auto name = c.string(deps[i], fmt::format("{}[{}]", dpath, i)))
          s.depends_on.push_back({*name, Condition::kStarted});
      }
    } else if (deps.IsMap()) {
      for (auto it = deps.begin(); it != deps.end(); ++it) {
        const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
        YAML::Node v = it->second;
        if (v.IsMap() && v["condition"]) v.reset(v["condition"]);  // compose's long form
        if (auto cond = condition(v, dpath + "." + name)) s.depends_on.push_back({name, *cond});
      }
    } else {
      c.error(deps, dpath,
              fmt::format("expected a mapping or a list, got {}", Checker::describe(deps)),
              "write depends_on: { ratings: ready, migrate: completed } or [ratings]");
    }
  }
}

// depends_on names services of this manifest, `completed` only tasks, and no cycle: a cycle
// is named whole ("a -> b -> a") at the first service's depends_on.
void check_dependencies(Checker& c, const YAML::Node& services, const Manifest& m) {
  std::vector<std::string_view> names;
  for (const auto& s : m.services) names.push_back(s.name);
  for (const auto& s : m.services) {
    const std::string path = "services." + s.name + ".depends_on";
    const YAML::Node at = services[s.name]["depends_on"];
    for (const auto& d : s.depends_on) {
      const auto* dep = m.find(d.service);
      const YAML::Node where = at.IsMap() && at[d.service] ? at[d.service] : at;
      if (dep == nullptr) {
        c.error(where, path + "." + d.service, fmt::format("no service \"{}\"", d.service),
                did_you_mean(d.service, names, "services"));
      } else if (d.service == s.name) {
        c.error(where, path + "." + d.service, "a service cannot wait for itself");
      } else if (d.condition == Condition::kCompleted && !dep->task &&
                 dep->restart == RestartPolicy::kAlways) {
        c.error(where, path + "." + d.service,
                fmt::format("{} never completes: it is restarted whenever it ends", d.service),
                fmt::format("make it a task (kind: task) or wait until it is ready: {}: ready",
                            d.service));
      }
    }
  }
  // Depth-first, in file order; the first cycle found is reported once.
  std::map<std::string, int> mark;  // 0 new, 1 on the path, 2 done
  std::vector<std::string> trail;
  std::function<bool(const ServiceSpec&)> visit = [&](const ServiceSpec& s) {
    mark[s.name] = 1;
    trail.push_back(s.name);
    for (const auto& d : s.depends_on) {
      const auto* dep = m.find(d.service);
      if (dep == nullptr || d.service == s.name) continue;
      if (mark[dep->name] == 1) {
        std::string cycle;
        const auto from = std::find(trail.begin(), trail.end(), dep->name);
        for (auto it = from; it != trail.end(); ++it) cycle += *it + " -> ";
        cycle += dep->name;
        c.error(services[*from]["depends_on"], "services." + *from + ".depends_on",
                "a cycle: " + cycle, "one of them has to start without waiting for the other");
        return true;
      }
      if (mark[dep->name] == 0 && visit(*dep)) return true;
    }
    trail.pop_back();
    mark[s.name] = 2;
    return false;
  };
  for (const auto& s : m.services) {
    if (mark[s.name] == 0 && visit(s)) break;
  }
}

// trusted_proxies: [10.0.0.0/8, 192.168.1.7]: addresses or CIDR blocks.
void parse_address_blocks(Checker& c, const YAML::Node& t, const std::string& path,
                          std::vector<std::string>& out) {
  if (!t.IsSequence()) {
    c.error(t, path, "expected a list of addresses or CIDR blocks",
            "for example [10.0.0.0/8, 192.168.1.7]");
    return;
  }
  for (std::size_t i = 0; i < t.size(); ++i) {
    const auto item = c.string(t[i], fmt::format("{}[{}]", path, i));
    if (!item) continue;
    if (!core::AddressBlock::parse(*item)) {
      c.error(t[i], fmt::format("{}[{}]", path, i),
              fmt::format("\"{}\" is not an address or a CIDR block", *item),
              "an IPv4 or IPv6 address, optionally /prefix: 10.0.0.0/8, ::1");
      continue;
    }
    out.push_back(*item);
  }
}

// tls: { cert: FILE, key: FILE, redirect: HOST:PORT, hsts: true } or { certificates: [...] }:
// each certificate loads and matches its key now, so a bad file is found at validate time.
void parse_tls(Checker& c, const YAML::Node& n, const std::string& path, const fs::path& dir,
               std::optional<TlsSpec>& out) {
  static constexpr std::string_view kExample = "tls: { cert: certs/site.pem, key: certs/site.key }";
  if (!c.expect_map(n, path, kExample)) return;
  c.check_keys(n, path, {"cert", "key", "certificates", "self_signed", "redirect", "hsts"});
  TlsSpec spec;
  bool ok = true;
  if (const YAML::Node self = n["self_signed"]) {
    const auto v = c.boolean(self, path + ".self_signed");
    if (!v) return;
    spec.self_signed = *v;
    if (*v && (n["cert"] || n["key"] || n["certificates"])) {
      c.error(self, path + ".self_signed", "self_signed and a certificate: both given",
              "self_signed: true for local use (squadron up makes one in .squadron/tls/), or "
              "cert and key of your own");
      return;
    }
  }
  auto file = [&](const YAML::Node& parent, const std::string& at, const char* key,
                  fs::path& into) {
    if (!parent[key]) {
      c.error(parent, at + "." + key, fmt::format("a certificate needs its {}", key),
              std::string(kExample));
      ok = false;
      return;
    }
    const auto v = c.string(parent[key], at + "." + key);
    if (!v) {
      ok = false;
      return;
    }
    fs::path p(*v);
    if (p.is_relative()) p = dir / p;
    if (::access(p.c_str(), R_OK) != 0) {
      c.error(parent[key], at + "." + key,
              fmt::format("cannot read {}", p.lexically_normal().string()),
              "relative paths are relative to the manifest's folder; to make one: "
              "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "
              "90 -subj /CN=localhost -keyout site.key -out site.pem");
      ok = false;
      return;
    }
    into = p.lexically_normal();
  };
  auto certificate = [&](const YAML::Node& node, const std::string& at) {
    http::TlsCertificate cert;
    file(node, at, "cert", cert.cert);
    file(node, at, "key", cert.key);
    if (!ok) return;
    const std::string problem = http::check_tls({.certificates = {cert}});
    if (!problem.empty()) {
      c.error(node, at, problem,
              "cert: a PEM certificate (then its chain), key: its PEM key, "
              "unencrypted");
      ok = false;
      return;
    }
    spec.certificates.push_back(std::move(cert));
  };
  if (const YAML::Node list = n["certificates"]) {
    if (n["cert"] || n["key"]) {
      c.error(n, path, "cert/key and certificates: both given",
              "one certificate: cert and key; several (chosen by SNI): certificates: [...]");
      return;
    }
    if (!list.IsSequence() || list.size() == 0) {
      c.error(list, path + ".certificates", "expected a list of { cert, key }",
              "certificates: [{ cert: a.pem, key: a.key }, { cert: b.pem, key: b.key }]");
      return;
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string at = fmt::format("{}.certificates[{}]", path, i);
      if (!c.expect_map(list[i], at, "{ cert: a.pem, key: a.key }")) {
        ok = false;
        continue;
      }
      c.check_keys(list[i], at, {"cert", "key"});
      certificate(list[i], at);
    }
  } else if (!spec.self_signed) {
    certificate(n, path);
  }
  if (const YAML::Node r = n["redirect"]) {
    if (auto v = c.string(r, path + ".redirect")) {
      if (!valid_listen(*v)) {
        c.error(r, path + ".redirect", fmt::format("expected host:port, got \"{}\"", *v),
                "a plain listener that answers 308 to https://, such as 0.0.0.0:80");
        ok = false;
      } else {
        spec.redirect = *v;
      }
    }
  }
  if (const YAML::Node h = n["hsts"]) {
    if (auto v = c.boolean(h, path + ".hsts")) spec.hsts = *v;
  }
  if (ok) out = std::move(spec);
}

void parse_listen(Checker& c, const YAML::Node& root, const char* key, std::string& out,
                  bool* expose = nullptr, std::vector<std::string>* trusted = nullptr,
                  std::optional<TlsSpec>* tls = nullptr, const fs::path& dir = {}) {
  const YAML::Node n = root[key];
  if (!n) return;
  const std::string path = key;
  if (!c.expect_map(n, path, "{ listen: 127.0.0.1:9900 }")) return;
  if (trusted != nullptr) {
    c.check_keys(n, path, {"listen", "trusted_proxies", "tls"});
    if (const YAML::Node t = n["trusted_proxies"])
      parse_address_blocks(c, t, path + ".trusted_proxies", *trusted);
    if (const YAML::Node t = n["tls"]; t && tls != nullptr)
      parse_tls(c, t, path + ".tls", dir, *tls);
  } else if (expose != nullptr) {
    c.check_keys(n, path, {"listen", "expose"});
    if (n["expose"]) {
      if (auto e = c.boolean(n["expose"], path + ".expose")) *expose = *e;
    }
  } else {
    c.check_keys(n, path, {"listen"});
  }
  if (!n["listen"]) return;
  if (auto v = c.string(n["listen"], path + ".listen")) {
    if (!valid_listen(*v)) {
      c.error(n["listen"], path + ".listen", fmt::format("expected host:port, got \"{}\"", *v),
              "for example 127.0.0.1:9900 (an IP address or localhost, a port from 0 (any free "
              "one) to 65535)");
    } else {
      out = *v;
      if (expose != nullptr && !*expose && !loopback_listen(*v)) {
        c.error(n["listen"], path + ".listen",
                fmt::format("{} is reachable from other machines, and the control API's reads "
                            "need no token while every request's token travels in clear",
                            *v),
                "keep it on 127.0.0.1 (reach it over ssh -L), or say control: { listen: " + *v +
                    ", expose: true } if you mean it");
      }
    }
  }
}

// The YAML of a file (`shown` in errors) into `root`; false with the error when it is not YAML.
bool read_yaml(std::string_view text, const std::string& shown, YAML::Node& root,
               std::vector<ManifestError>& errors) {
  try {
    root = YAML::Load(std::string(text));
    return true;
  } catch (const YAML::ParserException& e) {
    errors.push_back({shown, e.mark.line + 1, e.mark.column + 1, "", "not valid YAML: " + e.msg,
                      "check the indentation and the quotes around this place"});
  } catch (const YAML::Exception& e) {
    errors.push_back({shown, 0, 0, "", std::string("not valid YAML: ") + e.what(), ""});
  }
  return false;
}

}  // namespace

const char* url_scheme(const Manifest& m, std::string_view service) {
  const ServiceSpec* s = m.find(service);
  if (s == nullptr && service == "gateway" && m.gateway_tls) return "https";  // the front door
  return s != nullptr && s->tcp ? "tcp" : "http";
}

bool runs_gateway(const Manifest& m) {
  return std::any_of(m.services.begin(), m.services.end(),
                     [](const ServiceSpec& s) { return !s.routes.empty() || s.tcp; });
}

void add_service_urls(Manifest& m,
                      const std::vector<std::pair<std::string, std::uint16_t>>& ports) {
  for (const auto& [service, p] : ports) {
    // The URL, and its parts for programs that take a host and a port (compose's habit).
    const std::string port = std::to_string(p), addr = "127.0.0.1:" + port;
    const std::string url = fmt::format("{}://{}", url_scheme(m, service), addr);
    for (auto& s : m.services) {
      s.env[discovery_variable(service, "URL")] = url;
      s.env[discovery_variable(service, "HOST")] = "127.0.0.1";
      s.env[discovery_variable(service, "PORT")] = port;
      s.env[discovery_variable(service, "ADDR")] = addr;
    }
  }
}

std::vector<std::pair<std::string, std::uint16_t>> cluster_service_ports(const Manifest& m) {
  std::vector<std::string> names;
  for (const auto& s : m.services) names.push_back(s.name);
  std::sort(names.begin(), names.end());
  std::vector<bool> taken(kClusterServicePorts, false);
  std::vector<std::pair<std::string, std::uint16_t>> out;
  for (const auto& name : names) {
    std::uint32_t h = 2166136261u;  // FNV-1a
    for (const unsigned char c : name) h = (h ^ c) * 16777619u;
    for (std::uint16_t k = 0; k < kClusterServicePorts; ++k) {
      const auto slot = static_cast<std::uint16_t>((h + k) % kClusterServicePorts);
      if (taken[slot]) continue;
      taken[slot] = true;
      out.emplace_back(name, static_cast<std::uint16_t>(kClusterServicePortBase + slot));
      break;
    }
  }
  return out;
}

std::string discovery_variable(std::string_view service, std::string_view part) {
  std::string name = "SQUADRON_";
  for (const char ch : service)
    name += ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  name += '_';
  name += part;
  return name;
}

std::string_view to_string(Condition c) noexcept {
  switch (c) {
    case Condition::kStarted:
      return "started";
    case Condition::kReady:
      return "ready";
    case Condition::kCompleted:
      return "completed";
  }
  return "started";
}

std::string ManifestError::to_string() const {
  std::string s = file;
  if (line > 0) s += fmt::format(":{}:{}", line, column);
  s += ": ";
  if (!path.empty()) s += path + ": ";
  s += message;
  if (!hint.empty()) s += " (" + hint + ")";
  return s;
}

const ServiceSpec* Manifest::find(std::string_view service) const {
  for (const auto& s : services) {
    if (s.name == service) return &s;
  }
  return nullptr;
}

bool loopback_listen(std::string_view listen) { return core::is_loopback(core::host_part(listen)); }

ManifestResult parse_manifest(std::string_view text, const fs::path& file) {
  ManifestResult result;
  const std::string shown = file.filename().string().empty() ? file.string() : file.string();
  if (text.size() > kMaxManifestBytes) {
    result.errors.push_back(
        {shown, 0, 0, "",
         fmt::format("the manifest is {} bytes, over the {} a manifest may have", text.size(),
                     kMaxManifestBytes),
         "a manifest describes services; keep data in files the services read"});
    return result;
  }
  Checker c(shown);
  YAML::Node root;
  if (!read_yaml(text, shown, root, result.errors)) return result;
  Manifest m;
  m.file = fs::absolute(file).lexically_normal();
  // Variables: the environment first, then .env beside the manifest (as compose).
  std::map<std::string, std::string> dotenv;
  {
    const fs::path env_path = m.dir() / ".env";
    std::ifstream in(env_path);
    if (in) {
      std::ostringstream text;
      text << in.rdbuf();
      auto parsed = parse_env_file(text.str());
      for (const auto& e : parsed.errors) c.error_in(env_path.string(), e.line, e.message);
      dotenv = std::move(parsed.vars);
    }
  }
  const core::VariableLookup lookup = [&](std::string_view name) -> std::optional<std::string> {
    if (const char* v = std::getenv(std::string(name).c_str())) return std::string(v);
    if (auto it = dotenv.find(std::string(name)); it != dotenv.end()) return it->second;
    return std::nullopt;
  };
  try {
    interpolate_tree(c, root, "", false, lookup);
    if (!root.IsMap()) {
      c.error(root, "",
              fmt::format("expected a mapping at the top, got {}", Checker::describe(root)),
              "start with name: ... and services: ...");
    } else {
      static const std::map<std::string_view, std::string_view> kComposeTop = {
          {"version", "a squadron.yaml has no version: remove it"},
          {"volumes", "instances run on this machine's files: give each its cwd:"},
          {"networks", "services reach each other by SQUADRON_<NAME>_URL / _HOST / _PORT"},
          {"configs", "give a service the file's path, or env_file: for variables"}};
      c.check_keys(root, "", {"name", "control", "gateway", "services", "secrets", "cluster"},
                   &kComposeTop);
      if (root["cluster"]) parse_cluster(c, root["cluster"], m);
      const Secrets secrets =
          root["secrets"] ? parse_secrets(c, root["secrets"], m.dir()) : Secrets{};
      m.name = m.dir().filename().string();
      if (root["name"]) {
        if (auto n = c.string(root["name"], "name")) m.name = *n;
      }
      if (m.cluster && !host_name(m.name)) {
        c.error(root["name"] ? root["name"] : root, "name",
                fmt::format("\"{}\" cannot name a cluster's fleet", m.name),
                "its state in etcd is keyed by it: use a-z, 0-9 and '-' (such as shop)");
      }
      parse_listen(c, root, "control", m.control_listen, &m.control_expose);
      parse_listen(c, root, "gateway", m.gateway_listen, nullptr, &m.trusted_proxies,
                   &m.gateway_tls, m.dir());
      if (m.cluster && m.gateway_tls) {
        c.error(root["gateway"]["tls"], "gateway.tls",
                "HTTPS on every host's gateway in a cluster is not built yet",
                "terminate TLS in front of the hosts (a load balancer, or `squadron gateway -c` "
                "with tls: forwarding to the hosts' gateways), or run without cluster:");
      }
      const YAML::Node services = root["services"];
      if (!services) {
        c.error(root, "services", "the manifest has no services",
                "add services: with at least one service");
      } else if (c.expect_map(services, "services", "services: { hello: { command: [...] } }")) {
        if (services.size() == 0) c.error(services, "services", "the manifest has no services");
        std::set<std::string> names;
        for (auto it = services.begin(); it != services.end(); ++it) {
          const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
          if (!names.insert(name).second) {
            c.error(it->first, "services." + name, "this service appears twice",
                    "rename or remove one");
            continue;
          }
          ServiceSpec s;
          parse_service(c, name, it->first, it->second, m.dir(), secrets, s);
          m.services.push_back(std::move(s));
        }
      }
      check_dependencies(c, services, m);
      // Fixed ports must not collide with each other or with Squadron's own listeners.
      std::map<int, std::string> taken;
      if (listen_port(m.control_listen) != 0)
        taken[listen_port(m.control_listen)] = "control.listen";
      if (listen_port(m.gateway_listen) != 0)
        taken[listen_port(m.gateway_listen)] = "gateway.listen";
      if (listen_port(m.control_listen) == listen_port(m.gateway_listen) &&
          listen_port(m.control_listen) != 0 && root["gateway"]) {
        c.error(root["gateway"], "gateway.listen",
                "the gateway and the control API use the same port", "give each its own port");
      }
      if (m.gateway_tls && !m.gateway_tls->redirect.empty()) {
        const auto redirect = listen_port(m.gateway_tls->redirect);
        if (redirect != 0 && taken.count(redirect) != 0) {
          c.error(root["gateway"]["tls"]["redirect"], "gateway.tls.redirect",
                  fmt::format("port {} is {}'s too", redirect, taken[redirect]),
                  "the plain listener that redirects to https:// needs a port of its own");
        } else if (redirect != 0) {
          taken[redirect] = "gateway.tls.redirect";
        }
      }
      // Traffic metrics come from the gateway, which runs when some service has routes or
      // protocol: tcp.
      const bool gateway = runs_gateway(m);
      for (const auto& s : m.services) {
        if (!s.autoscale || s.autoscale->metric == ScaleMetric::kCpu || gateway) continue;
        c.error(services[s.name]["autoscale"], "services." + s.name + ".autoscale.metric",
                fmt::format("{} is measured by the gateway, and no service has routes",
                            metric_name(s.autoscale->metric)),
                "give this service routes: [/path], or scale on metric: cpu");
      }
      for (const auto& s : m.services) {
        if (!s.port) continue;
        const YAML::Node at = services[s.name]["port"];
        auto [it, fresh] = taken.emplace(*s.port, "services." + s.name + ".port");
        if (!fresh) {
          c.error(at, "services." + s.name + ".port",
                  fmt::format("port {} is already used by {}", *s.port, it->second),
                  "each fixed port can be used once; use port: auto");
        }
      }
    }
  } catch (const YAML::Exception& e) {
    c.error(root, "", std::string("could not read the manifest: ") + e.what());
  }
  result.errors = c.take_errors();
  if (result.errors.empty()) result.manifest = std::move(m);
  return result;
}

ManifestResult load_manifest(const fs::path& file) {
  std::error_code size_ec;
  if (const auto size = fs::file_size(file, size_ec); !size_ec && size > kMaxManifestBytes) {
    ManifestResult r;
    r.errors.push_back({file.string(), 0, 0, "",
                        fmt::format("the manifest is {} bytes, over the {} a manifest may have",
                                    size, kMaxManifestBytes),
                        "a manifest describes services; keep data in files the services read"});
    return r;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    ManifestResult r;
    r.errors.push_back({file.string(), 0, 0, "",
                        "cannot read the manifest: no such file or not readable",
                        "create squadron.yaml here, or pass -f path/to/squadron.yaml"});
    return r;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_manifest(text.str(), file);
}

GatewayFileResult parse_gateway_file(std::string_view text, const fs::path& file) {
  GatewayFileResult result;
  const std::string shown = file.string();
  if (text.size() > kMaxManifestBytes) {
    result.errors.push_back({shown, 0, 0, "",
                             fmt::format("the file is {} bytes, over the {} it may have",
                                         text.size(), kMaxManifestBytes),
                             "it names upstreams and routes; keep it short"});
    return result;
  }
  Checker c(shown);
  YAML::Node root;
  if (!read_yaml(text, shown, root, result.errors)) return result;
  GatewayFile g;
  g.file = fs::absolute(file).lexically_normal();
  const core::VariableLookup lookup = [](std::string_view name) -> std::optional<std::string> {
    if (const char* v = std::getenv(std::string(name).c_str())) return std::string(v);
    return std::nullopt;
  };
  auto listen_at = [&](const char* key, std::string& out) {
    const YAML::Node n = root[key];
    if (!n) return;
    if (auto v = c.string(n, key)) {
      if (!valid_listen(*v)) {
        c.error(n, key, fmt::format("expected host:port, got \"{}\"", *v),
                "for example 0.0.0.0:8080 (an IP address or localhost, a port from 0 (any free "
                "one) to 65535)");
      } else {
        out = *v;
      }
    }
  };
  try {
    interpolate_tree(c, root, "", false, lookup);
    if (!root.IsMap()) {
      c.error(root, "",
              fmt::format("expected a mapping at the top, got {}", Checker::describe(root)),
              "start with listen: 0.0.0.0:8080 and upstreams: ...");
    } else {
      c.check_keys(
          root, "",
          {"listen", "admin", "threads", "trusted_proxies", "tls", "resolve_every", "upstreams"});
      listen_at("listen", g.listen);
      if (root["tls"]) parse_tls(c, root["tls"], "tls", g.file.parent_path(), g.tls);
      listen_at("admin", g.admin);
      if (root["threads"]) {
        if (auto v = c.integer(root["threads"], "threads", 0, 256))
          g.threads = static_cast<int>(*v);
      }
      if (root["trusted_proxies"])
        parse_address_blocks(c, root["trusted_proxies"], "trusted_proxies", g.trusted_proxies);
      if (root["resolve_every"]) {
        if (auto d = c.duration(root["resolve_every"], "resolve_every")) {
          if (*d < std::chrono::milliseconds(100) || *d > std::chrono::hours(1)) {
            c.error(root["resolve_every"], "resolve_every", "expected 100ms to 1h",
                    "DNS names are resolved again this often; 5s is the default");
          } else {
            g.resolve_every = *d;
          }
        }
      }
      const YAML::Node ups = root["upstreams"];
      if (!ups) {
        c.error(root, "upstreams", "the file names no upstreams",
                "add upstreams: { web: { endpoints: [10.0.0.5:8080], routes: [/] } }");
      } else if (c.expect_map(ups, "upstreams",
                              "upstreams: { web: { endpoints: [10.0.0.5:8080], routes: [/] } }")) {
        std::map<std::string, std::string> routes_seen;  // host+prefix -> upstream
        for (auto it = ups.begin(); it != ups.end(); ++it) {
          const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
          const std::string path = "upstreams." + name;
          if (!valid_service_name(name)) {
            c.error(it->first, path, fmt::format("\"{}\" is not a valid upstream name", name),
                    "use lower-case letters, digits, '-' and '_', starting with a letter");
            continue;
          }
          const YAML::Node n = it->second;
          if (!c.expect_map(n, path, "{ endpoints: [10.0.0.5:8080], routes: [/] }")) continue;
          c.check_keys(n, path, {"endpoints", "routes", "proxy"});
          registry::UpstreamSpec u;
          u.service.name = name;
          const YAML::Node eps = n["endpoints"];
          if (!eps || !eps.IsSequence() || eps.size() == 0) {
            c.error(eps ? eps : it->first, path + ".endpoints",
                    "an upstream needs a list of endpoints",
                    "write endpoints: [10.0.0.5:8080, catalog.shop.svc:80] (a name stands for "
                    "every address it resolves to)");
          } else {
            for (std::size_t i = 0; i < eps.size(); ++i) {
              const std::string epath = fmt::format("{}.endpoints[{}]", path, i);
              const auto e = c.string(eps[i], epath);
              if (!e) continue;
              std::string host;
              std::uint16_t port = 0;
              if (!core::split_host_port(*e, host, port)) {
                c.error(eps[i], epath, fmt::format("expected host:port, got \"{}\"", *e),
                        "an address or a DNS name and a port: 10.0.0.5:8080, [::1]:8080, "
                        "catalog.shop.svc:80");
                continue;
              }
              u.endpoints.push_back(*e);
            }
          }
          if (n["routes"]) parse_routes(c, n["routes"], path + ".routes", u.service.routes);
          if (n["proxy"]) parse_proxy(c, n["proxy"], path + ".proxy", u.service.proxy);
          for (std::size_t i = 0; i < u.service.routes.size(); ++i) {
            const auto& r = u.service.routes[i];
            auto [at, fresh] = routes_seen.emplace(r.host + r.prefix, name);
            if (!fresh)
              c.error(
                  n["routes"][i], fmt::format("{}.routes[{}]", path, i),
                  fmt::format("{}{} is also upstreams.{}'s route", r.host, r.prefix, at->second),
                  "a prefix (for a host) goes to one upstream");
          }
          g.upstreams.push_back(std::move(u));
        }
        if (routes_seen.empty() && !c.failed())
          c.error(ups, "upstreams", "no upstream has routes: the gateway would route nothing",
                  "give one routes: [/]");
      }
    }
  } catch (const YAML::Exception& e) {
    c.error(root, "", std::string("could not read the file: ") + e.what());
  }
  result.errors = c.take_errors();
  if (result.errors.empty()) result.config = std::move(g);
  return result;
}

GatewayFileResult load_gateway_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    GatewayFileResult r;
    r.errors.push_back({file.string(), 0, 0, "",
                        "cannot read the file: no such file or not readable",
                        "pass -c path/to/gateway.yaml"});
    return r;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_gateway_file(text.str(), file);
}

}  // namespace squadron::control
