// Full-jitter backoff (AWS's "Exponential Backoff And Jitter"): before retry `attempt` (1, 2,
// ...) wait `floor` plus a uniform draw from [0, min(cap, base * 2^(attempt-1))], so that
// clients retrying together spread out instead of arriving in waves.
//
//   const auto wait = resilience::full_jitter(attempt, {.base = 25ms, .cap = 250ms}, rng());
//
// Thread safety: a pure function; the caller brings the random number.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace squadron::resilience {

struct JitterPolicy {
  std::chrono::milliseconds base{25};  // the window of the first retry
  std::chrono::milliseconds cap{250};  // the widest window
  std::chrono::milliseconds floor{0};  // always waited, below the draw
};

// The wait before retry `attempt` (>= 1), from `random` (any 64-bit value, uniformly drawn).
inline std::chrono::milliseconds full_jitter(int attempt, const JitterPolicy& p,
                                             std::uint64_t random) noexcept {
  const int doublings = std::clamp(attempt - 1, 0, 30);
  const std::int64_t window =
      std::min<std::int64_t>(p.cap.count(), p.base.count() << std::min(doublings, 20));
  const auto drawn = static_cast<std::int64_t>(random % static_cast<std::uint64_t>(window + 1));
  return p.floor + std::chrono::milliseconds(drawn);
}

}  // namespace squadron::resilience
