// `squadron agent` against a real etcd on loopback: it registers its host under a lease, runs
// what is assigned to it and reports it, stops what is unassigned or marked to stop, keeps a
// finished task's report without running it again, and a host that vanishes (SIGKILL) takes its
// host and instance keys with its lease. An agent restarted (SIGTERM, or even SIGKILL) adopts the
// instances it ran: same pids, and within the TTL the same lease and keys; SIGINT leaves.
#include "squadron/cluster/agent.hpp"

#include <csignal>
#include <filesystem>
#include <fstream>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "agent_process.hpp"
#include "etcd.hpp"
#include "process.hpp"
#include "raw_client.hpp"
#include "squadron/cluster/keys.hpp"
#include "squadron/registry/instance.hpp"
#include "sync_etcd.hpp"

namespace squadron::cluster {
namespace {
using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::EtcdCluster;
using testing::SyncEtcd;

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(etcd_.ready()) << etcd_.why();
    char tmpl[] = "/tmp/squadron-agent-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    agent_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the host's agent; an agent before it hands its instances over.
  void start_agent(const std::string& ttl = "2s") {
    if (agent_) agent_->hand_over();
    agent_ = std::make_unique<testing::AgentProcess>(
        std::vector<std::string>{testing::bin_dir() + "/squadron", "agent", "--etcd",
                                 etcd_.endpoint(0), "--fleet", "t", "--name", "h1", "--address",
                                 "127.0.0.1", "--ttl", ttl, "--label", "zone=a", "--state-dir",
                                 dir_.string()},
        dir_);
  }

  static std::string hello_assignment(bool stop = false, int drain_ms = 0) {
    Assignment a;
    a.spec.service = "hello";
    a.spec.launch.argv = {testing::bin_dir() + "/hello", "--port", "${PORT}", "--threads", "1"};
    a.spec.expand_variables = true;
    a.spec.ready.path = "/hello";
    a.spec.ready.interval = 100ms;
    a.stop = stop;
    a.drain = std::chrono::milliseconds(drain_ms);
    return assignment_text(a);
  }

  // hello-1 assigned to h1, until its agent reports it ready.
  void assign_hello_and_wait_ready() {
    ASSERT_TRUE(sync_.put(keys_.assignment("h1", "hello-1"), hello_assignment()));
    ASSERT_TRUE(SyncEtcd::eventually(
        [&] { return reported_in_state("hello-1", registry::State::kReady); }, 10s))
        << agent_->output_now();
  }

  // The instance as the agent reported it, if it did.
  std::optional<registry::Instance> reported(const std::string& id) {
    const auto text = sync_.get(keys_.instance("h1", id));
    if (!text) return std::nullopt;
    return registry::instance_from_json(boost::json::parse(*text));
  }
  bool reported_in_state(const std::string& id, registry::State s) {
    const auto i = reported(id);
    return i && i->state == s;
  }

  EtcdCluster etcd_{1};
  SyncEtcd sync_{etcd_};
  Keys keys_{"t"};
  std::filesystem::path dir_;
  std::unique_ptr<testing::AgentProcess> agent_;
};

TEST_F(AgentTest, RegistersItsHostRunsWhatIsAssignedAndStopsWhatIsNot) {
  start_agent();
  ASSERT_TRUE(SyncEtcd::eventually([&] { return sync_.get(keys_.host("h1")).has_value(); }, 10s))
      << agent_->output_now();
  const auto host = host_from_json(boost::json::parse(*sync_.get(keys_.host("h1"))));
  ASSERT_TRUE(host.has_value());
  EXPECT_EQ(host->address, "127.0.0.1");
  EXPECT_EQ(host->labels.at("zone"), "a");
  EXPECT_GT(host->cores, 0u);
  EXPECT_GT(host->memory_bytes, 0u);
  EXPECT_EQ(host->agent_pid, agent_->pid());

  ASSERT_NO_FATAL_FAILURE(assign_hello_and_wait_ready());
  const auto i = *reported("hello-1");
  EXPECT_EQ(i.node, "h1");
  EXPECT_EQ(i.host, "127.0.0.1");
  EXPECT_EQ(i.service, "hello");
  const auto answer = testing::fetch(i.port, "GET", "/hello");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->body, "Hello World!");

  // Marked to stop with a drain: draining first, then gone, process and key.
  ASSERT_TRUE(sync_.put(keys_.assignment("h1", "hello-1"), hello_assignment(true, 500)));
  EXPECT_TRUE(SyncEtcd::eventually(
      [&] { return reported_in_state("hello-1", registry::State::kDraining); }, 5s));
  EXPECT_TRUE(SyncEtcd::eventually([&] { return !reported("hello-1").has_value(); }, 10s));
  EXPECT_TRUE(testing::all_gone_within({i.pid}, 5s));

