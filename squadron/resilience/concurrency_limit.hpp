// A concurrency limit (Envoy's max_requests circuit breaker): at most `limit` requests in flight
// to a service, shared out evenly over the `shares` threads that count them apart (each keeps
// at least one), so that no thread reads another's count on the request path.
//
//   const resilience::ConcurrencyLimit breaker{policy.max_in_flight, threads};
//   switch (breaker.admit(in_flight_here_with_this_one)) { case kRefused: 503; ... }
//
// Thread safety: a value; admit() is pure.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace squadron::resilience {

class ConcurrencyLimit final {
 public:
  enum class Verdict {
    kAdmitted,  // below the limit
    kReached,   // admitted, and this one fills the thread's share (the breaker "opens")
    kRefused,   // over the share: answer 503 at once
  };

  ConcurrencyLimit(int limit, std::size_t shares)
      : share_(std::max<std::int64_t>(
            1, static_cast<std::int64_t>(limit) /
                   static_cast<std::int64_t>(std::max<std::size_t>(shares, 1)))) {}

  // With `in_flight` requests on this thread, the new one included.
  Verdict admit(std::int64_t in_flight) const noexcept {
    if (in_flight > share_) return Verdict::kRefused;
    return in_flight == share_ ? Verdict::kReached : Verdict::kAdmitted;
  }
  std::int64_t share() const noexcept { return share_; }

 private:
  std::int64_t share_;
};

}  // namespace squadron::resilience
