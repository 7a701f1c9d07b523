#include "squadron/gateway/balancer.hpp"

#include <map>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace squadron::gateway {
namespace {

using namespace std::chrono_literals;
using TimePoint = Balancer::TimePoint;
const TimePoint kT0 = TimePoint(1h);

Service three(Balance b = Balance::kLeastRequest) {
  Service s;
  s.name = "a";
  s.ready = {{"a-1", "127.0.0.1", 1}, {"a-2", "127.0.0.1", 2}, {"a-3", "127.0.0.1", 3}};
  s.policy.balance = b;
  return s;
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
  EXPECT_FALSE(lb.pick(Service{}, {}, kT0));
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
  Service s = three();
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
    Service s = three(mode);
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

TEST(RouteTable, LongestPrefixByWholeSegmentsAndHostsWin) {
  const auto v = boost::json::parse(R"({"revision": 9,
    "services": [
      {"name": "hello", "routes": ["/hello"]},
      {"name": "py", "routes": [{"prefix": "/py", "strip_prefix": true}]},
      {"name": "root", "routes": ["/"]},
      {"name": "api", "routes": [{"prefix": "/hello", "host": "api.example"}]}],
    "instances": [
      {"service":"hello","id":"hello-1","host":"127.0.0.1","port":8081,"state":"ready"},
      {"service":"hello","id":"hello-2","host":"127.0.0.1","port":8082,"state":"starting"},
      {"service":"py","id":"py-1","host":"127.0.0.1","port":8083,"state":"ready"}]})");
  std::string error;
  const auto t = RouteTable::from_watch(v, error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->revision(), 9u);
  auto m = t->match("localhost:8080", "/hello");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->service->name, "hello");
  ASSERT_EQ(m->service->ready.size(), 1u) << "only ready instances";
  EXPECT_EQ(m->service->ready[0].port, 8081);
  EXPECT_EQ(t->match("x", "/hello/there")->service->name, "hello");
  EXPECT_EQ(t->match("x", "/helloworld")->service->name, "root") << "whole segments";
  EXPECT_EQ(t->match("API.example:80", "/hello")->service->name, "api") << "host wins a tie";
  m = t->match("x", "/py/items?x=1");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->upstream_target("/py/items?x=1"), "/items?x=1");
  EXPECT_EQ(m->upstream_target("/py"), "/");
  EXPECT_EQ(m->upstream_target("/py?q"), "/?q");
}

TEST(RouteTable, ReadsRateLimitsAndNamesRoutes) {
  std::string error;
  const auto t = RouteTable::from_watch(boost::json::parse(R"({"services":[{"name":"a","routes":[
        {"prefix":"/x","rate_limit":{"rate":5,"burst":9}},
        {"prefix":"/y","host":"h.example","rate_limit":{"rate":3}},
        {"prefix":"/z","rate_limit":{"rate":-1}}]}],"instances":[]})"),
                                        error);
  ASSERT_TRUE(t) << error;
  const auto m = t->match("h.example", "/y/1");
  ASSERT_TRUE(m);
  const auto& y = t->routes()[m->route];
  EXPECT_EQ(y.key(), "h.example/y");
  EXPECT_EQ(y.rate, 3);
  EXPECT_EQ(y.burst, 3);
  EXPECT_EQ(t->routes()[t->match("", "/x")->route].burst, 9);
  EXPECT_EQ(t->routes()[t->match("", "/z")->route].rate, 0) << "a bad limit is no limit";
}

TEST(RouteTable, NoRouteAndBadInput) {
  std::string error;
  const auto t = RouteTable::from_watch(
      boost::json::parse(R"({"services":[{"name":"a","routes":["/a"]}],"instances":[]})"), error);
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->match("h", "/b"));
  EXPECT_TRUE(t->match("h", "/a")->service->ready.empty());
  EXPECT_FALSE(RouteTable::from_watch(boost::json::parse("[]"), error));
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace squadron::gateway
