#include "squadron/control/api.hpp"

#include <charconv>
#include <cmath>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "squadron/control/web_assets.hpp"
#include "squadron/core/address.hpp"
#include "squadron/core/check.hpp"
#include "squadron/core/duration.hpp"
#include "squadron/core/interpolate.hpp"
#include "squadron/core/prometheus.hpp"
#include "squadron/registry/watch.hpp"

namespace squadron::control {

namespace json = boost::json;
using http::Request;
using http::Response;
using std::chrono::system_clock;

enum ControlApi::Route : std::size_t {
  kHealth,
  kFleet,
  kServices,
  kService,
  kScale,
  kRestart,
  kInstances,
  kInstance,
  kLogs,
  kEvents,
  kWatch,
  kDown,
  kMetrics,
  kWake,
  kDeploy,
  kRollback,
  kHistory,
  kApply,
  kDashboard,
  kAsset,
  kPrometheus,
  kHosts,
};

namespace {

constexpr std::size_t kMaxTail = 1000;  // the supervisor's ring per instance

// Constant-time comparison, so the time a wrong token takes says nothing about the right one.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// A `since` query parameter; 0 when absent; nullopt (→ 400) when malformed.
std::optional<std::uint64_t> since_of(const Request& req) {
  const auto s = req.query_param("since");
  if (!s) return 0;
  return parse_u64(*s);
}

// A duration query parameter ("30s", "500ms"), capped; nullopt (→ 400) when malformed.
std::optional<std::chrono::milliseconds> wait_of(const Request& req, std::string_view name,
                                                 std::chrono::milliseconds dflt,
                                                 std::chrono::milliseconds cap) {
  const auto s = req.query_param(name);
  if (!s) return dflt;
  const auto d = core::parse_duration(*s);
  if (!d) return std::nullopt;
  return std::min(*d, cap);
}

// Whether `host` (a Host header's value, or an Origin's host part, with or without a port) is
// one a rebinding attack cannot use: an IP literal or localhost. Such an attack makes a browser
// send the API a name of the attacker's (evil.example resolving to 127.0.0.1).
bool own_host(std::string_view host) {
  const auto name = core::host_part(host);
  if (http::iequals(name, "localhost")) return true;
  return name.find('/') == std::string_view::npos && core::AddressBlock::parse(name).has_value();
}

bool wants_sse(const Request& req) {
  const auto accept = req.header("accept");
  return accept && accept->find("text/event-stream") != std::string_view::npos;
}

// What a watcher gets: the watch contract (registry/watch.hpp) — every service with its routes
// and policy, and the registry's instances — so that a gateway needs nothing else.
json::object watch_snapshot(const Fleet& fleet, const registry::Registry& reg) {
  registry::Watch w;
  w.revision = reg.revision();
  for (const auto& spec : fleet.manifest().services) {
    w.services.push_back({spec.name, spec.routes, spec.proxy,
                          spec.autoscale && spec.autoscale->min == 0,
                          fleet.discovery_port(spec.name)});
  }
  w.instances = reg.instances();
  return registry::to_json(w, system_clock::now());
}

std::string sse_event(const Fleet& fleet, const registry::Registry& reg) {
  return fmt::format("id: {}\nevent: snapshot\ndata: {}\n\n", reg.revision(),
                     json::serialize(watch_snapshot(fleet, reg)));
}

}  // namespace

ControlApi::ControlApi(Fleet& fleet, registry::Registry& registry, std::string token,
                       std::function<void()> on_down)
    : fleet_(fleet), reg_(registry), token_(std::move(token)), on_down_(std::move(on_down)) {
  const std::pair<const char*, const char*> routes[] = {
      {"GET", "/healthz"},
      {"GET", "/api/v1/fleet"},
      {"GET", "/api/v1/services"},
      {"GET", "/api/v1/services/{name}"},
      {"POST", "/api/v1/services/{name}/scale"},
      {"POST", "/api/v1/services/{name}/restart"},
      {"GET", "/api/v1/instances"},
      {"GET", "/api/v1/instances/{id}"},
      {"GET", "/api/v1/logs"},
      {"GET", "/api/v1/events"},
      {"GET", "/api/v1/watch"},
      {"POST", "/api/v1/down"},
      {"GET", "/api/v1/metrics"},
      {"POST", "/api/v1/services/{name}/wake"},
      {"POST", "/api/v1/services/{name}/deploy"},
      {"POST", "/api/v1/services/{name}/rollback"},
      {"GET", "/api/v1/services/{name}/history"},
      {"POST", "/api/v1/apply"},
      {"GET", "/"},
      {"GET", "/ui/{file}"},
      {"GET", "/metrics"},
      {"GET", "/api/v1/hosts"},
  };
  for (std::size_t i = 0; i < std::size(routes); ++i) {
    const auto ec = router_.add(routes[i].first, routes[i].second, i);
    SQUADRON_CHECK(!ec, "control API route");
  }
}

ControlApi::~ControlApi() = default;

json::object ControlApi::service_view(const ServiceSpec& spec) const {
  auto o = fleet_.service_json(spec);
  if (traffic != nullptr) {
    if (const auto* h = traffic->history(spec.name); h != nullptr && !h->empty())
      o["traffic"] = to_json(h->back());
  }
  if (scaling != nullptr) {
    if (auto a = scaling->state_json(spec.name)) o["autoscale"] = std::move(*a);
  }
  return o;
}

json::object ControlApi::instance_view(const registry::Instance& i,
                                       system_clock::time_point now) const {
  auto o = to_json(i, now);
  if (const auto* spec = fleet_.manifest().find(i.service)) {
    const auto& r = spec->resources;
    o["memory_limit_bytes"] = r.memory_bytes ? json::value(*r.memory_bytes) : json::value(nullptr);
    o["cpu_limit"] = r.millicores ? json::value(static_cast<double>(*r.millicores) / 1000.0)
                                  : json::value(nullptr);
    o["pids_limit"] = r.pids ? json::value(*r.pids) : json::value(nullptr);
  }
  const auto* u = usage != nullptr ? usage->find(i.id) : nullptr;
  o["rss_bytes"] = u != nullptr ? json::value(u->now.rss_bytes) : json::value(nullptr);
  o["cpu_percent"] = u != nullptr && u->measured ? json::value(std::round(u->cpu_percent * 10) / 10)
                                                 : json::value(nullptr);
  o["cpu_throttled_s"] = u != nullptr
                             ? json::value(static_cast<double>(u->now.throttled_usec) / 1e6)
                             : json::value(nullptr);
  o["cpus"] =
      u != nullptr && !u->now.cpus.empty() ? json::value(u->now.cpus) : json::value(nullptr);
  return o;
}

json::array ControlApi::instances_view(std::string_view service) const {
  json::array out;
  const auto now = system_clock::now();
  for (const auto& i : reg_.instances()) {
    if (service.empty() || i.service == service) out.push_back(instance_view(i, now));
  }
  return out;
}

std::string ControlApi::prometheus() const {
  struct Family {
    const char* name;
    const char* type;
    const char* help;
  };
  static constexpr Family kFamilies[] = {
      {"squadron_instance_memory_rss_bytes", "gauge",
       "Resident memory of every process of the instance (its cgroup, or /proc)."},
      {"squadron_instance_memory_limit_bytes", "gauge", "The instance's memory limit."},
      {"squadron_instance_cpu_seconds_total", "counter",
       "CPU time of the instance's processes (its cgroup's: since its place was made)."},
      {"squadron_instance_cpu_limit_cores", "gauge", "The instance's CPU limit in cores."},
      {"squadron_instance_cpu_throttled_seconds_total", "counter",
       "Time the instance's CPU limit held it back."},
      {"squadron_instance_oom_kills_total", "counter",
       "Processes of the instance the kernel killed for its memory limit."},
      {"squadron_instance_restarts_total", "counter", "Restarts of the instance."},
      {"squadron_instance_ready", "gauge", "1 while the instance is ready."},
  };
  std::string out;
  const auto instances = reg_.instances();
  for (std::size_t f = 0; f < std::size(kFamilies); ++f) {
    const auto& family = kFamilies[f];
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family.name, family.help, family.name,
                       family.type);
    for (const auto& i : instances) {
      const auto* spec = fleet_.manifest().find(i.service);
      const auto* u = usage != nullptr ? usage->find(i.id) : nullptr;
      std::optional<double> v;
      switch (f) {
        case 0:
          if (u != nullptr) v = static_cast<double>(u->now.rss_bytes);
          break;
        case 1:
          if (spec != nullptr && spec->resources.memory_bytes)
            v = static_cast<double>(*spec->resources.memory_bytes);
          break;
        case 2:
          if (u != nullptr) v = static_cast<double>(u->now.cpu_usec) / 1e6;
          break;
        case 3:
          if (spec != nullptr && spec->resources.millicores)
            v = static_cast<double>(*spec->resources.millicores) / 1000.0;
          break;
        case 4:
          if (u != nullptr && u->now.from_cgroup)
            v = static_cast<double>(u->now.throttled_usec) / 1e6;
          break;
        case 5:
          v = i.oom_kills;
          break;
        case 6:
          v = i.restarts;
          break;
        default:
          v = i.state == registry::State::kReady ? 1 : 0;
      }
      if (!v) continue;
      out += fmt::format("{}{{service=\"{}\",instance=\"{}\"}} {}\n", family.name,
                         core::prometheus_label(i.service), core::prometheus_label(i.id), *v);
    }
  }
  return out;
}

