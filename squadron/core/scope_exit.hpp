// Runs an action when the scope ends, however it ends (a return, an exception, a coroutine
// frame destroyed without resuming): the one scope guard, instead of a struct per place.
//
//   ++held;
//   core::ScopeExit unhold([&] { --held; });
//
// Thread safety: as the action; not copyable or movable.
#pragma once

#include <utility>

namespace squadron::core {

template <typename F>
class [[nodiscard]] ScopeExit final {
 public:
  explicit ScopeExit(F action) : action_(std::move(action)) {}
  ~ScopeExit() {
    if (armed_) action_();
  }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;
  // The action will not run.
  void cancel() noexcept { armed_ = false; }

 private:
  F action_;
  bool armed_ = true;
};

}  // namespace squadron::core
