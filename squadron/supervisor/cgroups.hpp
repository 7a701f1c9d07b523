// Every instance in a cgroup of its own, under one cgroup per fleet, its limits written before
// its first instruction runs (the launcher writes the child's pid into cgroup.procs before exec).
// Both layouts of the field, behind the Isolation seam, detected at start:
//   - cgroup v2, one unified hierarchy: memory.max (+ memory.swap.max 0), cpu.max, pids.max;
//     usage from memory.stat, cpu.stat, memory.events; cgroup.kill ends everything in it.
//   - cgroup v1, a hierarchy per controller (this project's CI machine): memory.limit_in_bytes
//     (+ memsw), cpu.cfs_quota_us, pids.max, cpuacct.usage, memory.oom_control; without
//     cgroup.kill, the freezer holds the processes still while each gets SIGKILL, so none can
//     fork past it or leave a pid to be reused.
// An instance with a CPU limit of N cores (cpu: 0.5 -> 1) also runs on N cores of the fleet's,
// chosen where the fewest limited cores are committed (cpuset.cpus; v1 cpuset / v2 cpuset
// controller, when there is one). Its bursts then stay on those cores, so the others keep their
// wake-ups quick for the services without limits; docs/decisions/0012-cpu-limits-pin-cores.md.
// The fleet's cgroup is named after the fleet and made under the cgroup squadron runs in; what a
// crashed fleet of the same name left there is killed when the next one starts.
//
//   auto layout = detect_cgroups();                       // reads /proc/self/{mountinfo,cgroup}
//   auto cg = Cgroups::create(layout, "squadron-shop-1a2b3c4d");
//   if (!cg) warn(cg.error());                            // no permission: run without limits
//   sup.set_isolation(cg->get());
//
// Tests point a layout at a fake file tree (a temporary folder standing in for /sys/fs/cgroup).
// Thread safety: one thread (the supervisor's).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "squadron/supervisor/isolation.hpp"

namespace squadron::supervisor {

struct CgroupLayout {
  int version = 0;  // 1 or 2; 0 when no usable hierarchy is mounted
  // v2: the directory of the cgroup this process is in, in the unified hierarchy.
  std::filesystem::path unified;
  // v1: per controller (memory, cpu, cpuacct, pids, freezer), the directory of the cgroup this
  // process is in within that controller's hierarchy.
  std::map<std::string, std::filesystem::path> v1;
  std::string problem;  // version 0: why
};

// From the text of /proc/self/mountinfo and /proc/self/cgroup. v1 when the memory, cpu or pids
// controller is mounted as v1 (a hybrid system's unified hierarchy then holds none of them);
// else v2 when a cgroup2 file system is mounted.
CgroupLayout detect_cgroups(std::string_view mountinfo, std::string_view self_cgroup);
CgroupLayout detect_cgroups();

// The name of a fleet's cgroup: "squadron-<name>-<8 hex of the manifest's folder>", only
// [a-z0-9_-], so two fleets never share one and the same fleet finds its own again.
std::string fleet_cgroup_name(std::string_view fleet, const std::filesystem::path& dir);

// A kernel CPU list ("0-3,6") and back; an unreadable list is empty.
std::vector<int> parse_cpu_list(std::string_view text);
std::string format_cpu_list(const std::vector<int>& cpus);
// The ceil(millicores / 1000) CPUs of `allowed` an instance limited to `millicores` runs on:
// those with the fewest millicores `committed` to them, the highest-numbered first among equals
// (CPU 0 usually takes the most interrupts), returned in ascending order. Empty (run anywhere)
// when that is as many as `allowed` has.
std::vector<int> pick_cpus(const std::vector<int>& allowed,
                           const std::map<int, std::uint64_t>& committed, std::uint64_t millicores);

class Cgroups final : public Isolation {
 public:
  // Makes the fleet's cgroup `name` under `layout`'s (v2: enabling the memory, cpu and pids
  // controllers for it), killing and removing what an earlier fleet of that name left but the
  // instances named in `keep` (which a restarted agent adopts). An error says why no cgroup can
  // be made (no permission, a read-only hierarchy, ...).
  static boost::system::result<std::unique_ptr<Cgroups>> create(
      const CgroupLayout& layout, const std::string& name, std::string* why = nullptr,
      const std::set<std::string>& keep = {});
  // Kills whatever is still in the fleet's cgroups and removes them, unless told to leave them.
  ~Cgroups() override;
  // The destructor leaves every cgroup and what runs in it (for the next agent to adopt).
  void leave() noexcept { leave_ = true; }
  Cgroups(const Cgroups&) = delete;
  Cgroups& operator=(const Cgroups&) = delete;

