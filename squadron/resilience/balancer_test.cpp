#include "squadron/resilience/balancer.hpp"

#include <map>

#include <gtest/gtest.h>

namespace squadron::resilience {
namespace {

using namespace std::chrono_literals;
using TimePoint = Balancer::TimePoint;
const TimePoint kT0 = TimePoint(1h);

// A service as the gateway holds one, seen by the balancer as a Pool.
struct TestPool {
  struct Policy {
    Balance balance = Balance::kLeastRequest;
    std::chrono::milliseconds slow_start{3000};
    int eject_after = 5;
    std::chrono::milliseconds eject_time{30000};
  };
  std::string name;
  std::vector<Endpoint> ready;
  Policy policy;
  std::int64_t young_until_ms = 0;
  std::size_t local = 0;
  double local_share = 1.0;
  operator Pool() const {  // NOLINT: as the gateway's pool_of()
    return {ready,          policy.balance,     policy.slow_start,
            young_until_ms, policy.eject_after, policy.eject_time,
            local,          local_share};
  }
};

TestPool three(Balance b = Balance::kLeastRequest) {
  TestPool s;
  s.name = "a";
  s.ready = {{"a-1", "127.0.0.1", 1}, {"a-2", "127.0.0.1", 2}, {"a-3", "127.0.0.1", 3}};
  s.policy.balance = b;
  return s;
}

// Locality (a cluster host's gateway): a share of the picks stays on the host's own instances,
// all of them when its instances are its host's share; an ejected local one sends them away.
TEST(Balancer, PrefersLocalInstancesByTheirShareWhileTheyAreHealthy) {
  TestPool s;
  s.ready = {{"a-1", "10.0.0.1", 1},
             {"a-2", "10.0.0.2", 2},
             {"a-3", "10.0.0.2", 3},
             {"a-4", "10.0.0.3", 4}};
  s.local = 1;
  Balancer lb{7};
  auto local_picks = [&](int n) {
    int local = 0;
    for (int i = 0; i < n; ++i) local += *lb.pick(s, {}, kT0) == 0 ? 1 : 0;
    return local;
  };
  s.local_share = 1.0;
  EXPECT_EQ(local_picks(1000), 1000) << "all local";
  s.local_share = 0.75;  // 1 of 4 instances, 3 hosts: 1 x 3 / 4
  const int some = local_picks(4000);
  EXPECT_GT(some, 2800);
  EXPECT_LT(some, 3200);
  s.local_share = 1.0;
  for (int i = 0; i < 5; ++i) lb.record(s, s.ready[0], false, kT0);  // ejected
  ASSERT_TRUE(lb.ejected("a-1", kT0));
  EXPECT_EQ(local_picks(1000), 0) << "a sick local instance is no reason to stay";
  // Tried already: the others.
  const std::string_view tried[] = {"a-1"};
  s.local_share = 1.0;
  Balancer fresh{9};
  EXPECT_NE(*fresh.pick(s, tried, kT0), 0u);
}

TEST(Balancer, SpreadsEvenlyWhenNothingIsInFlight) {
  for (auto mode : {Balance::kLeastRequest, Balance::kRoundRobin, Balance::kRandom}) {
    Balancer lb(42);
    const auto s = three(mode);
    std::map<std::size_t, int> count;
    for (int i = 0; i < 30000; ++i) ++count[*lb.pick(s, {}, kT0)];
    for (const auto& [i, n] : count) EXPECT_NEAR(n, 10000, 500) << s.ready[i].id;
  }
}

TEST(Balancer, LeastRequestAvoidsTheBusiestEndpoint) {
  Balancer lb(7);
  const auto s = three();
  for (int i = 0; i < 5; ++i) lb.started(s.ready[0]);
  for (int i = 0; i < 1000; ++i) EXPECT_NE(*lb.pick(s, {}, kT0), 0u);
  for (int i = 0; i < 5; ++i) lb.finished(s.ready[0]);
  EXPECT_EQ(lb.in_flight("a-1"), 0);
}

TEST(Balancer, NeverPicksATriedEndpoint) {
  Balancer lb(1);
  const auto s = three();
  const std::vector<std::string_view> tried{"a-1", "a-3"};
  for (int i = 0; i < 100; ++i) EXPECT_EQ(*lb.pick(s, tried, kT0), 1u);
  const std::vector<std::string_view> all{"a-1", "a-2", "a-3"};
  EXPECT_FALSE(lb.pick(s, all, kT0));
  EXPECT_FALSE(lb.pick(TestPool{}, {}, kT0));
}

TEST(Balancer, EjectsAfterConsecutiveFailuresForGrowingTimes) {
  Balancer lb(3);
  const auto s = three();  // eject_after 5, eject_time 30 s
  const auto& bad = s.ready[1];
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(lb.record(s, bad, false, kT0));
  EXPECT_FALSE(lb.record(s, bad, true, kT0)) << "a success resets the count";
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(lb.record(s, bad, false, kT0));
  EXPECT_TRUE(lb.record(s, bad, false, kT0));
  EXPECT_TRUE(lb.ejected("a-2", kT0 + 29s));
  for (int i = 0; i < 1000; ++i) EXPECT_NE(*lb.pick(s, {}, kT0 + 1s), 1u);
  EXPECT_FALSE(lb.ejected("a-2", kT0 + 30s)) << "back after 30 s";
  for (int i = 0; i < 5; ++i) lb.record(s, bad, false, kT0 + 31s);
  EXPECT_TRUE(lb.ejected("a-2", kT0 + 31s + 59s)) << "second time: 60 s";
  EXPECT_FALSE(lb.ejected("a-2", kT0 + 31s + 60s));
  EXPECT_EQ(lb.ejections(), 2u);
}

TEST(Balancer, NeverEjectsTheLastInstanceInRotation) {
  Balancer lb(5);
  const auto s = three();
  for (const auto& e : s.ready) {
    for (int i = 0; i < 5; ++i) lb.record(s, e, false, kT0);
  }
  int ejected = 0;
  for (const auto& e : s.ready) ejected += lb.ejected(e.id, kT0);
  EXPECT_EQ(ejected, 2);
  EXPECT_TRUE(lb.pick(s, {}, kT0));
}

TEST(Balancer, AnEjectedInstanceIsStillBetterThanNone) {
  Balancer lb(9);
  const auto s = three();
  for (int i = 0; i < 5; ++i) lb.record(s, s.ready[0], false, kT0);
  ASSERT_TRUE(lb.ejected("a-1", kT0));
  const std::vector<std::string_view> tried{"a-2", "a-3"};
  EXPECT_EQ(lb.pick(s, tried, kT0), 0u);
}
TEST(Balancer, ANewInstanceRampsUpOverItsSlowStart) {
  Balancer lb(11);
  TestPool s = three();
  const std::int64_t t0 = 1'700'000'000'000;
  s.ready[0].started_at_ms = t0 - 60'000;  // old
  s.ready[1].started_at_ms = t0 - 60'000;  // old
  s.ready[2].started_at_ms = t0;           // just started; slow start 3 s
  s.young_until_ms = t0 + 3000;
  auto share = [&](std::int64_t wall) {
    int young = 0;
    for (int i = 0; i < 3000; ++i) {
      const auto picked = *lb.pick(s, {}, kT0, wall);
      lb.started(s.ready[picked]);  // requests pile up: the new one gets some as others load
      young += picked == 2;
    }
    for (int i = 0; i < 3000; ++i) {  // leave the counts as they were
      for (auto& e : s.ready) lb.finished(e);
    }
    return young / 3000.0;
  };
  const double early = share(t0 + 300);   // weight 0.1
  const double later = share(t0 + 2400);  // weight 0.8
  const double after = share(t0 + 3000);  // full weight
  EXPECT_LT(early, 0.15);
  EXPECT_GT(later, early + 0.1);
  EXPECT_NEAR(after, 1.0 / 3, 0.05);
}

TEST(Balancer, RoundRobinAndRandomRampUpANewInstanceToo) {
  for (auto mode : {Balance::kRoundRobin, Balance::kRandom}) {
    Balancer lb(13);
    TestPool s = three(mode);
    const std::int64_t t0 = 1'700'000'000'000;
    s.ready[0].started_at_ms = t0 - 60'000;
    s.ready[1].started_at_ms = t0 - 60'000;
    s.ready[2].started_at_ms = t0;
    s.young_until_ms = t0 + 3000;
    auto share = [&](std::int64_t wall) {
      int young = 0;
      for (int i = 0; i < 9000; ++i) young += *lb.pick(s, {}, kT0, wall) == 2;
      return young / 9000.0;
    };
    const double early = share(t0 + 300);  // weight 0.1: about a third of 0.1 of a third each
    EXPECT_LT(early, 0.08);
    EXPECT_GT(early, 0.01) << "ramping, not starved";
    EXPECT_NEAR(share(t0 + 3000), 1.0 / 3, 0.03) << "full weight";
  }
}

}  // namespace
}  // namespace squadron::resilience

