// What an instance may use (its limits) and what it uses (a sample), as the supervisor and its
// isolation see them. Plain values; the manifest's `resources:` fills Resources.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace squadron::supervisor {

struct Resources {
  std::optional<std::uint64_t> memory_bytes;  // memory.max / memory.limit_in_bytes
  std::optional<std::uint64_t> millicores;    // cpu.max / cpu.cfs_quota_us over a 100 ms period
  std::optional<std::uint64_t> pids;          // pids.max
  bool any() const { return memory_bytes || millicores || pids; }
  bool operator==(const Resources&) const = default;
};

// One look at an instance's use: counters since its place was made (cpu, throttling, OOM kills
// only grow) and its resident memory now.
struct Usage {
  std::uint64_t rss_bytes = 0;       // anonymous + mapped file pages of every process in it
  std::uint64_t cpu_usec = 0;        // CPU time of every process in it, user + system
  std::uint64_t throttled_usec = 0;  // time held back by its CPU limit
  std::uint64_t nr_throttled = 0;    // periods in which it was held back
  std::uint64_t oom_kills = 0;       // processes the kernel killed for its memory limit
  int processes = 0;
  std::string cpus = {};     // the CPUs it is confined to ("1", "2-3"); empty: any of the fleet's
  bool from_cgroup = false;  // false: read from /proc (no OOM or throttling counts)
};

}  // namespace squadron::supervisor
