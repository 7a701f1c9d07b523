#include "squadron/gateway/metrics.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace squadron::gateway {
namespace {

using namespace std::chrono_literals;

TEST(Metrics, QuantilesInterpolateInsideTheirBucket) {
  std::vector<std::uint64_t> counts(kLatencyBuckets, 0);
  counts[3] = 100;  // 500 us .. 1 ms
  EXPECT_NEAR(latency_quantile_ms(counts, kLatencyBoundsUs, 0.5), 0.75, 1e-9);
  EXPECT_NEAR(latency_quantile_ms(counts, kLatencyBoundsUs, 1.0), 1.0, 1e-9);
  counts[6] = 1;  // one slow answer, 5..10 ms: the p99 stays in the fast bucket, max does not
  EXPECT_LE(latency_quantile_ms(counts, kLatencyBoundsUs, 0.99), 1.0);
  EXPECT_GT(latency_quantile_ms(counts, kLatencyBoundsUs, 1.0), 5.0);
  EXPECT_EQ(
      latency_quantile_ms(std::vector<std::uint64_t>(kLatencyBuckets, 0), kLatencyBoundsUs, 0.99),
      0.0);
  std::vector<std::uint64_t> slow(kLatencyBuckets, 0);
  slow.back() = 3;  // beyond the last bound: reported as the last bound
  EXPECT_EQ(latency_quantile_ms(slow, kLatencyBoundsUs, 0.5), 30000.0);
}

TEST(Metrics, CountsPerThreadAndSumsForExport) {
  Metrics m(2);
  Stats& a0 = m.service(0, "a");
  Stats& a1 = m.service(1, "a");
  EXPECT_NE(&a0, &a1);
  EXPECT_EQ(&a0, &m.service(0, "a")) << "stable addresses";
  a0.requests.add();
  a0.finish(200, 300us);
  a1.requests.add(2);
  a1.finish(503, 2ms);
  a1.finish(200, 40s);
  a1.in_flight.add();
  m.route(1, "a", "/a").requests.add();
  m.service(0, "b");
  const auto v = m.json();
  const auto& svc = v.at("services").as_array();
  ASSERT_EQ(svc.size(), 2u);
  const auto& a = svc[0].as_object();
  EXPECT_EQ(a.at("name").as_string(), "a");
  EXPECT_EQ(a.at("requests").as_uint64(), 3u);
  EXPECT_EQ(a.at("in_flight").as_int64(), 1);
  EXPECT_EQ(a.at("responses").at("2xx").as_uint64(), 2u);
  EXPECT_EQ(a.at("responses").at("5xx").as_uint64(), 1u);
  const auto& counts = a.at("latency_us").at("counts").as_array();
  ASSERT_EQ(counts.size(), kLatencyBuckets);
  EXPECT_EQ(counts[2].as_uint64(), 1u) << "300 us: the (250, 500] bucket";
  EXPECT_EQ(counts[4].as_uint64(), 1u) << "2 ms: the (1, 2.5] ms bucket";
  EXPECT_EQ(counts.back().as_uint64(), 1u) << "40 s: past the last bound";
  EXPECT_EQ(v.at("routes").as_array()[0].at("route").as_string(), "/a");

  const auto text = m.prometheus();
  EXPECT_NE(text.find("squadron_service_requests_total{service=\"a\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("squadron_service_responses_total{service=\"a\",class=\"5xx\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("squadron_service_latency_seconds_bucket{service=\"a\",le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("squadron_route_requests_total{service=\"a\",route=\"/a\"} 1\n"),
            std::string::npos);
  // Each family once, its lines together (the exposition format's rule).
  const auto first = text.find("# TYPE squadron_service_requests_total");
  EXPECT_EQ(text.find("# TYPE squadron_service_requests_total", first + 1), std::string::npos);
}

TEST(Metrics, GrpcCallsAreCountedByStatusSummedOverThreadsAndOnlyWhereThereAreAny) {
  Metrics m(2);
  m.service(0, "greeter").grpc[0].add(3);
  m.service(1, "greeter").grpc[0].add();
  m.service(1, "greeter").grpc[14].add();
  m.service(0, "web").requests.add();
  const std::string text = m.prometheus();
  EXPECT_NE(text.find("squadron_service_grpc_total{service=\"greeter\",code=\"0\"} 4\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("squadron_service_grpc_total{service=\"greeter\",code=\"14\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(text.find("squadron_service_grpc_total{service=\"web\""), std::string::npos);
  const auto v = m.json();
  const auto& services = v.at("services").as_array();
  const auto& greeter = services[0].as_object();
  EXPECT_EQ(boost::json::serialize(greeter.at("grpc")), R"({"0":4,"14":1})");
  EXPECT_FALSE(services[1].as_object().contains("grpc"));
}

}  // namespace
}  // namespace squadron::gateway
