// A test's `squadron agent` process, and the host it stands for. Its instances outlive it (a
// restarted agent adopts them), so ending the test's host ends both: SIGINT (the host leaves,
// its instances stop), and SIGKILL of whatever is left, read from the agent's agent.json.
#pragma once

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "process.hpp"
#include "squadron/cluster/agent_state.hpp"

namespace squadron::testing {

class AgentProcess : public ChildProcess {
 public:
  // `argv` must give `--state-dir state_dir`.
  AgentProcess(std::vector<std::string> argv, std::filesystem::path state_dir)
      : ChildProcess(std::move(argv)), state_dir_(std::move(state_dir)) {}
  ~AgentProcess() {
    if (running()) {
      signal(SIGINT);
      wait_exit(std::chrono::seconds(10));
    }
    if (!handed_over_) kill_instances();
  }
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  // The pids of the instances the agent last said it runs (its agent.json).
  std::vector<pid_t> instance_pids() const {
    std::string error;
    std::vector<pid_t> out;
    if (auto s = cluster::load_agent_state(state_dir_ / "agent.json", error)) {
      for (const auto& h : s->instances) {
        if (supervisor::process_start_ticks(h.status.pid) == h.start_ticks)
          out.push_back(h.status.pid);
      }
    }
    return out;
  }
  // Its instances are the next agent's (a restart): its end leaves them.
  void hand_over() { handed_over_ = true; }
  // Every process of the host SIGKILLed at once, as when its machine is lost: the agent and its
  // instances (their process groups).
  void kill_host() {
    const auto pids = instance_pids();
    signal(SIGKILL);
    for (pid_t p : pids) ::kill(-p, SIGKILL);
    wait_exit(std::chrono::seconds(5));
  }

 private:
  void kill_instances() {
    for (pid_t p : instance_pids()) ::kill(-p, SIGKILL);
  }
  std::filesystem::path state_dir_;
  bool handed_over_ = false;
};

}  // namespace squadron::testing
