// Where an instance runs, arranged before its first instruction. The supervisor asks for an
// instance's place before each start and hands the files its process joins to the launcher
// (LaunchSpec::join), which writes the child's pid there before exec; it kills through the place
// (every process in it, even one that left its process group with setsid) when the instance
// ends or is stopped, reads what the instance uses from it, and releases the place once the
// instance is gone for good. `Cgroups` (cgroups.hpp) is the implementation: cgroup v2, or v1
// per controller; without one, an instance runs where the fleet does.
//
//   sup.set_isolation(&cgroups);
//
// Thread safety: called on the supervisor's thread.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <boost/system/result.hpp>

#include "squadron/supervisor/resources.hpp"

namespace squadron::supervisor {

struct InstanceSpec;

class Isolation {
 public:
  virtual ~Isolation() = default;
  // Makes (or finds) the place of instance `id` of `spec`, its limits set, and returns the files
  // its process joins. An error fails this start ("cannot start: ..."), as a failed exec does.
  virtual boost::system::result<std::vector<std::filesystem::path>> prepare(
      const std::string& id, const InstanceSpec& spec) = 0;
  // Takes over the place of `id`, made by an earlier run for a process that still runs in it
  // (Supervisor::adopt): no process is touched. False when there is no such place.
  virtual bool adopt(const std::string& id, const InstanceSpec& spec) = 0;
  // SIGKILLs every process in the place of `id` (none may be left to escape it).
  virtual void kill(const std::string& id) = 0;
  // What the place of `id` uses now; nullopt when it cannot tell (no such place).
  virtual std::optional<Usage> usage(const std::string& id) const = 0;
  // Instance `id` is gone for good (no process of it runs): its place may go.
  virtual void release(const std::string& id) = 0;
};

}  // namespace squadron::supervisor