bool ControlApi::authorized(const Request& req) const {
  const auto h = req.header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (!h || h->size() <= kBearer.size() || !http::iequals(h->substr(0, kBearer.size()), kBearer))
    return false;
  return same_secret(h->substr(kBearer.size()), token_);
}

bool ControlApi::refuse(const Request& req, Response& res, std::size_t route) const {
  if (const auto host = req.header("host"); host && !own_host(*host)) {
    res = Response::problem(421, fmt::format("this is the control API of fleet \"{}\"; ask it by "
                                             "its address (127.0.0.1, localhost), not as \"{}\"",
                                             fleet_.manifest().name, *host));
    return true;
  }
  if (const auto origin = req.header("origin"); origin && *origin != "null") {
    constexpr std::string_view kHttp = "http://";
    if (origin->substr(0, kHttp.size()) != kHttp || !own_host(origin->substr(kHttp.size()))) {
      res = Response::problem(403, "the control API answers no page of another site");
      return true;
    }
  }
  const bool guarded = req.method() == http::Method::kPost || route == kLogs || route == kEvents ||
                       route == kHistory;
  if (guarded && !authorized(req)) {
    res = Response::problem(401,
                            "this call needs \"Authorization: Bearer <token>\"; the token "
                            "is in .squadron/token beside the manifest");
    res.set_header("WWW-Authenticate", "Bearer realm=\"squadron\"");
    return true;
  }
  return false;
}

