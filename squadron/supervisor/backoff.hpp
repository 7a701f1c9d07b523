// Restart backoff of one instance, as the design doc sets it: the first restart at once, then
// 0.5 s doubling up to 30 s; an instance that stayed up 60 s starts over at "at once". It counts
// quick crashes only: an instance that was ready for longer than the delay it would now get, and
// at least 10 s, restarts at once (a crash after 16 s of healthy service is not the fifth of a
// loop; one after a second of it is: a service killed for its memory every second backs off).
//
//   RestartBackoff backoff{clock};
//   backoff.on_start();                  // the process was started
//   auto wait = backoff.on_exit();       // it exited: how long to wait before the next start
//
// Thread safety: none; owned by the supervisor loop.
#pragma once

#include <algorithm>
#include <chrono>

#include "squadron/core/clock.hpp"

namespace squadron::supervisor {

struct BackoffPolicy {
  std::chrono::milliseconds first = std::chrono::milliseconds(500);  // after the immediate restart
  std::chrono::milliseconds max = std::chrono::seconds(30);
  std::chrono::milliseconds reset_after = std::chrono::seconds(60);  // up this long: start over
  // Ready at least this long (and longer than the next delay): the exit is not part of a loop.
  std::chrono::milliseconds healthy_after = std::chrono::seconds(10);
};

class RestartBackoff final {
 public:
  explicit RestartBackoff(const core::Clock& clock, BackoffPolicy policy = {})
      : clock_(clock), policy_(policy) {}

  // Records that the process started now.
  void on_start() noexcept {
    started_ = clock_.now();
    ready_ = false;
  }
  // Records that the process passed its readiness probe now.
  void on_ready() noexcept {
    ready_at_ = clock_.now();
    ready_ = true;
  }

  // Records an exit now; returns the delay before the next start.
  std::chrono::milliseconds on_exit() noexcept {
    const auto now = clock_.now();
    if (now - started_ >= policy_.reset_after) failures_ = 0;
    std::chrono::milliseconds delay{0};
    if (failures_ > 0) {
      delay = policy_.first;
      for (int i = 1; i < failures_ && delay < policy_.max; ++i) delay *= 2;
      if (delay > policy_.max) delay = policy_.max;
    }
    if (ready_ && now - ready_at_ >= std::max(delay, policy_.healthy_after)) {
      failures_ = 0;
      delay = std::chrono::milliseconds(0);
    }
    ready_ = false;
    ++failures_;
    return delay;
  }

  const BackoffPolicy& policy() const noexcept { return policy_; }

  // Consecutive quick exits so far.
  int failures() const noexcept { return failures_; }

 private:
  const core::Clock& clock_;
  BackoffPolicy policy_;
  core::Clock::TimePoint started_{};
  core::Clock::TimePoint ready_at_{};
  bool ready_ = false;
  int failures_ = 0;
};

}  // namespace squadron::supervisor
