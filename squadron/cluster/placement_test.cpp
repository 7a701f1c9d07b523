// Placement: spread, the rules that rule hosts out (each named in the answer), and stickiness.
#include "squadron/cluster/placement.hpp"

#include <gtest/gtest.h>

namespace squadron::cluster {
namespace {

std::vector<HostView> three_hosts() {
  return {{"h1", {{"zone", "a"}}, 1024u << 20, true},
          {"h2", {{"zone", "b"}}, 1024u << 20, true},
          {"h3", {{"zone", "b"}}, 1024u << 20, true}};
}

// Places `n` instances of `service` one by one, as a leader scaling up would.
std::vector<Placed> place_n(const PlacementRequest& r, const std::vector<HostView>& hosts,
                            std::vector<Placed> placed, int n) {
  for (int i = 0; i < n; ++i) {
    std::string why;
    const auto h = place(r, hosts, placed, why);
    EXPECT_TRUE(h.has_value()) << why;
    if (!h) break;
    placed.push_back({*h, r.service, r.memory_bytes, r.fixed_port});
  }
  return placed;
}

int count(const std::vector<Placed>& placed, const std::string& host, const std::string& service) {
  int n = 0;
  for (const auto& p : placed) n += p.host == host && p.service == service ? 1 : 0;
  return n;
}

TEST(Placement, SpreadsEachServiceOverTheHostsFewestFirst) {
  const auto hosts = three_hosts();
  auto placed = place_n({.service = "hello"}, hosts, {}, 6);
  placed = place_n({.service = "echo"}, hosts, placed, 3);
  placed = place_n({.service = "flask"}, hosts, placed, 2);
  for (const auto* h : {"h1", "h2", "h3"}) {
    EXPECT_EQ(count(placed, h, "hello"), 2) << h;
    EXPECT_EQ(count(placed, h, "echo"), 1) << h;
  }
  // Two flask instances on two different hosts.
  EXPECT_LE(count(placed, "h1", "flask"), 1);
  EXPECT_LE(count(placed, "h2", "flask"), 1);
  EXPECT_LE(count(placed, "h3", "flask"), 1);
}

TEST(Placement, ALostHostGetsNothingAndItsShareGoesToTheOthers) {
  auto hosts = three_hosts();
  hosts[1].up = false;
  const auto placed = place_n({.service = "hello"}, hosts, {}, 4);
  EXPECT_EQ(count(placed, "h1", "hello"), 2);
  EXPECT_EQ(count(placed, "h2", "hello"), 0);
  EXPECT_EQ(count(placed, "h3", "hello"), 2);
}

TEST(Placement, HostsAndLabelsRuleHostsOut) {
  const auto hosts = three_hosts();
  auto placed = place_n({.service = "db", .rule = {.hosts = {"h3"}}}, hosts, {}, 2);
  EXPECT_EQ(count(placed, "h3", "db"), 2);
  placed = place_n({.service = "web", .rule = {.labels = {{"zone", "b"}}}}, hosts, {}, 4);
  EXPECT_EQ(count(placed, "h1", "web"), 0);
  EXPECT_EQ(count(placed, "h2", "web"), 2);
  std::string why;
  EXPECT_FALSE(place({.service = "x", .rule = {.labels = {{"zone", "c"}}}}, hosts, {}, why));
  EXPECT_NE(why.find("h1: no label zone=c"), std::string::npos) << why;
  EXPECT_NE(why.find("no host fits x"), std::string::npos) << why;
}

TEST(Placement, NeverPastAHostsMemory) {
  const auto hosts = three_hosts();
  // 400 MiB each: two fit on a 1 GiB host, the third does not.
  const PlacementRequest r{.service = "big", .memory_bytes = 400u << 20};
  const auto placed = place_n(r, hosts, {}, 6);
  for (const auto* h : {"h1", "h2", "h3"}) EXPECT_EQ(count(placed, h, "big"), 2);
  std::string why;
  EXPECT_FALSE(place(r, hosts, placed, why));
  EXPECT_NE(why.find("h2: 800 MiB of 1024 MiB requested already"), std::string::npos) << why;
}

TEST(Placement, AFixedPortIsNeverTwiceOnAHost) {
  const auto hosts = three_hosts();
  const PlacementRequest r{.service = "web", .fixed_port = 8080};
  const auto placed = place_n(r, hosts, {}, 3);
  for (const auto* h : {"h1", "h2", "h3"}) EXPECT_EQ(count(placed, h, "web"), 1);
  std::string why;
  EXPECT_FALSE(place(r, hosts, placed, why));
  EXPECT_NE(why.find("port 8080 taken"), std::string::npos) << why;
}

TEST(Placement, ASuccessorStaysOnItsPreferredHostWhenItFits) {
  const auto hosts = three_hosts();
  std::vector<Placed> placed{{"h1", "other", 0, {}}, {"h1", "other", 0, {}}};
  std::string why;
  EXPECT_EQ(place({.service = "db", .prefer = "h1"}, hosts, placed, why),
            std::optional<std::string>("h1"));
  EXPECT_EQ(place({.service = "db"}, hosts, placed, why), std::optional<std::string>("h2"));
  auto lost = hosts;
  lost[0].up = false;
  EXPECT_EQ(place({.service = "db", .prefer = "h1"}, lost, placed, why),
            std::optional<std::string>("h2"));
}

TEST(Placement, NoHostSaysHowToGetOne) {
  std::string why;
  EXPECT_FALSE(place({.service = "a"}, {}, {}, why));
  EXPECT_NE(why.find("squadron agent"), std::string::npos);
}

}  // namespace
}  // namespace squadron::cluster
