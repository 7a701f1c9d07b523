#include "squadron/control/traffic.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "squadron/core/latency.hpp"

namespace squadron::control {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

// A /metrics.json answer for one service "a" with these cumulative counts; `fast` answers in
// (500 us, 1 ms], `slow` in (50, 100] ms.
json::value answer(std::uint64_t requests, std::uint64_t ok, std::uint64_t errors,
                   std::uint64_t fast, std::uint64_t slow, int in_flight) {
  json::array bounds;
  for (auto b : core::kLatencyBoundsUs) bounds.push_back(b);
  json::array counts;
  for (std::size_t i = 0; i < core::kLatencyBuckets; ++i)
    counts.push_back(i == 3 ? fast : i == 9 ? slow : 0);
  return json::object{
      {"latency_bounds_us", bounds},
      {"services",
       json::array{json::object{{"name", "a"},
                                {"requests", requests},
                                {"in_flight", in_flight},
                                {"responses", json::object{{"2xx", ok}, {"5xx", errors}}},
                                {"retries", 1},
                                {"latency_us", json::object{{"counts", counts}, {"sum", 0}}}}}},
      {"routes", json::array{}}};
}

TEST(Traffic, RatesAndQuantilesAreOverTheLastInterval) {
  boost::asio::io_context io;
  Traffic t(io.get_executor(), 0, 3);
  const auto t0 = Traffic::Clock::time_point(1h);
  ASSERT_TRUE(t.ingest(answer(100, 100, 0, 100, 0, 0), t0, 1000));
  const auto* h = t.history("a");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->back().rps, 0) << "a first look has no interval";
  // 2 s later: 400 more requests, 6 of them failed and slow.
  ASSERT_TRUE(t.ingest(answer(500, 494, 6, 494, 6, 7), t0 + 2s, 3000));
  const auto& s = h->back();
  EXPECT_DOUBLE_EQ(s.rps, 200);
  EXPECT_DOUBLE_EQ(s.in_flight, 7);
  EXPECT_DOUBLE_EQ(s.error_rate, 0.015);
  EXPECT_GT(s.p50_ms, 0.5);
  EXPECT_LE(s.p50_ms, 1.0);
  EXPECT_GT(s.p99_ms, 50) << "6 slow in 400: 1.5 %";
  EXPECT_LE(s.p90_ms, 1.0);
  EXPECT_EQ(s.requests, 500u);
  EXPECT_EQ(s.retries, 1u);
  // The gateway restarted: counts went back; no negative rates, deltas start again.
  ASSERT_TRUE(t.ingest(answer(10, 10, 0, 10, 0, 0), t0 + 3s, 4000));
  EXPECT_EQ(h->back().rps, 0);
  ASSERT_TRUE(t.ingest(answer(60, 60, 0, 60, 0, 0), t0 + 4s, 5000));
  EXPECT_DOUBLE_EQ(h->back().rps, 50);
  EXPECT_EQ(h->size(), 3u) << "only the last `keep` samples";
  const auto v = t.json(2, "a");
  EXPECT_EQ(v.at("services").at("a").at("history").as_array().size(), 2u);
  EXPECT_EQ(v.at("services").at("a").at("latest").at("requests").as_uint64(), 60u);
  EXPECT_FALSE(t.ingest(json::parse("{\"nope\":1}"), t0 + 5s, 6000));
}

TEST(TrafficIdle, AnInstanceIsIdleOnceTheGatewayRoutesWithoutItAndHasNothingInFlight) {
  const auto answer = json::parse(R"({"revision": 42, "in_flight": {"web-1": 3, "web-2": 0}})");
  EXPECT_FALSE(Traffic::idle_in(answer, "web-1", 40)) << "requests in flight";
  EXPECT_TRUE(Traffic::idle_in(answer, "web-2", 42));
  EXPECT_TRUE(Traffic::idle_in(answer, "web-3", 41)) << "never had any";
  EXPECT_FALSE(Traffic::idle_in(answer, "web-3", 43)) << "the gateway may still pick it";
  EXPECT_FALSE(Traffic::idle_in(json::parse(R"({"revision": 50})"), "web-3", 1));
  EXPECT_FALSE(Traffic::idle_in(json::parse("[]"), "web-3", 0));
  EXPECT_FALSE(Traffic::idle_in(json::parse(R"({"revision": -1, "in_flight": {}})"), "x", 1));
}

}  // namespace
}  // namespace squadron::control
