#include "squadron/core/quantity.hpp"

#include <cmath>
#include <cstdio>

namespace squadron::core {
namespace {

// A non-negative decimal number ("12", "0.5", "1.25") as a whole part and a fraction of up to
// nine digits (in billionths); the rest of `text` after it in `rest`.
struct Decimal {
  std::uint64_t whole = 0;
  std::uint64_t billionths = 0;
  int fraction_digits = 0;
};

std::optional<Decimal> parse_decimal(std::string_view& text) noexcept {
  Decimal d;
  std::size_t i = 0;
  bool digits = false;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (d.whole > (std::uint64_t{1} << 62) / 10) return std::nullopt;
    d.whole = d.whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
    digits = true;
    ++i;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    std::uint64_t scale = 100'000'000;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (d.fraction_digits == 9) return std::nullopt;
      d.billionths += static_cast<std::uint64_t>(text[i] - '0') * scale;
      scale /= 10;
      ++d.fraction_digits;
      digits = true;
      ++i;
    }
    if (d.fraction_digits == 0) return std::nullopt;  // "1." is no number
  }
  if (!digits) return std::nullopt;
  text.remove_prefix(i);
  return d;
}

}  // namespace

std::optional<std::uint64_t> parse_bytes(std::string_view text) noexcept {
  auto d = parse_decimal(text);
  if (!d) return std::nullopt;
  struct Unit {
    std::string_view suffix;
    std::uint64_t factor;
  };
  static constexpr Unit kUnits[] = {{"", 1},
                                    {"Ki", 1ULL << 10},
                                    {"Mi", 1ULL << 20},
                                    {"Gi", 1ULL << 30},
                                    {"Ti", 1ULL << 40},
                                    {"k", 1'000ULL},
                                    {"M", 1'000'000ULL},
                                    {"G", 1'000'000'000ULL},
                                    {"T", 1'000'000'000'000ULL}};
  for (const auto& u : kUnits) {
    if (text != u.suffix) continue;
    constexpr std::uint64_t kMax = std::uint64_t{1} << 62;
    if (d->whole > kMax / u.factor) return std::nullopt;
    const long double fraction =
        static_cast<long double>(d->billionths) / 1e9L * static_cast<long double>(u.factor);
    const std::uint64_t value = d->whole * u.factor + static_cast<std::uint64_t>(fraction);
    if (value > kMax) return std::nullopt;
    return value;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> parse_millicores(std::string_view text) noexcept {
  auto d = parse_decimal(text);
  if (!d) return std::nullopt;
  std::uint64_t milli = 0;
  if (text == "m") {
    if (d->fraction_digits != 0) return std::nullopt;  // "0.5m": below what a kernel divides
    milli = d->whole;
  } else if (text.empty()) {
    if (d->fraction_digits > 3 || d->whole > 1'000'000) return std::nullopt;
    milli = d->whole * 1000 + d->billionths / 1'000'000;
  } else {
    return std::nullopt;
  }
  if (milli == 0 || milli > 1'000'000'000) return std::nullopt;
  return milli;
}

std::string format_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0 || v >= 10 || v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f %s", std::floor(v + 0.5), kUnits[u]);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

std::string format_cores(std::uint64_t millicores) {
  std::string s = std::to_string(millicores / 1000);
  if (const auto frac = millicores % 1000; frac != 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%03llu", static_cast<unsigned long long>(frac));
    std::string f = buf;
    while (!f.empty() && f.back() == '0') f.pop_back();
    s += "." + f;
  }
  return s;
}

}  // namespace squadron::core
