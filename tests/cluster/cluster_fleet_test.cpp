// The fleet's own reconciler over hosts: a Fleet whose Runner is the ClusterRunner of the leading
// server, real `squadron agent` processes as hosts and a real etcd. Replicas are spread over the
// hosts; a host SIGKILLed takes its instances with its lease and the reconciler places them again
// on the survivors within the TTL + a second; scaling down stops instances where they run.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "agent_process.hpp"
#include "etcd.hpp"
#include "process.hpp"
#include "raw_client.hpp"
#include "squadron/cluster/cluster_runner.hpp"
#include "squadron/cluster/election.hpp"
#include "squadron/control/desired_store.hpp"
#include "squadron/control/fleet.hpp"
#include "squadron/core/clock.hpp"
#include "squadron/registry/memory_registry.hpp"
#include "sync_etcd.hpp"

namespace squadron::cluster {
namespace {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::ChildProcess;

class ClusterFleet : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(etcd_.ready()) << etcd_.why();
    char tmpl[] = "/tmp/squadron-cluster-fleet-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (runner_) runner_->stop();
    if (election_) election_->stop(nullptr);
    run_until([] { return false; }, 200ms);
    if (etcd_client_) etcd_client_->stop();
    run_until([] { return false; }, 100ms);
    fleet_.reset();
    runner_.reset();
    election_.reset();
    agents_.clear();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void start_agent(const std::string& name) {
    std::filesystem::create_directories(dir_ / name);
    agents_[name] = std::make_unique<testing::AgentProcess>(
        std::vector<std::string>{testing::bin_dir() + "/squadron", "agent", "--etcd",
                                 etcd_.endpoint(0), "--fleet", "t", "--name", name, "--address",
                                 "127.0.0.1", "--ttl", "2s", "--state-dir", (dir_ / name).string()},
        dir_ / name);
  }

  void start_server(const std::string& yaml) {
    const auto file = dir_ / "squadron.yaml";
    std::ofstream(file) << yaml;
    auto m = control::load_manifest(file);
    ASSERT_TRUE(m.ok()) << (m.errors.empty() ? "" : m.errors[0].to_string());
    EtcdOptions o;
    std::string error;
    o.members.push_back(*parse_member(etcd_.endpoint(0), error));
    etcd_client_ = std::make_unique<EtcdClient>(io_.get_executor(), o);
    election_ = std::make_unique<Election>(
        io_, *etcd_client_, ElectionOptions{.fleet = "t", .name = "s1", .url = "http://s1"},
        [this](bool leading) {
          if (leading) runner_->start();
        });
    ClusterRunnerOptions ro;
    ro.fleet = "t";
    ro.event = [this](const std::string& s, const std::string& i, const std::string& what) {
      events_.push_back(what);
      (void)s;
      (void)i;
    };
    runner_ = std::make_unique<ClusterRunner>(io_, *etcd_client_, *election_, ro);
    fleet_ = std::make_unique<control::Fleet>(
        io_, *runner_, reg_, clock_, *m.manifest, control::FleetOptions{},
        control::FleetCollaborators{&store_, nullptr, nullptr, nullptr});
    runner_->on_synced = [this] { fleet_->start(); };
    election_->start();
  }

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    return testing::run_io_until(io_, done, timeout);
  }

  // Ready instances of `service` per host.
  std::map<std::string, int> ready_by_host(const std::string& service) const {
    std::map<std::string, int> out;
    for (const auto& i : reg_.instances())
      if (i.service == service && i.state == registry::State::kReady) ++out[i.node];
    return out;
  }
  int ready(const std::string& service) const {
    int n = 0;
    for (const auto& [host, count] : ready_by_host(service)) n += count;
    return n;
  }

  testing::EtcdCluster etcd_{1};
  std::filesystem::path dir_;
  std::map<std::string, std::unique_ptr<testing::AgentProcess>> agents_;
  boost::asio::io_context io_;
  core::SystemClock clock_;
  registry::MemoryRegistry reg_{io_.get_executor()};
  control::MemoryDesiredStore store_;
  std::unique_ptr<EtcdClient> etcd_client_;
  std::unique_ptr<Election> election_;
  std::unique_ptr<ClusterRunner> runner_;
  std::unique_ptr<control::Fleet> fleet_;
  std::vector<std::string> events_;
};

std::string hello_fleet(int replicas) {
  return fmt::format(R"(name: t
services:
  hello:
    command: [{}/hello, --port, "${{PORT}}", --threads, "1"]
    replicas: {}
    ready: {{ path: /hello, interval: 100ms }}
)",
                     testing::bin_dir(), replicas);
}

TEST_F(ClusterFleet, SpreadsReplicasOverHostsAndPlacesAgainWhatALostHostRan) {
  start_agent("h1");
  start_agent("h2");
  // Placement spreads over the hosts that are up when it places (it does not move instances
  // later, as Kubernetes' scheduler does not): both first.
  testing::SyncEtcd sync(etcd_);
  ASSERT_TRUE(
      testing::SyncEtcd::eventually([&] { return sync.list(Keys("t").hosts()).size() == 2; }, 10s));
  start_server(hello_fleet(4));
  ASSERT_TRUE(run_until([&] { return ready("hello") == 4; }, 20s))
      << agents_["h1"]->output_now() << agents_["h2"]->output_now();
  EXPECT_EQ(ready_by_host("hello"), (std::map<std::string, int>{{"h1", 2}, {"h2", 2}}));
  // Every instance answers where the registry says it is.
  for (const auto& i : reg_.instances()) {
    const auto r = testing::fetch(i.port, "GET", "/hello");
    ASSERT_TRUE(r.has_value()) << i.id;
    EXPECT_EQ(r->body, "Hello World!");
  }

  agents_["h2"]->kill_host();
  const auto killed = Clock::now();
  ASSERT_TRUE(run_until(
      [&] {
        return ready_by_host("hello") == std::map<std::string, int>{{"h1", 4}};
      },
      10s))
      << agents_["h1"]->output_now();
  // The lease's TTL is 2 s; replacements are ready within it and a second (and a start).
  EXPECT_LT(Clock::now() - killed, 4s);
  EXPECT_TRUE(std::any_of(events_.begin(), events_.end(), [](const std::string& e) {
    return e.find("host h2 lost") != std::string::npos;
  }));

  // Scaling down stops instances on the host that runs them.
  fleet_->scale("hello", 1);
  ASSERT_TRUE(run_until([&] { return ready("hello") == 1 && reg_.instances().size() == 1; }, 10s));
}

}  // namespace
}  // namespace squadron::cluster
