// `squadron agent`: a cluster host's agent (cluster/agent.hpp) as a process — registers the host
// in etcd under a lease, runs the instances the leader places on it under the host's own
// supervisor (cgroups, secrets, logs as `squadron up` does), reports them, until SIGTERM/SIGINT.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace squadron::apps {

struct AgentCliOptions {
  std::vector<std::string> etcd;    // members, "10.0.0.1:2379" (or with http://)
  std::string fleet;                // the fleet's name (its keys' prefix)
  std::string name;                 // this host's name: [a-z0-9-], 1-63
  std::string address;              // where the other hosts reach this one's instances
  std::vector<std::string> labels;  // "zone=a"
  std::string ttl = "5s";           // the host's lease
  std::string state_dir;            // logs; default /var/lib/squadron/<fleet>/<name>, or a temp one
  int gateway_port = 0;             // the host\'s gateway on ADDRESS:PORT (0: none)
  int gateway_admin = 40999;        // its admin endpoints on 127.0.0.1:PORT (0: any free port)
  std::vector<std::string> control;  // the servers\' control APIs, which the gateway follows
};

int run_agent(const AgentCliOptions& options);

}  // namespace squadron::apps
