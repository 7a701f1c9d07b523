// The latency histogram the gateway counts and the fleet reads back from its /metrics.json:
// the buckets' bounds are part of that contract, and the quantile is read from them.
//
//   const double p99 = core::latency_quantile_ms(counts, core::kLatencyBoundsUs, 0.99);
//
// Thread safety: constants and a pure function.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace squadron::core {

// Upper bounds of the latency buckets in microseconds; one more bucket counts the rest.
inline constexpr std::array<std::uint64_t, 18> kLatencyBoundsUs = {
    100,    250,    500,    1000,    2500,    5000,    10000,    25000,    50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 15000000, 30000000};
inline constexpr std::size_t kLatencyBuckets = kLatencyBoundsUs.size() + 1;

// The latency quantile `q` (0..1) in milliseconds from histogram bucket counts (one more than
// `bounds_us`, the buckets' upper bounds), interpolated inside the bucket it falls in; 0 when
// there are no counts.
double latency_quantile_ms(std::span<const std::uint64_t> counts,
                           std::span<const std::uint64_t> bounds_us, double q);

}  // namespace squadron::core
