// The standalone gateway's table from upstreams named by address: one ready endpoint per
// distinct address, stable ids, slow start for new endpoints only.
#include "squadron/gateway/resolver.hpp"

#include <gtest/gtest.h>

#include "squadron/core/address.hpp"

namespace squadron::gateway {
namespace {

using namespace std::chrono_literals;

registry::UpstreamSpec upstream(std::string name, std::vector<std::string> endpoints) {
  registry::UpstreamSpec u;
  u.service.name = std::move(name);
  u.service.routes.push_back({.prefix = "/"});
  u.endpoints = std::move(endpoints);
  return u;
}

TEST(SplitHostPort, AddressesNamesAndBracketedV6) {
  std::string host;
  std::uint16_t port = 0;
  ASSERT_TRUE(core::split_host_port("10.0.0.5:8080", host, port));
  EXPECT_EQ(host, "10.0.0.5");
  EXPECT_EQ(port, 8080);
  ASSERT_TRUE(core::split_host_port("catalog.shop.svc:80", host, port));
  EXPECT_EQ(host, "catalog.shop.svc");
  ASSERT_TRUE(core::split_host_port("[::1]:9000", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 9000);
  for (const char* bad : {"catalog", "catalog:", "catalog:0", "catalog:70000", ":80", "::1:80",
                          "a b:80", "[::1]80", "x:80x"})
    EXPECT_FALSE(core::split_host_port(bad, host, port)) << bad;
}

TEST(WatchOf, EveryAddressBehindANameIsAnEndpointOnce) {
  std::map<std::string, std::chrono::system_clock::time_point> seen;
  const auto t0 = std::chrono::system_clock::time_point{} + 1000s;
  const std::vector<registry::UpstreamSpec> ups = {
      upstream("web", {"web.svc:8080", "10.0.0.9:8080"}), upstream("api", {"[::1]:81"})};
  std::map<std::string, std::vector<std::string>> addresses = {
      {"web.svc:8080", {"10.0.0.8", "10.0.0.9"}},
      {"10.0.0.9:8080", {"10.0.0.9"}},
      {"[::1]:81", {"::1"}}};
  auto w = watch_of(ups, addresses, seen, t0, 7);
  EXPECT_EQ(w.revision, 7U);
  ASSERT_EQ(w.services.size(), 2U);
  ASSERT_EQ(w.instances.size(), 3U) << "10.0.0.9 named twice is one endpoint";
  EXPECT_EQ(w.instances[0].id, "web@10.0.0.8:8080");
  EXPECT_EQ(w.instances[1].id, "web@10.0.0.9:8080");
  EXPECT_EQ(w.instances[2].id, "api@[::1]:81");
  EXPECT_EQ(w.instances[2].host, "::1");
  for (const auto& i : w.instances) EXPECT_EQ(i.state, registry::State::kReady);

  // The name now resolves to one new address: the kept one keeps its first sight (no new slow
  // start), the new one starts now, the gone one is forgotten.
  addresses["web.svc:8080"] = {"10.0.0.9", "10.0.0.10"};
  w = watch_of(ups, addresses, seen, t0 + 60s, 8);
  ASSERT_EQ(w.instances.size(), 3U);
  EXPECT_EQ(w.instances[0].id, "web@10.0.0.9:8080");
  EXPECT_EQ(w.instances[0].started_at, t0);
  EXPECT_EQ(w.instances[1].id, "web@10.0.0.10:8080");
  EXPECT_EQ(w.instances[1].started_at, t0 + 60s);
  EXPECT_EQ(seen.count("web@10.0.0.8:8080"), 0U);
}

TEST(WatchOf, ANameNotYetResolvedHasNoEndpointButItsServiceIsRouted) {
  std::map<std::string, std::chrono::system_clock::time_point> seen;
  auto w = watch_of({upstream("web", {"web.svc:8080"})}, {}, seen, {}, 1);
  EXPECT_EQ(w.services.size(), 1U);
  EXPECT_TRUE(w.instances.empty());
  const auto table = RouteTable::from(w);
  EXPECT_TRUE(table->match("", "/x")) << "routed, to answer 503 rather than 404";
}

}  // namespace
}  // namespace squadron::gateway
