#include "squadron/service/service.hpp"

#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace squadron {
namespace {

using http::Request;

Response call(Service& app, std::string_view method, std::string_view target,
              std::vector<std::pair<std::string, std::string>> headers = {},
              std::string body = {}) {
  auto req = Request::make_for_test(method, target, std::move(headers), std::move(body));
  return app.handle_for_test(req);
}

TEST(Service, HandlersMayReturnAStringJsonOrResponse) {
  Service app{"t"};
  app.get("/s", [](const Request&) { return "Hello World!"; });
  app.get("/j", [](const Request&) { return boost::json::value{{"a", 1}}; });
  app.get("/r", [](const Request&) { return Response::text("made", 201); });
  auto s = call(app, "GET", "/s");
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.body, "Hello World!");
  EXPECT_EQ(s.content_type, http::kTextPlain);
  auto j = call(app, "GET", "/j");
  EXPECT_EQ(j.content_type, http::kApplicationJson);
  EXPECT_EQ(boost::json::parse(j.body).at("a").as_int64(), 1);
  EXPECT_EQ(call(app, "GET", "/r").status, 201);
}

TEST(Service, PassesPathAndQueryParametersAndJsonBodies) {
  Service app{"t"};
  app.post("/users/{id}", [](const Request& req) {
    auto doc = req.json();
    if (!doc) return Response::problem(400, "bad json");
    return Response::text(std::string(req.param("id")) + ":" + req.query_param("q").value_or("-") +
                          ":" + std::string(doc->at("name").as_string()));
  });
  EXPECT_EQ(call(app, "POST", "/users/7?q=a+b%21", {}, R"({"name":"ann"})").body, "7:a b!:ann");
  EXPECT_EQ(call(app, "POST", "/users/7", {}, "{not json").status, 400);
}

Task<Response> slow_hello(const Request& req) {
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
  t.expires_after(std::chrono::milliseconds(1));
  co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return Response::text("later " + std::string(req.param("n")));
}

TEST(Service, CoroutineHandlersSuspendAndAnswer) {
  Service app{"t"};
  app.get("/later/{n}", slow_hello);
  auto r = call(app, "GET", "/later/3");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "later 3");
}

TEST(Service, UnknownRoutesAndMethodsGetProblemDocuments) {
  Service app{"t"};
  app.get("/a", [](const Request&) { return "a"; });
  auto nf = call(app, "GET", "/b");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nf.content_type, http::kProblemJson);
  auto na = call(app, "DELETE", "/a");
  EXPECT_EQ(na.status, 405);
  EXPECT_EQ(na.header("Allow"), "GET, HEAD");
}

TEST(Service, FallbackAnswersWhatNoRouteMatches) {
  Service app{"t"};
  app.fallback([](const Request& req) { return "fallback " + std::string(req.path()); });
  EXPECT_EQ(call(app, "PUT", "/x/y").body, "fallback /x/y");
  EXPECT_EQ(call(app, "GET", "/healthz").status, 200);  // built-ins still answer
}

TEST(Service, BeforeMiddlewareCanAnswerAndAfterMiddlewareSeesEveryResponse) {
  Service app{"t"};
  app.get("/open", [](const Request&) { return "open"; });
  app.get("/secret", [](const Request&) { return "secret"; });
  app.before([](Request& req) -> std::optional<Response> {
    if (req.path() == "/secret" && !req.header("authorization"))
      return Response::problem(401, "log in");
    return std::nullopt;
  });
  app.after([](const Request&, Response& res) { res.set_header("X-After", "1"); });
  auto denied = call(app, "GET", "/secret");
  EXPECT_EQ(denied.status, 401);
  EXPECT_EQ(denied.header("X-After"), "1");
  EXPECT_EQ(call(app, "GET", "/secret", {{"Authorization", "x"}}).body, "secret");
  EXPECT_EQ(call(app, "GET", "/nowhere").header("X-After"), "1");
}

TEST(Service, BuiltInEndpointsBypassUserMiddleware) {
  Service app{"t"};
  app.before([](Request&) -> std::optional<Response> { return Response::problem(401, "log in"); });
  app.after([](const Request&, Response& res) { res.set_header("X-After", "1"); });
  auto health = call(app, "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_FALSE(health.header("X-After"));
  EXPECT_EQ(call(app, "GET", "/readyz").status, 200);
  EXPECT_EQ(call(app, "GET", "/metrics").status, 200);
  EXPECT_EQ(call(app, "GET", "/other").status, 401);
}

TEST(Service, MiddlewareSeesTheMatchedRoute) {
  Service app{"t"};
  app.get("/users/{id}", [](const Request&) { return "u"; });
  std::string route;
  app.before([&route](Request& req) -> std::optional<Response> {
    route = std::string(req.route());
    return std::nullopt;
  });
  call(app, "GET", "/users/9");
  EXPECT_EQ(route, "/users/{id}");
}

TEST(Service, AThrowingHandlerBecomesA500) {
  Service app{"t"};
  app.get("/boom", [](const Request&) -> std::string { throw std::runtime_error("boom"); });
  auto r = call(app, "GET", "/boom");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.content_type, http::kProblemJson);
}

TEST(Service, KeepsAValidRequestIdAndMakesOneOtherwise) {
  Service app{"t"};
  std::string seen;
  app.get("/id", [&seen](const Request& req) {
    seen = std::string(req.request_id());
    return "ok";
  });
  call(app, "GET", "/id", {{"X-Request-Id", "abc-123"}});
  EXPECT_EQ(seen, "abc-123");
  call(app, "GET", "/id");
  EXPECT_EQ(seen.size(), 32u);
  const std::string first = seen;
  call(app, "GET", "/id", {{"X-Request-Id", std::string(300, 'x')}});  // too long: replaced
  EXPECT_EQ(seen.size(), 32u);
  EXPECT_NE(seen, first);
}