std::shared_ptr<void> ControlApi::stream_slot(Response& res) {
  if (*streams_ >= max_streams) {
    res = Response::problem(503, fmt::format("{} long-lived requests (watch, follow, wait) are "
                                             "open, the most this fleet serves; try again",
                                             max_streams));
    res.set_header("Retry-After", "1");
    return nullptr;
  }
  struct Slot {
    explicit Slot(std::shared_ptr<std::size_t> n) : open(std::move(n)) { ++*open; }
    ~Slot() { --*open; }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    std::shared_ptr<std::size_t> open;
  };
  return std::make_shared<Slot>(streams_);
}

bool ControlApi::handle(Request& req, Response& res, std::size_t) {
  const auto m = router_.match(req);
  if (refuse(req, res, m.kind == http::Router::Match::kFound ? m.id : SIZE_MAX)) return true;
  if (m.kind == http::Router::Match::kNotFound) {
    res = Response::problem(
        404, fmt::format("no such endpoint: {} (see docs/control-api.md)", req.path()));
    return true;
  }
  if (m.kind == http::Router::Match::kMethodNotAllowed) {
    res = Response::problem(405, fmt::format("{} takes {}", req.path(), m.allow));
    res.set_header("Allow", m.allow);
    return true;
  }
  const auto now = system_clock::now();
  switch (static_cast<Route>(m.id)) {
    case kHealth:
      res = Response::text("ok\n");
      return true;
    case kFleet: {
      json::array services;
      for (const auto& s : fleet_.manifest().services) services.push_back(service_view(s));
      json::object o{{"name", fleet_.manifest().name},
                     {"manifest", fleet_.manifest().file.string()},
                     {"revision", reg_.revision()},
                     {"stopping", fleet_.stopping()},
                     {"services", std::move(services)}};
      if (traffic != nullptr) {
        o["gateway_metrics"] = fmt::format("http://127.0.0.1:{}/metrics", traffic->admin_port());
      }
      if (hosts) o["hosts"] = hosts();
      res = Response::json(o);
      return true;
    }
    case kHosts: {
      if (!hosts) {
        res = Response::problem(
            404, "this fleet runs on one machine: hosts are a cluster's (a manifest's cluster:)");
        return true;
      }
      res = Response::json(hosts());
      return true;
    }
    case kServices: {
      json::array services;
      for (const auto& s : fleet_.manifest().services) services.push_back(service_view(s));
      res = Response::json(services);
      return true;
    }
    case kService: {
      const auto* spec = fleet_.manifest().find(req.param("name"));
      if (spec == nullptr) {
        res = Response::problem(404, fmt::format("no service \"{}\"", req.param("name")));
        return true;
      }
      auto o = service_view(*spec);
      o["instance_list"] = instances_view(spec->name);
      res = Response::json(o);
      return true;
    }
    case kScale:
      res = scale(req);
      return true;
    case kRestart: {
      if (auto err = fleet_.restart(req.param("name"))) {
        res = Response::problem(err->status, err->detail);
      } else {
        res =
            Response::json(json::object{{"service", req.param("name")}, {"restarting", true}}, 202);
      }
      return true;
    }
    case kInstances: {
      const auto service = req.query_param("service").value_or("");
      if (!service.empty() && fleet_.manifest().find(service) == nullptr) {
        res = Response::problem(404, fmt::format("no service \"{}\"", service));
        return true;
      }
      res = Response::json(instances_view(service));
      return true;
    }
    case kInstance: {
      const auto i = reg_.find(std::string(req.param("id")));
      res = i ? Response::json(instance_view(*i, now))
              : Response::problem(404, fmt::format("no instance \"{}\"", req.param("id")));
      return true;
    }
    case kLogs:
      if (req.query_param("follow").value_or("0") != "0") return false;
      res = logs(req);
      return true;
    case kEvents:
    case kWatch:
      return false;  // may wait: handle_async
    case kDeploy:
      res = deploy(req);
      return true;
    case kRollback: {
      const auto r = fleet_.rollback(req.param("name"));
      if (const auto* err = std::get_if<CommandError>(&r)) {
        res = Response::problem(err->status, err->detail);
      } else {
        res = Response::json(
            json::object{{"service", req.param("name")}, {"revision", std::get<int>(r)}}, 202);
      }
      return true;
    }
    case kApply:
      res = apply(req);
      return true;
    case kDashboard:
    case kAsset: {
      // The dashboard, compiled in (web/). It reads the API like any client; actions ask for
      // the token, which the page keeps for its tab.
      const std::string_view file = static_cast<Route>(m.id) == kDashboard
                                        ? std::string_view("index.html")
                                        : req.param("file");
      for (const auto& a : web_assets()) {
        if (a.path != file) continue;
        res = Response::text(std::string(a.body));
        res.set_header("Content-Type", std::string(a.content_type));
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Content-Type-Options", "nosniff");
        return true;
      }
      res = Response::problem(404, fmt::format("no dashboard file \"{}\"", file));
      return true;
    }
    case kHistory: {
      if (fleet_.manifest().find(req.param("name")) == nullptr) {
        res = Response::problem(404, fmt::format("no service \"{}\"", req.param("name")));
        return true;
      }
      res = Response::json(fleet_.history(req.param("name")));
      return true;
    }
    case kWake: {
      const auto* spec = fleet_.manifest().find(req.param("name"));
      if (spec == nullptr) {
        res = Response::problem(404, fmt::format("no service \"{}\"", req.param("name")));
        return true;
      }
      if (scaling == nullptr || !scaling->wake(spec->name)) {
        res = Response::problem(
            409, fmt::format("{} does not scale to zero (autoscale min: 0)", spec->name));
        return true;
      }
      res = Response::json(
          json::object{{"service", spec->name}, {"desired", fleet_.desired(spec->name)}}, 202);
      return true;
    }
    case kMetrics: {
      const auto service = req.query_param("service").value_or("");
      if (!service.empty() && fleet_.manifest().find(service) == nullptr) {
        res = Response::problem(404, fmt::format("no service \"{}\"", service));
        return true;
      }
      std::uint64_t history = 0;
      if (auto h = req.query_param("history")) {
        const auto n = parse_u64(*h);
        if (!n || *n > 100000) {
          res = Response::problem(
              400, fmt::format("history takes a number of samples (one a second), got \"{}\"", *h));
          return true;
        }
        history = *n;
      }
      res = Response::json(traffic != nullptr ? traffic->json(history, service)
                                              : json::object{{"interval_ms", 1000},
                                                             {"services", json::object{}},
                                                             {"gateway", false}});
      return true;
    }
    case kPrometheus:
      res = Response::text(prometheus());
      res.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      return true;
    case kDown:
      res = Response::json(json::object{{"stopping", reg_.instances().size()}}, 202);
      if (on_down_) on_down_();
      return true;
  }
  res = Response::problem(404, "no such endpoint");
  return true;
}

