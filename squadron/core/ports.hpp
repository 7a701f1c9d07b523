// Ports of this machine: a socket bound to one (and listening, to hold it), and a free one for a
// child process to bind. The one place the fleet picks ports: the supervisor (an instance's
// port) and `squadron up` (the gateway's listeners, held for the fleet's life).
//
//   auto held = core::hold_port("127.0.0.1", 0);       // bound and listening: nobody takes it
//   auto port = core::pick_port();                      // free now; the child binds it
//
// Errors are errno values (EINVAL: not an address literal). Thread safety: plain system calls.
#pragma once

#include <cstdint>
#include <string>

#include <boost/system/result.hpp>

namespace squadron::core {

// A listening socket of ours (close-on-exec, SO_REUSEADDR, backlog 4096) and its port.
struct HeldPort {
  int fd = -1;
  std::uint16_t port = 0;
  explicit operator bool() const noexcept { return fd >= 0; }
};

// Binds and listens on `host` (an address literal, or localhost) and `port` (0: any free one).
boost::system::result<HeldPort> hold_port(const std::string& host, std::uint16_t port);

// A loopback port free at this moment (bound to 0, then released) for a child to bind.
boost::system::result<std::uint16_t> pick_port();

}  // namespace squadron::core