TEST(Service, KeepsOnlyAWellFormedTraceparent) {
  Service app{"t"};
  std::string seen;
  app.get("/t", [&seen](const Request& req) {
    seen = std::string(req.traceparent());
    return "ok";
  });
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  call(app, "GET", "/t", {{"traceparent", tp}});
  EXPECT_EQ(seen, tp);
  call(app, "GET", "/t",
       {{"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}});
  EXPECT_EQ(seen, "");
  call(app, "GET", "/t", {{"traceparent", "garbage"}});
  EXPECT_EQ(seen, "");
}

TEST(Service, ASpentDeadlineIsAnswered504WithoutRunningTheHandler) {
  Service app{"t"};
  int calls = 0;
  std::chrono::steady_clock::time_point seen{};
  app.get("/work", [&](const Request& req) {
    ++calls;
    seen = req.deadline();
    return "done";
  });
  auto r = call(app, "GET", "/work", {{"X-Squadron-Timeout-Ms", "0"}});
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(calls, 0) << "nobody waits for this answer";
  EXPECT_EQ(call(app, "GET", "/work", {{"X-Squadron-Timeout-Ms", "-20"}}).status, 504);

  const auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(call(app, "GET", "/work", {{"X-Squadron-Timeout-Ms", "2500"}}).status, 200);
  EXPECT_EQ(calls, 1);
  EXPECT_GE(seen, before + std::chrono::milliseconds(2500));
  EXPECT_LE(seen, std::chrono::steady_clock::now() + std::chrono::milliseconds(2500));
  // No header, or an unreadable one: no deadline.
  EXPECT_EQ(call(app, "GET", "/work", {{"X-Squadron-Timeout-Ms", "soon"}}).status, 200);
  EXPECT_EQ(seen, std::chrono::steady_clock::time_point::max());
  EXPECT_EQ(call(app, "GET", "/work").status, 200);
  EXPECT_EQ(seen, std::chrono::steady_clock::time_point::max());
}

TEST(Service, ReadyzTurns503WhileDraining) {
  Service app{"t"};
  EXPECT_EQ(call(app, "GET", "/healthz").status, 200);
  EXPECT_EQ(call(app, "GET", "/readyz").status, 200);
  app.set_draining(true);
  EXPECT_EQ(call(app, "GET", "/readyz").status, 503);
  EXPECT_EQ(call(app, "GET", "/healthz").status, 200);
}

TEST(Service, MetricsCountRequestsByRouteAndStatusWithAHistogram) {
  Service app{"shop"};
  app.get("/users/{id}", [](const Request&) { return "u"; });
  call(app, "GET", "/users/1");
  call(app, "GET", "/users/2");
  call(app, "GET", "/missing");
  auto m = call(app, "GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(
      m.body.find(
          "squadron_http_requests_total{service=\"shop\",route=\"/users/{id}\",status=\"200\"} 2"),
      std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("route=\"(unmatched)\",status=\"404\"} 1"), std::string::npos);
  EXPECT_NE(m.body.find("# TYPE squadron_http_request_duration_seconds histogram"),
            std::string::npos);
  EXPECT_NE(m.body.find("squadron_http_request_duration_seconds_bucket{service=\"shop\",route=\"/"
                        "users/{id}\",le=\"+Inf\"} 2"),
            std::string::npos);
  EXPECT_NE(m.body.find("squadron_http_requests_in_flight{service=\"shop\"} 1"), std::string::npos)
      << "the scrape itself is in flight";
}

TEST(Service, AWebSocketRouteHandsAnUpgradeToBeastAndAnswersAnythingElse426) {
  Service app{"t"};
  app.websocket("/ws/{room}", [](WebSocket&) -> Task<void> { co_return; });
  const auto plain = call(app, "GET", "/ws/lobby");
  EXPECT_EQ(plain.status, 426);
  EXPECT_EQ(plain.header("upgrade"), std::optional<std::string_view>("websocket"));
  EXPECT_NE(plain.body.find("Upgrade: websocket"), std::string::npos) << plain.body;
  // An upgrade: no head of the server's; Beast writes the 101 once it checked the key.
  const auto up = call(app, "GET", "/ws/lobby",
                       {{"Host", "t"},
                        {"Connection", "Upgrade"},
                        {"Upgrade", "websocket"},
                        {"Sec-WebSocket-Version", "13"},
                        {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}});
  EXPECT_EQ(up.status, 101);
  EXPECT_TRUE(up.upgrade_writes_head);
  EXPECT_TRUE(static_cast<bool>(up.upgraded));
  EXPECT_EQ(call(app, "POST", "/ws/lobby").status, 405) << "a WebSocket route is a GET";
}

}  // namespace
}  // namespace squadron

namespace squadron {
namespace {

TEST(ServiceDeathTest, RegisteringARouteAfterServingStartedIsAProgrammingError) {
  Service app{"t"};
  app.get("/a", [](const http::Request&) { return "a"; });
  auto req = http::Request::make_for_test("GET", "/a");
  EXPECT_EQ(app.handle_for_test(req).body, "a");
  EXPECT_DEATH(app.get("/b", [](const http::Request&) { return "b"; }),
               "routes are registered before");
}

}  // namespace
}  // namespace squadron
