#include "squadron/core/limits.hpp"

#include <sys/resource.h>

namespace squadron::core {

std::size_t fd_limit() noexcept {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 1024;
  return r.rlim_cur == RLIM_INFINITY ? std::size_t{1} << 20 : static_cast<std::size_t>(r.rlim_cur);
}

namespace {
std::size_t original = 0;
}  // namespace

std::size_t original_fd_limit() noexcept { return original; }

std::size_t raise_fd_limit() noexcept {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    if (original == 0) original = static_cast<std::size_t>(r.rlim_cur);
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
  return fd_limit();
}

}  // namespace squadron::core
