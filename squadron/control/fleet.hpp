// The control plane of one fleet: desired state (the manifest plus scale and restart commands)
// reconciled, level-triggered, with what the supervisor runs, and published to the registry.
//
//   Fleet fleet{io, runner, registry, clock, manifest, options, {.store = &store}};
//   fleet.start();                          // applies the saved scale, starts what is missing
//   if (auto err = fleet.scale("hello", 8)) answer(err->status, err->detail);
//
// Fleet is orchestration; its concerns live in their own files: the reconcile loop
// (reconciler.cpp), rollouts, deploys and rollbacks (rollout.cpp), the apply diff (apply.hpp),
// persistence behind DesiredStore (desired_store.hpp), output to followers (output.hpp). What it
// needs of the process around it comes through its constructor: the instances (a
// supervisor::Runner), the registry, the clock, and FleetCollaborators.
//
// Every pass compares, per service, the instances that are meant to stay (not draining or
// stopping) with the desired count and takes the next step: start the missing, retire the
// surplus (unready ones first, then the newest), or advance a rollout within the service's
// `deploy:` limits (max surge, max unavailable). Passes run after every change and every
// `resync`, so a crash anywhere is repaired by the next one.
//
// Thread safety: all calls on the io_context's thread (the supervisor's and registry's).
#pragma once

#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/fwd.hpp>

#include "squadron/control/apply.hpp"
#include "squadron/control/desired_store.hpp"
#include "squadron/control/drain_gate.hpp"
#include "squadron/control/manifest.hpp"
#include "squadron/control/output.hpp"
#include "squadron/control/revisions.hpp"
#include "squadron/control/state.hpp"
#include "squadron/core/clock.hpp"
#include "squadron/registry/registry.hpp"
#include "squadron/supervisor/report.hpp"
#include "squadron/supervisor/supervisor.hpp"

