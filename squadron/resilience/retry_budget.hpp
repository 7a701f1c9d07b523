// A retry budget (Envoy's retry_budget, Finagle's RetryBudget): retries in flight at most
// `ratio` of the requests in flight, and at least `min_concurrent`, so that a failing service is
// not hit with three times its load. A request holds one slot at most, however many times it
// retries; the slot goes back when the request ends.
//
//   resilience::RetryBudget budget;                 // 20 %, at least 3
//   resilience::RetryBudget::Slot slot;
//   if (!budget.acquire(slot, requests_in_flight)) give_up();   // over budget
//
// Thread safety: none; one per I/O thread (the gateway's), like the counts it compares.
#pragma once

#include <algorithm>
#include <cstdint>

namespace squadron::resilience {

class RetryBudget final {
 public:
  class Slot final {
   public:
    Slot() = default;
    ~Slot() { release(); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    bool held() const noexcept { return budget_ != nullptr; }
    void release() noexcept {
      if (budget_ != nullptr) --budget_->in_flight_;
      budget_ = nullptr;
    }

   private:
    friend class RetryBudget;
    RetryBudget* budget_ = nullptr;
  };

  explicit RetryBudget(double ratio = 0.2, std::int64_t min_concurrent = 3)
      : ratio_(ratio), min_(min_concurrent) {}

  // Whether one more request may start retrying now, with `requests_in_flight` in flight (a
  // request that holds a slot always may).
  bool allows(const Slot& slot, std::int64_t requests_in_flight) const noexcept {
    if (slot.held()) return true;
    const auto limit = std::max<std::int64_t>(
        min_, static_cast<std::int64_t>(static_cast<double>(requests_in_flight) * ratio_));
    return in_flight_ < limit;
  }
  // Takes a slot for `slot` if allowed (see allows()); false when over budget.
  bool acquire(Slot& slot, std::int64_t requests_in_flight) noexcept {
    if (slot.held()) return true;
    if (!allows(slot, requests_in_flight)) return false;
    ++in_flight_;
    slot.budget_ = this;
    return true;
  }
  std::int64_t in_flight() const noexcept { return in_flight_; }

 private:
  double ratio_;
  std::int64_t min_;
  std::int64_t in_flight_ = 0;
};

}  // namespace squadron::resilience
