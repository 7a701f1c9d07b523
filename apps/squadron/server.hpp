// `squadron server`: one of a cluster fleet's control-plane servers. Every server campaigns for
// leadership in etcd (cluster/election.hpp); the leader runs the fleet — the same reconciler,
// rollouts and control API as `squadron up` — over the hosts' agents (cluster/cluster_runner.hpp);
// the others stand by, and answer API requests by forwarding them to the leader (503 while
// nobody leads), so that the CLI, the dashboard and the hosts' gateways may use any server.
// A leader that loses its leadership starts itself again (exec) as a standby: nothing of the old
// term's state survives into the new.
#pragma once

#include <string>
#include <vector>

namespace squadron::apps {

struct ServerOptions {
  std::string file = "squadron.yaml";
  std::string name;       // this server's, unique in the fleet: [a-z0-9-]
  std::string listen;     // the control API's HOST:PORT (default: the manifest's control.listen)
  std::string advertise;  // the URL others reach it at (default: http://<listen>)
  std::vector<std::string> etcd;  // overrides cluster.etcd
};

int run_server(const ServerOptions& options, int argc, char** argv);

}  // namespace squadron::apps
