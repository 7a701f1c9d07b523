// Least-request load balancing with the power of two choices (the gateway's default, as
// Envoy's): of two ready endpoints drawn at random, the one with fewer requests in flight
// through this balancer. One balancer per I/O thread, so counts need no atomics.
//
//   Balancer lb{seed};
//   auto i = lb.pick(service.ready, tried);   // index into ready, or nullopt
//   lb.started(ep); ... lb.finished(ep);
//
// Thread safety: one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "squadron/gateway/route_table.hpp"

namespace squadron::gateway {

class Balancer final {
 public:
  explicit Balancer(std::uint64_t seed) : state_(seed) {}

  // An endpoint of `ready` not among `tried` (instance ids): of two drawn at random, the one
  // with fewer requests in flight; nullopt when every one was tried.
  std::optional<std::size_t> pick(const std::vector<Endpoint>& ready,
                                  std::span<const std::string_view> tried);
  void started(const Endpoint& e) { ++in_flight_[e.id]; }
  void finished(const Endpoint& e) {
    auto it = in_flight_.find(e.id);
    if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
  }
  int in_flight(const std::string& id) const {
    auto it = in_flight_.find(id);
    return it == in_flight_.end() ? 0 : it->second;
  }

 private:
  std::uint64_t next();  // SplitMix64

  std::uint64_t state_;
  std::unordered_map<std::string, int> in_flight_;
};

}  // namespace squadron::gateway
