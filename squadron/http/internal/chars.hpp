// Character classes of RFC 9110/9112 as 256-entry tables, for the request parser and the chunked
// decoder. Not part of squadron/http's API.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
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

// Writes "name: value\r\n" at `p`, which has room for it (name + value + 4 bytes); returns the
// byte after it.
inline char* write_field_line(char* p, std::string_view name, std::string_view value) {
  std::char_traits<char>::copy(p, name.data(), name.size());  // (nothing for an empty view)
  p += name.size();
  *p++ = ':';
  *p++ = ' ';
  std::char_traits<char>::copy(p, value.data(), value.size());
  p += value.size();
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

// Appends "name: value\r\n" to `out`, grown once: four appends cost three times the instructions
// (a proxy writes a dozen lines a request).
inline void append_field_line(std::string& out, std::string_view name, std::string_view value) {
  const std::size_t at = out.size();
  out.resize(at + name.size() + value.size() + 4);
  write_field_line(out.data() + at, name, value);
}

// What a field value may hold: field-vchar, SP and HTAB (RFC 9110 §5.5).
inline constexpr CharTable kValueChar =
    make_table([](unsigned c) { return kFieldVchar[c] || c == ' ' || c == '\t'; });

// The first byte from `p` that cannot be in a field value (the CR that ends it, normally), or
// `end`. Eight bytes at a time while none is a control byte (below 0x20, or DEL) — HTAB
// included, which the byte loop then takes: a proxied request's field values are most of its
// head (callgrind: 6 instructions a byte by the table alone, under 1 this way).
inline const char* scan_field_value(const char* p, const char* end) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  while (end - p >= 8) {
    std::uint64_t x;
    std::memcpy(&x, p, sizeof x);
    const std::uint64_t del = x ^ (kOnes * 0x7f);
    // Exact for "some byte is below n" with n <= 0x80 (bytes of 0x80 and up never match).
    if ((((x - kOnes * 0x20) & ~x) | ((del - kOnes) & ~del)) & kHigh) break;
    p += 8;
  }
  while (p < end && kValueChar[uc(*p)]) ++p;
  return p;
}

// The first byte from `p` that is not a token character (the ':' after a field's name,
// normally), or `end`: four bytes a turn.
inline const char* scan_token(const char* p, const char* end) {
  while (end - p >= 4) {
    if (!kTchar[uc(p[0])]) return p;
    if (!kTchar[uc(p[1])]) return p + 1;
    if (!kTchar[uc(p[2])]) return p + 2;
    if (!kTchar[uc(p[3])]) return p + 3;
    p += 4;
  }
  while (p < end && kTchar[uc(*p)]) ++p;
  return p;
}

constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace squadron::http::internal
