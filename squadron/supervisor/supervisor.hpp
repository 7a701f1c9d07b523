// Runs service instances as processes: starts each in its own process group (and, with an
// Isolation, its own cgroup with its limits) with its port and identity in the environment,
// captures its output, probes readiness and liveness, restarts it with backoff by its restart
// policy (an OOM kill is told apart: "oom-killed (limit 64 MiB)"), and stops it (SIGTERM to the
// group, SIGKILL to the group and its cgroup after the grace period).
//
//   Supervisor sup{io, launcher, clock};
//   sup.set_observer(&fleet);                     // on_change, on_remove, on_output
//   auto id = sup.add(spec);                      // starts it
//   sup.stop(id);                                 // graceful
//
// The control plane sees it as a Runner (an interface, so its reconciler and rollouts are
// tested with a fake one), and the processes it starts go through a ProcessLauncher and an
// Isolation (where an instance runs: its cgroup with its limits), both injected.
//
// Thread safety: all calls on the io_context's thread.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include "squadron/core/clock.hpp"
#include "squadron/supervisor/isolation.hpp"
#include "squadron/supervisor/launcher.hpp"

namespace squadron::supervisor {

enum class InstanceState { kStarting, kReady, kDraining, kStopping, kBackoff, kFailed, kStopped };
std::string_view to_string(InstanceState s) noexcept;

enum class Restart { kAlways, kOnFailure, kNever };

struct ProbeSpec {
  std::string path;  // HTTP GET path answering 2xx; empty (and no command): TCP connect
  // Exec probe: this command, run beside the instance (its cwd, environment, user and cgroup),
  // passes when it exits 0 within the timeout.
  std::vector<std::string> command;
  // gRPC health probe (grpc.health.v1.Health/Check over h2c): passes when the answer is SERVING
  // for this service name ("": the server as a whole).
  std::optional<std::string> grpc;
  bool none = false;  // ready once started (a worker serving no port), as compose
  std::chrono::milliseconds interval = std::chrono::seconds(1);
  std::chrono::milliseconds timeout = std::chrono::seconds(1);
  int threshold = 3;
  std::uint16_t port = 0;  // probe this port instead of the instance's (0: the instance's)
};

struct InstanceSpec {
  std::string service;
  // The instance's id when the caller chose it (a cluster's placement names instances across
  // hosts); default: "<service>-<n>", numbered by this supervisor. An id already running is a
  // caller's error: add() then returns it and starts nothing.
  std::string id;
  std::string revision = "1";
  LaunchSpec launch;                  // PORT, HOST, SQUADRON_* are added per instance
  std::optional<std::uint16_t> port;  // fixed port; default: a free one per start
  ProbeSpec ready;                    // default: TCP connect every 1 s
  std::optional<ProbeSpec> live;
  std::chrono::milliseconds stop_grace = std::chrono::seconds(10);
  Restart restart = Restart::kAlways;
  std::chrono::milliseconds probe_interval_while_starting = std::chrono::milliseconds(50);
  Resources resources;        // set by its Isolation before the process runs; none: unlimited
  int stop_signal = SIGTERM;  // what a graceful stop sends its group (postgres: SIGINT)
  std::vector<SecretSpec> secrets;
  // argv, env values and exec probe commands are templates (the manifest's): ${PORT},
  // ${SQUADRON_INSTANCE}, ... expanded at each launch, $$ for a literal $. Default: as given.
  bool expand_variables = false;
};

// The start time of process `pid` in clock ticks since boot, if it runs and leads its process
// group (a supervised instance does): what tells it from a later process given the same pid.
std::optional<unsigned long long> process_start_ticks(pid_t pid);

struct InstanceStatus {
  std::string service;
  std::string id;  // "<service>-<n>"
  pid_t pid = -1;
  std::uint16_t port = 0;
  InstanceState state = InstanceState::kStarting;
  int restarts = 0;
  std::string revision;
  std::chrono::system_clock::time_point started_at{};
  // "exit 3", "signal 9", "oom-killed (limit 64 MiB)", "cannot start: No such file or directory"
  std::string last_exit;
  int oom_kills = 0;  // times the kernel killed a process of it for its memory limit
  // Where it runs when that is another host (a cluster's runner): its address and name. Empty:
  // this machine (the registry says 127.0.0.1).
  std::string host;
  std::string node;
};

// What a Runner reports, on its io_context's thread.
class InstanceObserver {
 public:
  virtual ~InstanceObserver() = default;
  // Every state change of an instance.
  virtual void on_change(const InstanceStatus& status) = 0;
  // An instance is gone for good (after stop(), or at once for one its restart policy ended).
  virtual void on_remove(const std::string& id) = 0;
  // Every line an instance writes (stdout and stderr).
  virtual void on_output(const InstanceStatus& status, std::string_view line) = 0;
};

// Instances as the control plane runs them: the Supervisor, or a fake in tests.
class Runner {
 public:
  virtual ~Runner() = default;
  // Starts a new instance of `spec`; returns its id (`spec.id`, or "<service>-<n>").
  virtual std::string add(const InstanceSpec& spec) = 0;
  // Stops instance `id` gracefully (`draining` for `drain` first); unknown ids are ignored.
  virtual void stop(const std::string& id,
                    std::chrono::milliseconds drain = std::chrono::milliseconds(0)) = 0;
  // Stops every instance; `done` runs when none is left.
  virtual void stop_all(std::function<void()> done) = 0;
  virtual std::vector<InstanceStatus> snapshot() const = 0;
  // The last `lines` lines instance `id` wrote.
  virtual std::vector<std::string> logs(const std::string& id, std::size_t lines) const = 0;
  // Who hears of changes (one; null: nobody); it must outlive the runner or unset itself.
  virtual void set_observer(InstanceObserver* observer) = 0;
  // What each running instance uses now, by id (from its cgroup, or /proc without one).
  virtual std::map<std::string, Usage> usage() const { return {}; }
};

class Supervisor final : public Runner {
 public:
  Supervisor(boost::asio::io_context& io, ProcessLauncher& launcher, const core::Clock& clock);
  ~Supervisor() override;
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts a new instance of `spec`; returns its id.
  std::string add(const InstanceSpec& spec) override;
  // Stops instance `id` gracefully and forgets it once it is gone: `draining` for `drain` (still
  // running, so that balancers following the registry stop sending it requests), then SIGTERM
  // to its group, SIGKILL after its stop_grace. Unknown ids are ignored.
  void stop(const std::string& id,
            std::chrono::milliseconds drain = std::chrono::milliseconds(0)) override;
  // Stops every instance; `done` runs when none is left.
  void stop_all(std::function<void()> done) override;

