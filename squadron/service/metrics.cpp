#include "squadron/service/metrics.hpp"

#include <fmt/format.h>

#include "squadron/core/prometheus.hpp"

namespace squadron::service {
namespace {
using Counter = std::atomic<std::uint64_t>;
// Single-writer increment: no lock prefix; readers see a recent value.
inline void bump(Counter& c, std::uint64_t by = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}
constexpr int kMinStatus = 100;
constexpr int kStatusSlots = 500;  // 100..599

}  // namespace

struct alignas(64) Metrics::RouteShard {
  std::array<Counter, kStatusSlots> by_status{};
  std::array<Counter, kBuckets.size() + 1> buckets{};  // last one is +Inf
  Counter sum_ns{0};
  Counter count{0};
};

struct Metrics::Shard {
  explicit Shard(std::size_t route_count) : routes(route_count) {}
  std::vector<RouteShard> routes;
  alignas(64) std::atomic<std::int64_t> in_flight{0};
};

Metrics::Metrics(std::vector<std::string> routes, std::size_t workers)
    : routes_(std::move(routes)) {
  for (std::size_t i = 0; i < workers; ++i)
    shards_.push_back(std::make_unique<Shard>(routes_.size()));
}

Metrics::~Metrics() = default;

void Metrics::record(std::size_t worker, std::size_t route, int status,
                     std::chrono::nanoseconds elapsed) noexcept {
  RouteShard& r = shards_[worker]->routes[route];
  if (status < kMinStatus || status >= kMinStatus + kStatusSlots) status = 500;
  bump(r.by_status[static_cast<std::size_t>(status - kMinStatus)]);
  const double seconds = static_cast<double>(elapsed.count()) * 1e-9;
  std::size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  bump(r.buckets[b]);
  bump(r.sum_ns, static_cast<std::uint64_t>(elapsed.count() > 0 ? elapsed.count() : 0));
  bump(r.count);
}

void Metrics::add_in_flight(std::size_t worker, int delta) noexcept {
  auto& g = shards_[worker]->in_flight;
  g.store(g.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

std::string Metrics::render(std::string_view service) const {
  const std::string svc = core::prometheus_label(service);
  std::string out;
  auto it = std::back_inserter(out);
  out += "# HELP squadron_http_requests_total Requests answered, by route and status code.\n";
  out += "# TYPE squadron_http_requests_total counter\n";
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    const std::string route = core::prometheus_label(routes_[r]);
    for (int s = 0; s < kStatusSlots; ++s) {
      std::uint64_t n = 0;
      for (const auto& sh : shards_)
        n += sh->routes[r].by_status[static_cast<std::size_t>(s)].load(std::memory_order_relaxed);
      if (n == 0) continue;
      fmt::format_to(
          it, "squadron_http_requests_total{{service=\"{}\",route=\"{}\",status=\"{}\"}} {}\n", svc,
          route, s + kMinStatus, n);
    }
  }
  out +=
      "# HELP squadron_http_request_duration_seconds Time from a complete request to its "
      "response.\n";
  out += "# TYPE squadron_http_request_duration_seconds histogram\n";
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    std::array<std::uint64_t, kBuckets.size() + 1> b{};
    std::uint64_t sum_ns = 0, count = 0;
    for (const auto& sh : shards_) {
      const RouteShard& rs = sh->routes[r];
      for (std::size_t i = 0; i < b.size(); ++i)
        b[i] += rs.buckets[i].load(std::memory_order_relaxed);
      sum_ns += rs.sum_ns.load(std::memory_order_relaxed);
      count += rs.count.load(std::memory_order_relaxed);
    }
    if (count == 0) continue;
    const std::string route = core::prometheus_label(routes_[r]);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += b[i];
      fmt::format_to(it,
                     "squadron_http_request_duration_seconds_bucket{{service=\"{}\",route=\"{}\","
                     "le=\"{}\"}} {}\n",
                     svc, route, kBuckets[i], cumulative);
    }
    cumulative += b[kBuckets.size()];
    fmt::format_to(it,
                   "squadron_http_request_duration_seconds_bucket{{service=\"{}\",route=\"{}\",le="
                   "\"+Inf\"}} {}\n",
                   svc, route, cumulative);
    fmt::format_to(it,
                   "squadron_http_request_duration_seconds_sum{{service=\"{}\",route=\"{}\"}} {}\n",
                   svc, route, static_cast<double>(sum_ns) * 1e-9);
    fmt::format_to(
        it, "squadron_http_request_duration_seconds_count{{service=\"{}\",route=\"{}\"}} {}\n", svc,
        route, count);
  }
  std::int64_t in_flight = 0;
  for (const auto& sh : shards_) in_flight += sh->in_flight.load(std::memory_order_relaxed);
  out += "# HELP squadron_http_requests_in_flight Requests being handled now.\n";
  out += "# TYPE squadron_http_requests_in_flight gauge\n";
  fmt::format_to(it, "squadron_http_requests_in_flight{{service=\"{}\"}} {}\n", svc, in_flight);
  return out;
}

}  // namespace squadron::service
