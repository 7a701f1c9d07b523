// Parses human durations as flags, env and manifests write them: "250ms", "10s", "1m", "1h",
// "1.5s"; a bare number is seconds. Negative, empty or unknown units are errors.
//
//   auto d = parse_duration("2s");     // std::optional<std::chrono::milliseconds>{2000}
//   format_duration(d);                // "2s", parsed back to the same value
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace squadron::core {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept;
// The shortest exact form in the same notation: "2m", "30s", "1500ms".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace squadron::core
