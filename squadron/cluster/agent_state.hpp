// What a host's agent leaves for the next one, in its state folder's agent.json: the lease it
// holds and the instances running under it. An agent restarted within the lease's TTL adopts
// those instances (Supervisor::adopt: same processes, same pids) and renews the same lease, so
// that neither an instance nor a key of the host changes, as Nomad's client re-attaches to its
// tasks. Written on every change, so that an agent that was SIGKILLed is followed as well.
//
//   save_agent_state(dir / "agent.json", {.lease = agent.lease(), .instances = sup.held()}, err);
//   auto saved = load_agent_state(dir / "agent.json", err);   // nullopt, err empty: no file
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "squadron/supervisor/supervisor.hpp"

namespace squadron::cluster {

struct AgentState {
  std::int64_t lease = 0;
  std::vector<supervisor::Supervisor::Held> instances;
};

std::string agent_state_text(const AgentState& state);
// nullopt with `error` naming what is wrong.
std::optional<AgentState> parse_agent_state(std::string_view text, std::string& error);
// Replaces `file` at once (a temporary file renamed over it; mode 0600). False with `error`.
bool save_agent_state(const std::filesystem::path& file, const AgentState& state,
                      std::string& error);
// nullopt with an empty `error` when there is no file; with `error` when it cannot be read.
std::optional<AgentState> load_agent_state(const std::filesystem::path& file, std::string& error);

}  // namespace squadron::cluster
