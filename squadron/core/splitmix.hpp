// SplitMix64: a fast, well-mixed generator for request ids, load-balancing draws and jitter
// (not for secrets: tokens come from getrandom()).
//
//   core::SplitMix64 rng{seed};
//   std::uint64_t r = rng();
//
// Thread safety: a value; one per thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace squadron::core {

// SplitMix64's finaliser: every bit of `z` reaches every bit of the result.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// FNV-1a, 64 bits: a stable hash of `s` (the same in every process and run: affinity keys and
// the instance names they map to).
constexpr std::uint64_t fnv1a64(std::string_view s) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char ch : s) {
    h ^= static_cast<unsigned char>(ch);
    h *= 0x100000001b3ULL;
  }
  return h;
}

struct SplitMix64 {
  std::uint64_t state = 0;
  void seed(std::uint64_t s) noexcept { state = s; }
  std::uint64_t operator()() noexcept { return mix64(state += 0x9e3779b97f4a7c15ULL); }
};

}  // namespace squadron::core
