#include <csignal>

#include "fixture.hpp"

namespace squadron::testing {
namespace {

class Hello : public ServiceTest {
 protected:
  void SetUp() override { start("hello"); }
};

TEST_F(Hello, AnswersHelloWorldAsPlainText) {
  auto r = fetch(port_, "GET", "/hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "Hello World!");
  EXPECT_EQ(r->header("Content-Type").value_or(""), "text/plain; charset=utf-8");
  EXPECT_EQ(r->header("X-Request-Id").value_or("").size(), 32u);
  EXPECT_TRUE(r->header("Date"));
}

TEST_F(Hello, HealthAndReadinessAnswer200) {
  EXPECT_EQ(fetch(port_, "GET", "/healthz")->status, 200);
  EXPECT_EQ(fetch(port_, "GET", "/readyz")->status, 200);
}

TEST_F(Hello, MetricsArePrometheusTextWithALatencyHistogram) {
  fetch(port_, "GET", "/hello");
  fetch(port_, "GET", "/nope");
  auto m = fetch(port_, "GET", "/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->header("Content-Type").value_or(""), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(m->body.find("# TYPE squadron_http_request_duration_seconds histogram"),
            std::string::npos);
  EXPECT_NE(
      m->body.find(
          "squadron_http_requests_total{service=\"hello\",route=\"/hello\",status=\"200\"} 1"),
      std::string::npos)
      << m->body;
  EXPECT_NE(m->body.find("route=\"(unmatched)\",status=\"404\"} 1"), std::string::npos);
  EXPECT_NE(m->body.find("squadron_http_request_duration_seconds_bucket{service=\"hello\",route=\"/"
                         "hello\",le=\"+Inf\"} 1"),
            std::string::npos);
}

TEST_F(Hello, EchoesTheClientsRequestId) {
  auto r = fetch(port_, "GET", "/hello", "X-Request-Id: my-id-1\r\n");
  EXPECT_EQ(r->header("X-Request-Id").value_or(""), "my-id-1");
}

TEST_F(Hello, WritesAJsonAccessLogLineWhenAsked) {
  TearDown();
  start("hello", {}, {"SQUADRON_ACCESS_LOG=1"});
  fetch(port_, "GET", "/hello", "X-Request-Id: log-me\r\n");
  proc_->signal(SIGTERM);
  ASSERT_EQ(proc_->wait_exit(std::chrono::seconds(10)), 0);
  EXPECT_NE(proc_->output().find("\"path\":\"/hello\",\"route\":\"/hello\",\"status\":200"),
            std::string::npos)
      << proc_->output();
  EXPECT_NE(proc_->output().find("\"request_id\":\"log-me\""), std::string::npos);
}

TEST(HelloFlags, BadFlagsExitWith2AndSayWhatToDo) {
  ChildProcess p({bin_dir() + "/hello", "--grace", "soon"});
  EXPECT_EQ(p.wait_exit(std::chrono::seconds(5)), 2);
  EXPECT_NE(p.output().find("--grace must be a duration such as 500ms, 10s or 1m"),
            std::string::npos)
      << p.output();
}

TEST(HelloFlags, APortInUseExitsWith1AndSaysSo) {
  auto first = start_service("hello");
  auto port = first->wait_for_port();
  ASSERT_TRUE(port);
  ChildProcess second({bin_dir() + "/hello", "--port", std::to_string(*port)});
  EXPECT_EQ(second.wait_exit(std::chrono::seconds(5)), 1);
  EXPECT_NE(second.output().find("cannot listen"), std::string::npos) << second.output();
}

}  // namespace
}  // namespace squadron::testing
