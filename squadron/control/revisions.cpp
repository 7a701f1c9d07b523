#include "squadron/control/revisions.hpp"

#include <cstdint>
#include <optional>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace squadron::control {

namespace json = boost::json;

namespace {

// A saved count of milliseconds that later arithmetic on clocks can take (a year at most).
bool sane_ms(const json::value* v) {
  return v != nullptr && v->is_int64() && v->as_int64() >= 0 &&
         v->as_int64() <= 365LL * 24 * 3600 * 1000;
}

json::object probe_json(const Probe& p) {
  json::object o{{"path", p.path},
                 {"interval_ms", p.interval.count()},
                 {"timeout_ms", p.timeout.count()},
                 {"threshold", p.threshold}};
  if (!p.command.empty()) o["command"] = json::value_from(p.command);
  if (p.none) o["none"] = true;
  if (p.grpc) o["grpc"] = *p.grpc;
  return o;
}

std::optional<Probe> probe_from(const json::value& v) {
  const auto* o = v.if_object();
  if (o == nullptr) return std::nullopt;
  Probe p;
  const auto* path = o->if_contains("path");
  const auto* interval = o->if_contains("interval_ms");
  const auto* timeout = o->if_contains("timeout_ms");
  const auto* threshold = o->if_contains("threshold");
  if (path == nullptr || !path->is_string() || !sane_ms(interval) || !sane_ms(timeout) ||
      threshold == nullptr || !threshold->is_int64() || threshold->as_int64() < 1 ||
      threshold->as_int64() > 1'000'000)
    return std::nullopt;
  p.path = path->as_string();
  p.interval = std::chrono::milliseconds(interval->as_int64());
  p.timeout = std::chrono::milliseconds(timeout->as_int64());
  p.threshold = static_cast<int>(threshold->as_int64());
  if (const auto* command = o->if_contains("command")) {
    if (!command->is_array()) return std::nullopt;
    for (const auto& a : command->as_array()) {
      if (!a.is_string()) return std::nullopt;
      p.command.emplace_back(a.as_string());
    }
  }
  if (const auto* none = o->if_contains("none")) {
    if (!none->is_bool()) return std::nullopt;
    p.none = none->as_bool();
  }
  if (const auto* grpc = o->if_contains("grpc")) {
    if (!grpc->is_string()) return std::nullopt;
    p.grpc = std::string(grpc->as_string());
  }
  return p;
}

// What a revision keeps of a definition on disk (the fields definition_hash covers).
json::object definition_json(const ServiceSpec& s) {
  json::array command;
  for (const auto& a : s.command) command.emplace_back(a);
  json::object env;
  for (const auto& [k, v] : s.env) {
    if (!is_squadrons_variable(k)) env[k] = v;
  }
  json::object o{{"command", std::move(command)},
                 {"env", std::move(env)},
                 {"cwd", s.cwd.string()},
                 {"ready", probe_json(s.ready)},
                 {"stop_grace_ms", s.stop_grace.count()},
                 {"restart", static_cast<int>(s.restart)}};
  o["port"] = s.port ? json::value(*s.port) : json::value(nullptr);
  o["live"] = s.live ? json::value(probe_json(*s.live)) : json::value(nullptr);
  if (s.run_as) {
    o["user"] = s.user;
    o["run_as"] = json::object{{"uid", s.run_as->uid},
                               {"gid", s.run_as->gid},
                               {"groups", json::value_from(s.run_as->groups)}};
  }
  if (s.stop_signal != 15) o["stop_signal"] = s.stop_signal;
  if (s.resources.any()) {
    json::object r;
    if (s.resources.memory_bytes) r["memory_bytes"] = *s.resources.memory_bytes;
    if (s.resources.millicores) r["millicores"] = *s.resources.millicores;
    if (s.resources.pids) r["pids"] = *s.resources.pids;
    o["resources"] = std::move(r);
  }
  return o;
}

// A saved `resources` (absent in revisions saved before limits existed: none).
std::optional<supervisor::Resources> resources_from(const json::value* v) {
  supervisor::Resources r;
  if (v == nullptr) return r;
  const auto* o = v->if_object();
  if (o == nullptr) return std::nullopt;
  for (const auto& [key, field] :
       {std::pair{"memory_bytes", &r.memory_bytes}, std::pair{"millicores", &r.millicores},
        std::pair{"pids", &r.pids}}) {
    const auto* x = o->if_contains(key);
    if (x == nullptr) continue;
    if (!x->is_int64() && !x->is_uint64()) return std::nullopt;
    const auto n = x->to_number<std::uint64_t>();
    if (n == 0) return std::nullopt;
    *field = n;
  }
  return r;
}

// `base` (the manifest's definition, for routes and policies and Squadron's variables) with the
// saved definition in `v`; nullopt when `v` is not one.
std::optional<ServiceSpec> definition_from(const json::value& v, const ServiceSpec& base) {
  const auto* o = v.if_object();
  if (o == nullptr) return std::nullopt;
  ServiceSpec s = base;
  const auto* command = o->if_contains("command");
  const auto* env = o->if_contains("env");
  const auto* cwd = o->if_contains("cwd");
  const auto* grace = o->if_contains("stop_grace_ms");
  const auto* restart = o->if_contains("restart");
  const auto* port = o->if_contains("port");
  const auto* live = o->if_contains("live");
  const auto* ready = o->if_contains("ready");
  if (command == nullptr || !command->is_array() || command->as_array().empty() || env == nullptr ||
      !env->is_object() || cwd == nullptr || !cwd->is_string() || !sane_ms(grace) ||
      restart == nullptr || !restart->is_int64() || restart->as_int64() < 0 ||
      restart->as_int64() > 2 || port == nullptr || live == nullptr || ready == nullptr)
    return std::nullopt;
  s.command.clear();
  for (const auto& a : command->as_array()) {
    if (!a.is_string()) return std::nullopt;
    s.command.emplace_back(a.as_string());
  }
  std::erase_if(s.env, [](const auto& kv) { return !is_squadrons_variable(kv.first); });
  for (const auto& [k, val] : env->as_object()) {
    if (!val.is_string()) return std::nullopt;
    s.env[std::string(k)] = std::string(val.as_string());
  }
  s.cwd = std::string(cwd->as_string());
  s.stop_grace = std::chrono::milliseconds(grace->as_int64());
  s.restart = static_cast<RestartPolicy>(restart->as_int64());
  if (port->is_null()) {
    s.port.reset();
  } else if (port->is_int64() && port->as_int64() > 0 && port->as_int64() <= 65535) {
    s.port = static_cast<std::uint16_t>(port->as_int64());
  } else {
    return std::nullopt;
  }
  auto r = probe_from(*ready);
  if (!r) return std::nullopt;
  s.ready = *r;
  if (live->is_null()) {
    s.live.reset();
  } else if (auto l = probe_from(*live)) {
    s.live = *l;
  } else {
    return std::nullopt;
  }
  auto resources = resources_from(o->if_contains("resources"));
  if (!resources) return std::nullopt;
  s.resources = *resources;
  s.user.clear();
  s.run_as.reset();
  if (const auto* run_as = o->if_contains("run_as")) {
    const auto* user = o->if_contains("user");
    const auto* r = run_as->if_object();
    if (r == nullptr || user == nullptr || !user->is_string()) return std::nullopt;
    supervisor::RunAs who;
    const auto* uid = r->if_contains("uid");
    const auto* gid = r->if_contains("gid");
    const auto* groups = r->if_contains("groups");
    if (uid == nullptr || !uid->is_number() || gid == nullptr || !gid->is_number() ||
        groups == nullptr || !groups->is_array())
      return std::nullopt;
    who.uid = uid->to_number<uid_t>();
    who.gid = gid->to_number<gid_t>();
    for (const auto& g : groups->as_array()) {
      if (!g.is_number()) return std::nullopt;
      who.groups.push_back(g.to_number<gid_t>());
    }
    s.user = std::string(user->as_string());
    s.run_as = who;
  }
  s.stop_signal = 15;
  if (const auto* sig = o->if_contains("stop_signal")) {
    if (!sig->is_int64() || sig->as_int64() < 1 || sig->as_int64() > 64) return std::nullopt;
    s.stop_signal = static_cast<int>(sig->as_int64());
  }
  return s;
}

}  // namespace

