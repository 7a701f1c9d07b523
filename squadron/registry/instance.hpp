// An instance as the registry publishes it, and its JSON form: the wire contract of the
// control API's watch stream, which the gateway and SDK clients read back with
// instance_from_json(). No Asio here, so parsers and fuzzers link just this.
//
// Thread safety: plain values.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>

namespace squadron::registry {

enum class State { kStarting, kReady, kDraining, kStopping, kBackoff, kFailed, kStopped };
std::string_view to_string(State s) noexcept;
std::optional<State> parse_state(std::string_view s) noexcept;

struct Instance {
  std::string service;
  std::string id;  // "<service>-<n>"
  int pid = -1;
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  State state = State::kStarting;
  std::string revision;
  int restarts = 0;
  std::chrono::system_clock::time_point started_at{};
  std::string last_exit;  // "exit 3", "signal 9", "oom-killed (limit 64 MiB)"; empty before any
  int oom_kills = 0;      // processes of it the kernel killed for its memory limit, all starts
  std::string node;       // the cluster host it runs on; empty on one machine

  friend bool operator==(const Instance&, const Instance&) = default;
};

// The number of an instance id, after its last '-' ("hello-12" -> 12; 0 if none): ids sort by it.
long instance_number(std::string_view id) noexcept;

// {"service","id","pid","host","port","address","state","revision","restarts","started_at",
//  "uptime_s","last_exit","oom_kills"} and, in a cluster, "node"; uptime_s is measured from `now`
// (0 when not running).
boost::json::object to_json(const Instance& i, std::chrono::system_clock::time_point now);
// Reads what to_json() wrote; nullopt if a required key is missing or has the wrong type.
std::optional<Instance> instance_from_json(const boost::json::value& v);

struct Event {
  std::uint64_t revision = 0;  // the registry revision this event made
  std::chrono::system_clock::time_point at{};
  std::string service;
  std::string instance;  // may be empty (an event of the service)
  std::string message;
};
boost::json::object to_json(const Event& e);

}  // namespace squadron::registry
