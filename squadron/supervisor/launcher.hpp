// Starting and signalling the processes of service instances. The supervisor takes a
// ProcessLauncher& so its restart and health logic is tested with a fake; PosixLauncher is the
// real one.
//
//   PosixLauncher launcher;
//   auto child = launcher.launch({.argv = {"build/bin/hello"}, .cwd = dir, .env = {{"PORT",
//   "8001"}}}); if (!child) log(child.error().message()); launcher.signal_group(child->pid,
//   SIGTERM);
//
// Every process starts in its own process group (pgid == pid), so a signal reaches everything
// it started; and with PR_SET_PDEATHSIG it is killed if the supervisor dies, even by SIGKILL
// (unless it is meant to outlive it: LaunchSpec::outlive_parent).
// A child holds 0 (/dev/null), 1 and 2 (pipes to the supervisor), the `inherit_fds` it was
// given, and nothing else of the supervisor's: no listener, no connection, no log file.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <boost/system/result.hpp>

namespace squadron::supervisor {

// Another user to run as (setgroups, setgid, setuid in the child before exec).
struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (the user's, as initgroups would give)
  bool operator==(const RunAs&) const = default;
};

// A secret handed to an instance: read from its source at each start (never held in a spec, the
// registry or a log), written as the file `target` (mode 0400, owned by the instance's user) in
// the instance's private directory (SQUADRON_SECRETS_DIR), and set as `env` if given.
struct SecretSpec {
  std::string name;            // as the manifest names it (what errors say)
  std::filesystem::path file;  // source: a file (absolute) ...
  std::string from_env;        // ... or a variable of the fleet's environment
  std::string target;          // the file's name in SQUADRON_SECRETS_DIR
  std::string env;             // also this variable (empty: none)
  bool operator==(const SecretSpec&) const = default;
};

// The names the supervisor gives each instance (PORT, HOST, SQUADRON_*): a manifest may not set
// them, and they are expanded per instance at launch.
inline bool instance_variable(std::string_view name) noexcept {
  return name == "PORT" || name == "HOST" || name.substr(0, 9) == "SQUADRON_";
}

struct LaunchSpec {
  // argv[0]: a path (relative ones against cwd) or a bare name looked up in PATH.
  std::vector<std::string> argv;
  std::filesystem::path cwd;
  std::map<std::string, std::string> env;  // on top of the supervisor's own environment
  // Descriptors the child inherits, as 3, 4, ... in this order (systemd's LISTEN_FDS
  // convention); the caller keeps its own. Every other descriptor above 2 is closed at exec.
  std::vector<int> inherit_fds;
  // Membership files the child writes its pid into before anything else and before exec (a
  // cgroup's cgroup.procs, or one per controller on cgroup v1): the instance never runs outside
  // its limits. A file that cannot be written fails the launch with its errno (nothing runs).
  std::vector<std::filesystem::path> join;
  std::optional<RunAs> run_as;  // default: the fleet's own user
  // The process outlives its launcher (no PR_SET_PDEATHSIG): an agent that restarts adopts it.
  bool outlive_parent = false;
  // Its stdout and stderr, as one stream, go into this named pipe (made anew, mode 0600), which
  // the child holds open for reading too: when the launcher's process goes, the child's writes
  // neither fail nor kill it (no SIGPIPE); they wait in the pipe (grown to 1 MiB where the
  // system allows) for whoever opens it next, as Docker's live-restore keeps containers' log
  // FIFOs. LaunchedProcess::stdout_fd is then the pipe's read end; stderr_fd is -1.
  std::filesystem::path output_fifo;
};

struct LaunchedProcess {
  pid_t pid = -1;      // also the process group id
  int stdout_fd = -1;  // read ends of the child's stdout and stderr (non-blocking, close-on-exec);
  int stderr_fd = -1;  // the caller owns and closes them
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // Starts a process. Errors: the program cannot be found or executed (the errno of exec, e.g.
  // no_such_file_or_directory, permission_denied), or fork/pipe failures.
  virtual boost::system::result<LaunchedProcess> launch(const LaunchSpec& spec) = 0;
  // Sends `signo` to the whole process group of `pid`.
  virtual void signal_group(pid_t pid, int signo) = 0;
};

class PosixLauncher final : public ProcessLauncher {
 public:
  boost::system::result<LaunchedProcess> launch(const LaunchSpec& spec) override;
  void signal_group(pid_t pid, int signo) override;
};

// Resolves argv[0] as exec would: a name without '/' is searched in PATH; a relative path is
// taken against `cwd`. Empty if nothing executable is found.
std::filesystem::path resolve_program(const std::string& program, const std::filesystem::path& cwd);

}  // namespace squadron::supervisor