  // Assigned, then unassigned: the same.
  ASSERT_TRUE(sync_.put(keys_.assignment("h1", "hello-2"), hello_assignment()));
  ASSERT_TRUE(SyncEtcd::eventually(
      [&] { return reported_in_state("hello-2", registry::State::kReady); }, 10s));
  const int pid2 = reported("hello-2")->pid;
  ASSERT_TRUE(sync_.remove(keys_.assignment("h1", "hello-2")));
  EXPECT_TRUE(SyncEtcd::eventually([&] { return !reported("hello-2").has_value(); }, 10s));
  EXPECT_TRUE(testing::all_gone_within({pid2}, 5s));
}

TEST_F(AgentTest, ATaskThatEndedKeepsItsReportAndDoesNotRunAgain) {
  start_agent();
  Assignment a;
  a.spec.service = "migrate";
  a.spec.launch.argv = {"/bin/sh", "-c", "echo migrated; exit 0"};
  a.spec.ready.none = true;
  a.spec.restart = supervisor::Restart::kNever;
  ASSERT_TRUE(sync_.put(keys_.assignment("h1", "migrate-1"), assignment_text(a)));
  ASSERT_TRUE(SyncEtcd::eventually(
      [&] { return reported_in_state("migrate-1", registry::State::kStopped); }, 10s))
      << agent_->output_now();
  EXPECT_EQ(reported("migrate-1")->last_exit, "exit 0");
  std::this_thread::sleep_for(1s);  // time for a wrong restart to show
  EXPECT_EQ(reported("migrate-1")->restarts, 0);
  EXPECT_EQ(reported("migrate-1")->state, registry::State::kStopped);
  ASSERT_TRUE(sync_.remove(keys_.assignment("h1", "migrate-1")));
  EXPECT_TRUE(SyncEtcd::eventually([&] { return !reported("migrate-1").has_value(); }, 5s));
}

TEST_F(AgentTest, AHostThatVanishesTakesItsKeysWithItsLease) {
  start_agent("2s");
  ASSERT_NO_FATAL_FAILURE(assign_hello_and_wait_ready());
  const int pid = reported("hello-1")->pid;
  agent_->kill_host();
  const auto killed = std::chrono::steady_clock::now();
  // Within the TTL + a second its keys are gone.
  ASSERT_TRUE(SyncEtcd::eventually(
      [&] { return sync_.list(keys_.hosts()).empty() && sync_.list(keys_.instances()).empty(); },
      5s));
  EXPECT_LT(std::chrono::steady_clock::now() - killed, 3s);
  EXPECT_TRUE(testing::all_gone_within({pid}, 5s));
  // The assignment is the leader's: it stays.
  EXPECT_TRUE(sync_.get(keys_.assignment("h1", "hello-1")).has_value());
}

TEST_F(AgentTest, ARestartedAgentKeepsItsInstancesItsLeaseAndItsKeys) {
  start_agent("5s");
  ASSERT_NO_FATAL_FAILURE(assign_hello_and_wait_ready());
  const auto before = *reported("hello-1");
  const auto key_before = *sync_.key(keys_.instance("h1", "hello-1"));
  const auto host_before = *sync_.key(keys_.host("h1"));

  agent_->signal(SIGTERM);
  EXPECT_EQ(agent_->wait_exit(10s), std::optional<int>(0)) << agent_->output_now();
  EXPECT_EQ(::kill(before.pid, 0), 0) << "the instance outlived its agent";
  ASSERT_TRUE(testing::fetch(before.port, "GET", "/hello").has_value());
  EXPECT_TRUE(sync_.get(keys_.host("h1")).has_value()) << "the lease was not revoked";

  start_agent("5s");
  ASSERT_TRUE(SyncEtcd::eventually(
      [&] {
        const auto h = sync_.get(keys_.host("h1"));
        const auto info = h ? host_from_json(boost::json::parse(*h)) : std::nullopt;
        return info && info->agent_pid == agent_->pid();
      },
      10s))
      << agent_->output_now();
  const auto after = *reported("hello-1");
  EXPECT_EQ(after.pid, before.pid) << "adopted, not restarted";
  EXPECT_EQ(after.port, before.port);
  EXPECT_EQ(after.state, registry::State::kReady);
  // The same lease and the same keys: nobody following etcd saw the host or its instance go.
  EXPECT_EQ(sync_.key(keys_.host("h1"))->lease, host_before.lease);
  const auto key_after = *sync_.key(keys_.instance("h1", "hello-1"));
  EXPECT_EQ(key_after.create_revision, key_before.create_revision);
  EXPECT_EQ(key_after.lease, key_before.lease);
  EXPECT_NE(agent_->output_now().find("adopted hello-1 (pid " + std::to_string(before.pid)),
            std::string::npos)
      << agent_->output_now();
  // Its output is read on (the probe's GETs make hello write nothing: ask it for a line).
  const auto answer = testing::fetch(before.port, "GET", "/hello");
  ASSERT_TRUE(answer.has_value());

  // The adopted instance is the agent's own: unassigned, it stops.
  ASSERT_TRUE(sync_.remove(keys_.assignment("h1", "hello-1")));
  EXPECT_TRUE(SyncEtcd::eventually([&] { return !reported("hello-1").has_value(); }, 10s));
  EXPECT_TRUE(testing::all_gone_within({before.pid}, 5s));
}

