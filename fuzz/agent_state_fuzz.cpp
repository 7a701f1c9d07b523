// Fuzzes what an agent reads back at its start (agent.json, written by the agent before it) and
// the instance specs it reads from etcd's assignments: any bytes end in a value or an error,
// never a crash; what is accepted is written back to text that reads the same.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/json/parse.hpp>

#include "squadron/cluster/agent_state.hpp"
#include "squadron/supervisor/spec_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  if (auto state = squadron::cluster::parse_agent_state(text, error)) {
    const auto again = squadron::cluster::agent_state_text(*state);
    std::string error2;
    auto back = squadron::cluster::parse_agent_state(again, error2);
    if (!back || squadron::cluster::agent_state_text(*back) != again) __builtin_trap();
  }
  boost::system::error_code ec;
  const auto v = boost::json::parse(text, ec);
  if (!ec) (void)squadron::supervisor::spec_from_json(v, error);
  return 0;
}
