// Character classes of RFC 9110/9112 as 256-entry tables, for the request parser and the chunked
// decoder. Not part of squadron/http's API.
#pragma once

#include <array>
#include <string_view>

namespace squadron::http::internal {

using CharTable = std::array<bool, 256>;

constexpr CharTable make_table(bool (*pred)(unsigned)) {
  CharTable t{};
  for (unsigned c = 0; c < 256; ++c) t[c] = pred(c);
  return t;
}
constexpr bool is_alpha(unsigned c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(unsigned c) { return c >= '0' && c <= '9'; }

// token characters (RFC 9110 §5.6.2)
inline constexpr CharTable kTchar = make_table([](unsigned c) {
  if (is_alpha(c) || is_digit(c)) return true;
  for (char s : std::string_view("!#$%&'*+-.^_`|~"))
    if (c == static_cast<unsigned char>(s)) return true;
  return false;
});
// field-vchar: visible ASCII and obs-text (RFC 9110 §5.5)
inline constexpr CharTable kFieldVchar =
    make_table([](unsigned c) { return (c >= 0x21 && c <= 0x7e) || c >= 0x80; });
// qdtext (RFC 9110 §5.6.4)
inline constexpr CharTable kQdtext = make_table([](unsigned c) {
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
         (c >= 0x5d && c <= 0x7e) || c >= 0x80;
});

inline unsigned char uc(char c) { return static_cast<unsigned char>(c); }

constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace squadron::http::internal
