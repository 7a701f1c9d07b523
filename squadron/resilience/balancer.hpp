// Load balancing over a service's ready instances, and passive health (outlier ejection).
//
// Locality first, when the pool names local endpoints: a share of the picks stays on the caller's
// host while a local instance is healthy (Pool::local, local_share); then the policy:
// least-request (the default, as Envoy's): of two instances drawn at random, the one with fewer
// requests in flight through this balancer; round-robin; random. An instance that fails
// `eject_after` times in a row (5xx answers, refused or reset connections) is ejected for
// `eject_time` x the times it was ejected, never leaving its service without an instance.
// One balancer per I/O thread, so counts need no atomics.
//
//   Balancer lb{seed};
//   auto i = lb.pick(pool, tried, now);   // index into pool.ready, or nullopt
//   lb.started(ep); ... lb.finished(ep); lb.record(pool, ep, ok, now);
//
// It sees a service as a Pool: a span of its ready endpoints and the policy fields it uses, so
// that any caller (the gateway, a client) balances with it, not only the gateway's types.
//
// Thread safety: one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "squadron/core/splitmix.hpp"

namespace squadron::resilience {

struct Endpoint {
  std::string id;  // instance id, "hello-3"
  std::string host;
  std::uint16_t port = 0;
  std::int64_t started_at_ms = 0;  // wall clock (for slow start)
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

enum class Balance { kLeastRequest, kRoundRobin, kRandom };

// What the balancer sees of a service: its ready endpoints and how to treat them.
struct Pool {
  std::span<const Endpoint> ready;
  Balance balance = Balance::kLeastRequest;
  std::chrono::milliseconds slow_start{0};      // a new endpoint's share grows over this
  std::int64_t young_until_ms = 0;              // some endpoint is in its slow start before this
  int eject_after = 5;                          // consecutive failures that eject
  std::chrono::milliseconds eject_time{30000};  // x the times ejected
  // Locality (Envoy's zone-aware routing, with a host for a zone): the first `local` of `ready`
  // run on the caller's own host; a pick stays among them with probability `local_share` (1:
  // always) while one of them is healthy, else goes to the others. 0 local: no preference.
  std::size_t local = 0;
  double local_share = 1.0;
};

class Balancer final {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit Balancer(std::uint64_t seed) : rng_{seed} {}

  // An instance of `service.ready` not among `tried` (instance ids), by the service's policy,
  // skipping ejected ones unless only ejected ones are left; nullopt when all were tried.
  // `wall_ms`: the wall clock in ms (for slow start; 0 reads it when needed).
  std::optional<std::size_t> pick(const Pool& service, std::span<const std::string_view> tried,
                                  TimePoint now, std::int64_t wall_ms = 0);
  // Session affinity: the endpoint of `service.ready` that `key` maps to by rendezvous hashing
  // (the highest hash of the key and the endpoint's id), among those not in `tried` and not
  // ejected: an endpoint that leaves moves only its own keys, one that comes takes only its
  // share. nullopt when none is left.
  std::optional<std::size_t> pick_by_key(const Pool& service, std::uint64_t key,
                                         std::span<const std::string_view> tried,
                                         TimePoint now) const;
  void started(const Endpoint& e) { ++in_flight_[e.id]; }
  void finished(const Endpoint& e) {  // the entry stays at 0: no node to allocate next time
    auto it = in_flight_.find(e.id);
    if (it != in_flight_.end() && it->second > 0) --it->second;
  }
  int in_flight(const std::string& id) const {
    auto it = in_flight_.find(id);
    return it == in_flight_.end() ? 0 : it->second;
  }
  // Every instance with requests in flight through this balancer, and how many.
  std::vector<std::pair<std::string, int>> busy() const;

  // The outcome of one attempt on `e`. Returns true when this failure ejected it.
  bool record(const Pool& service, const Endpoint& e, bool ok, TimePoint now);
  bool ejected(const std::string& id, TimePoint now) const;
  std::uint64_t ejections() const noexcept { return ejections_; }

 private:
  struct Health {
    int failures = 0;       // consecutive
    int times_ejected = 0;  // grows the next ejection
    TimePoint until{};
  };
  std::uint64_t next() noexcept { return rng_(); }
  std::size_t choose(const Pool& service, const std::vector<std::size_t>& open,
                     std::int64_t wall_ms);
  // pick() without locality.
  std::optional<std::size_t> pick_any(const Pool& service, std::span<const std::string_view> tried,
                                      TimePoint now, std::int64_t wall_ms);

  core::SplitMix64 rng_;
  std::uint64_t round_robin_ = 0;
  std::unordered_map<std::string, int> in_flight_;
  std::unordered_map<std::string, Health> health_;
  TimePoint ejections_end_{};  // no instance is ejected at or after this
  std::uint64_t ejections_ = 0;
};

}  // namespace squadron::resilience
