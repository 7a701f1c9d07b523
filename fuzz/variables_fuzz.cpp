// libFuzzer target: compose's variable syntax and its .env format. Interpolation never crashes,
// an error's offset is inside the text, text without a '$' comes back as it went in, and the
// two-pass form (kept names, $$ carried) expands to the same as one pass when nothing is kept.
// The .env parser never crashes and every error names a line of the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "squadron/control/env_file.hpp"
#include "squadron/core/check.hpp"
#include "squadron/core/interpolate.hpp"

namespace core = squadron::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const core::VariableLookup lookup = [](std::string_view name) -> std::optional<std::string> {
    if (name.size() % 3 == 0) return std::nullopt;  // some names unset
    return std::string(name.size() % 2 == 0 ? "v$" : "") + std::string(name);
  };
  const auto once = core::interpolate(text, lookup);
  if (const auto* e = std::get_if<core::VariableError>(&once)) {
    SQUADRON_CHECK(e->offset < text.size(), "an error points into the text");
  } else if (text.find('$') == std::string_view::npos) {
    SQUADRON_CHECK(std::get<std::string>(once) == text, "no '$': nothing changes");
  } else {
    core::InterpolateOptions later;
    later.for_later_pass = true;
    const auto first = core::interpolate(text, lookup, later);
    SQUADRON_CHECK(std::holds_alternative<std::string>(first), "the same text, the same verdict");
    const auto second = core::interpolate(std::get<std::string>(first), [](std::string_view) {
      return std::optional<std::string>{};
    });
    SQUADRON_CHECK(std::holds_alternative<std::string>(second) &&
                       std::get<std::string>(second) == std::get<std::string>(once),
                   "two passes expand as one");
  }
  const auto file = squadron::control::parse_env_file(text);
  std::size_t lines = 1;
  for (char c : text) lines += c == '\n';
  for (const auto& e : file.errors)
    SQUADRON_CHECK(e.line >= 1 && static_cast<std::size_t>(e.line) <= lines, "an error's line");
  return 0;
}
