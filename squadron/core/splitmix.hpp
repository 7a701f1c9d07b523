// SplitMix64: a fast, well-mixed generator for request ids, load-balancing draws and jitter
// (not for secrets: tokens come from getrandom()).
//
//   core::SplitMix64 rng{seed};
//   std::uint64_t r = rng();
//
// Thread safety: a value; one per thread.
#pragma once

#include <cstdint>

namespace squadron::core {

struct SplitMix64 {
  std::uint64_t state = 0;
  void seed(std::uint64_t s) noexcept { state = s; }
  std::uint64_t operator()() noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

}  // namespace squadron::core
