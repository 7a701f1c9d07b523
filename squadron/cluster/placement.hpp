// Where one more instance of a service goes: a pure function of the hosts and what is placed on
// them (the leader's assignments), so every rule is unit-tested without etcd.
//
//   auto host = place({.service = "web", .memory_bytes = 256 << 20}, hosts, placed, why);
//
// Rules, in order: the host is up; it is among `rule.hosts` when given and has every label of
// `rule.labels`; the memory the service requests fits beside what is placed there (each host's
// memory, by the requests of `resources:`; instances without a request count 0); an instance with a
// fixed port never shares a host with another that holds the same port. Among the hosts left:
// `prefer` when it is one of them (a fixed-port or single-replica service's successor stays where
// its data and clients are); else the fewest instances of this service (spread), then the fewest
// instances at all, then the name.
//
// Thread safety: a pure function.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace squadron::cluster {

struct HostView {
  std::string name;
  std::map<std::string, std::string> labels;
  std::uint64_t memory_bytes = 0;  // 0: unknown (no memory rule)
  bool up = true;
};

struct Placed {
  std::string host;
  std::string service;
  std::uint64_t memory_bytes = 0;
  std::optional<std::uint16_t> fixed_port;
};

struct PlacementRule {
  std::vector<std::string> hosts;             // empty: any host
  std::map<std::string, std::string> labels;  // every one must match
};

struct PlacementRequest {
  std::string service;
  std::uint64_t memory_bytes = 0;
  std::optional<std::uint16_t> fixed_port;
  PlacementRule rule;
  std::string prefer;  // a host to keep it on when it fits (empty: none)
};

// The chosen host's name, or nullopt with `why` saying, host by host, what ruled each out.
std::optional<std::string> place(const PlacementRequest& request,
                                 const std::vector<HostView>& hosts,
                                 const std::vector<Placed>& placed, std::string& why);

}  // namespace squadron::cluster
