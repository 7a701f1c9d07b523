// The agent of one cluster host: registers the host in etcd under a lease it keeps alive, runs
// exactly the instances the leader assigned to the host (keys.hpp's assignments/<host>/), level-
// triggered from a read and then a watch, and reports each of them (instances/<host>/<id>) under
// the same lease, so that a host that vanishes takes its instances out of the registry within the
// lease's TTL.
//
//   Agent agent{io, etcd, supervisor, {.fleet = "shop", .host = this_host("h1", "10.213.0.11")}};
//   supervisor.set_observer(&agent);
//   agent.start();
//
// An assignment is {"spec": InstanceSpec JSON (spec_json.hpp), "stop": bool, "drain_ms": n}. The
// agent starts what is assigned and not running; stops (after `drain_ms` in the draining state)
// what is marked "stop" or no longer assigned; an instance that ended by itself (a task done, a
// restart policy that gave up) keeps its last report and is not started again; the key of an
// instance neither running nor assigned is deleted. While etcd cannot be reached the instances
// keep running as they are and the agent tries again every `retry`; a lease that lapsed (etcd
// unreachable past the TTL) is granted anew and everything reported again. With `resume_lease`
// (a restarted agent's, agent_state.hpp) it first renews the lease the agent before held, so
// that the host's keys never change across the restart.
//
// Thread safety: all calls on the io_context's thread. Destroy it after stop() and once the
// io_context has run out of work.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "squadron/cluster/etcd_client.hpp"
#include "squadron/cluster/host.hpp"
#include "squadron/cluster/keys.hpp"
#include "squadron/cluster/pauses.hpp"
#include "squadron/registry/instance.hpp"
#include "squadron/supervisor/supervisor.hpp"

namespace squadron::cluster {

struct AgentOptions {
  std::string fleet;
  HostInfo host;
  std::chrono::seconds ttl{5};                  // the host's lease (minimum 2 s)
  std::chrono::milliseconds retry{500};         // after a failed etcd request
  std::function<void(const std::string&)> log;  // what the agent does and what fails (optional)
  // Instances the host runs on its own (its gateway): started with the agent, never reported to
  // etcd, never stopped for want of an assignment.
  std::vector<supervisor::InstanceSpec> local;
  // The lease an earlier agent of this host held (agent_state.hpp): renewed and kept when it is
  // still alive, so that the host's keys never change across the agent's restart. 0: none.
  std::int64_t resume_lease = 0;
  // Called after every change of the instances or of the lease (to save the agent's state).
  std::function<void()> changed;
};

// An assignment's value.
struct Assignment {
  supervisor::InstanceSpec spec;
  bool stop = false;
  std::chrono::milliseconds drain{0};
};
std::string assignment_text(const Assignment& a);
// nullopt with `error` naming what is wrong.
std::optional<Assignment> parse_assignment(std::string_view text, std::string& error);

class Agent final : public supervisor::InstanceObserver {
 public:
  Agent(boost::asio::io_context& io, EtcdClient& etcd, supervisor::Runner& runner,
        AgentOptions options);
  ~Agent() override;
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Registers the host and follows its assignments until stop().
  void start();
  // Stops following etcd and ends its requests; with `leave`, first revokes the lease (the host
  // and its instances' keys go at once). The instances are the runner's: the caller stops them
  // (or leaves them for the next agent).
  void stop(bool leave);

  void on_change(const supervisor::InstanceStatus& status) override;
  void on_remove(const std::string& id) override;
  void on_output(const supervisor::InstanceStatus&, std::string_view) override {}

  std::int64_t lease() const noexcept { return lease_; }
  bool registered() const noexcept { return lease_ != 0; }
  std::size_t assigned() const noexcept { return assignments_.size(); }

 private:
  boost::asio::awaitable<void> keep_lease();
  boost::asio::awaitable<void> follow_assignments();
  boost::asio::awaitable<void> write_reports();
  boost::asio::awaitable<void> revoke_then_stop();
  void apply(const std::string& key, const std::string* value);  // null: deleted
  void reconcile();
  void report(const std::string& id, std::optional<registry::Instance> instance);
  void report_everything();
  void say(const std::string& what) const;

  boost::asio::io_context& io_;
  EtcdClient& etcd_;
  supervisor::Runner& runner_;
  AgentOptions options_;
  Keys keys_;
  Pauses pauses_;  // cancelled by stop()
  std::int64_t lease_ = 0;
  bool stopped_ = false;
  bool writing_ = false;
  std::map<std::string, Assignment> assignments_;
  std::set<std::string> stopping_;                  // asked to stop, not yet gone
  std::set<std::string> finished_;                  // ended by themselves: not started again
  std::map<std::string, registry::Instance> last_;  // the last report of each known instance
  std::map<std::string, std::optional<registry::Instance>> pending_;  // to write (nullopt: delete)
  std::set<std::string> reported_;  // ids whose key exists (as far as the agent knows)
  std::set<std::string> local_;     // ids of options_.local
};

}  // namespace squadron::cluster
