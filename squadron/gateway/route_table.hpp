// What the gateway routes by: every service's routes and its ready endpoints, as one immutable
// snapshot built from the control API's watch answer. Lookups are by Host and the longest
// matching path prefix.
//
//   auto table = RouteTable::from_watch(json, error);   // nullptr + error if malformed
//   if (const auto* m = table->match(host, path)) forward(m->service, m->upstream_path(path));
//
// Thread safety: immutable once built; shared between threads by shared_ptr<const RouteTable>.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/fwd.hpp>

#include "squadron/registry/watch.hpp"
#include "squadron/resilience/balancer.hpp"

namespace squadron::gateway {

// An instance as the watch carries it (started_at_ms from the registry), and the balancing
// modes: the resilience layer's, which balances over them.
using Endpoint = resilience::Endpoint;
using Balance = resilience::Balance;

// The manifest's `proxy:` of a service as the watch contract carries it, with what the gateway
// derives from it.
struct Policy : registry::ProxyPolicy {
  Balance balancing = Balance::kLeastRequest;  // `balance`, read
  // The service may be scaled to zero (autoscale min 0): a request finding no ready instance
  // waits (up to the route timeout) while the gateway wakes the service, instead of a 503.
  bool scale_to_zero = false;
};

// A service as the gateway routes to it (Envoy's "cluster"): its ready endpoints and policy.
struct Cluster {
  std::string name;
  std::vector<Endpoint> ready;  // instances in state `ready`, in registry order
  Policy policy;
  // The gateway's loopback port for this service (its SQUADRON_<NAME>_URL); 0: none named.
  std::uint16_t discovery_port = 0;
  std::int64_t young_until_ms = 0;  // some instance is in its slow start before this (wall ms)
  // Instances starting or restarting (backoff): with none ready, a request waits for them (up to
  // the route timeout) instead of failing, as for a service waking from zero.
  int coming = 0;
  // Locality (a cluster's gateway on each host): the first `local` of `ready` run on the
  // gateway's own host, and the share of requests they take (resilience::Pool).
  std::size_t local = 0;
  double local_share = 1.0;
};

// The service as the balancer sees it.
inline resilience::Pool pool_of(const Cluster& s) {
  return {s.ready,          s.policy.balancing,   s.policy.slow_start,
          s.young_until_ms, s.policy.eject_after, s.policy.eject_time,
          s.local,          s.local_share};
}

// A route of the watch contract, and the index of its service in the table.
struct Route : registry::Route {
  std::size_t service = 0;
  // "host/prefix" or "/prefix": the route's name in metrics and rate limits.
  std::string key() const { return host + prefix; }
};

inline constexpr std::size_t kNoRoute = ~std::size_t{0};

struct RouteMatch {
  const Cluster* service = nullptr;
  std::string_view prefix;
  bool strip_prefix = false;
  std::size_t route = kNoRoute;  // index into RouteTable::routes(); kNoRoute: an internal port
  // The path to send upstream: `path` without the prefix if stripped ("/py/x" -> "/x").
  std::string upstream_target(std::string_view target) const;
  void append_upstream_target(std::string_view target, std::string& out) const;
  // The same as two views to write one after the other ("/" or "", then the rest): no copy.
  std::pair<std::string_view, std::string_view> upstream_target_parts(
      std::string_view target) const noexcept;
};

class RouteTable final {
 public:
  // From the watch contract's JSON (registry/watch.hpp); nullptr and `error` when it cannot
  // be read.
  static std::shared_ptr<const RouteTable> from_watch(const boost::json::value& v,
                                                      std::string& error,
                                                      std::string_view local_host = {});
  // From the watch contract: the ready instances only, routes longest prefix first. With
  // `local_host` (the gateway's own address, in a cluster), each service's instances on it come
  // first, and take the share of its requests that this host's gateway would send them if every
  // host's gateway had as much traffic (Envoy's zone-aware routing: all of it when they are at
  // least their host's share of the instances, else that ratio).
  static std::shared_ptr<const RouteTable> from(const registry::Watch& watch,
                                                std::string_view local_host = {});

  // The route for `host` (the Host header, port removed) and `path`: the longest prefix among
  // routes for that host and routes for any host (a host-specific route wins a tie). A prefix
  // matches whole segments: "/hello" matches "/hello" and "/hello/x", not "/helloworld".
  std::optional<RouteMatch> match(std::string_view host, std::string_view path) const;

  const Cluster* find(std::string_view service) const;
  // The service whose discovery port `port` is; nullptr if none.
  const Cluster* find_by_port(std::uint16_t port) const;
  std::uint64_t revision() const noexcept { return revision_; }
  const std::vector<Cluster>& services() const noexcept { return services_; }
  const std::vector<Route>& routes() const noexcept { return routes_; }
  std::size_t index_of(const Cluster& s) const noexcept {
    return static_cast<std::size_t>(&s - services_.data());
  }

 private:
  std::uint64_t revision_ = 0;
  std::vector<Cluster> services_;
  std::vector<Route> routes_;  // longest prefix first
};

}  // namespace squadron::gateway
