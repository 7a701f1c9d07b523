// An instance spec crosses hosts as JSON (a cluster's assignments): every field comes back, and
// a spec that is wrong names its key.
#include "squadron/supervisor/spec_json.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace squadron::supervisor {
namespace {
using namespace std::chrono_literals;

InstanceSpec full_spec() {
  InstanceSpec s;
  s.service = "catalog";
  s.id = "catalog-7";
  s.revision = "3";
  s.launch.argv = {"/usr/bin/catalog", "--port", "${PORT}"};
  s.launch.cwd = "/srv/streamflix";
  s.launch.env = {{"DB", "postgres://db"}, {"EMPTY", ""}};
  s.port = 8081;
  s.ready.path = "/readyz";
  s.ready.interval = 250ms;
  s.ready.threshold = 2;
  s.live = ProbeSpec{};
  s.live->command = {"pg_isready"};
  s.live->port = 5432;
  s.stop_grace = 15s;
  s.restart = Restart::kOnFailure;
  s.resources.memory_bytes = 256u << 20;
  s.resources.millicores = 500;
  s.stop_signal = SIGINT;
  s.secrets = {{"db-password", "/run/secrets/db", "", "password", "DB_PASSWORD"},
               {"token", "", "API_TOKEN", "token", ""}};
  s.expand_variables = true;
  s.launch.run_as = RunAs{1000, 1000, {27, 100}};
  return s;
}

TEST(SpecJson, EveryFieldComesBack) {
  const InstanceSpec s = full_spec();
  std::string error;
  const auto text = boost::json::serialize(to_json(s));
  const auto back = spec_from_json(boost::json::parse(text), error);
  ASSERT_TRUE(back.has_value()) << error;
  EXPECT_EQ(to_json(*back), to_json(s));
  EXPECT_EQ(back->id, "catalog-7");
  EXPECT_EQ(back->launch.env.at("DB"), "postgres://db");
  EXPECT_EQ(back->port, std::optional<std::uint16_t>(8081));
  EXPECT_EQ(back->ready.interval, 250ms);
  ASSERT_TRUE(back->live.has_value());
  EXPECT_EQ(back->live->port, 5432);
  EXPECT_EQ(back->restart, Restart::kOnFailure);
  EXPECT_EQ(back->resources, s.resources);
  EXPECT_EQ(back->secrets, s.secrets);
  EXPECT_EQ(back->launch.run_as, s.launch.run_as);
  EXPECT_EQ(back->stop_signal, SIGINT);
}

TEST(SpecJson, AGrpcProbeComesBackWithItsServiceNameEvenAnEmptyOne) {
  for (const std::string service : {"", "squadron.example.Echo"}) {
    InstanceSpec s = full_spec();
    s.ready = ProbeSpec{};
    s.ready.grpc = service;
    std::string error;
    const auto back = spec_from_json(boost::json::parse(boost::json::serialize(to_json(s))), error);
    ASSERT_TRUE(back.has_value()) << error;
    EXPECT_EQ(back->ready.grpc, std::optional<std::string>(service));
    EXPECT_EQ(back->live->grpc, std::nullopt);
  }
}

TEST(SpecJson, DefaultsStayDefaultsAndNoValueOfASecretTravels) {
  InstanceSpec s;
  s.service = "hello";
  s.launch.argv = {"hello"};
  s.secrets = {{"k", "/etc/k", "", "k", ""}};
  const auto o = to_json(s);
  EXPECT_FALSE(o.contains("port"));
  EXPECT_FALSE(o.contains("live"));
  EXPECT_FALSE(o.contains("run_as"));
  EXPECT_EQ(o.at("secrets").as_array()[0].as_object().at("file"), "/etc/k");
  std::string error;
  const auto back = spec_from_json(o, error);
  ASSERT_TRUE(back.has_value()) << error;
  EXPECT_FALSE(back->port.has_value());
  EXPECT_FALSE(back->live.has_value());
  EXPECT_EQ(back->restart, Restart::kAlways);
  EXPECT_EQ(back->stop_grace, 10s);
}

TEST(SpecJson, AWrongSpecNamesItsKey) {
  const std::pair<const char*, const char*> cases[] = {
      {R"([])", "JSON object"},
      {R"({"argv":["x"]})", "service: missing"},
      {R"({"service":"a"})", "argv: missing"},
      {R"({"service":"a","argv":["x"],"port":0})", "port: out of range"},
      {R"({"service":"a","argv":["x"],"port":70000})", "port: out of range"},
      {R"({"service":"a","argv":["x"],"env":{"A":1}})", "env.A: expected a string"},
      {R"({"service":"a","argv":["x"],"ready":{"threshold":0}})", "ready.threshold: out of range"},
      {R"({"service":"a","argv":["x"],"restart":"sometimes"})", "restart: expected always"},
      {R"({"service":"a","argv":["x"],"resources":{"pids":-1}})", "resources.pids"},
      {R"({"service":"a","argv":["x"],"secrets":[{"target":"../x"}]})", "secrets.target"},
      {R"({"service":"a","argv":[1]})", "argv: expected a list of strings"},
      {R"({"service":"a","argv":["x"],"stop_signal":99})", "stop_signal: out of range"},
  };
  for (const auto& [text, want] : cases) {
    std::string error;
    EXPECT_FALSE(spec_from_json(boost::json::parse(text), error).has_value()) << text;
    EXPECT_NE(error.find(want), std::string::npos) << text << " -> " << error;
  }
}

}  // namespace
}  // namespace squadron::supervisor