Response ControlApi::scale(Request& req) {
  const auto doc = req.json();
  if (!doc)
    return Response::problem(
        400, "the body must be JSON like {\"replicas\": 3}: " + doc.error().message());
  const auto* o = doc->if_object();
  const auto* r = o != nullptr ? o->if_contains("replicas") : nullptr;
  if (r == nullptr) return Response::problem(400, "the body needs \"replicas\": a whole number");
  if (!r->is_int64() && !r->is_uint64())
    return Response::problem(400, "\"replicas\" must be a whole number, like 3");
  const std::int64_t n = r->is_int64() ? r->as_int64() : INT64_MAX;
  if (n < 0 || n > INT32_MAX) return Response::problem(400, "\"replicas\" must be 0 or more");
  if (auto err = fleet_.scale(req.param("name"), static_cast<int>(n)))
    return Response::problem(err->status, err->detail);
  if (scaling != nullptr) scaling->hold(req.param("name"), static_cast<int>(n));
  return Response::json(json::object{{"service", req.param("name")}, {"replicas", n}}, 202);
}

// {"command": [..] or "a b", "env": {"K": "V" or null to remove}, "cause": "..."}: the service's
// definition with these changes, rolled out as a new revision.
Response ControlApi::deploy(Request& req) {
  const auto* current = fleet_.manifest().find(req.param("name"));
  if (current == nullptr)
    return Response::problem(404, fmt::format("no service \"{}\"", req.param("name")));
  const auto doc = req.json();
  const auto* o = doc ? doc->if_object() : nullptr;
  if (o == nullptr)
    return Response::problem(400,
                             "the body must be a JSON object like {\"env\": {\"COLOR\": "
                             "\"blue\"}} or {\"command\": [\"app\", \"--fast\"]}");
  ServiceSpec spec = *current;
  std::string cause;
  if (const auto* c = o->if_contains("command")) {
    if (c->is_string()) {
      auto argv = split_command(std::string(c->as_string()));
      if (!argv || argv->empty())
        return Response::problem(400, "\"command\" is empty or has an unterminated quote");
      spec.command = std::move(*argv);
    } else if (c->is_array() && !c->as_array().empty()) {
      spec.command.clear();
      for (const auto& a : c->as_array()) {
        if (!a.is_string())
          return Response::problem(400, "\"command\" must be a list of strings or one string");
        spec.command.emplace_back(a.as_string());
      }
    } else {
      return Response::problem(400, "\"command\" must be a list of strings or one string");
    }
    cause += "command " + fmt::format("{}", fmt::join(spec.command, " "));
  }
  if (const auto* e = o->if_contains("env")) {
    if (!e->is_object()) return Response::problem(400, "\"env\" must be an object of strings");
    for (const auto& [k, v] : e->as_object()) {
      const std::string key(k);
      if (key.empty() || key.rfind("SQUADRON_", 0) == 0 || key == "PORT" || key == "HOST")
        return Response::problem(
            400, fmt::format("env \"{}\" is not yours to set (PORT, HOST and SQUADRON_* are "
                             "Squadron's)",
                             key));
      // The cause names the variable, never its value: causes are events and history, and a
      // value may be a secret.
      if (v.is_null()) {
        spec.env.erase(key);
        cause += fmt::format("{}unset {}", cause.empty() ? "" : ", ", key);
      } else if (v.is_string()) {
        // As given: a $ in it is no reference to expand at launch (the manifest's are $$).
        spec.env[key] = core::escape_dollars(v.as_string());
        cause += fmt::format("{}set {}", cause.empty() ? "" : ", ", key);
      } else {
        return Response::problem(400, fmt::format("env \"{}\" must be a string (or null to "
                                                  "remove it)",
                                                  key));
      }
    }
  }
  if (const auto* c = o->if_contains("cause"); c != nullptr && c->is_string())
    cause = std::string(c->as_string());
  if (cause.empty()) cause = "deploy";
  const auto r = fleet_.deploy(current->name, std::move(spec), cause);
  if (const auto* err = std::get_if<CommandError>(&r))
    return Response::problem(err->status, err->detail);
  return Response::json(json::object{{"service", current->name}, {"revision", std::get<int>(r)}},
                        202);
}