  // Also writes every instance's output to `dir`/<id>.log, rotated to <id>.log.1 past
  // `max_bytes` (so at most twice that per instance). Default: memory only.
  void log_to(std::filesystem::path dir, std::size_t max_bytes = std::size_t{1} << 20);
  // Reports every instance's process group to `guardian` (which must outlive the supervisor), so
  // the groups die even if the supervisor is SIGKILLed. Default: none (PDEATHSIG only).
  void set_guardian(class Guardian* guardian) noexcept { guardian_ = guardian; }
  // Where instances' secrets go: `dir`/<instance>/ (0700), removed when the instance is gone and
  // with the supervisor. Should be on a memory file system (/run). Default: none (an instance
  // with secrets cannot start).
  void set_secrets_dir(std::filesystem::path dir) { secrets_dir_ = std::move(dir); }
  // Puts every instance in the place `isolation` makes for it (which must outlive the
  // supervisor). Default: none (an instance runs where the fleet runs).
  void set_isolation(Isolation* isolation) noexcept { isolation_ = isolation; }

  // The address instances listen on (their HOST) and are probed at: a cluster host's own, so
  // that other hosts' gateways reach them. Default: 127.0.0.1.
  void set_instance_address(const boost::asio::ip::address& address);
  // Instances outlive the supervisor, so that a new one adopts them (a cluster agent's restart,
  // as Nomad's client re-attaches): no PR_SET_PDEATHSIG, and each one's stdout and stderr go
  // through a named pipe `fifo_dir`/<id>.out that it holds open too (launcher.hpp). Set it
  // before add(); without a guardian. Default: instances die with the supervisor.
  void set_detachable(std::filesystem::path fifo_dir);
  // A running instance as a next supervisor adopts it.
  struct Held {
    InstanceSpec spec;  // with its id
    InstanceStatus status;
    unsigned long long start_ticks = 0;  // its process's start (/proc/<pid>/stat): pid reuse shows
  };
  // The instances whose process runs now.
  std::vector<Held> held() const;
  // Watches `held`'s process as its own from now on: probed, its output read from its pipe,
  // stopped and restarted by its spec (the exit status of a process it did not start is
  // unknown: "ended (adopted ...)"). False (nothing changes) when that process is gone or its
  // pid is another's now, or the id is taken.
  bool adopt(const Held& held);
  // Lets every instance go as it is: nothing is stopped, and neither this supervisor nor its
  // destruction touches them, their secrets or their pipes again.
  void detach();

  std::vector<InstanceStatus> snapshot() const override;
  std::optional<InstanceStatus> status(const std::string& id) const;
  // The last `lines` lines the instance wrote (stdout and stderr, in arrival order).
  std::vector<std::string> logs(const std::string& id, std::size_t lines) const override;
  void set_observer(InstanceObserver* observer) override { observer_ = observer; }
  std::map<std::string, Usage> usage() const override;

  struct Instance;

 private:
  friend struct Instance;
  void changed(Instance& inst);
  void terminate(const std::shared_ptr<Instance>& inst);
  void supervise(const std::shared_ptr<Instance>& inst);
  void erase(const std::string& id);

  boost::asio::io_context& io_;
  ProcessLauncher& launcher_;
  const core::Clock& clock_;
  std::map<std::string, std::shared_ptr<Instance>> instances_;
  std::map<std::string, int> next_index_;
  std::function<void()> all_stopped_;
  class Guardian* guardian_ = nullptr;
  InstanceObserver* observer_ = nullptr;
  Isolation* isolation_ = nullptr;
  std::filesystem::path log_dir_;
  std::filesystem::path secrets_dir_;
  std::filesystem::path fifo_dir_;
  boost::asio::ip::address instance_address_ = boost::asio::ip::address_v4::loopback();
  bool detached_ = false;
  std::size_t log_max_bytes_ = 0;
};

}  // namespace squadron::supervisor
