// Turns probe results into readiness/liveness verdicts, as Kubernetes probes do: one success
// makes an instance ready (or healthy) again; `threshold` consecutive failures make it not
// ready (or, for liveness, due for a restart). Also says when the next probe is due.
//
//   ProbeTracker ready{spec.ready.interval, spec.ready.threshold, clock};
//   if (ready.due()) ready.record(check_tcp(port));
//   if (ready.passing()) route_traffic();
//
// Thread safety: none; owned by the supervisor loop.
#pragma once

#include <chrono>

#include "squadron/core/clock.hpp"

namespace squadron::supervisor {

class ProbeTracker final {
 public:
  // Probes every `interval`; `threshold` consecutive failures turn the verdict (minimum 1).
  ProbeTracker(std::chrono::milliseconds interval, int threshold, const core::Clock& clock)
      : interval_(interval),
        threshold_(threshold < 1 ? 1 : threshold),
        clock_(clock),
        next_(clock.now()) {}

  // Whether a probe should run now (the first one is due at once).
  bool due() const noexcept { return clock_.now() >= next_; }

  // Records the result of a probe that just finished; schedules the next one.
  void record(bool success) noexcept {
    next_ = clock_.now() + interval_;
    if (success) {
      failures_ = 0;
      passing_ = true;
      ever_passed_ = true;
    } else if (++failures_ >= threshold_) {
      passing_ = false;
    }
  }

  // Ready (readiness) or healthy (liveness): true after a success until `threshold` failures.
  bool passing() const noexcept { return passing_; }
  // For liveness: the probe passed once and has failed `threshold` times in a row since.
  bool failed_after_passing() const noexcept { return ever_passed_ && !passing_; }
  int consecutive_failures() const noexcept { return failures_; }
  // Forget everything (a restarted instance starts over).
  void reset() noexcept {
    failures_ = 0;
    passing_ = ever_passed_ = false;
    next_ = clock_.now();
  }

 private:
  std::chrono::milliseconds interval_;
  int threshold_;
  const core::Clock& clock_;
  core::Clock::TimePoint next_;
  int failures_ = 0;
  bool passing_ = false;
  bool ever_passed_ = false;
};

}  // namespace squadron::supervisor
