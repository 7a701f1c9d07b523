// EtcdClient against real etcd 3.4 members on loopback (tests/support/etcd.hpp): reads and writes,
// compare-and-swap, leases that hold keys while kept alive and drop them when not, watches that
// lose no event across a member's death, failover, and a clear error when no member answers.
#include "squadron/cluster/etcd_client.hpp"

#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "etcd.hpp"
#include "raw_client.hpp"

namespace squadron::cluster {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::EtcdCluster;

EtcdOptions options_of(const EtcdCluster& etcd) {
  EtcdOptions o;
  for (const auto& e : etcd.endpoints()) {
    std::string error;
    auto m = parse_member(e, error);
    EXPECT_TRUE(m.has_value()) << error;
    if (m) o.members.push_back(*m);
  }
  o.request_timeout = 1500ms;
  return o;
}

template <class T>
asio::awaitable<void> store(asio::awaitable<T> a, std::optional<T>* out) {
  *out = co_await std::move(a);
}

// Runs `a` on `io` to its end.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> a) {
  std::optional<T> out;
  asio::co_spawn(io, store(std::move(a), &out), asio::detached);
  io.restart();
  io.run();
  return std::move(*out);
}

void run(asio::io_context& io, asio::awaitable<void> a) {
  asio::co_spawn(io, std::move(a), asio::detached);
  io.restart();
  io.run();
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

class EtcdClientTest : public ::testing::Test {
 protected:
  asio::io_context io;
};

TEST_F(EtcdClientTest, PutsReadsAPrefixAndDeletesAgainstOneMember) {
  EtcdCluster etcd{1};
  ASSERT_TRUE(etcd.ready()) << etcd.why();
  EtcdClient c{io.get_executor(), options_of(etcd)};
  const std::string binary("v\0\xff", 3);
  ASSERT_FALSE(run(io, c.put("/sq/hosts/h1", "one")).has_error());
  ASSERT_FALSE(run(io, c.put("/sq/hosts/h2", binary)).has_error());
  ASSERT_FALSE(run(io, c.put("/sq/other", "x")).has_error());

  const auto hosts = run(io, c.get_prefix("/sq/hosts/"));
  ASSERT_FALSE(hosts.has_error()) << hosts.error().message;
  ASSERT_EQ(hosts->kvs.size(), 2u);
  EXPECT_EQ(hosts->kvs[0].key, "/sq/hosts/h1");
  EXPECT_EQ(hosts->kvs[1].value, binary);
  EXPECT_GT(hosts->header.revision, 0);

  const auto one = run(io, c.get("/sq/hosts/h1"));
  ASSERT_FALSE(one.has_error());
  ASSERT_EQ(one->kvs.size(), 1u);
  EXPECT_EQ(one->kvs[0].value, "one");

  const auto gone = run(io, c.remove_prefix("/sq/hosts/"));
  ASSERT_FALSE(gone.has_error());
  EXPECT_EQ(gone->deleted, 2);
  EXPECT_TRUE(run(io, c.get_prefix("/sq/hosts/"))->kvs.empty());
  EXPECT_EQ(run(io, c.get("/sq/other"))->kvs.size(), 1u);
  EXPECT_EQ(c.failovers(), 0u);
}

TEST_F(EtcdClientTest, ACompareAndSwapLetsOneOfTwoWin) {
  EtcdCluster etcd{1};
  ASSERT_TRUE(etcd.ready()) << etcd.why();
  EtcdClient c{io.get_executor(), options_of(etcd)};
  auto claim = [&](const std::string& who) {
    Compare absent;
    absent.key = "/sq/leader";
    absent.target = Compare::Target::kCreate;
    absent.number = 0;
    Operation put;
    put.kind = Operation::Kind::kPut;
    put.key = "/sq/leader";
    put.value = who;
    Operation read;
    read.key = "/sq/leader";
    return run(io, c.txn({absent}, {put}, {read}));
  };
  const auto first = claim("s1");
  ASSERT_FALSE(first.has_error()) << first.error().message;
  EXPECT_TRUE(first->succeeded);
  const auto second = claim("s2");
  ASSERT_FALSE(second.has_error());
  EXPECT_FALSE(second->succeeded);
  ASSERT_EQ(second->responses.size(), 1u);
  ASSERT_EQ(second->responses[0].size(), 1u);
  EXPECT_EQ(second->responses[0][0].value, "s1");  // the loser learns who won
}

asio::awaitable<void> keep_for(EtcdClient* c, std::int64_t lease, std::chrono::milliseconds total,
                               int* renewals) {
  const auto until = std::chrono::steady_clock::now() + total;
  while (std::chrono::steady_clock::now() < until) {
    auto r = co_await c->keep_alive(lease);
    if (!r.has_error()) ++*renewals;
    co_await sleep_for(300ms);
  }
}

TEST_F(EtcdClientTest, ALeaseHoldsItsKeysWhileKeptAliveAndDropsThemAfter) {
  EtcdCluster etcd{1};
  ASSERT_TRUE(etcd.ready()) << etcd.why();
  EtcdClient c{io.get_executor(), options_of(etcd)};
  const auto lease = run(io, c.grant(2s));
  ASSERT_FALSE(lease.has_error()) << lease.error().message;
  EXPECT_EQ(lease->ttl, 2);
  ASSERT_FALSE(run(io, c.put("/sq/hosts/h1", "up", lease->id)).has_error());
  int renewals = 0;
  // Kept alive for 3.5 s, past its 2 s TTL: the key stays.
  asio::co_spawn(io, keep_for(&c, lease->id, 3500ms, &renewals), asio::detached);
  io.restart();
  io.run();
  EXPECT_GE(renewals, 5);
  EXPECT_EQ(run(io, c.get("/sq/hosts/h1"))->kvs.size(), 1u);
  // Then left alone: within TTL + a second, the key and the lease are gone.
  const auto until = std::chrono::steady_clock::now() + 4s;
  while (!run(io, c.get("/sq/hosts/h1"))->kvs.empty() && std::chrono::steady_clock::now() < until) {
    run(io, sleep_for(100ms));
  }
  EXPECT_TRUE(run(io, c.get("/sq/hosts/h1"))->kvs.empty());
  const auto late = run(io, c.keep_alive(lease->id));
  ASSERT_TRUE(late.has_error());
  EXPECT_EQ(late.error().code, EtcdErrc::kLeaseNotFound);
  const auto put = run(io, c.put("/sq/hosts/h1", "again", lease->id));
  ASSERT_TRUE(put.has_error());
  EXPECT_EQ(put.error().code, EtcdErrc::kLeaseNotFound);
}

struct Seen {
  std::vector<std::pair<std::string, std::int64_t>> puts;  // key, mod_revision
  std::vector<std::string> deletes;
};

asio::awaitable<void> watch_into(EtcdClient* c, std::int64_t from, Seen* seen,
                                 std::optional<EtcdResult<void>>* end) {
  *end = co_await c->watch("/sq/w/", prefix_end("/sq/w/"), from, [seen](const WatchAnswer& w) {
    for (const auto& e : w.events) {
      if (e.type == WatchEvent::Type::kPut) {
        seen->puts.emplace_back(e.kv.key, e.kv.mod_revision);
      } else {
        seen->deletes.push_back(e.kv.key);
      }
    }
    return true;
  });
}

// Writes keys k0..k(n-1) one by one through `writer`, the given member killed after `kill_after`
// writes (if any), then stops the watcher once it has seen them all (or after 15 s).
asio::awaitable<void> write_then_stop(EtcdClient* writer, EtcdClient* watcher, EtcdCluster* etcd,
                                      int n, int kill_after, int kill_member, Seen* seen,
                                      int* failed) {
  for (int i = 0; i < n; ++i) {
    if (i == kill_after) etcd->kill(kill_member);
    auto r = co_await writer->put("/sq/w/k" + std::to_string(i), "v");
    if (r.has_error()) ++*failed;
    co_await sleep_for(10ms);
  }
  co_await writer->remove("/sq/w/k0");
  const auto until = std::chrono::steady_clock::now() + 15s;
  while ((seen->puts.size() < static_cast<std::size_t>(n) || seen->deletes.empty()) &&
         std::chrono::steady_clock::now() < until) {
    co_await sleep_for(20ms);
  }
  watcher->stop();
}

TEST_F(EtcdClientTest, AWatchFollowsFromARevisionAndLosesNothingWhenItsMemberDies) {
  EtcdCluster etcd{3};
  ASSERT_TRUE(etcd.ready()) << etcd.why();
  const int leader = *etcd.leader();
  const int follower = (leader + 1) % 3;
  // The watcher starts on a follower that will be killed; the writer on the leader.
  auto watch_options = options_of(etcd);
  std::rotate(watch_options.members.begin(), watch_options.members.begin() + follower,
              watch_options.members.end());
  auto write_options = options_of(etcd);
  std::rotate(write_options.members.begin(), write_options.members.begin() + leader,
              write_options.members.end());
  EtcdClient watcher{io.get_executor(), watch_options};
  EtcdClient writer{io.get_executor(), write_options};
  const auto before = run(io, writer.put("/sq/w/before", "v"));
  ASSERT_FALSE(before.has_error()) << before.error().message;

  Seen seen;
  std::optional<EtcdResult<void>> end;
  int failed = 0;
  // From the revision after `before`: it is not seen, everything after is, once, in order.
  asio::co_spawn(io, watch_into(&watcher, before->revision + 1, &seen, &end), asio::detached);
  asio::co_spawn(io, write_then_stop(&writer, &watcher, &etcd, 40, 20, follower, &seen, &failed),
                 asio::detached);
  io.restart();
  io.run();

  EXPECT_EQ(failed, 0);
  ASSERT_TRUE(end.has_value());
  ASSERT_TRUE(end->has_error());
  EXPECT_EQ(end->error().code, EtcdErrc::kCanceled);
  ASSERT_EQ(seen.puts.size(), 40u);
  std::set<std::string> keys;
  for (std::size_t i = 0; i < seen.puts.size(); ++i) {
    keys.insert(seen.puts[i].first);
    if (i > 0) {
      EXPECT_GT(seen.puts[i].second, seen.puts[i - 1].second);
    }
  }
  EXPECT_EQ(keys.size(), 40u);
  EXPECT_EQ(keys.count("/sq/w/before"), 0u);
  EXPECT_EQ(seen.deletes, std::vector<std::string>{"/sq/w/k0"});
  EXPECT_GE(watcher.failovers(), 1u);
}

TEST_F(EtcdClientTest, RequestsGoToAnotherMemberWhenOneIsKilled) {
  EtcdCluster etcd{3};
  ASSERT_TRUE(etcd.ready()) << etcd.why();
  EtcdClient c{io.get_executor(), options_of(etcd)};
  ASSERT_FALSE(run(io, c.put("/sq/a", "1")).has_error());
  EXPECT_EQ(c.current_member().port, etcd.client_port(0));
  etcd.kill(0);
  const auto r = run(io, c.put("/sq/a", "2"));
  ASSERT_FALSE(r.has_error()) << r.error().message;
  EXPECT_NE(c.current_member().port, etcd.client_port(0));
  EXPECT_EQ(c.failovers(), 1u);
  EXPECT_EQ(run(io, c.get("/sq/a"))->kvs[0].value, "2");
}

TEST_F(EtcdClientTest, NoMemberIsAnErrorThatSaysWhatToDoWithinItsTimeout) {
  EtcdOptions o;
  o.members = {{"127.0.0.1", testing::free_port()}, {"127.0.0.1", testing::free_port()}};
  o.request_timeout = 500ms;
  EtcdClient c{io.get_executor(), o};
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run(io, c.get("/sq/a"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  ASSERT_TRUE(r.has_error());
  EXPECT_EQ(r.error().code, EtcdErrc::kUnavailable);
  EXPECT_NE(r.error().message.find("start etcd"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(to_string(o.members[1])), std::string::npos);
  const auto w =
      run(io, c.watch("/sq/", prefix_end("/sq/"), 0, [](const WatchAnswer&) { return true; }));
  ASSERT_TRUE(w.has_error());
  EXPECT_EQ(w.error().code, EtcdErrc::kUnavailable);
}

TEST_F(EtcdClientTest, AWatchFromACompactedRevisionSaysSo) {
  EtcdCluster etcd{1};
  ASSERT_TRUE(etcd.ready()) << etcd.why();
  EtcdClient c{io.get_executor(), options_of(etcd)};
  std::int64_t last = 0;
  for (int i = 0; i < 5; ++i) last = run(io, c.put("/sq/w/k", std::to_string(i)))->revision;
  const auto compacted = testing::fetch(etcd.client_port(0), "POST", "/v3/kv/compaction", {},
                                        "{\"revision\":\"" + std::to_string(last) + "\"}");
  ASSERT_TRUE(compacted && compacted->status == 200);
  const auto w =
      run(io, c.watch("/sq/w/", prefix_end("/sq/w/"), 1, [](const WatchAnswer&) { return true; }));
  ASSERT_TRUE(w.has_error());
  EXPECT_EQ(w.error().code, EtcdErrc::kCompacted);
}

TEST(EtcdMember, IsAnAddressAndPortWithOrWithoutHttp) {
  std::string error;
  EXPECT_EQ(parse_member("http://10.0.0.1:2379", error), (EtcdMember{"10.0.0.1", 2379}));
  EXPECT_EQ(parse_member("[::1]:2379/", error), (EtcdMember{"::1", 2379}));
  EXPECT_EQ(parse_member("localhost:23", error), (EtcdMember{"127.0.0.1", 23}));
  EXPECT_FALSE(parse_member("etcd-1:2379", error));
  EXPECT_NE(error.find("by its address"), std::string::npos);
  EXPECT_FALSE(parse_member("10.0.0.1", error));
  EXPECT_FALSE(parse_member("https://10.0.0.1:2379", error));
  EXPECT_NE(error.find("https"), std::string::npos);
}

}  // namespace
}  // namespace squadron::cluster
