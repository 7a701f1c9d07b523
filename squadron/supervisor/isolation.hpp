// Where an instance runs, arranged before its first instruction: the seam resource limits fill.
// The supervisor asks for an instance's place before each start and hands the files its process
// joins to the launcher (LaunchSpec::join), which writes the child's pid there before exec; it
// releases the place once the instance is gone for good. The fault-isolation issue implements it
// with cgroups (v2, and v1 per controller); without one, an instance runs where the fleet does.
//
//   sup.set_isolation(&cgroups);
//
// Thread safety: called on the supervisor's thread.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <boost/system/result.hpp>

namespace squadron::supervisor {

struct InstanceSpec;

class Isolation {
 public:
  virtual ~Isolation() = default;
  // Makes (or finds) the place of instance `id` of `spec`, its limits set, and returns the files
  // its process joins. An error fails this start ("cannot start: ..."), as a failed exec does.
  virtual boost::system::result<std::vector<std::filesystem::path>> prepare(
      const std::string& id, const InstanceSpec& spec) = 0;
  // Instance `id` is gone for good (no process of it runs): its place may go.
  virtual void release(const std::string& id) = 0;
};

}  // namespace squadron::supervisor
