// Time as an injected dependency: components with timers or timeouts take a Clock&, so their
// logic is tested with FakeClock in microseconds instead of with sleeps (Envoy's TimeSource).
//
//   FakeClock clock;
//   Backoff b{clock};
//   clock.advance(std::chrono::seconds(61));
#pragma once

#include <chrono>

namespace squadron::core {

class Clock {
 public:
  using Duration = std::chrono::steady_clock::duration;
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Monotonic now. Thread-safe for SystemClock; FakeClock is for single-threaded tests.
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
};

// A clock that moves only when told to.
class FakeClock final : public Clock {
 public:
  TimePoint now() const override { return now_; }
  void advance(Duration d) { now_ += d; }

 private:
  TimePoint now_{std::chrono::hours(1)};  // not the epoch, so "time since" never underflows
};

}  // namespace squadron::core
