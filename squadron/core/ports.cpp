#include "squadron/core/ports.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "squadron/core/address.hpp"

namespace squadron::core {

namespace {

boost::system::error_code last_error() { return {errno, boost::system::system_category()}; }

std::uint16_t port_of(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port
                                          : reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
}

// A socket bound to host:port; listening if `listen`.
boost::system::result<HeldPort> bind_port(const std::string& host, std::uint16_t port,
                                          bool listen) {
  const auto address =
      AddressBlock::parse(host == "localhost" ? "127.0.0.1" : std::string(host_part(host)));
  if (!address || address->prefix != (address->family == AF_INET ? 32 : 128))
    return boost::system::error_code(EINVAL, boost::system::system_category());
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (address->family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
    v4->sin_family = AF_INET;
    std::memcpy(&v4->sin_addr, address->bytes, 4);
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    v6->sin6_family = AF_INET6;
    std::memcpy(&v6->sin6_addr, address->bytes, 16);
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  }
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return last_error();
  if (listen) {
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      (listen && ::listen(fd, 4096) != 0)) {
    const auto ec = last_error();
    ::close(fd);
    return ec;
  }
  const std::uint16_t bound = port_of(fd);
  if (bound == 0) {
    const auto ec = last_error();
    ::close(fd);
    return ec;
  }
  return HeldPort{fd, bound};
}

}  // namespace

boost::system::result<HeldPort> hold_port(const std::string& host, std::uint16_t port) {
  return bind_port(host, port, true);
}

boost::system::result<std::uint16_t> pick_port() {
  auto b = bind_port("127.0.0.1", 0, false);
  if (!b) return b.error();
  ::close(b->fd);
  return b->port;
}

}  // namespace squadron::core
