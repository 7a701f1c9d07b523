// The gateway's counts per service and per route: requests, in flight, answers by status class,
// a latency histogram (p50/p90/p99 derivable), retries, ejections, circuit-breaker rejections
// and opens, rate-limited requests and timeouts. Each I/O thread writes its own copy without
// locked instructions; /metrics (Prometheus text) and /metrics.json sum the copies.
//
//   Metrics m{threads};
//   Stats& s = m.service(worker, "hello");     // once per table, not per request
//   s.requests.add(); ... s.finish(200, took);
//   std::string text = m.prometheus();         // any thread
//
// Thread safety: a Stats is written by one thread and read by any; Metrics' lookups and
// exports lock.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "squadron/core/latency.hpp"

namespace squadron::gateway {

// A count with one writer: a relaxed load and store (a plain move on x86), read by any thread.
class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// The buckets are the contract with the fleet's reader (squadron/core/latency.hpp).
using core::kLatencyBoundsUs;
using core::kLatencyBuckets;
using core::latency_quantile_ms;

// gRPC's status codes, 0 (OK) to 16 (UNAUTHENTICATED).
inline constexpr std::size_t kGrpcCodes = 17;

struct Stats {
  Counter requests;
  Counter in_flight;                 // requests taken minus answered (a gauge)
  Counter tunnels;                   // upgraded connections (WebSocket) open now (a gauge)
  std::array<Counter, 5> responses;  // by status class 1xx..5xx, the gateway's own answers too
  Counter retries;
  Counter ejections;
  Counter breaker_rejections;  // answered 503 at once: too many in flight
  Counter breaker_opens;       // times the in-flight limit was reached from below
  Counter rate_limited;        // answered 429
  Counter timeouts;            // answered 504
  // gRPC calls by the grpc-status they ended with (0 OK ... 16 UNAUTHENTICATED; the gateway's
  // own too, 14 UNAVAILABLE or 4 DEADLINE_EXCEEDED).
  std::array<Counter, kGrpcCodes> grpc;
  std::array<Counter, kLatencyBuckets> latency;
  Counter latency_sum_us;

  // An answer with `status` after `took`.
  void finish(int status, std::chrono::nanoseconds took) noexcept;
};

// Stats summed over threads.
struct Totals {
  std::uint64_t requests = 0;
  std::int64_t in_flight = 0;
  std::int64_t tunnels = 0;
  std::array<std::uint64_t, 5> responses{};
  std::uint64_t retries = 0, ejections = 0, breaker_rejections = 0, breaker_opens = 0;
  std::uint64_t rate_limited = 0, timeouts = 0;
  std::array<std::uint64_t, kGrpcCodes> grpc{};
  std::array<std::uint64_t, kLatencyBuckets> latency{};
  std::uint64_t latency_sum_us = 0;
  void add(const Stats& s) noexcept;
};

class Metrics final {
 public:
  explicit Metrics(std::size_t threads);

  // The stats of `service` (or of its route `route`) kept by I/O thread `worker`: made on first
  // use, at a stable address for the life of Metrics.
  Stats& service(std::size_t worker, std::string_view service);
  Stats& route(std::size_t worker, std::string_view service, std::string_view route);

  // Prometheus text exposition (version 0.0.4).
  std::string prometheus() const;
  // {"latency_bounds_us":[..], "services":[{"name", ...totals}], "routes":[{"service","route",
  // ...totals}]}; totals: requests, in_flight, responses{"1xx".."5xx"}, retries, ejections,
  // breaker_rejections, breaker_opens, rate_limited, timeouts, latency_us{"counts","sum"}, and
  // grpc{"<code>": calls} when the service has had gRPC calls.
  boost::json::value json() const;

 private:
  struct Entry {
    std::string service;
    std::string route;  // empty for a service's entry
    std::vector<std::unique_ptr<Stats>> per_worker;
    Totals totals() const;
  };
  Stats& find(std::vector<std::unique_ptr<Entry>>& list, std::size_t worker,
              std::string_view service, std::string_view route);

  std::size_t threads_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Entry>> services_;
  std::vector<std::unique_ptr<Entry>> routes_;
};

}  // namespace squadron::gateway
