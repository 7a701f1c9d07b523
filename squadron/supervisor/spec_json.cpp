#include "squadron/supervisor/spec_json.hpp"

#include <limits>

#include <boost/json.hpp>

namespace squadron::supervisor {
namespace json = boost::json;
using std::chrono::milliseconds;

// (Defined here, beside the other JSON forms, so that parsers link without the supervisor.)
std::string_view to_string(InstanceState s) noexcept {
  switch (s) {
    case InstanceState::kStarting:
      return "starting";
    case InstanceState::kReady:
      return "ready";
    case InstanceState::kDraining:
      return "draining";
    case InstanceState::kStopping:
      return "stopping";
    case InstanceState::kBackoff:
      return "backoff";
    case InstanceState::kFailed:
      return "failed";
    case InstanceState::kStopped:
      return "stopped";
  }
  return "unknown";
}

namespace {

constexpr std::string_view kRestart[] = {"always", "on-failure", "never"};

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

json::object probe_json(const ProbeSpec& p) {
  json::object o;
  o["path"] = p.path;
  o["command"] = strings(p.command);
  o["none"] = p.none;
  if (p.grpc) o["grpc"] = *p.grpc;
  o["interval_ms"] = p.interval.count();
  o["timeout_ms"] = p.timeout.count();
  o["threshold"] = p.threshold;
  o["port"] = p.port;
  return o;
}

// Reads keys of one object, remembering the first that is wrong.
class Reader {
 public:
  Reader(const json::object& o, std::string path, std::string& error)
      : o_(o), path_(std::move(path)), error_(error) {}

  bool ok() const { return error_.empty(); }
  void fail(std::string_view key, std::string_view what) {
    if (error_.empty()) error_ = path_ + std::string(key) + ": " + std::string(what);
  }
  const json::value* find(std::string_view key) { return o_.if_contains(key); }

  void text(std::string_view key, std::string& out) {
    const auto* v = find(key);
    if (v == nullptr) return;
    if (!v->is_string()) return fail(key, "expected a string");
    out = std::string(v->get_string());
  }
  void flag(std::string_view key, bool& out) {
    const auto* v = find(key);
    if (v == nullptr) return;
    if (!v->is_bool()) return fail(key, "expected true or false");
    out = v->get_bool();
  }
  template <class Int>
  void integer(std::string_view key, Int& out, std::int64_t min, std::int64_t max) {
    const auto* v = find(key);
    if (v == nullptr) return;
    std::int64_t n = 0;
    if (v->is_int64()) {
      n = v->get_int64();
    } else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(max)) {
      n = static_cast<std::int64_t>(v->get_uint64());
    } else {
      return fail(key, "expected a whole number");
    }
    if (n < min || n > max) return fail(key, "out of range");
    out = static_cast<Int>(n);
  }
  void duration(std::string_view key, milliseconds& out) {
    std::int64_t ms = out.count();
    integer(key, ms, 0, std::int64_t{1} << 40);
    out = milliseconds(ms);
  }
  void list(std::string_view key, std::vector<std::string>& out) {
    const auto* v = find(key);
    if (v == nullptr) return;
    if (!v->is_array()) return fail(key, "expected a list of strings");
    out.clear();
    for (const auto& item : v->get_array()) {
      if (!item.is_string()) return fail(key, "expected a list of strings");
      out.emplace_back(item.get_string());
    }
  }
  const json::object* object(std::string_view key) {
    const auto* v = find(key);
    if (v == nullptr || v->is_null()) return nullptr;
    if (!v->is_object()) {
      fail(key, "expected an object");
      return nullptr;
    }
    return &v->get_object();
  }
  const std::string& path() const { return path_; }
  std::string& error() { return error_; }

 private:
  const json::object& o_;
  std::string path_;
  std::string& error_;
};

void read_probe(Reader& r, const json::object& o, std::string_view key, ProbeSpec& p) {
  Reader in(o, r.path() + std::string(key) + ".", r.error());
  in.text("path", p.path);
  in.list("command", p.command);
  in.flag("none", p.none);
  if (o.contains("grpc")) {
    p.grpc.emplace();
    in.text("grpc", *p.grpc);
  }
  in.duration("interval_ms", p.interval);
  in.duration("timeout_ms", p.timeout);
  in.integer("threshold", p.threshold, 1, 1000);
  in.integer("port", p.port, 0, 65535);
}

}  // namespace

