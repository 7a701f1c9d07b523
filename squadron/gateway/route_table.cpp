#include "squadron/gateway/route_table.hpp"

#include <algorithm>

#include <boost/json.hpp>

#include "squadron/registry/instance.hpp"

namespace squadron::gateway {

namespace json = boost::json;

namespace {

bool prefix_matches(std::string_view prefix, std::string_view path) {
  if (prefix == "/") return true;
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/' || prefix.back() == '/';
}

bool host_equals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::string RouteMatch::upstream_target(std::string_view target) const {
  std::string out;
  append_upstream_target(target, out);
  return out;
}

void RouteMatch::append_upstream_target(std::string_view target, std::string& out) const {
  const auto [lead, rest] = upstream_target_parts(target);
  out.append(lead).append(rest);
}

std::pair<std::string_view, std::string_view> RouteMatch::upstream_target_parts(
    std::string_view target) const noexcept {
  if (!strip_prefix || prefix == "/") return {{}, target};
  const std::string_view rest = target.substr(std::min(prefix.size(), target.size()));
  if (rest.empty() || rest.front() != '/') return {"/", rest};
  return {{}, rest};
}

std::shared_ptr<const RouteTable> RouteTable::from_watch(const json::value& v, std::string& error) {
  const auto* o = v.if_object();
  const auto* services = o != nullptr ? o->if_contains("services") : nullptr;
  const auto* instances = o != nullptr ? o->if_contains("instances") : nullptr;
  if (services == nullptr || !services->is_array() || instances == nullptr ||
      !instances->is_array()) {
    error = "the watch answer needs \"services\" and \"instances\" arrays";
    return nullptr;
  }
  auto table = std::make_shared<RouteTable>();
  if (const auto* r = o->if_contains("revision"); r != nullptr && r->is_number())
    table->revision_ = r->to_number<std::uint64_t>();
  for (const auto& sv : services->as_array()) {
    const auto* so = sv.if_object();
    const auto* name = so != nullptr ? so->if_contains("name") : nullptr;
    if (name == nullptr || !name->is_string()) {
      error = "a service without a name";
      return nullptr;
    }
    const std::size_t index = table->services_.size();
    table->services_.push_back({std::string(name->as_string()), {}, {}});
    if (const auto* d = so->if_contains("discovery_port");
        d != nullptr && d->is_int64() && d->as_int64() > 0 && d->as_int64() <= 65535)
      table->services_.back().discovery_port = static_cast<std::uint16_t>(d->as_int64());
    if (const auto* p = so->if_contains("proxy"); p != nullptr && p->is_object()) {
      auto& policy = table->services_.back().policy;
      const auto& po = p->as_object();
      auto number = [&](std::string_view k, long long lo,
                        long long hi) -> std::optional<long long> {
        const auto* x = po.if_contains(k);
        if (x == nullptr || !x->is_int64() || x->as_int64() < lo || x->as_int64() > hi)
          return std::nullopt;
        return x->as_int64();
      };
      using ms = std::chrono::milliseconds;
      if (auto x = number("timeout_ms", 1, 86'400'000)) policy.timeout = ms(*x);
      if (auto x = number("connect_timeout_ms", 1, 86'400'000)) policy.connect_timeout = ms(*x);
      if (auto x = number("eject_time_ms", 1, 86'400'000)) policy.eject_time = ms(*x);
      if (auto x = number("slow_start_ms", 0, 86'400'000)) policy.slow_start = ms(*x);
      if (auto x = number("retries", 0, 5)) policy.retries = static_cast<int>(*x);
      if (auto x = number("max_in_flight", 1, 1'000'000))
        policy.max_in_flight = static_cast<int>(*x);
      if (auto x = number("eject_after", 1, 1000)) policy.eject_after = static_cast<int>(*x);
      if (const auto* z = po.if_contains("scale_to_zero"); z != nullptr && z->is_bool())
        policy.scale_to_zero = z->as_bool();
      if (const auto* b = po.if_contains("balance"); b != nullptr && b->is_string()) {
        if (b->as_string() == "round-robin") policy.balance = Balance::kRoundRobin;
        if (b->as_string() == "random") policy.balance = Balance::kRandom;
      }
    }
    const auto* routes = so->if_contains("routes");
    if (routes == nullptr || !routes->is_array()) continue;
    for (const auto& rv : routes->as_array()) {
      Route r;
      r.service = index;
      if (rv.is_string()) {
        r.prefix = rv.as_string();
      } else if (const auto* ro = rv.if_object()) {
        const auto* p = ro->if_contains("prefix");
        if (p == nullptr || !p->is_string()) continue;
        r.prefix = p->as_string();
        if (const auto* s = ro->if_contains("strip_prefix"); s != nullptr && s->is_bool())
          r.strip_prefix = s->as_bool();
        if (const auto* h = ro->if_contains("host"); h != nullptr && h->is_string())
          r.host = h->as_string();
        if (const auto* l = ro->if_contains("rate_limit"); l != nullptr && l->is_object()) {
          const auto* rate = l->as_object().if_contains("rate");
          const auto* burst = l->as_object().if_contains("burst");
          if (rate != nullptr && rate->is_int64() && rate->as_int64() > 0 &&
              rate->as_int64() <= 10'000'000) {
            r.rate = static_cast<int>(rate->as_int64());
            r.burst = r.rate;
            if (burst != nullptr && burst->is_int64() && burst->as_int64() > 0 &&
                burst->as_int64() <= 10'000'000)
              r.burst = static_cast<int>(burst->as_int64());
          }
        }
      }
      if (r.prefix.empty() || r.prefix.front() != '/') continue;
      table->routes_.push_back(std::move(r));
    }
  }
  std::stable_sort(table->routes_.begin(), table->routes_.end(),
                   [](const Route& a, const Route& b) {
                     if (a.prefix.size() != b.prefix.size())
                       return a.prefix.size() > b.prefix.size();
                     return !a.host.empty() && b.host.empty();
                   });
  for (const auto& iv : instances->as_array()) {
    const auto i = registry::instance_from_json(iv);
    if (!i || i->state != registry::State::kReady) continue;
    for (auto& s : table->services_) {
      if (s.name != i->service) continue;
      const auto started =
          std::chrono::duration_cast<std::chrono::milliseconds>(i->started_at.time_since_epoch())
              .count();
      s.ready.push_back({i->id, i->host, i->port, started});
      if (s.policy.slow_start.count() > 0)
        s.young_until_ms = std::max(s.young_until_ms, started + s.policy.slow_start.count());
    }
  }
  return table;
}

std::optional<RouteMatch> RouteTable::match(std::string_view host, std::string_view path) const {
  if (const auto colon = host.rfind(':');
      colon != std::string_view::npos && host.find(']') == std::string_view::npos)
    host = host.substr(0, colon);
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const auto& r = routes_[i];
    if (!r.host.empty() && !host_equals(r.host, host)) continue;
    if (!prefix_matches(r.prefix, path)) continue;
    return RouteMatch{&services_[r.service], r.prefix, r.strip_prefix, i};
  }
  return std::nullopt;
}

const Service* RouteTable::find(std::string_view service) const {
  for (const auto& s : services_) {
    if (s.name == service) return &s;
  }
  return nullptr;
}

const Service* RouteTable::find_by_port(std::uint16_t port) const {
  for (const auto& s : services_) {
    if (s.discovery_port == port) return &s;
  }
  return nullptr;
}

}  // namespace squadron::gateway
