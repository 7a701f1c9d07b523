// The control plane of one fleet: desired state (the manifest plus scale and restart commands)
// reconciled, level-triggered, with what the supervisor runs, and published to the registry.
//
//   Fleet fleet{io, supervisor, registry, clock, manifest, {.state_file = dir.state()}};
//   fleet.start();                          // applies the saved scale, starts what is missing
//   if (auto err = fleet.scale("hello", 8)) answer(err->status, err->detail);
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

#include "squadron/control/manifest.hpp"
#include "squadron/control/revisions.hpp"
#include "squadron/control/state.hpp"
#include "squadron/core/clock.hpp"
#include "squadron/registry/registry.hpp"
#include "squadron/supervisor/supervisor.hpp"

namespace squadron::control {

struct FleetOptions {
  std::filesystem::path state_file;  // where scale commands persist; empty: nowhere
  // Where revisions persist (each service's history and the one it runs); empty: nowhere.
  std::filesystem::path revisions_file;
  // How long a retired instance stays `draining` (still running, out of the registry's ready
  // set) before SIGTERM, so balancers following the watch stream stop using it first.
  std::chrono::milliseconds drain = std::chrono::milliseconds(0);
  std::chrono::milliseconds resync = std::chrono::seconds(1);
  int max_replicas = 1000;
};

// Why a command was refused: an HTTP status (404, 409, 400) and what to do.
struct CommandError {
  int status;
  std::string detail;
};

// Lines of instance output, queued for one follower (`logs -f`); bounded in bytes: a follower
// that does not read is dropped (Fleet::kMaxFollowerBytes).
struct OutputSubscription {
  explicit OutputSubscription(boost::asio::io_context& io) : wake(io) {}
  std::string filter;  // a service or an instance id; empty: all
  std::deque<std::string> lines;
  std::size_t bytes = 0;           // in `lines`, bounded (Fleet::kMaxFollowerBytes)
  bool overflowed = false;         // dropped for reading too slowly: say so, then end
  std::string overflow_detail;     // how much waited ("1.0 MiB")
  bool closed = false;             // the fleet is going away: end the stream
  boost::asio::steady_timer wake;  // cancelled when lines arrive or the feed closes
};

class Fleet final {
 public:
  // What a follower of the fleet's output may have waiting for it, and all of them together:
  // past either, the follower (the one with the most, for the second) is dropped with a last
  // line saying so, and its memory is freed.
  static constexpr std::size_t kMaxFollowerBytes = std::size_t{1} << 20;
  static constexpr std::size_t kMaxFollowersBytes = std::size_t{16} << 20;

  Fleet(boost::asio::io_context& io, supervisor::Supervisor& sup, registry::Registry& reg,
        const core::Clock& clock, Manifest manifest, FleetOptions options);
  ~Fleet();
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
  struct ApplyStep {
    std::string service;
    std::string action;  // "deploy", "update", "add", "remove", "unchanged"
    std::string detail;  // what changed: "env COLOR, command", "routes, replicas 2 -> 4"
    int revision = 0;    // the revision it runs (or will) after the apply
  };
  struct ApplyPlan {
    std::vector<ApplyStep> steps;  // in the new manifest's order, then the removed ones
    std::vector<std::string> warnings;
    bool changes() const;
  };
  std::variant<ApplyPlan, CommandError> apply(Manifest next, const std::string& cause,
                                              bool dry_run);
  // Set when a gateway routes to the fleet: a retired instance stays draining until the gateway
  // routes by the registry revision that took it out (`revision` or later) and has no request
  // in flight to it — at most its service's stop_grace — instead of the fixed `drain`; then
  // SIGTERM. `done(false)`: the bound passed first.
  std::function<void(const std::string& id, std::uint64_t revision,
                     std::chrono::steady_clock::time_point deadline,
                     std::function<void(bool idle)> done)>
      when_idle;
  // Run on every manifest an apply receives before it is compared, to add what `up` adds to
  // the file's (the SQUADRON_<NAME>_URL variables); `dry_run`: nothing may be made for it.
  std::function<void(Manifest&, bool dry_run)> prepare;
  // Run once an apply has changed the fleet (not for a dry run), with the services it added
  // (`up` gives each its listener on the gateway).
  std::function<void(const std::vector<std::string>& added)> applied;
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

  // For the foreground `up`: every event (also in the registry) and every output line.
  std::function<void(const registry::Event&)> on_event;
  std::function<void(const supervisor::InstanceStatus&, std::string_view)> on_output;

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
  };
  // Makes revision `index` the one `service` runs: its definition, its rollout.
  void switch_to(ServiceState& state, std::size_t index, int from_revision, bool rolling_back);

  void on_change(const supervisor::InstanceStatus& st);
  void on_remove(const std::string& id);
  void on_line(const supervisor::InstanceStatus& st, std::string_view line);
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
  supervisor::Supervisor& sup_;
  registry::Registry& reg_;
  const core::Clock& clock_;
  Manifest manifest_;
  FleetOptions options_;
  std::map<std::string, ServiceState, std::less<>> services_;
  std::set<std::string> retiring_;
  std::set<std::string, std::less<>> builtin_;
  std::map<std::string, std::uint16_t, std::less<>>
      discovery_;  // add_service()'s: never removed by an apply
  std::map<std::string, supervisor::InstanceState> last_state_;
  std::vector<std::weak_ptr<OutputSubscription>> followers_;
  boost::asio::steady_timer resync_timer_;
  bool kicked_ = false;
  bool stopping_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Which `count` of `members` to retire when scaling down: instances that are not ready first
// (starting, in backoff, failed), then the newest (highest number). Returns their ids.
std::vector<std::string> choose_surplus(std::vector<supervisor::InstanceStatus> members,
                                        std::size_t count);

// The supervisor's view of an instance in the registry's terms.
registry::Instance to_registry(const supervisor::InstanceStatus& st);

}  // namespace squadron::control
