#include "squadron/service/metrics.hpp"

#include <gtest/gtest.h>

namespace squadron::service {
namespace {

using namespace std::chrono_literals;

TEST(Metrics, SumsShardsAndKeepsBucketsCumulative) {
  Metrics m({"/a", "/b"}, 2);
  m.record(0, 0, 200, 300us);  // <= 0.5 ms
  m.record(1, 0, 200, 2ms);    // <= 2.5 ms
  m.record(1, 0, 503, 20s);    // +Inf only
  const std::string text = m.render("svc");
  EXPECT_NE(
      text.find("squadron_http_requests_total{service=\"svc\",route=\"/a\",status=\"200\"} 2"),
      std::string::npos);
  EXPECT_NE(
      text.find("squadron_http_requests_total{service=\"svc\",route=\"/a\",status=\"503\"} 1"),
      std::string::npos);
  EXPECT_NE(text.find("le=\"0.0005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("le=\"0.0025\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("le=\"10\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(
      text.find("squadron_http_request_duration_seconds_count{service=\"svc\",route=\"/a\"} 3"),
      std::string::npos);
  EXPECT_EQ(text.find("route=\"/b\""), std::string::npos) << "routes without traffic are left out";
}

TEST(Metrics, InFlightIsAGaugeOverAllThreads) {
  Metrics m({"/a"}, 2);
  m.add_in_flight(0, 1);
  m.add_in_flight(1, 1);
  m.add_in_flight(1, 1);
  m.add_in_flight(0, -1);
  EXPECT_NE(m.render("s").find("squadron_http_requests_in_flight{service=\"s\"} 2"),
            std::string::npos);
}

TEST(Metrics, EscapesLabelValues) {
  Metrics m({"/q\"x"}, 1);
  m.record(0, 0, 200, 1ms);
  EXPECT_NE(m.render("s\\n").find("service=\"s\\\\n\",route=\"/q\\\"x\""), std::string::npos);
}

}  // namespace
}  // namespace squadron::service
