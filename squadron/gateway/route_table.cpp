#include "squadron/gateway/route_table.hpp"

#include <algorithm>
#include <set>

#include <boost/json.hpp>

#include "squadron/registry/watch.hpp"

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

std::shared_ptr<const RouteTable> RouteTable::from_watch(const json::value& v, std::string& error,
                                                         std::string_view local_host) {
  const auto watch = registry::watch_from_json(v, error);
  return watch ? from(*watch, local_host) : nullptr;
}

std::shared_ptr<const RouteTable> RouteTable::from(const registry::Watch& watch,
                                                   std::string_view local_host) {
  auto table = std::make_shared<RouteTable>();
  table->revision_ = watch.revision;
  for (const auto& ws : watch.services) {
    const std::size_t index = table->services_.size();
    Cluster s{ws.name, {}, {}, ws.discovery_port, 0};
    static_cast<registry::ProxyPolicy&>(s.policy) = ws.proxy;
    s.policy.scale_to_zero = ws.scale_to_zero;
    if (ws.proxy.balance == "round-robin") s.policy.balancing = Balance::kRoundRobin;
    if (ws.proxy.balance == "random") s.policy.balancing = Balance::kRandom;
    table->services_.push_back(std::move(s));
    for (const auto& r : ws.routes) {
      Route route;
      static_cast<registry::Route&>(route) = r;
      route.service = index;
      table->routes_.push_back(std::move(route));
    }
  }
  std::stable_sort(table->routes_.begin(), table->routes_.end(),
                   [](const Route& a, const Route& b) {
                     if (a.prefix.size() != b.prefix.size())
                       return a.prefix.size() > b.prefix.size();
                     return !a.host.empty() && b.host.empty();
                   });
  for (const auto& i : watch.instances) {
    const auto it = std::find_if(table->services_.begin(), table->services_.end(),
                                 [&](const Cluster& s) { return s.name == i.service; });
    if (it == table->services_.end()) continue;
    if (i.state == registry::State::kStarting || i.state == registry::State::kBackoff) ++it->coming;
    if (i.state != registry::State::kReady) continue;
    const auto started =
        std::chrono::duration_cast<std::chrono::milliseconds>(i.started_at.time_since_epoch())
            .count();
    it->ready.push_back({i.id, i.host, i.port, started});
    if (it->policy.slow_start.count() > 0)
      it->young_until_ms = std::max(it->young_until_ms, started + it->policy.slow_start.count());
  }
  if (!local_host.empty()) {
    // The hosts with ready instances: as many gateways, each taken to get an equal share.
    std::set<std::string> hosts;
    for (const auto& s : table->services_) {
      for (const auto& e : s.ready) hosts.insert(e.host);
    }
    const std::size_t host_count = hosts.size();
    for (auto& s : table->services_) {
      const auto local_end = std::stable_partition(
          s.ready.begin(), s.ready.end(), [&](const Endpoint& e) { return e.host == local_host; });
      s.local = static_cast<std::size_t>(local_end - s.ready.begin());
      if (s.local == 0 || s.local == s.ready.size()) continue;
      s.local_share = std::min(
          1.0, static_cast<double>(s.local * host_count) / static_cast<double>(s.ready.size()));
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

const Cluster* RouteTable::find(std::string_view service) const {
  for (const auto& s : services_) {
    if (s.name == service) return &s;
  }
  return nullptr;
}

const Cluster* RouteTable::find_by_port(std::uint16_t port) const {
  for (const auto& s : services_) {
    if (s.discovery_port == port) return &s;
  }
  return nullptr;
}

}  // namespace squadron::gateway
