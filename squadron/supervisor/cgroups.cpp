#include "squadron/supervisor/cgroups.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "squadron/supervisor/supervisor.hpp"

namespace squadron::supervisor {

namespace fs = std::filesystem;
using boost::system::error_code;

namespace {

constexpr std::uint64_t kCpuPeriodUsec = 100'000;

// The scheduler's weight for a CPU limit, as Kubernetes derives it from a container's request
// (which defaults to its limit): 1,024 shares a core (v1), mapped onto v2's 1-10,000 weights.
// Without a limit, the default (1,024 shares, weight 100): a limited spinner then yields to an
// unlimited service's wake-ups instead of sharing with it evenly.
std::uint64_t cpu_shares(std::uint64_t millicores) {
  return std::clamp<std::uint64_t>(millicores * 1024 / 1000, 2, 262'144);
}
std::uint64_t cpu_weight(std::uint64_t millicores) {
  return 1 + (cpu_shares(millicores) - 2) * 9'999 / 262'142;
}

error_code errno_code(int e) { return {e, boost::system::system_category()}; }

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const auto at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

// `cgroup_path` (from /proc/self/cgroup) under a mount of `root` at `mount_point`.
fs::path place_in(const std::string& mount_point, std::string_view root,
                  std::string_view cgroup_path) {
  if (root != "/" && cgroup_path.substr(0, root.size()) == root)
    cgroup_path.remove_prefix(root.size());
  while (!cgroup_path.empty() && cgroup_path.front() == '/') cgroup_path.remove_prefix(1);
  if (cgroup_path.empty()) return fs::path(mount_point).lexically_normal();
  return (fs::path(mount_point) / fs::path(cgroup_path)).lexically_normal();
}

// Writes `text` to `file` (created in a fake tree; a cgroup's files exist already).
error_code write_file(const fs::path& file, std::string_view text, bool create = true) {
  const int fd =
      ::open(file.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC | (create ? O_CREAT : 0), 0644);
  if (fd < 0) return errno_code(errno);
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int e = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) return errno_code(n < 0 ? e : EIO);
  return {};
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The value of `key` in a "key value" per line file (memory.stat, cpu.stat, memory.events).
std::uint64_t keyed(const std::string& text, std::string_view key) {
  std::size_t at = 0;
  while (at < text.size()) {
    const auto end = text.find('\n', at);
    const std::string_view line(text.data() + at,
                                (end == std::string::npos ? text.size() : end) - at);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ')
      return std::strtoull(std::string(line.substr(key.size() + 1)).c_str(), nullptr, 10);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return 0;
}

std::uint64_t number_in(const fs::path& file) {
  return std::strtoull(read_file(file).c_str(), nullptr, 10);
}

void sleep_ms(long ms) {
  timespec t{ms / 1000, (ms % 1000) * 1'000'000};
  while (::nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

// --- allocation-free helpers for kill_cgroup (the guardian's) ---

// dst = a + b (+ c), truncated to `cap`.
void concat(char* dst, std::size_t cap, const char* a, const char* b, const char* c = "") {
  std::size_t n = 0;
  for (const char* p : {a, b, c}) {
    while (*p != '\0' && n + 1 < cap) dst[n++] = *p++;
  }
  dst[n] = '\0';
}

bool write_raw(const char* path, const char* text) {
  const int fd = ::open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return false;
  const auto len = std::strlen(text);
  const bool ok = ::write(fd, text, len) == static_cast<ssize_t>(len);
  ::close(fd);
  return ok;
}

// Calls on_pid for every pid in the file; returns how many.
template <typename F>
int each_pid(const char* procs, F&& on_pid) {
  const int fd = ::open(procs, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[4096];
  long pid = 0;
  bool digits = false;
  int count = 0;
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] >= '0' && buf[i] <= '9') {
        pid = pid * 10 + (buf[i] - '0');
        digits = true;
      } else {
        if (digits && pid > 0) on_pid(static_cast<pid_t>(pid)), ++count;
        pid = 0;
        digits = false;
      }
    }
  }
  if (digits && pid > 0) on_pid(static_cast<pid_t>(pid)), ++count;
  ::close(fd);
  return count;
}

// Waits (at most ~100 ms) until freezer.state reads FROZEN.
void wait_frozen(const char* state) {
  for (int i = 0; i < 100; ++i) {
    const int fd = ::open(state, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[16] = {};
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n >= 6 && std::memcmp(buf, "FROZEN", 6) == 0) return;
    sleep_ms(1);
  }
}

}  // namespace

int kill_cgroup(const char* procs_dir, const char* freezer_state, int rounds) noexcept {
  char procs[4096], cgkill[4096];
  concat(procs, sizeof procs, procs_dir, "/cgroup.procs");
  concat(cgkill, sizeof cgkill, procs_dir, "/cgroup.kill");
  int signalled = 0;
  if (::access(cgkill, F_OK) == 0 && write_raw(cgkill, "1")) {
    // The kernel kills them all at once, forks in flight included; wait until they are gone.
    for (int i = 0; i < rounds && each_pid(procs, [](pid_t) {}) > 0; ++i) sleep_ms(2);
    return each_pid(procs, [](pid_t) {});
  }
  // Nothing in it (the usual case once an instance's last process is reaped): no freeze.
  if (each_pid(procs, [](pid_t) {}) == 0) return 0;
  const bool freeze = freezer_state != nullptr && freezer_state[0] != '\0';
  for (int r = 0; r < rounds; ++r) {
    // Frozen, none of them can fork a new one or exit and leave its pid to a stranger meanwhile.
    if (freeze && write_raw(freezer_state, "FROZEN")) wait_frozen(freezer_state);
    const int n = each_pid(procs, [&](pid_t pid) {
      if (::kill(pid, SIGKILL) == 0) ++signalled;
    });
    if (freeze) write_raw(freezer_state, "THAWED");
    if (n == 0) break;
    sleep_ms(1);
  }
  return signalled;
}

std::vector<int> parse_cpu_list(std::string_view text) {
  std::set<int> cpus;
  for (auto part : split(text, ',')) {
    while (!part.empty() && (part.back() == '\n' || part.back() == ' ')) part.remove_suffix(1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.empty()) continue;
    const auto dash = part.find('-');
    const std::string first(part.substr(0, dash));
    const std::string last(dash == std::string_view::npos ? part : part.substr(dash + 1));
    char* end = nullptr;
    const long a = std::strtol(first.c_str(), &end, 10);
    if (first.empty() || *end != '\0') return {};
    const long b = std::strtol(last.c_str(), &end, 10);
    if (last.empty() || *end != '\0' || a < 0 || b < a || b > 65'535) return {};
    for (long c = a; c <= b; ++c) cpus.insert(static_cast<int>(c));
  }
  return {cpus.begin(), cpus.end()};
}

std::string format_cpu_list(const std::vector<int>& cpus) {
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? std::to_string(cpus[i]) : fmt::format("{}-{}", cpus[i], cpus[j]);
    i = j + 1;
  }
  return out;
}

std::vector<int> pick_cpus(const std::vector<int>& allowed,
                           const std::map<int, std::uint64_t>& committed,
                           std::uint64_t millicores) {
  const std::size_t n = (millicores + 999) / 1000;
  if (n == 0 || n >= allowed.size()) return {};
  std::vector<int> order = allowed;
  auto load = [&](int cpu) {
    auto it = committed.find(cpu);
    return it == committed.end() ? std::uint64_t{0} : it->second;
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return load(a) != load(b) ? load(a) < load(b) : a > b; });
  order.resize(n);
  std::sort(order.begin(), order.end());
  return order;
}

CgroupLayout detect_cgroups(std::string_view mountinfo, std::string_view self_cgroup) {
  struct Mount {
    std::string point;
    std::string root;
  };
  std::map<std::string, Mount> v1_mounts;  // controller -> mount
  std::optional<Mount> unified;
  for (auto line : split(mountinfo, '\n')) {
    const auto fields = split(line, ' ');
    std::size_t dash = 0;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (fields.size() < 5 || dash + 3 >= fields.size()) continue;
    const auto type = fields[dash + 1];
    Mount m{std::string(fields[4]), std::string(fields[3])};
    if (type == "cgroup2") {
      unified = m;
    } else if (type == "cgroup") {
      for (auto opt : split(fields[dash + 3], ',')) {
        for (const char* c : {"memory", "cpu", "cpuacct", "pids", "freezer", "cpuset"}) {
          if (opt == c) v1_mounts[c] = m;
        }
      }
    }
  }
  CgroupLayout layout;
  const bool v1 = v1_mounts.count("memory") + v1_mounts.count("cpu") + v1_mounts.count("pids") > 0;
  for (auto line : split(self_cgroup, '\n')) {
    const auto parts = split(line, ':');
    if (parts.size() < 3) continue;
    const std::string_view path = line.substr(parts[0].size() + parts[1].size() + 2);
    if (v1) {
      for (auto c : split(parts[1], ',')) {
        auto it = v1_mounts.find(std::string(c));
        if (it != v1_mounts.end())
          layout.v1[it->first] = place_in(it->second.point, it->second.root, path);
      }
    } else if (parts[0] == "0" && parts[1].empty() && unified) {
      layout.unified = place_in(unified->point, unified->root, path);
    }
  }
  if (v1 && !layout.v1.empty()) {
    layout.version = 1;
  } else if (!v1 && !layout.unified.empty()) {
    layout.version = 2;
  } else {
    layout.problem = "no cgroup hierarchy with the memory, cpu or pids controller is mounted";
  }
  return layout;
}

CgroupLayout detect_cgroups() {
  return detect_cgroups(read_file("/proc/self/mountinfo"), read_file("/proc/self/cgroup"));
}

std::string fleet_cgroup_name(std::string_view fleet, const fs::path& dir) {
  std::string name = "squadron-";
  for (char c : fleet.substr(0, 40)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    name.push_back(ok ? c : (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : '_');
  }
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : dir.string()) h = (h ^ c) * 1099511628211ULL;
  return fmt::format("{}-{:08x}", name, static_cast<std::uint32_t>(h ^ (h >> 32)));
}

namespace {

// Kills everything in each instance cgroup under `fleet_dir` but those named in `keep` and
// removes them, waiting up to half a second for the killed to go.
void clear_fleet_dir(const fs::path& fleet_dir, const fs::path& freezer_fleet,
                     const std::set<std::string>& keep = {}) {
  std::error_code ec;
  std::vector<fs::path> subdirs;
  for (const auto& e : fs::directory_iterator(fleet_dir, ec)) {
    if (e.is_directory(ec) && keep.count(e.path().filename().string()) == 0)
      subdirs.push_back(e.path());
  }
  for (const auto& d : subdirs) {
    const std::string state =
        freezer_fleet.empty() ? "" : (freezer_fleet / d.filename() / "freezer.state").string();
    kill_cgroup(d.c_str(), state.c_str());
  }
  for (int i = 0; i < 250; ++i) {
    bool left = false;
    for (const auto& d : subdirs) {
      if (::rmdir(d.c_str()) != 0 && errno != ENOENT) left = true;
    }
    if (!left) break;
    sleep_ms(2);
  }
}

}  // namespace

boost::system::result<std::unique_ptr<Cgroups>> Cgroups::create(const CgroupLayout& layout,
                                                                const std::string& name,
                                                                std::string* why,
                                                                const std::set<std::string>& keep) {
  auto fail = [&](int e, std::string text) -> boost::system::result<std::unique_ptr<Cgroups>> {
    if (why != nullptr) *why = std::move(text);
    return errno_code(e);
  };
  if (layout.version == 0) return fail(ENOENT, layout.problem);
  std::unique_ptr<Cgroups> cg(new Cgroups);
  cg->version_ = layout.version;
  auto make = [&](const fs::path& dir) -> int {
    if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return 0;
    return errno;
  };
  if (layout.version == 2) {
    const fs::path fleet = layout.unified / name;
    std::set<std::string> available;
    const std::string controllers = read_file(layout.unified / "cgroup.controllers");
    for (auto c : split(controllers, ' ')) {
      while (!c.empty() && (c.back() == '\n' || c.back() == ' ')) c.remove_suffix(1);
      if (!c.empty()) available.emplace(c);
    }
    for (const char* c : {"memory", "cpu", "pids"}) {
      if (available.count(c) == 0) continue;
      // The controller must be on for the fleet's cgroup (in our own) and for its instances
      // (in the fleet's). cgroup v2 refuses the first while our own cgroup holds processes.
      if (auto ec = write_file(layout.unified / "cgroup.subtree_control", fmt::format("+{}", c))) {
        return fail(ec.value(),
                    fmt::format("cannot enable the {} controller in {}: {}{}", c,
                                layout.unified.string(), ec.message(),
                                ec.value() == EBUSY
                                    ? " (that cgroup holds processes, which cgroup v2 forbids "
                                      "beside child cgroups with limits: run squadron in a "
                                      "cgroup of its own, e.g. systemd-run --scope -p "
                                      "Delegate=yes squadron up)"
                                    : ""));
      }
      cg->controllers_.insert(c);
    }
    if (const int e = make(fleet))
      return fail(e, fmt::format("cannot make {}: {}", fleet.string(), std::strerror(e)));
    clear_fleet_dir(fleet, {}, keep);
    for (const auto& c : cg->controllers_) {
      if (auto ec = write_file(fleet / "cgroup.subtree_control", "+" + c))
        return fail(ec.value(), fmt::format("cannot enable the {} controller in {}: {}", c,
                                            fleet.string(), ec.message()));
    }
    // Cores for CPU limits: an optimisation, not a promise; without the cpuset controller an
    // instance's quota still holds, it only spreads its bursts over every core.
    if (available.count("cpuset") != 0 &&
        !write_file(layout.unified / "cgroup.subtree_control", "+cpuset") &&
        !write_file(fleet / "cgroup.subtree_control", "+cpuset"))
      cg->cpus_ = parse_cpu_list(read_file(layout.unified / "cpuset.cpus.effective"));
    cg->fleet_[""] = fleet;
    return cg;
  }
  std::map<fs::path, bool> made;
  for (const auto& [controller, own] : layout.v1) {
    const fs::path fleet = own / name;
    if (made.emplace(fleet, true).second) {
      if (const int e = make(fleet))
        return fail(e, fmt::format("cannot make {}: {}", fleet.string(), std::strerror(e)));
    }
    cg->fleet_[controller] = fleet;
    if (controller == "memory" || controller == "cpu" || controller == "pids")
      cg->controllers_.insert(controller);
  }
  // v1's cpuset gives a new cgroup no CPUs and no memory nodes: the fleet's are its own's.
  if (auto it = layout.v1.find("cpuset"); it != layout.v1.end()) {
    const fs::path fleet = cg->fleet_.at("cpuset");
    const auto cpus = parse_cpu_list(read_file(it->second / "cpuset.cpus"));
    std::string mems = read_file(it->second / "cpuset.mems");
    while (!mems.empty() && (mems.back() == '\n' || mems.back() == ' ')) mems.pop_back();
    if (!cpus.empty() && !mems.empty() &&
        !write_file(fleet / "cpuset.cpus", format_cpu_list(cpus)) &&
        !write_file(fleet / "cpuset.mems", mems)) {
      cg->cpus_ = cpus;
      cg->mems_ = mems;
    }
  }
  const fs::path freezer = cg->freezer_dir();
  for (const auto& [dir, _] : made) clear_fleet_dir(dir, freezer, keep);
  return cg;
}

Cgroups::~Cgroups() {
  if (leave_) return;
  std::set<fs::path> dirs;
  for (const auto& [_, d] : fleet_) dirs.insert(d);
  const fs::path freezer = freezer_dir();
  // The freezer's first, so that what dies is held still everywhere.
  if (!freezer.empty()) clear_fleet_dir(freezer, freezer);
  for (const auto& d : dirs) {
    clear_fleet_dir(d, freezer);
    ::rmdir(d.c_str());
  }
}

fs::path Cgroups::dir_of(const std::string& id, std::string_view controller) const {
  if (version_ == 2) return fleet_.at("") / id;
  auto it = fleet_.find(std::string(controller));
  return it == fleet_.end() ? fs::path{} : it->second / id;
}

std::vector<fs::path> Cgroups::dirs_of(const std::string& id) const {
  std::set<fs::path> dirs;
  for (const auto& [_, d] : fleet_) dirs.insert(d / id);
  return {dirs.begin(), dirs.end()};
}

std::vector<fs::path> Cgroups::fleet_dirs() const {
  std::set<fs::path> dirs;
  for (const auto& [_, d] : fleet_) dirs.insert(d);
  return {dirs.begin(), dirs.end()};
}

fs::path Cgroups::kill_dir() const {
  if (version_ == 2) return fleet_.at("");
  for (const char* c : {"freezer", "pids", "memory", "cpu", "cpuacct"}) {
    if (auto it = fleet_.find(c); it != fleet_.end()) return it->second;
  }
  return {};
}

fs::path Cgroups::freezer_dir() const {
  auto it = fleet_.find("freezer");
  return version_ == 1 && it != fleet_.end() ? it->second : fs::path{};
}

bool Cgroups::controls(std::string_view controller) const {
  return controllers_.count(std::string(controller)) != 0;
}

std::string Cgroups::describe() const {
  std::string names;
  for (const auto& [c, _] : fleet_) {
    if (!c.empty()) names += (names.empty() ? "" : ", ") + c;
  }
  if (version_ == 2) {
    for (const auto& c : controllers_) names += (names.empty() ? "" : ", ") + c;
  }
  return fmt::format("cgroup v{} ({}) in {}", version_, names, kill_dir().parent_path().string());
}

boost::system::result<std::vector<fs::path>> Cgroups::prepare(const std::string& id,
                                                              const InstanceSpec& spec) {
  retry_removals();
  const Resources& r = spec.resources;
  for (const auto& [wanted, controller] :
       {std::pair{r.memory_bytes.has_value(), "memory"}, std::pair{r.millicores.has_value(), "cpu"},
        std::pair{r.pids.has_value(), "pids"}}) {
    if (wanted && !controls(controller)) return errno_code(ENOTSUP);
  }
  std::vector<fs::path> join;
  for (const auto& dir : dirs_of(id)) {
    if (::mkdir(dir.c_str(), 0755) != 0) {
      if (errno != EEXIST) return errno_code(errno);
      kill(id);  // a restart's place: nothing of the process before may stay in it
    }
    join.push_back(dir / "cgroup.procs");
  }
  pending_removal_.erase(id);
  auto set = [](const fs::path& dir, const char* file, const std::string& value) {
    return write_file(dir / file, value);
  };
  error_code ec;
  if (version_ == 2) {
    const fs::path dir = dir_of(id, "");
    if (controls("memory")) {
      ec = set(dir, "memory.max", r.memory_bytes ? std::to_string(*r.memory_bytes) : "max");
      // Without swap the limit is the limit (ignored where swap accounting is off).
      if (!ec && r.memory_bytes) (void)set(dir, "memory.swap.max", "0");
    }
    if (!ec && controls("cpu")) {
      ec = set(dir, "cpu.max",
               fmt::format("{} {}", r.millicores ? std::to_string(*r.millicores * 100) : "max",
                           kCpuPeriodUsec));
      if (!ec)
        ec = set(dir, "cpu.weight", std::to_string(r.millicores ? cpu_weight(*r.millicores) : 100));
    }
    if (!ec && controls("pids"))
      ec = set(dir, "pids.max", r.pids ? std::to_string(*r.pids) : "max");
  } else {
    if (const auto mem = dir_of(id, "memory"); !mem.empty()) {
      const std::string limit = r.memory_bytes ? std::to_string(*r.memory_bytes) : "-1";
      // memsw (memory + swap) is never below the memory limit: open it first, then set both.
      const bool memsw = fs::exists(mem / "memory.memsw.limit_in_bytes");
      if (memsw) (void)set(mem, "memory.memsw.limit_in_bytes", "-1");
      ec = set(mem, "memory.limit_in_bytes", limit);
      if (!ec && memsw) ec = set(mem, "memory.memsw.limit_in_bytes", limit);
    }
    if (const auto cpu = dir_of(id, "cpu"); !ec && !cpu.empty()) {
      ec = set(cpu, "cpu.cfs_period_us", std::to_string(kCpuPeriodUsec));
      if (!ec)
        ec =
            set(cpu, "cpu.cfs_quota_us", r.millicores ? std::to_string(*r.millicores * 100) : "-1");
      if (!ec)
        ec =
            set(cpu, "cpu.shares", std::to_string(r.millicores ? cpu_shares(*r.millicores) : 1024));
    }
    if (const auto pids = dir_of(id, "pids"); !ec && !pids.empty())
      ec = set(pids, "pids.max", r.pids ? std::to_string(*r.pids) : "max");
  }
  if (!ec) ec = place_cpus(id, r);
  if (ec) return ec;
  return join;
}

error_code Cgroups::place_cpus(const std::string& id, const Resources& r) {
  unplace_cpus(id);
  if (cpus_.empty()) return {};
  const fs::path dir = dir_of(id, version_ == 2 ? "" : "cpuset");
  if (dir.empty()) return {};
  const auto cpus = r.millicores ? pick_cpus(cpus_, committed_, *r.millicores) : std::vector<int>{};
  if (version_ == 1) {
    if (auto ec = write_file(dir / "cpuset.mems", mems_)) return ec;
  }
  // v2: an empty list is the parent's CPUs; v1 needs them written.
  const std::string list = !cpus.empty()   ? format_cpu_list(cpus)
                           : version_ == 1 ? format_cpu_list(cpus_)
                                           : std::string("\n");
  if (auto ec = write_file(dir / "cpuset.cpus", list)) return ec;
  if (!cpus.empty()) {
    const std::uint64_t share = *r.millicores / cpus.size();
    for (int c : cpus) committed_[c] += share;
    placed_[id] = {cpus, share};
  }
  return {};
}

void Cgroups::unplace_cpus(const std::string& id) {
  auto it = placed_.find(id);
  if (it == placed_.end()) return;
  for (int c : it->second.cpus) committed_[c] -= it->second.share;
  placed_.erase(it);
}

std::vector<int> Cgroups::cpus_of(const std::string& id) const {
  auto it = placed_.find(id);
  return it == placed_.end() ? std::vector<int>{} : it->second.cpus;
}

bool Cgroups::adopt(const std::string& id, const InstanceSpec& spec) {
  std::error_code ec;
  for (const auto& dir : dirs_of(id)) {
    if (!fs::is_directory(dir, ec)) return false;
  }
  pending_removal_.erase(id);
  // Its CPUs counted as committed again (and its cpuset as its spec wants it).
  (void)place_cpus(id, spec.resources);
  return true;
}

void Cgroups::kill(const std::string& id) {
  const fs::path procs = version_ == 2 ? dir_of(id, "") : kill_dir() / id;
  const fs::path freezer = freezer_dir();
  const std::string state = freezer.empty() ? "" : (freezer / id / "freezer.state").string();
  kill_cgroup(procs.c_str(), state.c_str());
}

std::optional<Usage> Cgroups::usage(const std::string& id) const {
  Usage u;
  u.from_cgroup = true;
  std::error_code ec;
  const fs::path procs = version_ == 2 ? dir_of(id, "") : kill_dir() / id;
  if (!fs::is_directory(procs, ec)) return std::nullopt;
  u.processes = each_pid((procs / "cgroup.procs").c_str(), [](pid_t) {});
  u.cpus = format_cpu_list(cpus_of(id));
  if (version_ == 2) {
    const fs::path dir = dir_of(id, "");
    const std::string mem = read_file(dir / "memory.stat");
    u.rss_bytes = keyed(mem, "anon") + keyed(mem, "file_mapped");
    const std::string cpu = read_file(dir / "cpu.stat");
    u.cpu_usec = keyed(cpu, "usage_usec");
    u.throttled_usec = keyed(cpu, "throttled_usec");
    u.nr_throttled = keyed(cpu, "nr_throttled");
    u.oom_kills = keyed(read_file(dir / "memory.events"), "oom_kill");
    return u;
  }
  if (const auto mem = dir_of(id, "memory"); !mem.empty()) {
    const std::string stat = read_file(mem / "memory.stat");
    u.rss_bytes = keyed(stat, "total_rss") + keyed(stat, "total_mapped_file");
    u.oom_kills = keyed(read_file(mem / "memory.oom_control"), "oom_kill");
  }
  if (const auto acct = dir_of(id, "cpuacct"); !acct.empty())
    u.cpu_usec = number_in(acct / "cpuacct.usage") / 1000;
  if (const auto cpu = dir_of(id, "cpu"); !cpu.empty()) {
    const std::string stat = read_file(cpu / "cpu.stat");
    u.throttled_usec = keyed(stat, "throttled_time") / 1000;
    u.nr_throttled = keyed(stat, "nr_throttled");
  }
  return u;
}

void Cgroups::release(const std::string& id) {
  kill(id);
  unplace_cpus(id);
  remove_dirs(id);
}

void Cgroups::remove_dirs(const std::string& id) {
  bool left = false;
  for (const auto& dir : dirs_of(id)) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) left = true;
  }
  if (left) {
    pending_removal_.insert(id);
  } else {
    pending_removal_.erase(id);
  }
}

void Cgroups::retry_removals() {
  const auto ids = pending_removal_;
  for (const auto& id : ids) remove_dirs(id);
}

}  // namespace squadron::supervisor
