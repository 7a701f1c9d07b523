#include "squadron/registry/watch.hpp"

#include <boost/json.hpp>

namespace squadron::registry {

namespace json = boost::json;
using ms = std::chrono::milliseconds;

namespace {

json::object policy_json(const ProxyPolicy& p, bool scale_to_zero) {
  return {{"timeout_ms", p.timeout.count()},
          {"connect_timeout_ms", p.connect_timeout.count()},
          {"retries", p.retries},
          {"max_in_flight", p.max_in_flight},
          {"max_connections", p.max_connections},
          {"eject_after", p.eject_after},
          {"eject_time_ms", p.eject_time.count()},
          {"slow_start_ms", p.slow_start.count()},
          {"scale_to_zero", scale_to_zero},
          {"balance", p.balance},
          {"affinity", p.affinity},
          {"affinity_name", p.affinity_name},
          {"protocol", p.protocol}};
}

void read_policy(const json::object& o, WatchService& s) {
  constexpr auto kMax = bounds::kMaxDuration.count();
  auto& p = s.proxy;
  if (auto x = bounded(o, "timeout_ms", 1, kMax)) p.timeout = ms(*x);
  if (auto x = bounded(o, "connect_timeout_ms", 1, kMax)) p.connect_timeout = ms(*x);
  if (auto x = bounded(o, "eject_time_ms", 1, kMax)) p.eject_time = ms(*x);
  if (auto x = bounded(o, "slow_start_ms", 0, kMax)) p.slow_start = ms(*x);
  if (auto x = bounded(o, "retries", 0, bounds::kMaxRetries)) p.retries = static_cast<int>(*x);
  if (auto x = bounded(o, "max_in_flight", 1, bounds::kMaxInFlight))
    p.max_in_flight = static_cast<int>(*x);
  if (auto x = bounded(o, "max_connections", 1, bounds::kMaxInFlight))
    p.max_connections = static_cast<int>(*x);
  if (auto x = bounded(o, "eject_after", 1, bounds::kMaxEjectAfter))
    p.eject_after = static_cast<int>(*x);
  if (const auto* z = o.if_contains("scale_to_zero"); z != nullptr && z->is_bool())
    s.scale_to_zero = z->as_bool();
  if (const auto* b = o.if_contains("balance");
      b != nullptr && b->is_string() && known_balance(b->as_string()))
    p.balance = b->as_string();
  if (const auto* pr = o.if_contains("protocol");
      pr != nullptr && pr->is_string() && pr->as_string() == "h2c")
    p.protocol = "h2c";
  const auto* a = o.if_contains("affinity");
  const auto* an = o.if_contains("affinity_name");
  if (a != nullptr && a->is_string() && an != nullptr && an->is_string() &&
      an->as_string().size() <= 64) {
    const std::string_view kind = a->as_string();
    if (kind == "cookie" || kind == "header" || kind == "source_ip") {
      p.affinity = kind;
      p.affinity_name = an->as_string();
    }
  }
}

json::object route_json(const Route& r) {
  json::object o{{"prefix", r.prefix}, {"strip_prefix", r.strip_prefix}};
  if (!r.host.empty()) o["host"] = r.host;
  if (r.rate > 0) o["rate_limit"] = json::object{{"rate", r.rate}, {"burst", r.burst}};
  return o;
}

std::optional<Route> read_route(const json::value& v) {
  Route r;
  if (v.is_string()) {
    r.prefix = v.as_string();
  } else if (const auto* o = v.if_object()) {
    const auto* p = o->if_contains("prefix");
    if (p == nullptr || !p->is_string()) return std::nullopt;
    r.prefix = p->as_string();
    if (const auto* s = o->if_contains("strip_prefix"); s != nullptr && s->is_bool())
      r.strip_prefix = s->as_bool();
    if (const auto* h = o->if_contains("host"); h != nullptr && h->is_string())
      r.host = h->as_string();
    if (const auto* l = o->if_contains("rate_limit"); l != nullptr && l->is_object()) {
      if (auto rate = bounded(l->as_object(), "rate", 1, bounds::kMaxRate)) {
        r.rate = static_cast<int>(*rate);
        r.burst =
            static_cast<int>(bounded(l->as_object(), "burst", 1, bounds::kMaxRate).value_or(*rate));
      }
    }
  }
  if (r.prefix.empty() || r.prefix.front() != '/') return std::nullopt;
  return r;
}

}  // namespace

bool known_balance(std::string_view balance) noexcept {
  return balance == "least-request" || balance == "round-robin" || balance == "random";
}

json::object to_json(const Watch& w, std::chrono::system_clock::time_point now) {
  json::array services;
  for (const auto& s : w.services) {
    json::array routes;
    for (const auto& r : s.routes) routes.push_back(route_json(r));
    json::object o{{"name", s.name},
                   {"routes", std::move(routes)},
                   {"proxy", policy_json(s.proxy, s.scale_to_zero)}};
    if (s.discovery_port != 0) o["discovery_port"] = s.discovery_port;
    services.push_back(std::move(o));
  }
  json::array instances;
  for (const auto& i : w.instances) instances.push_back(to_json(i, now));
  return {{"revision", w.revision},
          {"services", std::move(services)},
          {"instances", std::move(instances)}};
}

std::optional<Watch> watch_from_json(const json::value& v, std::string& error) {
  const auto* o = v.if_object();
  const auto* services = o != nullptr ? o->if_contains("services") : nullptr;
  const auto* instances = o != nullptr ? o->if_contains("instances") : nullptr;
  if (services == nullptr || !services->is_array() || instances == nullptr ||
      !instances->is_array()) {
    error = "the watch answer needs \"services\" and \"instances\" arrays";
    return std::nullopt;
  }
  Watch w;
  if (const auto* r = o->if_contains("revision")) {
    if (r->is_uint64()) w.revision = r->as_uint64();
    if (r->is_int64() && r->as_int64() >= 0) w.revision = static_cast<std::uint64_t>(r->as_int64());
  }
  for (const auto& sv : services->as_array()) {
    const auto* so = sv.if_object();
    const auto* name = so != nullptr ? so->if_contains("name") : nullptr;
    if (name == nullptr || !name->is_string()) {
      error = "a service without a name";
      return std::nullopt;
    }
    WatchService s;
    s.name = name->as_string();
    if (auto d = bounded(*so, "discovery_port", 1, 65535))
      s.discovery_port = static_cast<std::uint16_t>(*d);
    if (const auto* p = so->if_contains("proxy"); p != nullptr && p->is_object())
      read_policy(p->as_object(), s);
    if (const auto* routes = so->if_contains("routes"); routes != nullptr && routes->is_array()) {
      for (const auto& rv : routes->as_array()) {
        if (auto r = read_route(rv)) s.routes.push_back(std::move(*r));
      }
    }
    w.services.push_back(std::move(s));
  }
  for (const auto& iv : instances->as_array()) {
    if (auto i = instance_from_json(iv)) w.instances.push_back(std::move(*i));
  }
  return w;
}

std::optional<std::int64_t> bounded(const json::object& o, std::string_view key, std::int64_t lo,
                                    std::int64_t hi) {
  // A number parsed from text is an int64; one built in memory from an unsigned type (a port) a
  // uint64: either is read.
  const auto* x = o.if_contains(key);
  if (x == nullptr) return std::nullopt;
  std::int64_t v = 0;
  if (x->is_int64()) {
    v = x->as_int64();
  } else if (x->is_uint64() && x->as_uint64() <= static_cast<std::uint64_t>(hi)) {
    v = static_cast<std::int64_t>(x->as_uint64());
  } else {
    return std::nullopt;
  }
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

}  // namespace squadron::registry