// {"manifest": "<the YAML text>", "file": "/abs/squadron.yaml", "dry_run": false}: the fleet
// brought to that manifest (Fleet::apply). A manifest with problems: 422 with each problem
// ({"file","line","column","path","message","hint"}) in "errors"; nothing changes.
Response ControlApi::apply(Request& req) {
  const auto doc = req.json();
  const auto* o = doc ? doc->if_object() : nullptr;
  const auto* text = o != nullptr ? o->if_contains("manifest") : nullptr;
  if (text == nullptr || !text->is_string())
    return Response::problem(400,
                             "the body must be a JSON object with \"manifest\": the YAML text "
                             "(and \"file\": its path, for errors and relative paths)");
  std::filesystem::path file = fleet_.manifest().file;
  if (const auto* f = o->if_contains("file"); f != nullptr) {
    if (!f->is_string() || f->as_string().empty() || f->as_string()[0] != '/')
      return Response::problem(400, "\"file\" must be the manifest's absolute path");
    file = std::string(f->as_string());
  }
  bool dry_run = false;
  if (const auto* d = o->if_contains("dry_run"); d != nullptr) {
    if (!d->is_bool()) return Response::problem(400, "\"dry_run\" must be true or false");
    dry_run = d->as_bool();
  }
  auto parsed = parse_manifest(text->as_string(), file);
  if (!parsed.ok()) {
    json::array errors;
    for (const auto& e : parsed.errors) {
      errors.push_back(json::object{{"file", e.file},
                                    {"line", e.line},
                                    {"column", e.column},
                                    {"path", e.path},
                                    {"message", e.message},
                                    {"hint", e.hint},
                                    {"text", e.to_string()}});
    }
    auto r = Response::problem(
        422, fmt::format("the manifest has {} problem{}; nothing was changed", parsed.errors.size(),
                         parsed.errors.size() == 1 ? "" : "s"));
    auto body = json::parse(r.body).as_object();
    body["errors"] = std::move(errors);
    r.body = json::serialize(body);
    return r;
  }
  const auto result =
      fleet_.apply(std::move(*parsed.manifest), "apply " + file.filename().string(), dry_run);
  if (const auto* err = std::get_if<CommandError>(&result))
    return Response::problem(err->status, err->detail);
  const auto& plan = std::get<ApplyPlan>(result);
  if (!dry_run && scaling != nullptr) scaling->sync();
  json::array steps;
  for (const auto& s : plan.steps) {
    steps.push_back(json::object{{"service", s.service},
                                 {"action", s.action},
                                 {"detail", s.detail},
                                 {"revision", s.revision}});
  }
  json::array warnings;
  for (const auto& w : plan.warnings) warnings.emplace_back(w);
  return Response::json(json::object{{"dry_run", dry_run},
                                     {"changes", plan.changes()},
                                     {"services", std::move(steps)},
                                     {"warnings", std::move(warnings)}},
                        dry_run || !plan.changes() ? 200 : 202);
}

