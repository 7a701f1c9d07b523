// The watch contract between the control plane and the gateway: the snapshot the gateway
// follows — every service with its routes, its proxy policy and its discovery port, and the
// instances — as one set of types, one JSON codec and one set of bounds. The control API writes
// it (to_json), the gateway reads it (watch_from_json), the manifest validates against the same
// bounds, and the types are the manifest's own (`routes:`, `proxy:`).
//
//   registry::Watch w{reg.revision(), services, reg.instances()};
//   auto body = registry::to_json(w, now);                       // control plane
//   auto back = registry::watch_from_json(body, error);          // gateway; nullopt + error
//
// Thread safety: plain values and pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "squadron/registry/instance.hpp"

namespace squadron::registry {

// The bounds every side applies: the manifest refuses values outside them, the codec ignores
// them (the field keeps its default), so a gateway never runs on a value the manifest forbids.
namespace bounds {
inline constexpr std::chrono::milliseconds kMaxDuration = std::chrono::hours(24);
inline constexpr int kMaxRetries = 5;
inline constexpr int kMaxInFlight = 1'000'000;
inline constexpr int kMaxEjectAfter = 1000;
inline constexpr int kMaxRate = 10'000'000;  // requests a second, and burst
}  // namespace bounds

// A route of a service: `routes:` in the manifest.
struct Route {
  std::string prefix;         // starts with '/'
  bool strip_prefix = false;  // default false
  std::string host;           // empty: any host
  // A token bucket over all of this route's requests: `rate` a second, bursts of `burst`;
  // beyond it 429 with Retry-After. 0: no limit (the default).
  int rate = 0;
  int burst = 0;  // default: rate (one second's worth)
  bool operator==(const Route&) const = default;
};

// How the gateway treats a service's requests: `proxy:` in the manifest (the design doc's
// defaults).
struct ProxyPolicy {
  std::chrono::milliseconds timeout = std::chrono::seconds(15);         // route timeout -> 504
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(1);  // per attempt
  int retries = 2;           // extra attempts for idempotent requests, on another instance
  int max_in_flight = 1024;  // circuit breaker: beyond this, 503 with Retry-After at once
  // HTTP/1.1 connections open to each instance at once, at most (shared out over the gateway's
  // threads); a request past it waits in the gateway for one to come free, first come first
  // served, within its timeout (HAProxy's server maxconn and queue, Envoy's max_connections).
  int max_connections = 1024;
  int eject_after = 5;  // consecutive failures (5xx, connect errors) that eject an instance
  std::chrono::milliseconds eject_time = std::chrono::seconds(30);  // x times ejected
  std::chrono::milliseconds slow_start = std::chrono::seconds(3);   // new instances ramp up; 0: off
  std::string balance = "least-request";                            // or "round-robin", "random"
  // Session affinity: "" (none), "cookie" (the gateway sets cookie `affinity_name` naming the
  // instance and follows it), "header" (requests with the same value of field `affinity_name`),
  // "source_ip" (from the same address) go to the same ready instance while it stays ready.
  std::string affinity;
  std::string affinity_name;
  // How the gateway speaks to the instances: "" (HTTP/1.1, kept-alive connections) or "h2c"
  // (HTTP/2 by prior knowledge, streams multiplexed on few connections: gRPC services).
  std::string protocol;
  bool operator==(const ProxyPolicy&) const = default;
};

// The balancing modes ProxyPolicy::balance may name.
bool known_balance(std::string_view balance) noexcept;

struct WatchService {
  std::string name;
  std::vector<Route> routes;
  ProxyPolicy proxy;
  // Autoscaled with min 0: a request finding no ready instance waits while the service wakes.
  bool scale_to_zero = false;
  std::uint16_t discovery_port = 0;  // the gateway's listener for SQUADRON_<NAME>_URL; 0: none
  bool operator==(const WatchService&) const = default;
};

// An upstream named by address instead of instances (the standalone gateway's file): the
// service as the gateway routes it and its endpoints as written, "10.0.0.5:8080", "[::1]:8080"
// or "catalog.shop.svc:80" (every address behind a name).
struct UpstreamSpec {
  WatchService service;
  std::vector<std::string> endpoints;
  bool operator==(const UpstreamSpec&) const = default;
};

struct Watch {
  std::uint64_t revision = 0;
  std::vector<WatchService> services;
  std::vector<Instance> instances;
};

// {"revision", "services": [{"name", "routes": [{"prefix", "strip_prefix", "host"?,
// "rate_limit"?: {"rate", "burst"}}], "proxy": {"timeout_ms", "connect_timeout_ms", "retries",
// "max_in_flight", "max_connections", "eject_after", "eject_time_ms", "slow_start_ms",
// "scale_to_zero", "balance"}, "discovery_port"?}], "instances": [to_json(Instance)...]}.
boost::json::object to_json(const Watch& w, std::chrono::system_clock::time_point now);
// Reads what to_json() wrote (a route may also be a bare prefix string). Values outside the
// bounds keep their defaults; a route without a '/' prefix and an unreadable instance are
// skipped. nullopt and `error` when the shape is wrong (no services or instances array, a
// service without a name).
std::optional<Watch> watch_from_json(const boost::json::value& v, std::string& error);

// The whole number at `key` of `o` within [lo, hi] (stored as int64, or as uint64 when built in
// memory from an unsigned type); nullopt when absent, not a whole number or out of bounds.
std::optional<std::int64_t> bounded(const boost::json::object& o, std::string_view key,
                                    std::int64_t lo, std::int64_t hi);

}  // namespace squadron::registry
