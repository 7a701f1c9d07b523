// Fuzzes what the control plane reads back as JSON: registry instances (the watch stream the
// gateway follows) and the saved desired state. Neither may crash or throw on any input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "squadron/control/state.hpp"
#include "squadron/registry/instance.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string warning;
  (void)squadron::control::parse_desired(text, "state.json", warning);
  boost::system::error_code ec;
  const auto v = boost::json::parse(text, ec);
  if (ec) return 0;
  if (auto i = squadron::registry::instance_from_json(v)) {
    // What was accepted serializes and reads back to the same instance.
    const auto again = squadron::registry::instance_from_json(
        squadron::registry::to_json(*i, std::chrono::system_clock::now()));
    if (!again || !(*again == *i)) __builtin_trap();
  }
  if (const auto* a = v.if_array()) {
    for (const auto& x : *a) (void)squadron::registry::instance_from_json(x);
  }
  return 0;
}