// The instances a logs request names: a service's, one instance, or all.
static std::vector<registry::Instance> select(const registry::Registry& reg,
                                              std::string_view filter) {
  std::vector<registry::Instance> out;
  for (auto& i : reg.instances()) {
    if (filter.empty() || i.service == filter || i.id == filter) out.push_back(std::move(i));
  }
  return out;
}

Response ControlApi::logs(Request& req) {
  const auto filter = req.query_param("service").value_or("");
  if (!filter.empty() && fleet_.manifest().find(filter) == nullptr && !reg_.find(filter)) {
    return Response::problem(404,
                             fmt::format("no service or instance \"{}\" in this fleet", filter));
  }
  std::size_t tail = 100;
  if (const auto t = req.query_param("tail")) {
    const auto n = parse_u64(*t);
    if (!n) return Response::problem(400, "tail must be a whole number of lines");
    tail = std::min<std::size_t>(*n, kMaxTail);
  }
  std::string out;
  for (const auto& i : select(reg_, filter)) {
    for (const auto& line : fleet_.logs(i.id, tail)) {
      out += i.id;
      out += " | ";
      out += line;
      out += '\n';
    }
  }
  const bool follow = req.query_param("follow").value_or("0") != "0";
  Response res = Response::text(std::move(out));
  if (!follow) return res;
  // The tail first, then every new line as it comes, until the fleet stops.
  auto slot = stream_slot(res);
  if (!slot) return res;
  auto sub = fleet_.subscribe(filter);
  auto first = std::make_shared<std::string>(std::move(res.body));
  res.body.clear();
  res.set_header("Cache-Control", "no-store");
  res.stream = [sub, first, slot]() -> boost::asio::awaitable<http::BodyPiece> {
    if (!first->empty()) co_return http::BodyPiece::more(std::exchange(*first, std::string()));
    while (sub->lines.empty() && !sub->closed) {
      sub->wake.expires_at(boost::asio::steady_timer::time_point::max());
      co_await sub->wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    if (sub->lines.empty()) {
      if (!sub->overflowed) co_return http::BodyPiece::last();
      sub->overflowed = false;  // the stream ends after this line (closed is set)
      co_return http::BodyPiece::more(fmt::format(
          "squadron | this follower was dropped: it read too slowly and {} of output waited "
          "for it (follow again to go on)\n",
          sub->overflow_detail));
    }
    std::string chunk;
    while (!sub->lines.empty()) {
      chunk += sub->lines.front();
      chunk += '\n';
      sub->lines.pop_front();
    }
    sub->bytes = 0;
    co_return http::BodyPiece::more(std::move(chunk));
  };
  return res;
}

boost::asio::awaitable<void> ControlApi::handle_async(Request& req, Response& res, std::size_t) {
  const auto m = router_.match(req);
  const auto since = since_of(req);
  if (!since) {
    res = Response::problem(400, "since must be a revision number from an earlier answer");
    co_return;
  }
  if (m.id == kLogs) {
    res = logs(req);
    co_return;
  }
  if (m.id == kEvents) {
    const auto wait = wait_of(req, "wait", std::chrono::milliseconds(0), max_wait);
    if (!wait) {
      res = Response::problem(400, "wait must be a duration like 30s");
      co_return;
    }
    std::shared_ptr<void> slot;
    if (wait->count() > 0 && reg_.revision() <= *since && !(slot = stream_slot(res))) co_return;
    co_await reg_.wait_newer(*since, *wait);
    json::array events;
    for (const auto& e : reg_.events_since(*since)) events.push_back(to_json(e));
    res =
        Response::json(json::object{{"revision", reg_.revision()}, {"events", std::move(events)}});
    co_return;
  }
  // kWatch: a long-poll (the snapshot once it is newer than `since`), or an SSE stream.
  if (wants_sse(req)) {
    auto slot = stream_slot(res);
    if (!slot) co_return;
    res = Response{};
    res.set_header("Content-Type", "text/event-stream");
    res.set_header("Cache-Control", "no-store");
    auto last = std::make_shared<std::optional<std::uint64_t>>();
    auto* reg = &reg_;
    auto* fleet = &fleet_;
    const auto every = keepalive;
    const auto start = *since;
    res.stream = [reg, fleet, last, every, start,
                  slot]() -> boost::asio::awaitable<http::BodyPiece> {
      if (!*last) {
        co_await reg->wait_newer(start, every);
        *last = reg->revision();
        co_return http::BodyPiece::more(sse_event(*fleet, *reg));
      }
      if (reg->closed() || (fleet->stopping() && reg->instances().empty()))
        co_return http::BodyPiece::last();
      const auto rev = co_await reg->wait_newer(**last, every);
      if (rev == **last) co_return http::BodyPiece::more(": keepalive\n\n");
      *last = rev;
      co_return http::BodyPiece::more(sse_event(*fleet, *reg));
    };
    co_return;
  }
  const auto timeout = wait_of(req, "timeout", max_wait, max_wait);
  if (!timeout) {
    res = Response::problem(400, "timeout must be a duration like 30s");
    co_return;
  }
  std::shared_ptr<void> slot;
  if (*since != 0 && reg_.revision() <= *since && !(slot = stream_slot(res))) co_return;
  co_await reg_.wait_newer(*since, *since == 0 ? std::chrono::milliseconds(0) : *timeout);
  res = Response::json(watch_snapshot(fleet_, reg_));
}

}  // namespace squadron::control
