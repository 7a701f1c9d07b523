// Test-only child process control: start a real binary with arguments and environment, wait
// for it to print its listening port, signal it, reap it, read its RSS.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace squadron::testing {

// The directory of the built binaries (build/bin), set by CMake.
std::string bin_dir();

// A shell command's exit status (-1 if it did not exit) and what it printed, stdout and stderr.
struct CommandResult {
  int status = -1;
  std::string output;
};
// Runs `command` with /bin/sh and waits for it (curl, openssl and the like in tests).
CommandResult run_command(const std::string& command);

// True if `pid` no longer runs: gone, or a zombie (orphans are re-parented to a PID 1 that in a
// container may never reap them).
bool process_gone(pid_t pid);
// Polls process_gone() for every pid until all are gone or `timeout` passes.
bool all_gone_within(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout);

class ChildProcess {
 public:
  // Starts `argv[0]` (a path) with `argv` and extra `env` ("K=V") on top of this environment.
  ChildProcess(std::vector<std::string> argv, std::vector<std::string> env = {});
  ~ChildProcess();  // SIGKILLs and reaps a child still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Waits until stderr shows "listening on http://HOST:PORT"; returns PORT.
  std::optional<std::uint16_t> wait_for_port(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void signal(int signo);
  // Waits for exit; returns the exit status (or 128+signal), nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  bool running();
  // Resident set size in KiB (VmRSS).
  long rss_kib() const;
  const std::string& output() const { return output_; }
  // What it has written so far, reading what is waiting (for a running process's log).
  const std::string& output_now() {
    drain_output(std::chrono::milliseconds(10));
    return output_;
  }

 private:
  void drain_output(std::chrono::milliseconds wait);
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string output_;
  std::optional<int> status_;
};

}  // namespace squadron::testing