bool is_squadrons_variable(std::string_view env_name) noexcept {
  return env_name.substr(0, 9) == "SQUADRON_";
}

std::string definition_hash(const ServiceSpec& s) {
  std::string d;
  for (const auto& a : s.command) d.append(a).push_back('\0');
  d.push_back('\1');
  for (const auto& [k, v] : s.env) {
    if (is_squadrons_variable(k)) continue;  // given anew at each start: not the user's definition
    d.append(k).append("=").append(v).push_back('\0');
  }
  d.append(s.cwd.string()).push_back('\1');
  d.append(s.port ? std::to_string(*s.port) : "auto").push_back('\1');
  auto probe = [&](const Probe& p) {
    d.append(p.path).append(
        fmt::format("|{}|{}|{}", p.interval.count(), p.timeout.count(), p.threshold));
    if (p.none) d.append("|none");
    if (p.grpc) d.append("|grpc=").append(*p.grpc);           // (none before gRPC probes)
    for (const auto& a : p.command) d.append("|").append(a);  // (none before exec probes)
    d.push_back('\1');
  };
  probe(s.ready);
  if (s.live) probe(*s.live);
  d.append(fmt::format("{}|{}", s.stop_grace.count(), static_cast<int>(s.restart)));
  if (const auto& r = s.resources; r.any()) {  // (absent before limits: old hashes stay)
    d.append(fmt::format("\1{}|{}|{}", r.memory_bytes.value_or(0), r.millicores.value_or(0),
                         r.pids.value_or(0)));
  }
  if (!s.user.empty()) d.append("\1user=").append(s.user);
  for (const auto& secret : s.secrets)  // where from and to, never the value
    d.append(fmt::format("\1secret={}|{}|{}|{}|{}", secret.name, secret.file.string(),
                         secret.from_env, secret.target, secret.env));
  if (s.stop_signal != 15) d.append(fmt::format("\1signal={}", s.stop_signal));
  // FNV-1a, 64 bits: stable across runs and builds (std::hash need not be).
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : d) h = (h ^ c) * 1099511628211ULL;
  return fmt::format("{:08x}", static_cast<std::uint32_t>(h ^ (h >> 32)));
}

