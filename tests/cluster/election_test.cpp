// The servers' leader election against a real etcd: one of three leads; a leader that resigns is
// followed at once; a leader cut off from etcd steps down before its lease lapses, and a standby
// leads within the TTL + a second — never two at once.
#include "squadron/cluster/election.hpp"

#include <functional>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "etcd.hpp"
#include "sync_etcd.hpp"

namespace squadron::cluster {
namespace {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Server {
  std::unique_ptr<EtcdClient> etcd;
  std::unique_ptr<Election> election;
  std::vector<std::pair<Clock::time_point, bool>> changes;
};

class ElectionTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(etcd_.ready()) << etcd_.why(); }

  void add_server(const std::string& name, std::chrono::seconds ttl = 2s) {
    auto s = std::make_unique<Server>();
    EtcdOptions o;
    std::string error;
    o.members.push_back(*parse_member(etcd_.endpoint(0), error));
    o.request_timeout = 500ms;
    s->etcd = std::make_unique<EtcdClient>(io_.get_executor(), o);
    Server* raw = s.get();
    s->election = std::make_unique<Election>(
        io_, *s->etcd,
        ElectionOptions{.fleet = "t", .name = name, .url = "http://" + name, .ttl = ttl},
        [raw](bool leading) { raw->changes.emplace_back(Clock::now(), leading); });
    s->election->start();
    servers_.push_back(std::move(s));
  }

  // Runs the io_context until `done` holds or `timeout` passes; whether it held.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    return testing::run_io_until(io_, done, timeout);
  }
  int leaders() const {
    int n = 0;
    for (const auto& s : servers_) n += s->election->leading() ? 1 : 0;
    return n;
  }
  int leader_index() const {
    for (std::size_t i = 0; i < servers_.size(); ++i)
      if (servers_[i]->election->leading()) return static_cast<int>(i);
    return -1;
  }
  void TearDown() override {
    for (auto& s : servers_) s->election->stop(nullptr);
    run_until([] { return false; }, 300ms);
    for (auto& s : servers_) s->etcd->stop();
    run_until([] { return false; }, 100ms);
  }

  testing::EtcdCluster etcd_{1};
  boost::asio::io_context io_;
  std::vector<std::unique_ptr<Server>> servers_;
};

TEST_F(ElectionTest, OneOfThreeLeadsAndTheOthersKnowWho) {
  add_server("s1");
  add_server("s2");
  add_server("s3");
  ASSERT_TRUE(run_until(
      [&] {
        if (leaders() != 1) return false;
        for (const auto& s : servers_)
          if (!s->election->leader()) return false;
        return true;
      },
      5s));
  run_until([] { return false; }, 500ms);  // and it stays one
  EXPECT_EQ(leaders(), 1);
  const auto& who = servers_[leader_index()]->election->leader();
  for (const auto& s : servers_) EXPECT_EQ(s->election->leader(), who);
  EXPECT_EQ(who->url, "http://" + who->name);
  EXPECT_GT(servers_[leader_index()]->election->fence(), 0);
}

TEST_F(ElectionTest, AStandbyLeadsAtOnceWhenTheLeaderResigns) {
  add_server("s1", 10s);
  ASSERT_TRUE(run_until([&] { return leaders() == 1; }, 5s));
  add_server("s2", 10s);
  ASSERT_TRUE(run_until([&] { return servers_[1]->election->leader().has_value(); }, 5s));
  EXPECT_FALSE(servers_[1]->election->leading());
  bool resigned = false;
  const auto t0 = Clock::now();
  servers_[0]->election->stop([&] { resigned = true; });
  // Well before the 10 s TTL: the key was deleted, not left to lapse.
  ASSERT_TRUE(run_until([&] { return resigned && servers_[1]->election->leading(); }, 3s));
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_FALSE(servers_[0]->election->leading());
}

TEST_F(ElectionTest, ALeaderCutOffStepsDownBeforeAStandbyLeads) {
  add_server("s1", 2s);
  ASSERT_TRUE(run_until([&] { return leaders() == 1; }, 5s));
  add_server("s2", 2s);
  ASSERT_TRUE(run_until([&] { return servers_[1]->election->leader().has_value(); }, 5s));
  // s1 loses etcd: every request it makes fails from now on.
  const auto cut = Clock::now();
  servers_[0]->etcd->stop();
  ASSERT_TRUE(run_until([&] { return servers_[1]->election->leading(); }, 5s));
  const auto took = Clock::now() - cut;
  EXPECT_LT(took, 3s) << "the TTL is 2 s";
  ASSERT_FALSE(servers_[0]->election->leading());
  ASSERT_EQ(servers_[0]->changes.size(), 2u);
  ASSERT_EQ(servers_[1]->changes.size(), 1u);
  // s1 stopped leading before s2 started: never two leaders.
  EXPECT_LT(servers_[0]->changes[1].first, servers_[1]->changes[0].first);
}

}  // namespace
}  // namespace squadron::cluster
