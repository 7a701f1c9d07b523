#include "squadron/registry/watch.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace squadron::registry {
namespace {

using namespace std::chrono_literals;

Watch sample() {
  Watch w;
  w.revision = 41;
  WatchService hello;
  hello.name = "hello";
  hello.routes = {{"/hello", true, "api.example", 100, 200}, {"/", false, "", 0, 0}};
  hello.proxy.timeout = 900ms;
  hello.proxy.retries = 1;
  hello.proxy.max_connections = 64;
  hello.proxy.balance = "round-robin";
  hello.proxy.affinity = "cookie";
  hello.proxy.affinity_name = "sticky";
  hello.proxy.protocol = "h2c";
  hello.scale_to_zero = true;
  hello.discovery_port = 18080;
  w.services = {hello, {"worker", {}, {}, false, 0}};
  Instance i;
  i.service = "hello";
  i.id = "hello-1";
  i.pid = 12;
  i.port = 5001;
  i.state = State::kReady;
  i.started_at = std::chrono::system_clock::time_point{} + 1000s;
  w.instances = {i};
  return w;
}

TEST(Watch, WhatTheControlPlaneWritesTheGatewayReadsBackTheSame) {
  const auto w = sample();
  const auto v = to_json(w, std::chrono::system_clock::now());
  std::string error;
  const auto back = watch_from_json(boost::json::parse(boost::json::serialize(v)), error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->revision, 41u);
  EXPECT_EQ(back->services, w.services);
  ASSERT_EQ(back->instances.size(), 1u);
  EXPECT_EQ(back->instances[0].id, "hello-1");
  EXPECT_EQ(back->instances[0].port, 5001);
}

TEST(Watch, ReadsBackWhatWasBuiltInMemoryToo) {
  // Unsigned fields (a port) are uint64 numbers in a value never serialised: read all the same.
  const auto w = sample();
  std::string error;
  const auto back = watch_from_json(to_json(w, std::chrono::system_clock::now()), error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->services, w.services);
  EXPECT_EQ(back->services[0].discovery_port, 18080);
}

TEST(Watch, ValuesOutsideTheBoundsKeepTheirDefaults) {
  const auto v = boost::json::parse(R"({"revision": 1, "services": [{"name": "a", "proxy": {
      "timeout_ms": 0, "retries": 99, "max_in_flight": 0, "max_connections": 0, "eject_after": 5000,
      "slow_start_ms": -1, "balance": "fastest", "connect_timeout_ms": 250},
      "routes": ["/ok", "no-slash", {"prefix": "/limited", "rate_limit": {"rate": 20000000}},
                 {"prefix": "/burst", "rate_limit": {"rate": 5}}],
      "discovery_port": 70000}], "instances": [{"not": "an instance"}]})");
  std::string error;
  const auto w = watch_from_json(v, error);
  ASSERT_TRUE(w) << error;
  const ProxyPolicy defaults;
  const auto& p = w->services[0].proxy;
  EXPECT_EQ(p.timeout, defaults.timeout);
  EXPECT_EQ(p.retries, defaults.retries);
  EXPECT_EQ(p.max_in_flight, defaults.max_in_flight);
  EXPECT_EQ(p.max_connections, defaults.max_connections);
  EXPECT_EQ(p.eject_after, defaults.eject_after);
  EXPECT_EQ(p.slow_start, defaults.slow_start);
  EXPECT_EQ(p.balance, defaults.balance);
  EXPECT_EQ(p.connect_timeout, 250ms) << "in bounds: read";
  ASSERT_EQ(w->services[0].routes.size(), 3u) << "a prefix without '/' is skipped";
  EXPECT_EQ(w->services[0].routes[1].rate, 0) << "a rate past the bound: no limit";
  EXPECT_EQ(w->services[0].routes[2].burst, 5) << "burst defaults to the rate";
  EXPECT_EQ(w->services[0].discovery_port, 0);
  EXPECT_TRUE(w->instances.empty());
}

TEST(Watch, AWrongShapeIsAnErrorNotAnException) {
  std::string error;
  EXPECT_FALSE(watch_from_json(boost::json::parse(R"({"services": {}})"), error));
  EXPECT_NE(error.find("\"services\" and \"instances\""), std::string::npos);
  EXPECT_FALSE(
      watch_from_json(boost::json::parse(R"({"services": [{}], "instances": []})"), error));
  EXPECT_EQ(error, "a service without a name");
  const auto huge = watch_from_json(
      boost::json::parse(R"({"revision": 1e300, "services": [], "instances": []})"), error);
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->revision, 0u);
  EXPECT_TRUE(known_balance("least-request"));
  EXPECT_FALSE(known_balance("fastest"));
}

}  // namespace
}  // namespace squadron::registry