json::object revision_json(const Revision& r) {
  return json::object{
      {"revision", r.number},
      {"hash", r.hash},
      {"at_ms",
       std::chrono::duration_cast<std::chrono::milliseconds>(r.at.time_since_epoch()).count()},
      {"cause", r.cause},
      {"failed", r.failed}};
}

std::string revisions_json(const Histories& histories) {
  json::object services;
  for (const auto& [name, h] : histories) {
    json::array list;
    for (const auto& r : h.revisions) {
      auto o = revision_json(r);
      o["definition"] = definition_json(r.spec);
      list.push_back(std::move(o));
    }
    services[name] = json::object{{"base", h.base},
                                  {"current", h.revisions.at(h.current).number},
                                  {"revisions", std::move(list)}};
  }
  return json::serialize(json::object{{"version", 1}, {"services", std::move(services)}}) + "\n";
}

namespace {

std::optional<ServiceHistory> history_from(const json::value& entry, const ServiceSpec& spec) {
  const auto* o = entry.if_object();
  if (o == nullptr) return std::nullopt;
  const auto* list = o->if_contains("revisions");
  const auto* base = o->if_contains("base");
  const auto* current = o->if_contains("current");
  if (list == nullptr || !list->is_array() || base == nullptr || !base->is_string() ||
      current == nullptr || !current->is_int64())
    return std::nullopt;
  ServiceHistory h;
  h.base = base->as_string();
  bool found = false;
  for (const auto& v : list->as_array()) {
    const auto* r = v.if_object();
    if (r == nullptr) return std::nullopt;
    const auto* def = r->if_contains("definition");
    const auto* number = r->if_contains("revision");
    const auto* at_ms = r->if_contains("at_ms");
    const auto* cause = r->if_contains("cause");
    const auto* failed = r->if_contains("failed");
    if (def == nullptr || number == nullptr || !number->is_int64() || number->as_int64() < 1 ||
        number->as_int64() > 1'000'000'000 || at_ms == nullptr || !at_ms->is_int64() ||
        at_ms->as_int64() < 0 || at_ms->as_int64() > 4'000'000'000'000 /* 2096 */ ||
        cause == nullptr || !cause->is_string() || failed == nullptr || !failed->is_bool())
      return std::nullopt;
    // Numbers only grow along the history.
    if (!h.revisions.empty() && number->as_int64() <= h.revisions.back().number)
      return std::nullopt;
    auto s = definition_from(*def, spec);
    if (!s) return std::nullopt;
    if (number->as_int64() == current->as_int64()) {
      h.current = h.revisions.size();
      found = true;
    }
    h.revisions.push_back(
        {static_cast<int>(number->as_int64()), definition_hash(*s), std::move(*s),
         std::chrono::system_clock::time_point(std::chrono::milliseconds(at_ms->as_int64())),
         std::string(cause->as_string()), failed->as_bool()});
  }
  if (!found) return std::nullopt;
  return h;
}

}  // namespace

Histories parse_revisions(std::string_view text, const std::vector<ServiceSpec>& services,
                          std::string& warning) {
  Histories out;
  boost::system::error_code ec;
  const auto doc = json::parse(text, ec);
  const auto* root = ec ? nullptr : doc.if_object();
  const auto* saved = root != nullptr ? root->if_contains("services") : nullptr;
  if (saved == nullptr || !saved->is_object()) {
    warning = ec ? fmt::format("not JSON ({})", ec.message()) : "no \"services\" object";
    return out;
  }
  std::string unreadable;
  for (const auto& spec : services) {
    const auto* entry = saved->as_object().if_contains(spec.name);
    if (entry == nullptr) continue;
    if (auto h = history_from(*entry, spec)) {
      out.emplace(spec.name, std::move(*h));
    } else {
      unreadable += (unreadable.empty() ? "" : ", ") + spec.name;
    }
  }
  if (!unreadable.empty()) warning = "unreadable history of " + unreadable;
  return out;
}

}  // namespace squadron::control
