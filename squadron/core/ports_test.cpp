#include "squadron/core/ports.hpp"

#include <cerrno>
#include <unistd.h>

#include <gtest/gtest.h>

namespace squadron::core {
namespace {

TEST(Ports, AHeldPortIsTakenUntilReleased) {
  const auto held = hold_port("127.0.0.1", 0);
  ASSERT_TRUE(held) << held.error().message();
  EXPECT_GT(held->port, 0);
  const auto again = hold_port("127.0.0.1", held->port);
  ASSERT_FALSE(again) << "nobody else binds it while we hold it";
  EXPECT_EQ(again.error().value(), EADDRINUSE);
  ::close(held->fd);
  const auto later = hold_port("localhost", held->port);
  ASSERT_TRUE(later) << later.error().message();
  ::close(later->fd);
}

TEST(Ports, APickedPortIsFreeAndANameIsNoAddress) {
  const auto port = pick_port();
  ASSERT_TRUE(port) << port.error().message();
  const auto bound = hold_port("127.0.0.1", *port);
  ASSERT_TRUE(bound) << "free when picked";
  ::close(bound->fd);
  const auto name = hold_port("example.com", 0);
  ASSERT_FALSE(name);
  EXPECT_EQ(name.error().value(), EINVAL);
  const auto v6 = hold_port("::1", 0);
  if (v6) ::close(v6->fd);  // where IPv6 loopback exists
}

}  // namespace
}  // namespace squadron::core