namespace squadron::resilience {
namespace {

// Session affinity by rendezvous hashing: a key keeps its instance; an instance that leaves
// moves only its own keys, and an ejected or tried one is skipped.
TEST(Balancer, AKeyKeepsItsInstanceAndALostInstanceMovesOnlyItsOwnKeys) {
  Balancer lb(1);
  const TestPool s = three();
  std::vector<std::size_t> first;
  std::array<int, 3> share{};
  for (std::uint64_t key = 0; key < 3000; ++key) {
    const auto i = lb.pick_by_key(s, core::mix64(key), {}, kT0);
    ASSERT_TRUE(i);
    EXPECT_EQ(lb.pick_by_key(s, core::mix64(key), {}, kT0), i) << "the same key, the same one";
    first.push_back(*i);
    ++share[*i];
  }
  for (int n : share) EXPECT_GT(n, 800) << "spread over all three";
  TestPool two = s;
  two.ready.erase(two.ready.begin() + 1);  // a-2 leaves
  int moved = 0;
  for (std::uint64_t key = 0; key < 3000; ++key) {
    const std::string& was = s.ready[first[key]].id;
    const std::string& now = two.ready[*lb.pick_by_key(two, core::mix64(key), {}, kT0)].id;
    if (was != now) {
      ++moved;
      EXPECT_EQ(was, "a-2") << "only a-2's keys move";
    }
  }
  EXPECT_EQ(moved, share[1]);
  const std::string_view tried[] = {"a-1", "a-3"};
  EXPECT_EQ(lb.pick_by_key(s, 5, tried, kT0), std::optional<std::size_t>(1));
  const std::string_view all[] = {"a-1", "a-2", "a-3"};
  EXPECT_FALSE(lb.pick_by_key(s, 5, all, kT0));
}

TEST(Balancer, AnEjectedInstanceLosesItsKeysUntilItComesBack) {
  Balancer lb(1);
  const TestPool s = three();
  std::uint64_t key = 0;
  while (*lb.pick_by_key(s, key, {}, kT0) != 0) ++key;  // a key of a-1's
  for (int i = 0; i < 5; ++i) lb.record(s, s.ready[0], false, kT0);
  ASSERT_TRUE(lb.ejected("a-1", kT0));
  EXPECT_NE(lb.pick_by_key(s, key, {}, kT0), std::optional<std::size_t>(0));
  EXPECT_EQ(lb.pick_by_key(s, key, {}, kT0 + 31s), std::optional<std::size_t>(0)) << "back";
}

}  // namespace
}  // namespace squadron::resilience
