// IP address blocks ("10.0.0.0/8", "::1"): which peers to trust, as a manifest names them.
//
//   auto block = core::AddressBlock::parse("10.0.0.0/8");   // nullopt if not a block
//   if (block && block->contains("10.1.2.3")) trust();
//
// Thread safety: values; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace squadron::core {

struct AddressBlock {
  int family = 0;  // AF_INET or AF_INET6
  unsigned char bytes[16] = {};
  int prefix = 0;  // leading bits that must match
  // An IPv4 or IPv6 address, optionally with /prefix (0-32, 0-128); nullopt otherwise.
  static std::optional<AddressBlock> parse(std::string_view text);
  // Whether `address` (text, of the block's family) lies in the block.
  bool contains(std::string_view address) const;
};

// The host of an authority: "h" of "h", "h:port", "[v6]" or "[v6]:port" (brackets dropped); a
// bare IPv6 address ("::1") is all host.
std::string_view host_part(std::string_view authority) noexcept;

// "host:port" or "[v6]:port" -> host (brackets dropped) and port; false when it is not that
// (no port, port 0 or above 65535, a character no host name or address has).
bool split_host_port(std::string_view text, std::string& host, std::uint16_t& port);

// Whether `host` (no port) is this machine only: 127.0.0.0/8, ::1 or localhost.
bool is_loopback(std::string_view host);

}  // namespace squadron::core
