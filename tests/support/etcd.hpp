// Test-only etcd: a cluster of N real etcd members (Debian's etcd-server) on 127.0.0.1, each on
// ports that were free, data in a temporary folder, elections fast (50 ms heartbeat, 500 ms
// election timeout). Members can be SIGKILLed and started again on the same data.
//
//   EtcdCluster etcd{3};
//   ASSERT_TRUE(etcd.ready()) << etcd.why();
//   auto leader = etcd.leader();    // index of the member that leads
//   etcd.kill(*leader);
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"

namespace squadron::testing {

class EtcdCluster final {
 public:
  // Starts `members` members and waits (up to 20 s) until every one answers with a leader.
  explicit EtcdCluster(int members);
  ~EtcdCluster();  // SIGKILLs every member, removes the data
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  bool ready() const { return why_.empty(); }
  const std::string& why() const { return why_; }  // what failed to start, with the log's tail
  int size() const { return static_cast<int>(members_.size()); }
  std::uint16_t client_port(int i) const { return members_[i].client_port; }
  std::string endpoint(int i) const;  // "127.0.0.1:PORT"
  std::vector<std::string> endpoints() const;

  void kill(int i);   // SIGKILL, reaped
  void start(int i);  // again, on its data (after kill)
  bool running(int i) const { return members_[i].process != nullptr; }
  // The index of the member that leads, asked of the running ones; nullopt when none says so
  // within `timeout`.
  std::optional<int> leader(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  struct Member {
    std::string name;
    std::uint16_t client_port = 0;
    std::uint16_t peer_port = 0;
    std::unique_ptr<ChildProcess> process;
  };
  std::vector<std::string> argv(int i, bool initial) const;
  bool answers(int i, std::chrono::milliseconds timeout) const;

  std::filesystem::path dir_;
  std::string initial_cluster_;
  std::vector<Member> members_;
  std::string why_;
};

}  // namespace squadron::testing
