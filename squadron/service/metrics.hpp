// Request metrics of a service, kept per I/O thread so that recording is a few plain stores
// (one writer per shard, no atomic read-modify-write, no shared cache line) and summed only
// when /metrics is scraped.
//
//   Metrics m{{"/hello", "/users/{id}"}, threads};
//   m.record(worker, route, 200, elapsed);
//   std::string text = m.render("hello");   // Prometheus text format 0.0.4 (connections: see
//                                           // http/connection_metrics.hpp)
//
// Thread safety: record()/add_in_flight() for shard `worker` only from I/O thread `worker`;
// render() from any thread (reads are relaxed atomics: a scrape may be a request behind).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace squadron::service {

class Metrics final {
 public:
  // Upper bounds of the latency histogram, in seconds (Prometheus client defaults, plus 0.5 ms
  // and 1 ms for fast services).
  static constexpr std::array<double, 14> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};

  Metrics(std::vector<std::string> routes, std::size_t workers);
  ~Metrics();

  // Counts one answered request of route index `route` (< routes.size()).
  void record(std::size_t worker, std::size_t route, int status,
              std::chrono::nanoseconds elapsed) noexcept;
  void add_in_flight(std::size_t worker, int delta) noexcept;

  std::string render(std::string_view service) const;

 private:
  struct RouteShard;
  struct Shard;
  std::vector<std::string> routes_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace squadron::service
