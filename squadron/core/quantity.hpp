// Resource quantities as Kubernetes writes them: bytes with binary or decimal suffixes
// ("256Mi", "1Gi", "500M", "1048576"), CPU in cores or millicores ("0.5", "500m", "2").
//
//   parse_bytes("256Mi");     // 268435456
//   parse_millicores("500m"); // 500; parse_millicores("1.5") is 1500
//   format_bytes(64 << 20);   // "64 MiB"
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace squadron::core {

// Bytes: a whole or decimal number with an optional suffix Ki Mi Gi Ti (1024^n) or k M G T
// (1000^n). nullopt on anything else, a negative value or one above 2^62.
std::optional<std::uint64_t> parse_bytes(std::string_view text) noexcept;
// CPU in thousandths of a core: "2", "0.25" (cores, at most three decimals) or "250m".
// nullopt on anything else, zero or negative, or above 1,000,000 cores.
std::optional<std::uint64_t> parse_millicores(std::string_view text) noexcept;
// The shortest of "512 B", "64 KiB", "1.5 MiB", "2 GiB" (one decimal below 10, whole above).
std::string format_bytes(std::uint64_t bytes);
// "0.5", "2", "0.25": cores from millicores, no trailing zeros.
std::string format_cores(std::uint64_t millicores);

}  // namespace squadron::core
