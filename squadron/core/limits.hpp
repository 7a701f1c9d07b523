// Process limits a server sets for itself at start.
//
//   const auto fds = core::raise_fd_limit();   // soft RLIMIT_NOFILE up to the hard limit
//
// Thread safety: call once at start, before threads.
#pragma once

#include <cstddef>

namespace squadron::core {

// Raises the soft RLIMIT_NOFILE to the hard limit (1,024 is the usual soft default, too few for
// a server; nginx, HAProxy and Envoy raise theirs). Returns the soft limit now in force.
std::size_t raise_fd_limit() noexcept;

// The soft RLIMIT_NOFILE in force.
std::size_t fd_limit() noexcept;

// The soft limit before raise_fd_limit() raised it (what children should get back, as systemd
// gives them 1,024: select() breaks above it); 0 if it was never raised.
std::size_t original_fd_limit() noexcept;

}  // namespace squadron::core
