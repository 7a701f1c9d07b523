// The leader's Runner (supervisor::Runner): the fleet's reconciler, rollouts and autoscaler run
// unchanged over hosts. add() places the instance (placement.hpp) and writes its assignment for
// the host's agent; stop() marks it to stop after its drain; what the agents report
// (instances/<host>/<id>) comes back to the observer as the Supervisor's reports would. A host
// whose lease lapses is lost: each of its instances is reported removed (the reconciler places
// replacements at once) and its assignments deleted, so that when it comes back its agent
// retires what still runs there. Every write is fenced by the election: a server that no longer
// leads writes nothing.
//
//   ClusterRunner runner{io, etcd, election, {.fleet = "shop"}};
//   Fleet fleet{io, runner, registry, clock, manifest, options, with};
//   runner.start();                           // reads hosts, assignments, reports; then watches
//
// Thread safety: all calls on the io_context's thread. Destroy it after stop() and once the
// io_context has run out of work.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "squadron/cluster/agent.hpp"
#include "squadron/cluster/election.hpp"
#include "squadron/cluster/etcd_client.hpp"
#include "squadron/cluster/host.hpp"
#include "squadron/cluster/keys.hpp"
#include "squadron/cluster/pauses.hpp"
#include "squadron/cluster/placement.hpp"
#include "squadron/registry/instance.hpp"
#include "squadron/supervisor/supervisor.hpp"

namespace squadron::cluster {

struct ClusterRunnerOptions {
  std::string fleet;
  std::chrono::milliseconds retry{500};  // after a failed etcd request
  // Placement rules per service (the manifest's `placement:`); none: any host.
  std::map<std::string, PlacementRule> rules;
  // What a person should see among the fleet's events (a host lost, an instance placed again):
  // service, instance, message.
  std::function<void(const std::string&, const std::string&, const std::string&)> event;
  std::function<void(const std::string&)> log;
};

class ClusterRunner final : public supervisor::Runner {
 public:
  ClusterRunner(boost::asio::io_context& io, EtcdClient& etcd, const Election& election,
                ClusterRunnerOptions options);
  ~ClusterRunner() override;
  ClusterRunner(const ClusterRunner&) = delete;
  ClusterRunner& operator=(const ClusterRunner&) = delete;

  // Reads the cluster's hosts, assignments and reports, reports what runs to the observer, then
  // follows every change.
  void start();
  void stop();

  // Whether the first read is in (before it, the fleet should not reconcile: it would start
  // what already runs).
  bool synced() const noexcept { return synced_; }
  // Called once the first read is in.
  std::function<void()> on_synced;

  std::string add(const supervisor::InstanceSpec& spec) override;
  void stop(const std::string& id, std::chrono::milliseconds drain) override;
  void stop_all(std::function<void()> done) override;
  std::vector<supervisor::InstanceStatus> snapshot() const override;
  std::vector<std::string> logs(const std::string& id, std::size_t lines) const override;
  // A new observer hears of every instance known so far (posted: after the call returns), then
  // of each change: a fleet made once the cluster's state is read learns what runs.
  void set_observer(supervisor::InstanceObserver* observer) override;
  // Tells the observer of every instance known, now.
  void tell_observer();

  // The value of a key of the fleet's other than hosts, assignments and instances (such as the
  // desired state's), as last read or watched; empty when it has none.
  std::string stored(const std::string& key) const;
  // Writes `key` (empty `value`: deletes it), fenced by the election, after the writes before it.
  void write_fenced(std::string key, std::string value);

  // The hosts as last read, and those lost since this server leads (until they come back): each
  // with its instances' count and the memory their services request.
  struct Host {
    HostInfo info;
    bool up = true;
    std::chrono::system_clock::time_point lost_at{};  // when it was lost (not up)
    std::size_t instances = 0;
    std::uint64_t memory_requested = 0;
  };
  std::vector<Host> hosts() const;

 private:
  struct Entry {
    std::string host;  // where it is placed; empty while no host fits
    Assignment assignment;
    supervisor::InstanceStatus status;
    bool written = false;   // its assignment is in etcd
    bool reported = false;  // its agent reported it at least once
  };

  boost::asio::awaitable<void> follow();
  void enqueue(std::string key, std::optional<std::string> value);  // nullopt: delete
  boost::asio::awaitable<void> write_all();
  void load(const std::vector<KeyValue>& kvs);
  void on_key(const std::string& key, const std::string* value);
  void on_host(const std::string& name, const std::string* value);
  void on_report(const std::string& host, const std::string& id, const std::string* value);
  void on_assignment(const std::string& host, const std::string& id, const std::string* value);
  void lose_host(const std::string& name);
  void forget(const std::string& id, const std::string& why);
  bool try_place(Entry& e, const std::string& prefer);
  void place_waiting();
  void changed(const Entry& e);
  void check_all_stopped();
  std::vector<HostView> views() const;
  std::vector<Placed> placed() const;
  void say(const std::string& what) const;

  boost::asio::io_context& io_;
  EtcdClient& etcd_;
  const Election& election_;
  ClusterRunnerOptions options_;
  Keys keys_;
  supervisor::InstanceObserver* observer_ = nullptr;
  bool stopped_ = false;
  bool synced_ = false;
  std::map<std::string, HostInfo> hosts_;
  std::map<std::string, std::pair<HostInfo, std::chrono::system_clock::time_point>> lost_;
  std::map<std::string, Entry> entries_;          // by instance id
  std::map<std::string, std::string> last_host_;  // service -> the host of its last instance
  std::map<std::string, long> next_number_;       // service -> highest instance number seen
  std::function<void()> all_stopped_;
  std::map<std::string, std::optional<std::string>> pending_;  // writes to make, by key
  std::map<std::string, std::string> others_;                  // other keys of the fleet's, by key
  bool writing_ = false;
  Pauses pauses_;  // cancelled by stop()
};

}  // namespace squadron::cluster
