// The autoscaler's arithmetic for one service, free of I/O and clocks: fed one observation a
// second (the gateway's traffic, the instances' CPU), it answers how many replicas the service
// should have and which rule decided, with the inputs in words.
//
//   Autoscaler a{spec};                                // the manifest's `autoscale:`
//   auto d = a.evaluate({.now = t, .ready = 2, .current = 2, .value = 31.0});
//   if (d.desired != 2) fleet.autoscale("hello", d.desired, d.explain);
//
// The rules (the design doc's, after Kubernetes' HPA and Knative's KPA):
//   desired = ceil(total / target), total being the metric summed over ready instances
//             (= ready x the per-instance value);
//   within a tolerance of 0.1 of the target per instance: no change;
//   panic: when the last panic_window's demand is 2x what the current replicas are meant to
//          carry, scale up at once to what it needs, and do not scale down until the panic
//          window has passed without such demand;
//   up:    otherwise scale up as soon as the last panic_window's average asks for more;
//   down:  only to the highest recommendation of the last scale_down_delay (so a dip shorter
//          than the delay changes nothing: no flapping), never below min;
//   never during a rollout; to zero only when min is 0 and no request came for
//   scale_down_delay; from zero only when woken (the gateway holds a request: touch() and one
//   replica, by AutoscaleLoop::wake).
//
// Thread safety: a value; one per service, used on the fleet's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

namespace squadron::control {

enum class ScaleMetric { kConcurrency, kRps, kCpu };

struct AutoscaleSpec {
  int min = 1;
  int max = 10;
  ScaleMetric metric = ScaleMetric::kConcurrency;
  // Per ready instance: requests in flight (concurrency), requests a second (rps), or percent
  // of one core (cpu).
  double target = 8;
  std::chrono::milliseconds panic_window = std::chrono::seconds(6);
  std::chrono::milliseconds scale_down_delay = std::chrono::seconds(30);
  double tolerance = 0.1;
  bool operator==(const AutoscaleSpec&) const = default;
};

std::string_view metric_name(ScaleMetric m) noexcept;

struct ScaleObservation {
  std::chrono::steady_clock::time_point now;
  int ready = 0;               // ready instances
  int current = 0;             // replicas wanted now
  double value = 0;            // the metric summed over the service's instances
  std::uint64_t requests = 0;  // requests seen so far (cumulative), for idleness
  bool rolling = false;        // a rollout or restart is in progress
  bool observed = true;        // false: no metrics this second (gateway restarting): hold
};

struct ScaleDecision {
  int desired = 0;
  std::string rule;     // "steady", "tolerance", "up", "panic", "down", "hold", "idle", ...
  std::string explain;  // one line: inputs, the formula's result, the rule
  bool changed() const noexcept { return changed_; }
  bool changed_ = false;
};

class Autoscaler final {
 public:
  explicit Autoscaler(AutoscaleSpec spec) : spec_(spec) {}

  ScaleDecision evaluate(const ScaleObservation& o);
  // A request is waiting (the gateway asked to wake the service): not idle as of `now`.
  void touch(std::chrono::steady_clock::time_point now) noexcept {
    last_request_ = now;
    seen_ = true;
  }

  // A person set the count to `replicas` (`squadron scale`, the dashboard): it counts as this
  // second's recommendation and as a request, so the autoscaler scales it down only after a
  // whole scale_down_delay of lower demand, as after its own decisions — not at its next pass.
  void hold(int replicas, std::chrono::steady_clock::time_point now) {
    samples_.push_back({now, 0, clamp(replicas)});
    touch(now);
  }

  const AutoscaleSpec& spec() const noexcept { return spec_; }
  bool panicking(std::chrono::steady_clock::time_point now) const noexcept {
    return now < panic_until_;
  }

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Sample {
    TimePoint at;
    double value;
    int recommendation;  // ceil(value / target), clamped to [min, max]
  };
  int clamp(int n) const noexcept;
  int recommend(double total) const;

  AutoscaleSpec spec_;
  std::deque<Sample> samples_;  // the last scale_down_delay (at least panic_window)
  TimePoint panic_until_{};
  TimePoint last_request_{};  // when `requests` last grew
  std::uint64_t requests_ = 0;
  bool seen_ = false;
};

}  // namespace squadron::control
