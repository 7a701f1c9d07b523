#include "squadron/gateway/route_table.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace squadron::gateway {
namespace {

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

TEST(RouteTable, AClusterHostsGatewayPutsItsOwnInstancesFirstWithTheirShare) {
  const auto v = boost::json::parse(R"({"revision": 3,
    "services": [{"name": "a", "routes": ["/a"]}, {"name": "b", "routes": ["/b"]}],
    "instances": [
      {"service":"a","id":"a-1","host":"10.0.0.2","port":1,"state":"ready"},
      {"service":"a","id":"a-2","host":"10.0.0.1","port":2,"state":"ready"},
      {"service":"a","id":"a-3","host":"10.0.0.3","port":3,"state":"ready"},
      {"service":"b","id":"b-1","host":"10.0.0.1","port":4,"state":"ready"},
      {"service":"b","id":"b-2","host":"10.0.0.2","port":5,"state":"ready"},
      {"service":"b","id":"b-3","host":"10.0.0.2","port":6,"state":"ready"},
      {"service":"b","id":"b-4","host":"10.0.0.3","port":7,"state":"ready"},
      {"service":"b","id":"b-5","host":"10.0.0.3","port":8,"state":"ready"},
      {"service":"b","id":"b-6","host":"10.0.0.3","port":9,"state":"ready"}]})");
  std::string error;
  const auto t = RouteTable::from_watch(v, error, "10.0.0.1");
  ASSERT_TRUE(t) << error;
  const auto* a = t->find("a");
  ASSERT_EQ(a->local, 1u);
  EXPECT_EQ(a->ready[0].id, "a-2") << "the local one first";
  EXPECT_DOUBLE_EQ(a->local_share, 1.0) << "1 of 3 on 1 of 3 hosts: its share";
  const auto* b = t->find("b");
  ASSERT_EQ(b->local, 1u);
  EXPECT_DOUBLE_EQ(b->local_share, 0.5) << "1 of 6 on 1 of 3 hosts: half its host's traffic";
  // Without a host of its own (one machine), no preference.
  const auto plain = RouteTable::from_watch(v, error);
  EXPECT_EQ(plain->find("b")->local, 0u);
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