  boost::system::result<std::vector<std::filesystem::path>> prepare(
      const std::string& id, const InstanceSpec& spec) override;
  bool adopt(const std::string& id, const InstanceSpec& spec) override;
  void kill(const std::string& id) override;
  std::optional<Usage> usage(const std::string& id) const override;
  void release(const std::string& id) override;

  int version() const noexcept { return version_; }
  // The fleet's cgroup directories: one (v2) or one per controller (v1).
  std::vector<std::filesystem::path> fleet_dirs() const;
  // Where the guardian kills from if the fleet dies: the directory whose instance cgroups list
  // every process (v2: the fleet's; v1: the freezer's if mounted, else pids', else memory's), and
  // on v1 the freezer's fleet directory (empty without a freezer).
  std::filesystem::path kill_dir() const;
  std::filesystem::path freezer_dir() const;
  // "cgroup v1 (memory, cpu, cpuacct, pids, freezer)" or "cgroup v2 (memory, cpu, pids)".
  std::string describe() const;
  // Whether limits of this kind can be set: "memory", "cpu", "pids".
  bool controls(std::string_view controller) const;
  // The CPUs instance `id` is confined to (empty: any of the fleet's).
  std::vector<int> cpus_of(const std::string& id) const;

 private:
  Cgroups() = default;
  // The instance's directory in the hierarchy of `controller` (v1), or the unified one.
  std::filesystem::path dir_of(const std::string& id, std::string_view controller) const;
  // Every directory of the instance (one per hierarchy; v2: one).
  std::vector<std::filesystem::path> dirs_of(const std::string& id) const;
  // Removes the instance's directories that are empty by now; keeps the others for later.
  void remove_dirs(const std::string& id);
  void retry_removals();
  // Confines instance `id` to CPUs for `r`'s CPU limit (or opens it to the fleet's again).
  boost::system::error_code place_cpus(const std::string& id, const Resources& r);
  void unplace_cpus(const std::string& id);

  int version_ = 0;
  // v2: {"": fleet dir}; v1: controller -> fleet dir (co-mounted controllers share one).
  std::map<std::string, std::filesystem::path> fleet_;
  std::set<std::string> controllers_;  // limits it can set: memory, cpu, pids
  std::set<std::string> pending_removal_;
  // With a cpuset hierarchy: the fleet's CPUs and memory nodes (v1 needs both on each cgroup),
  // the millicores committed to each CPU and the CPUs of each confined instance.
  std::vector<int> cpus_;
  std::string mems_;
  std::map<int, std::uint64_t> committed_;
  struct Placed {
    std::vector<int> cpus;
    std::uint64_t share = 0;  // millicores committed to each of them
  };
  std::map<std::string, Placed> placed_;
  bool leave_ = false;
};

// SIGKILLs every process listed in `procs_dir`/cgroup.procs, holding them frozen meanwhile when
// `freezer_state` names a v1 freezer.state (or writing 1 to cgroup.kill when `procs_dir` has
// one), until none is listed (at most `rounds` passes). No allocation: the guardian calls it
// after the fleet died. Returns the processes signalled.
int kill_cgroup(const char* procs_dir, const char* freezer_state, int rounds = 50) noexcept;

}  // namespace squadron::supervisor