namespace squadron::control {

struct FleetOptions {
  // How long a retired instance stays `draining` (still running, out of the registry's ready
  // set) before SIGTERM, so balancers following the watch stream stop using it first.
  std::chrono::milliseconds drain = std::chrono::milliseconds(0);
  std::chrono::milliseconds resync = std::chrono::seconds(1);
  int max_replicas = 1000;
};

// What `squadron up` adds around an apply (apps/squadron/up.cpp).
class ApplyHooks {
 public:
  virtual ~ApplyHooks() = default;
  // On every manifest an apply receives, before it is compared: adds what `up` added to the
  // file's (the SQUADRON_<NAME>_URL variables). `dry_run`: nothing may be made for it.
  virtual void prepare(Manifest& next, bool dry_run) = 0;
  // Once an apply changed the fleet (not for a dry run), with the services it added.
  virtual void applied(const std::vector<std::string>& added) = 0;
};

// Who hears every event (also in the registry) and every output line: the foreground `up`.
class FleetObserver {
 public:
  virtual ~FleetObserver() = default;
  virtual void on_event(const registry::Event& event) = 0;
  virtual void on_output(const supervisor::InstanceStatus& status, std::string_view line) = 0;
};

// Each may be null: nothing saved, the fixed `drain`, manifests applied as parsed, nobody told.
// Each must outlive the fleet.
struct FleetCollaborators {
  DesiredStore* store = nullptr;
  DrainGate* drain = nullptr;
  ApplyHooks* apply = nullptr;
  FleetObserver* observer = nullptr;
};

class Fleet final : private supervisor::InstanceObserver {
 public:
  Fleet(boost::asio::io_context& io, supervisor::Runner& runner, registry::Registry& reg,
        const core::Clock& clock, Manifest manifest, FleetOptions options,
        FleetCollaborators with = {});
  ~Fleet() override;
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Adds a service that is not in the manifest file (Squadron's own gateway). Before start().
  void add_service(ServiceSpec spec);

  // Applies the saved scale and revisions (a warning for a file it could not read) and starts
  // the reconcile loop. A service whose definition in the manifest is the one saved with its
  // revisions runs the revision it ran (a deploy survives a restart of the fleet); one edited
  // in the manifest meanwhile gets a new revision from it (the user edited it last).
  void start();

  std::optional<CommandError> scale(std::string_view service, int replicas);
  // The autoscaler's decision: like scale(), but not saved (the autoscaler decides again after
  // a restart) and recorded with its reason.
  void autoscale(std::string_view service, int replicas, const std::string& reason);
  // An autoscaler's note without a change (a rule it switched to), as an event.
  void note(std::string_view service, const std::string& message);
  // Replaces every instance of `service`, one at a time, each only once its successor is ready.
  std::optional<CommandError> restart(std::string_view service);
  // Rolls `service` to `spec` as a new revision (number + hash of what its instances run:
  // command, env, cwd, port, probes, stop grace, restart policy): new instances at most
  // `deploy.max_surge` above the desired count, old ones retired while at most
  // `deploy.max_unavailable` below it are ready. A successor that crashes or is not ready within
  // `deploy.ready_timeout` stops the rollout, and the service rolls back by itself to the
  // revision it ran. A deploy during a rollout supersedes it. Scale commands apply to the
  // newest revision. Returns the new revision's number (the current one when unchanged; routes,
  // proxy, autoscale and deploy settings then apply in place).
  std::variant<int, CommandError> deploy(std::string_view service, ServiceSpec spec,
                                         std::string cause);
  // Brings the running fleet to `next`, a manifest parsed anew (`squadron apply`): a service
  // whose definition changed rolls to a new revision (as deploy() does), one whose routes,
  // proxy, autoscale, deploy or replicas changed takes them in place (replicas set the desired
  // count, as `kubectl apply` does), a new service starts, a service no longer listed stops.
  // Settings of the fleet itself (name, listen addresses) are reported, not applied: they take
  // effect at the next `up`. All or nothing: refused (409) while a service with a changed
  // definition is being restarted. `dry_run`: only says what it would do.
  std::variant<ApplyPlan, CommandError> apply(Manifest next, const std::string& cause,
                                              bool dry_run);
  // The gateway's loopback port for `service` (its SQUADRON_<NAME>_URL), shown to watchers.
  void set_discovery_port(const std::string& service, std::uint16_t port) {
    discovery_[service] = port;
  }
  std::uint16_t discovery_port(std::string_view service) const {
    auto it = discovery_.find(service);
    return it == discovery_.end() ? 0 : it->second;
  }
  // Deploys the revision before the current one again (as a new revision).
  std::variant<int, CommandError> rollback(std::string_view service);
  // [{"revision","hash","at_ms","cause","current"}], oldest first.
  boost::json::array history(std::string_view service) const;
  int revision(std::string_view service) const;
  // Stops everything (no more reconciling); `done` runs when no instance is left.
  void down(std::function<void()> done);
  // Stops reconciling and leaves every instance running as it is (a cluster's server that stops
  // or no longer leads: the instances are the hosts', and the next leader takes them over).
  void detach();

  const Manifest& manifest() const noexcept { return manifest_; }
  int desired(std::string_view service) const;
  bool rolling(std::string_view service) const;
  bool stopping() const noexcept { return stopping_; }
  int total_desired() const;
  // {"name","desired","ready","instances","port","routes","restarting"}
  boost::json::object service_json(const ServiceSpec& spec) const;

  // Last `lines` lines of one instance's output.
  std::vector<std::string> logs(const std::string& id, std::size_t lines) const;
  std::shared_ptr<OutputSubscription> subscribe(std::string filter);

 private:
  struct Rollout {
    std::set<std::string> old_ids;  // still to replace
    // Successors started and not yet ready, with when each started (for ready_timeout).
    std::map<std::string, std::chrono::steady_clock::time_point> surges;
    int replaced = 0;
    int to_revision = 0;    // a deploy (or its rollback) to this revision; 0: a restart
    int from_revision = 0;  // what ran before, to roll back to
    bool rolling_back = false;
  };
  struct ServiceState {
    int desired = 0;
    std::optional<Rollout> rollout;
    std::vector<Revision> revisions;  // oldest first
    std::size_t current = 0;          // the one the service runs (or rolls out)
    std::string base;  // the hash of the manifest's definition (at start or the last apply)
    // Why it has not started: "waiting for migrate to complete", "blocked: migrate failed
    // (exit 3)"; empty once it has (or when it waits for nothing).
    std::string waiting;
  };
  // What keeps `spec` from its first start: a dependency not meeting its condition (or one that
  // failed for good: "blocked: ..."); nullopt when it may start.
  std::optional<std::string> unmet_dependency(const ServiceSpec& spec) const;
  // Makes revision `index` the one `service` runs: its definition, its rollout.
  void switch_to(ServiceState& state, std::size_t index, int from_revision, bool rolling_back);

  // supervisor::InstanceObserver: the runner's news.
  void on_change(const supervisor::InstanceStatus& st) override;
  void on_remove(const std::string& id) override;
  void on_output(const supervisor::InstanceStatus& st, std::string_view line) override;
  void event(const std::string& service, const std::string& instance, std::string message);
  void kick();
  void schedule_resync();
  void reconcile();
  // Whether an instance of this fixed-port service still exists (running, draining, stopping):
  // no other may start until it is gone.
  bool holds_fixed_port(const ServiceSpec& spec) const;
  void reconcile_service(const ServiceSpec& spec, ServiceState& state);
  bool step_rollout(const ServiceSpec& spec, ServiceState& state,
                    const std::vector<supervisor::InstanceStatus>& members);
  void retire(const std::string& id);
  void persist();
  void persist_revisions();
  void restore_revisions();
  std::string add(const ServiceSpec& spec);

  boost::asio::io_context& io_;
  supervisor::Runner& sup_;
  registry::Registry& reg_;
  const core::Clock& clock_;
  Manifest manifest_;
  FleetOptions options_;
  FleetCollaborators with_;
  std::map<std::string, ServiceState, std::less<>> services_;
  std::set<std::string> retiring_;
  std::set<std::string, std::less<>> builtin_;
  std::map<std::string, std::uint16_t, std::less<>>
      discovery_;  // add_service()'s: never removed by an apply
  std::map<std::string, supervisor::InstanceState> last_state_;
  OutputFeed output_;
  boost::asio::steady_timer resync_timer_;
  bool kicked_ = false;
  bool stopping_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Which `count` of `members` to retire when scaling down: instances that are not ready first
// (starting, in backoff, failed), then the newest (highest number). Returns their ids.
std::vector<std::string> choose_surplus(std::vector<supervisor::InstanceStatus> members,
                                        std::size_t count);

using supervisor::to_registry;  // the supervisor's view of an instance in the registry's terms

}  // namespace squadron::control
