// A token bucket for a route's rate limit: `rate` tokens a second, holding at most `burst`;
// a request takes one token or is refused with the time until the next one (-> 429 with
// Retry-After). Shared by the gateway's I/O threads. Time comes in: no clock inside.
//
//   TokenBucket b{100, 200, now};
//   if (auto wait = b.take(now); wait.count() > 0) refuse(wait);
//
// Thread safety: take() and configure() lock (a short critical section, routes with a limit
// only).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace squadron::resilience {

class TokenBucket final {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  TokenBucket(int rate, int burst, TimePoint now) : last_(now) { configure(rate, burst); }

  // New limits; the tokens held stay (capped by the new burst).
  void configure(int rate, int burst) {
    std::lock_guard lock(mutex_);
    rate_ = rate > 0 ? rate : 1;
    burst_ = burst > 0 ? burst : rate_;
    if (!started_) {
      tokens_ = burst_;
      started_ = true;
    }
    if (tokens_ > burst_) tokens_ = burst_;
  }

  // Takes a token: zero when granted, else how long until one is due.
  std::chrono::nanoseconds take(TimePoint now) {
    std::lock_guard lock(mutex_);
    if (now > last_) {
      const double elapsed = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min<double>(burst_, tokens_ + elapsed * rate_);
      last_ = now;
    }
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return std::chrono::nanoseconds(0);
    }
    return std::chrono::nanoseconds(
        static_cast<std::int64_t>((1.0 - tokens_) / static_cast<double>(rate_) * 1e9) + 1);
  }

 private:
  std::mutex mutex_;
  int rate_ = 1;
  int burst_ = 1;
  double tokens_ = 0;
  bool started_ = false;
  TimePoint last_;
};

}  // namespace squadron::resilience