TEST_F(AgentTest, AnAgentKilledAndStartedAgainAdoptsItsInstancesUnderANewLease) {
  start_agent("2s");
  ASSERT_NO_FATAL_FAILURE(assign_hello_and_wait_ready());
  const int pid = reported("hello-1")->pid;
  agent_->signal(SIGKILL);
  agent_->wait_exit(5s);
  // Past the TTL: the lease lapsed and the keys went, but the instance runs on.
  ASSERT_TRUE(SyncEtcd::eventually([&] { return sync_.list(keys_.instances()).empty(); }, 5s));
  EXPECT_EQ(::kill(pid, 0), 0);
  start_agent("2s");
  ASSERT_TRUE(SyncEtcd::eventually(
      [&] { return reported_in_state("hello-1", registry::State::kReady); }, 10s))
      << agent_->output_now();
  EXPECT_EQ(reported("hello-1")->pid, pid);
  EXPECT_NE(agent_->output_now().find("registering anew"), std::string::npos)
      << agent_->output_now();
}

TEST_F(AgentTest, SigintLeavesAtOnceAndStopsItsInstances) {
  start_agent("10s");
  ASSERT_NO_FATAL_FAILURE(assign_hello_and_wait_ready());
  const int pid = reported("hello-1")->pid;
  agent_->signal(SIGINT);
  EXPECT_EQ(agent_->wait_exit(10s), std::optional<int>(0)) << agent_->output_now();
  // Revoked, not left to lapse: gone well before the 10 s TTL.
  EXPECT_TRUE(sync_.list(keys_.hosts()).empty());
  EXPECT_TRUE(sync_.list(keys_.instances()).empty());
  EXPECT_TRUE(testing::all_gone_within({pid}, 5s));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "agent.json")) << "nothing left to adopt";
}

TEST_F(AgentTest, TheCliSaysWhatToDoWhenNoServerLeads) {
  const auto manifest = dir_ / "squadron.yaml";
  std::ofstream(manifest) << "name: t\ncluster: { etcd: [" << etcd_.endpoint(0)
                          << "] }\nservices:\n  a: { command: [/bin/true] }\n";
  ChildProcess ps({testing::bin_dir() + "/squadron", "-f", manifest.string(), "ps"});
  EXPECT_NE(ps.wait_exit(10s), std::optional<int>(0));
  EXPECT_NE(ps.output().find("no server leads fleet t: start one with `squadron -f"),
            std::string::npos)
      << ps.output();
}

TEST(AgentCli, BadOptionsSayWhatToGive) {
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"--etcd", "etcd-1:2379", "--fleet", "t", "--name", "h1", "--address", "127.0.0.1"},
       "by its address"},
      {{"--etcd", "127.0.0.1:1", "--fleet", "T!", "--name", "h1", "--address", "127.0.0.1"},
       "--fleet"},
      {{"--etcd", "127.0.0.1:1", "--fleet", "t", "--name", "H_1", "--address", "127.0.0.1"},
       "this host's name"},
      {{"--etcd", "127.0.0.1:1", "--fleet", "t", "--name", "h1", "--address", "somewhere"},
       "--address"},
      {{"--etcd", "127.0.0.1:1", "--fleet", "t", "--name", "h1", "--address", "127.0.0.1", "--ttl",
        "1s"},
       "--ttl"},
      {{"--etcd", "127.0.0.1:1", "--fleet", "t", "--name", "h1", "--address", "127.0.0.1",
        "--label", "zone"},
       "KEY=VALUE"},
  };
  for (const auto& [args, want] : cases) {
    std::vector<std::string> argv{testing::bin_dir() + "/squadron", "agent"};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess p(argv);
    EXPECT_EQ(p.wait_exit(10s), std::optional<int>(2)) << want;
    EXPECT_NE(p.output().find(want), std::string::npos) << p.output();
  }
}

}  // namespace
}  // namespace squadron::cluster