json::object to_json(const InstanceSpec& spec) {
  json::object o;
  o["service"] = spec.service;
  o["id"] = spec.id;
  o["revision"] = spec.revision;
  o["argv"] = strings(spec.launch.argv);
  o["cwd"] = spec.launch.cwd.string();
  json::object env;
  for (const auto& [k, v] : spec.launch.env) env[k] = v;
  o["env"] = std::move(env);
  if (spec.port) o["port"] = *spec.port;
  o["ready"] = probe_json(spec.ready);
  if (spec.live) o["live"] = probe_json(*spec.live);
  o["stop_grace_ms"] = spec.stop_grace.count();
  o["restart"] = kRestart[static_cast<int>(spec.restart)];
  o["probe_interval_while_starting_ms"] = spec.probe_interval_while_starting.count();
  json::object res;
  if (spec.resources.memory_bytes) res["memory_bytes"] = *spec.resources.memory_bytes;
  if (spec.resources.millicores) res["millicores"] = *spec.resources.millicores;
  if (spec.resources.pids) res["pids"] = *spec.resources.pids;
  o["resources"] = std::move(res);
  o["stop_signal"] = spec.stop_signal;
  json::array secrets;
  for (const auto& s : spec.secrets) {
    secrets.push_back(json::object{{"name", s.name},
                                   {"file", s.file.string()},
                                   {"from_env", s.from_env},
                                   {"target", s.target},
                                   {"env", s.env}});
  }
  o["secrets"] = std::move(secrets);
  o["expand_variables"] = spec.expand_variables;
  if (spec.launch.run_as) {
    json::array groups;
    for (const auto g : spec.launch.run_as->groups) groups.emplace_back(g);
    o["run_as"] = json::object{{"uid", spec.launch.run_as->uid},
                               {"gid", spec.launch.run_as->gid},
                               {"groups", std::move(groups)}};
  }
  return o;
}

std::optional<InstanceSpec> spec_from_json(const json::value& v, std::string& error) {
  error.clear();
  if (!v.is_object()) {
    error = "an instance spec must be a JSON object";
    return std::nullopt;
  }
  InstanceSpec spec;
  Reader r(v.get_object(), "", error);
  r.text("service", spec.service);
  if (r.ok() && spec.service.empty()) r.fail("service", "missing");
  r.text("id", spec.id);
  r.text("revision", spec.revision);
  r.list("argv", spec.launch.argv);
  if (r.ok() && spec.launch.argv.empty()) r.fail("argv", "missing: what to run");
  std::string cwd;
  r.text("cwd", cwd);
  spec.launch.cwd = cwd;
  if (const auto* env = r.object("env")) {
    for (const auto& [k, val] : *env) {
      if (!val.is_string()) {
        r.fail("env." + std::string(k), "expected a string");
        break;
      }
      spec.launch.env[std::string(k)] = std::string(val.get_string());
    }
  }
  if (r.find("port") != nullptr) {
    std::uint16_t port = 0;
    r.integer("port", port, 1, 65535);
    spec.port = port;
  }
  if (const auto* ready = r.object("ready")) read_probe(r, *ready, "ready", spec.ready);
  if (const auto* live = r.object("live")) {
    spec.live.emplace();
    read_probe(r, *live, "live", *spec.live);
  }
  r.duration("stop_grace_ms", spec.stop_grace);
  std::string restart = "always";
  r.text("restart", restart);
  bool known = false;
  for (int i = 0; i < 3; ++i) {
    if (restart == kRestart[i]) {
      spec.restart = static_cast<Restart>(i);
      known = true;
    }
  }
  if (!known) r.fail("restart", "expected always, on-failure or never");
  r.duration("probe_interval_while_starting_ms", spec.probe_interval_while_starting);
  if (const auto* res = r.object("resources")) {
    Reader in(*res, "resources.", error);
    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    for (auto [key, field] : {std::pair{"memory_bytes", &spec.resources.memory_bytes},
                              std::pair{"millicores", &spec.resources.millicores},
                              std::pair{"pids", &spec.resources.pids}}) {
      if (in.find(key) == nullptr) continue;
      std::uint64_t n = 0;
      in.integer(key, n, 1, kMax);
      *field = n;
    }
  }
  r.integer("stop_signal", spec.stop_signal, 1, 64);
  if (const auto* secrets = r.find("secrets")) {
    if (!secrets->is_array()) {
      r.fail("secrets", "expected a list");
    } else {
      for (const auto& item : secrets->get_array()) {
        if (!item.is_object()) {
          r.fail("secrets", "expected a list of objects");
          break;
        }
        SecretSpec s;
        Reader in(item.get_object(), "secrets.", error);
        std::string file;
        in.text("name", s.name);
        in.text("file", file);
        s.file = file;
        in.text("from_env", s.from_env);
        in.text("target", s.target);
        in.text("env", s.env);
        if (in.ok() && (s.target.empty() || s.target.find('/') != std::string::npos))
          in.fail("target", "expected a file name");
        spec.secrets.push_back(std::move(s));
      }
    }
  }
  r.flag("expand_variables", spec.expand_variables);
  if (const auto* run_as = r.object("run_as")) {
    Reader in(*run_as, "run_as.", error);
    RunAs who;
    in.integer("uid", who.uid, 0, std::numeric_limits<uid_t>::max() - 1);
    in.integer("gid", who.gid, 0, std::numeric_limits<gid_t>::max() - 1);
    if (const auto* groups = in.find("groups")) {
      if (!groups->is_array()) {
        in.fail("groups", "expected a list of numbers");
      } else {
        for (const auto& g : groups->get_array()) {
          if (!g.is_int64() || g.get_int64() < 0 ||
              g.get_int64() >= std::numeric_limits<gid_t>::max()) {
            in.fail("groups", "expected a list of numbers");
            break;
          }
          who.groups.push_back(static_cast<gid_t>(g.get_int64()));
        }
      }
    }
    spec.launch.run_as = who;
  }
  if (!error.empty()) return std::nullopt;
  return spec;
}

}  // namespace squadron::supervisor
