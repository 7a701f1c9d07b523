#include "squadron/http/router.hpp"

#include <gtest/gtest.h>

namespace squadron::http {
namespace {

Router make_router() {
  Router r;
  EXPECT_FALSE(r.add("GET", "/hello", 1));
  EXPECT_FALSE(r.add("GET", "/users/{id}", 2));
  EXPECT_FALSE(r.add("DELETE", "/users/{id}", 3));
  EXPECT_FALSE(r.add("GET", "/users/me", 4));
  EXPECT_FALSE(r.add("GET", "/users/{id}/orders/{order}", 5));
  EXPECT_FALSE(r.add("PURGE", "/cache", 6));
  EXPECT_FALSE(r.add("*", "/any", 7));
  EXPECT_FALSE(r.add("GET", "/", 8));
  return r;
}

TEST(Router, MatchesStaticRoutes) {
  auto r = make_router();
  auto req = Request::make_for_test("GET", "/hello");
  auto m = r.match(req);
  ASSERT_EQ(m.kind, Router::Match::kFound);
  EXPECT_EQ(m.id, 1u);
  auto root = Request::make_for_test("GET", "/");
  EXPECT_EQ(r.match(root).id, 8u);
}

TEST(Router, ExtractsAndDecodesParameters) {
  auto r = make_router();
  auto req = Request::make_for_test("GET", "/users/a%20b/orders/7");
  auto m = r.match(req);
  ASSERT_EQ(m.kind, Router::Match::kFound);
  EXPECT_EQ(m.id, 5u);
  EXPECT_EQ(req.param("id"), "a b");
  EXPECT_EQ(req.param("order"), "7");
  EXPECT_EQ(req.param("nope"), "");
}

TEST(Router, StaticSegmentsWinOverParameters) {
  auto r = make_router();
  auto me = Request::make_for_test("GET", "/users/me");
  EXPECT_EQ(r.match(me).id, 4u);
  auto other = Request::make_for_test("GET", "/users/42");
  EXPECT_EQ(r.match(other).id, 2u);
}

TEST(Router, DispatchesOnMethod) {
  auto r = make_router();
  auto del = Request::make_for_test("DELETE", "/users/9");
  EXPECT_EQ(r.match(del).id, 3u);
  auto purge = Request::make_for_test("PURGE", "/cache");
  EXPECT_EQ(r.match(purge).id, 6u);
  auto any = Request::make_for_test("PATCH", "/any");
  EXPECT_EQ(r.match(any).id, 7u);
}

TEST(Router, HeadFallsBackToGet) {
  auto r = make_router();
  auto req = Request::make_for_test("HEAD", "/hello");
  auto m = r.match(req);
  ASSERT_EQ(m.kind, Router::Match::kFound);
  EXPECT_EQ(m.id, 1u);
}

TEST(Router, UnknownPathIsNotFound) {
  auto r = make_router();
  for (const char* path :
       {"/nope", "/hello/extra", "/users", "/users/1/orders", "/users//orders/1"}) {
    auto req = Request::make_for_test("GET", path);
    EXPECT_EQ(r.match(req).kind, Router::Match::kNotFound) << path;
  }
}

TEST(Router, WrongMethodIsNotAllowedWithTheAllowList) {
  auto r = make_router();
  auto req = Request::make_for_test("POST", "/users/1");
  auto m = r.match(req);
  EXPECT_EQ(m.kind, Router::Match::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, HEAD, DELETE");
}

TEST(Router, RejectsBadPatternsAndDuplicates) {
  Router r;
  EXPECT_EQ(r.add("GET", "nope", 1), Errc::kBadRoutePattern);
  EXPECT_EQ(r.add("GET", "/a{b}", 1), Errc::kBadRoutePattern);
  EXPECT_EQ(r.add("GET", "/{}", 1), Errc::kBadRoutePattern);
  EXPECT_FALSE(r.add("GET", "/x/{id}", 1));
  EXPECT_EQ(r.add("GET", "/x/{id}", 2), Errc::kDuplicateRoute);
  EXPECT_EQ(r.add("POST", "/x/{other}", 3), Errc::kBadRoutePattern);
}

}  // namespace
}  // namespace squadron::http
