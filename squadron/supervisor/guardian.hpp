// A guardian process that outlives the supervisor just long enough to kill the process groups
// of every instance if the supervisor dies — even by SIGKILL, which no handler sees.
// PR_SET_PDEATHSIG reaches only an instance's first process; what that process forked (a shell
// script's children, a pre-forking server's workers) is reached through its process group.
//
//   Guardian guardian;                 // forks the guardian
//   guardian.watch(pid);               // after launching an instance (pgid == pid)
//   guardian.forget(pid);              // after reaping it
//
// The guardian reads "+pgid"/"-pgid" lines from a socket, and the fleet's cgroup directories
// ("K<dir>", "F<freezer dir>", "R<dir>"); when the socket closes (the supervisor exited or died)
// it SIGKILLs every group still listed and everything in the fleet's cgroups, then exits. It
// ignores SIGINT/SIGTERM/SIGHUP and sits in its own process group, so Ctrl-C on a terminal does not
// end it before the supervisor's graceful stop is done.
#pragma once

#include <filesystem>
#include <string>
#include <sys/types.h>

namespace squadron::supervisor {

class Guardian final {
 public:
  // Forks the guardian. If that fails, watch()/forget() do nothing (PDEATHSIG still applies).
  Guardian();
  // Closes the socket: the guardian kills what is still listed (nothing, after a clean stop) and
  // exits.
  ~Guardian();
  Guardian(const Guardian&) = delete;
  Guardian& operator=(const Guardian&) = delete;

  void watch(pid_t pgid) noexcept;
  // Also kills every process in the fleet's cgroups (even one that left its process group with
  // setsid) and removes them when the supervisor dies.
  void watch_cgroups(const class Cgroups& cgroups) noexcept;
  // Also removes the instances' secrets under `dir` (<dir>/<instance>/<file>) and `dir`.
  void remove_secrets(const std::filesystem::path& dir) noexcept;
  void forget(pid_t pgid) noexcept;
  pid_t pid() const noexcept { return pid_; }

 private:
  void send(char op, pid_t pgid) noexcept;
  void say(char op, const std::string& path) noexcept;
  int fd_ = -1;
  pid_t pid_ = -1;
};

}  // namespace squadron::supervisor
