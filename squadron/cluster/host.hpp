// A host of the cluster as its agent registers it (the value of keys.hpp's hosts/<host>): name,
// address (where its instances and its gateway are reached), labels (placement), capacity, and
// which agent process holds it.
//
//   HostInfo h = this_host("h1", "10.213.0.11");   // cores and memory from this machine
//   std::string text = boost::json::serialize(to_json(h));
//
// Thread safety: plain values.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <boost/json/fwd.hpp>

namespace squadron::cluster {

struct HostInfo {
  std::string name;
  std::string address;
  std::map<std::string, std::string> labels;
  unsigned cores = 0;
  std::uint64_t memory_bytes = 0;
  int agent_pid = 0;
  std::chrono::system_clock::time_point started_at{};
  std::uint16_t gateway_port = 0;  // the host's gateway (0: none)
  friend bool operator==(const HostInfo&, const HostInfo&) = default;
};

// `name` and `address` with this machine's cores (those this process may run on) and memory
// (MemTotal), this process's pid and the time now.
HostInfo this_host(std::string name, std::string address);

boost::json::object to_json(const HostInfo& h);
// nullopt when a required key (name, address) is missing or a value has the wrong type.
std::optional<HostInfo> host_from_json(const boost::json::value& v);

}  // namespace squadron::cluster
