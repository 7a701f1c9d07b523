#include "squadron/core/address.hpp"

#include <arpa/inet.h>
#include <cctype>
#include <charconv>
#include <cstring>
#include <string>

namespace squadron::core {

std::optional<AddressBlock> AddressBlock::parse(std::string_view text) {
  AddressBlock b;
  const auto slash = text.find('/');
  const std::string address(text.substr(0, slash));
  int max = 0;
  if (::inet_pton(AF_INET, address.c_str(), b.bytes) == 1) {
    b.family = AF_INET;
    max = 32;
  } else if (::inet_pton(AF_INET6, address.c_str(), b.bytes) == 1) {
    b.family = AF_INET6;
    max = 128;
  } else {
    return std::nullopt;
  }
  b.prefix = max;
  if (slash != std::string_view::npos) {
    const auto bits = text.substr(slash + 1);
    int n = -1;
    const auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), n);
    if (ec != std::errc() || end != bits.data() + bits.size() || n < 0 || n > max)
      return std::nullopt;
    b.prefix = n;
  }
  return b;
}

bool AddressBlock::contains(std::string_view address) const {
  unsigned char a[16] = {};
  const std::string text(address);
  if (::inet_pton(family, text.c_str(), a) != 1) return false;
  const int whole = prefix / 8;
  if (std::memcmp(a, bytes, static_cast<std::size_t>(whole)) != 0) return false;
  const int rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[whole] & mask) == (bytes[whole] & mask);
}

std::string_view host_part(std::string_view authority) noexcept {
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    return close == std::string_view::npos ? authority.substr(1) : authority.substr(1, close - 1);
  }
  const auto colon = authority.find(':');
  if (colon != std::string_view::npos && authority.find(':', colon + 1) != std::string_view::npos)
    return authority;  // a bare IPv6 address
  return authority.substr(0, colon);
}

bool is_loopback(std::string_view host) {
  if (host == "localhost") return true;
  static const auto v4 = *AddressBlock::parse("127.0.0.0/8");
  static const auto v6 = *AddressBlock::parse("::1");
  return v4.contains(host) || v6.contains(host);
}

bool split_host_port(std::string_view text, std::string& host, std::uint16_t& port) {
  std::string_view h;
  std::string_view digits;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return false;
    h = text.substr(1, close - 1);
    digits = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return false;
    h = text.substr(0, colon);
    digits = text.substr(colon + 1);
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
  if (h.empty() || ec != std::errc() || end != digits.data() + digits.size() || p == 0 || p > 65535)
    return false;
  for (char c : h) {
    const auto u = static_cast<unsigned char>(c);
    if (!std::isalnum(u) && c != '.' && c != '-' && c != '_' && c != ':') return false;
  }
  host = std::string(h);
  port = static_cast<std::uint16_t>(p);
  return true;
}

}  // namespace squadron::core
