#include "squadron/core/latency.hpp"

#include <algorithm>

namespace squadron::core {

double latency_quantile_ms(std::span<const std::uint64_t> counts,
                           std::span<const std::uint64_t> bounds_us, double q) {
  std::uint64_t total = 0;
  for (auto c : counts) total += c;
  if (total == 0) return 0;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  double seen = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const double here = static_cast<double>(counts[i]);
    if (here > 0 && seen + here >= rank) {
      double lo = 0;
      if (i > 0 && !bounds_us.empty())
        lo = static_cast<double>(bounds_us[std::min(i, bounds_us.size()) - 1]);
      // The last bucket has no upper bound: report its lower one.
      if (i >= bounds_us.size()) return lo / 1000.0;
      const double hi = static_cast<double>(bounds_us[i]);
      return (lo + (hi - lo) * ((rank - seen) / here)) / 1000.0;
    }
    seen += here;
  }
  return bounds_us.empty() ? 0.0 : static_cast<double>(bounds_us.back()) / 1000.0;
}

}  // namespace squadron::core
