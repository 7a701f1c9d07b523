// The standalone gateway's file: what it reads, and every problem with its place and a hint.
#include "squadron/control/gateway_file.hpp"

#include <gtest/gtest.h>

namespace squadron::control {
namespace {

GatewayFileResult parse(const std::string& text) {
  return parse_gateway_file(text, "/tmp/gateway.yaml");
}

std::string all_errors(const GatewayFileResult& r) {
  std::string all;
  for (const auto& e : r.errors) all += e.to_string() + "\n";
  return all;
}

TEST(GatewayFile, UpstreamsRoutesAndPolicies) {
  ::setenv("GW_TEST_CATALOG", "catalog.shop.svc:80", 1);
  const auto r = parse(R"(listen: 0.0.0.0:8080
admin: 127.0.0.1:0
resolve_every: 2s
threads: 2
trusted_proxies: [10.0.0.0/8]
upstreams:
  web:
    endpoints: [10.0.0.5:8080, "[::1]:8081"]
    routes: [/]
  catalog:
    endpoints: ["${GW_TEST_CATALOG}"]
    routes: [/titles, { prefix: /api, strip_prefix: true, host: api.example.com }]
    proxy: { retries: 0, timeout: 3s }
)");
  ASSERT_TRUE(r.ok()) << all_errors(r);
  const auto& g = *r.config;
  EXPECT_EQ(g.listen, "0.0.0.0:8080");
  EXPECT_EQ(g.admin, "127.0.0.1:0");
  EXPECT_EQ(g.resolve_every, std::chrono::seconds(2));
  EXPECT_EQ(g.threads, 2);
  EXPECT_EQ(g.trusted_proxies, std::vector<std::string>{"10.0.0.0/8"});
  ASSERT_EQ(g.upstreams.size(), 2U);
  EXPECT_EQ(g.upstreams[0].service.name, "web");
  EXPECT_EQ(g.upstreams[0].endpoints, (std::vector<std::string>{"10.0.0.5:8080", "[::1]:8081"}));
  EXPECT_EQ(g.upstreams[1].endpoints, std::vector<std::string>{"catalog.shop.svc:80"});
  ASSERT_EQ(g.upstreams[1].service.routes.size(), 2U);
  EXPECT_TRUE(g.upstreams[1].service.routes[1].strip_prefix);
  EXPECT_EQ(g.upstreams[1].service.routes[1].host, "api.example.com");
  EXPECT_EQ(g.upstreams[1].service.proxy.retries, 0);
  EXPECT_EQ(g.upstreams[1].service.proxy.timeout, std::chrono::seconds(3));
}

TEST(GatewayFile, EveryProblemWithItsPlaceAndAHint) {
  const auto r = parse(R"(listen: everywhere
resolve_every: 1ms
upstreams:
  web:
    endpoints: [10.0.0.5, ok.svc:80]
    routes: [/]
    proxi: {}
  Bad Name:
    endpoints: [a:1]
  api:
    routes: [/]
)");
  ASSERT_FALSE(r.ok());
  const auto all = all_errors(r);
  for (const char* want :
       {"gateway.yaml:1:9: listen: expected host:port, got \"everywhere\"",
        "gateway.yaml:2:16: resolve_every: expected 100ms to 1h",
        "gateway.yaml:5:17: upstreams.web.endpoints[0]: expected host:port, got \"10.0.0.5\"",
        "gateway.yaml:7:5: upstreams.web.proxi: unknown key \"proxi\" (did you mean \"proxy\"?",
        "upstreams.Bad Name: \"Bad Name\" is not a valid upstream name",
        "upstreams.api.endpoints: an upstream needs a list of endpoints",
        "upstreams.api.routes[0]: / is also upstreams.web's route"})
    EXPECT_NE(all.find(want), std::string::npos) << want << "\n" << all;
}

TEST(GatewayFile, NoRoutesAtAllIsAnError) {
  const auto r = parse("upstreams:\n  web:\n    endpoints: [10.0.0.5:80]\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(all_errors(r).find("no upstream has routes"), std::string::npos) << all_errors(r);
  EXPECT_FALSE(load_gateway_file("/nonexistent/gateway.yaml").ok());
}

}  // namespace
}  // namespace squadron::control
