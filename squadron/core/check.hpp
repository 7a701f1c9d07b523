// Invariant checks. Expected failures (bad input, I/O) are values, never these.
//
//   SQUADRON_CHECK(fd >= 0, "socket() must succeed before bind");   // always on, aborts
//   SQUADRON_ASSERT(state_ == State::kIdle);                          // debug builds only
#pragma once

#include <cstdio>
#include <cstdlib>

namespace squadron::core::internal {
[[noreturn]] inline void check_failed(const char* expr, const char* msg, const char* file,
                                      int line) noexcept {
  std::fprintf(stderr, "squadron: check failed at %s:%d: %s %s\n", file, line, expr, msg);
  std::abort();
}
}  // namespace squadron::core::internal

// Always evaluated; crashes with a message when `cond` is false (Envoy RELEASE_ASSERT).
#define SQUADRON_CHECK(cond, msg)                                               \
  do {                                                                          \
    if (!(cond)) [[unlikely]]                                                   \
      ::squadron::core::internal::check_failed(#cond, msg, __FILE__, __LINE__); \
  } while (false)

// Debug-only invariant (Envoy ASSERT); compiled out under NDEBUG.
#ifdef NDEBUG
#define SQUADRON_ASSERT(cond) \
  do {                        \
  } while (false)
#else
#define SQUADRON_ASSERT(cond) SQUADRON_CHECK(cond, "")
#endif
