// Fuzzes what the control plane reads back as JSON: the watch contract and registry instances
// (what the gateway follows), the saved desired state and the saved revisions. None may crash or
// throw on any input; what is accepted writes out and reads back the same.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "squadron/control/revisions.hpp"
#include "squadron/control/state.hpp"
#include "squadron/registry/instance.hpp"
#include "squadron/registry/watch.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string warning;
  (void)squadron::control::parse_desired(text, "state.json", warning);
  {
    namespace c = squadron::control;
    std::vector<c::ServiceSpec> services(2);
    services[0].name = "web";
    services[0].command = {"/bin/web"};
    services[1].name = "api";
    services[1].command = {"/bin/api"};
    const auto h = c::parse_revisions(text, services, warning);
    const auto again = c::parse_revisions(c::revisions_json(h), services, warning);
    if (again.size() != h.size()) __builtin_trap();
    for (const auto& [name, one] : h) {
      const auto& two = again.at(name);
      if (one.current != two.current || one.base != two.base ||
          one.revisions.size() != two.revisions.size())
        __builtin_trap();
      for (std::size_t i = 0; i < one.revisions.size(); ++i) {
        if (one.revisions[i].hash != two.revisions[i].hash ||
            one.revisions[i].number != two.revisions[i].number)
          __builtin_trap();
      }
    }
  }
  boost::system::error_code ec;
  const auto v = boost::json::parse(text, ec);
  if (ec) return 0;
  if (auto i = squadron::registry::instance_from_json(v)) {
    // What was accepted serializes and reads back to the same instance.
    const auto again = squadron::registry::instance_from_json(
        squadron::registry::to_json(*i, std::chrono::system_clock::now()));
    if (!again || !(*again == *i)) __builtin_trap();
  }
  std::string error;
  if (auto w = squadron::registry::watch_from_json(v, error)) {
    // The watch contract too: what was read writes out and reads back the same.
    const auto again = squadron::registry::watch_from_json(
        squadron::registry::to_json(*w, std::chrono::system_clock::now()), error);
    if (!again || again->revision != w->revision || again->services != w->services ||
        again->instances.size() != w->instances.size())
      __builtin_trap();
  }
  if (const auto* a = v.if_array()) {
    for (const auto& x : *a) (void)squadron::registry::instance_from_json(x);
  }
  return 0;
}
