// The seam between retiring an instance and the traffic still going to it: the fleet asks, the
// gateway's sampler (Traffic) answers from the gateway's /upstreams.
//
// Thread safety: on the fleet's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace squadron::control {

class DrainGate {
 public:
  virtual ~DrainGate() = default;
  // `done(true)` once the gateway routes by registry revision `revision` (or a later one) and
  // has no request in flight to `id`; `done(false)` at `deadline` if not before. `done` is not
  // called if the gate goes away first.
  virtual void when_idle(const std::string& id, std::uint64_t revision,
                         std::chrono::steady_clock::time_point deadline,
                         std::function<void(bool idle)> done) = 0;
};

}  // namespace squadron::control
