// Each service's traffic as the gateway sees it, sampled every second from the gateway's admin
// endpoint (/metrics.json) and kept for the last minutes: requests a second, requests in
// flight, error rate and p50/p90/p99 latency over the last interval. The control API serves it
// (/api/v1/metrics), the autoscaler and the dashboard read it.
//
//   Traffic traffic{io.get_executor(), admin_port};
//   traffic.start();                                  // every second, until stop()
//   const auto* h = traffic.history("hello");         // newest last
//
// ingest() takes one /metrics.json answer with the time it was read: the sampling loop calls
// it, and tests feed it synthetic counts.
//
// Thread safety: the io_context's thread (the fleet's).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/fwd.hpp>

#include "squadron/control/drain_gate.hpp"

namespace squadron::control {

struct TrafficSample {
  std::int64_t at_ms = 0;  // wall clock
  double rps = 0;          // requests a second since the previous sample
  double in_flight = 0;    // requests being answered at the sample
  // Requests being answered on average over the interval (Little's law: the time spent
  // answering divided by the interval), or in_flight when higher (long requests not done yet).
  double concurrency = 0;
  double error_rate = 0;  // share of answers that were 5xx since the previous sample (0..1)
  double p50_ms = 0, p90_ms = 0, p99_ms = 0;  // latency since the previous sample
  std::uint64_t requests = 0;                 // since the gateway started (cumulative)
  std::uint64_t errors = 0;                   // 5xx answers, cumulative
  std::uint64_t retries = 0, ejections = 0, breaker_rejections = 0, rate_limited = 0,
                timeouts = 0;  // cumulative
};

class Traffic final : public DrainGate {
 public:
  using Clock = std::chrono::steady_clock;

  // `admin_port`: the gateway's admin listener on 127.0.0.1 (0: no gateway, nothing sampled).
  Traffic(boost::asio::io_context::executor_type executor, std::uint16_t admin_port,
          std::size_t keep = 600);
  ~Traffic() override;

  void start();
  void stop();
  std::uint16_t admin_port() const noexcept { return admin_port_; }

  // One /metrics.json answer, read at `now` (steady) / `wall_ms`. A gateway restart (counts
  // going back) starts the deltas afresh. Returns false if `metrics` is not such an answer.
  bool ingest(const boost::json::value& metrics, Clock::time_point now, std::int64_t wall_ms);

  // The samples of `service`, oldest first (nullptr: none yet).
  const std::deque<TrafficSample>* history(std::string_view service) const;
  // {"interval_ms", "services": {name: {"latest": sample, "history": [samples...]}}}, the
  // history cut to its last `history` samples (0: latest only), for one service or all.
  boost::json::value json(std::size_t history, std::string_view service = {}) const;

  // Calls `done(true)` once the gateway routes by registry revision `revision` or a later one
  // and has no request in flight to `instance`, or `done(false)` at `deadline`. One loop asks
  // the gateway's /upstreams every 10 ms for all the instances waiting (a scale-down of fifty
  // is one request per round, not fifty). Without a gateway, done(true) at once. `done` is not
  // called if this object goes away first.
  void when_idle(const std::string& instance, std::uint64_t revision, Clock::time_point deadline,
                 std::function<void(bool)> done) override;
  // Whether a /upstreams answer says that: the gateway has table `revision` or later and
  // nothing in flight to `instance`.
  static bool idle_in(const boost::json::value& upstreams, std::string_view instance,
                      std::uint64_t revision);

  // Called after every sampling pass (the autoscaler's cue).
  std::function<void()> on_sample;
  std::chrono::milliseconds interval = std::chrono::seconds(1);

 private:
  struct Previous {
    Clock::time_point at;
    std::uint64_t requests = 0;
    std::uint64_t answers = 0;
    std::uint64_t errors = 0;
    std::uint64_t latency_sum_us = 0;
    std::vector<std::uint64_t> latency;
  };
  boost::asio::awaitable<void> loop();
  boost::asio::awaitable<void> drain_loop(std::shared_ptr<bool> alive);
  struct IdleWaiter {
    std::string instance;
    std::uint64_t revision;
    Clock::time_point deadline;
    std::function<void(bool)> done;
  };
  std::vector<IdleWaiter> idle_waiters_;
  bool drain_loop_running_ = false;

  boost::asio::io_context::executor_type executor_;
  std::uint16_t admin_port_;
  std::size_t keep_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
  std::map<std::string, Previous, std::less<>> previous_;
  std::map<std::string, std::deque<TrafficSample>, std::less<>> samples_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

boost::json::value to_json(const TrafficSample& s);

}  // namespace squadron::control
