#include "squadron/gateway/admission.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace squadron::gateway {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Cluster one_service(bool ready = true) {
  Cluster s;
  s.name = "hello";
  if (ready) s.ready = {{"hello-1", "127.0.0.1", 1, 0}};
  return s;
}

TEST(Admission, AnEmptyBucketIs429WithRetryAfterAndCounted) {
  const auto t0 = Clock::time_point{} + 1h;
  resilience::TokenBucket bucket(2, 2, t0);  // 2 a second, bursts of 2
  Route route;
  route.prefix = "/hello";
  route.rate = 2;
  route.burst = 2;
  Stats service, by_route;
  for (int i = 0; i < 2; ++i) {
    http::Response res;
    RequestAccount account(service, &by_route, res, t0);
    EXPECT_TRUE(admit_rate(&bucket, route, t0, account, res));
  }
  http::Response res;
  {
    RequestAccount account(service, &by_route, res, t0);
    EXPECT_FALSE(admit_rate(&bucket, route, t0, account, res));
  }
  EXPECT_EQ(res.status, 429);
  EXPECT_EQ(res.header("retry-after").value_or(""), "1");
  EXPECT_NE(res.body.find("/hello is limited to 2 requests a second"), std::string::npos);
  EXPECT_EQ(service.rate_limited.get(), 1u);
  EXPECT_EQ(by_route.rate_limited.get(), 1u);
  EXPECT_EQ(service.requests.get(), 3u) << "a refusal still counts as a request";
  EXPECT_EQ(service.in_flight.get(), 0u);
  EXPECT_EQ(service.responses[3].get(), 1u) << "one 4xx";
  http::Response later;
  RequestAccount account(service, nullptr, later, t0);
  EXPECT_TRUE(admit_rate(&bucket, route, t0 + 500ms, account, later)) << "a token came back";
  EXPECT_TRUE(admit_rate(nullptr, route, t0, account, later)) << "no bucket: no limit";
}

TEST(Admission, ASpentDeadlineIs504BeforeAnyUpstream) {
  const auto s = one_service();
  Stats stats;
  http::Response res;
  RequestAccount account(stats, nullptr, res, Clock::now());
  EXPECT_TRUE(admit_deadline(std::nullopt, s, account, res));
  EXPECT_TRUE(admit_deadline(1, s, account, res));
  EXPECT_FALSE(admit_deadline(0, s, account, res));
  EXPECT_EQ(res.status, 504);
  EXPECT_EQ(stats.timeouts.get(), 1u);
}

TEST(Admission, NoReadyInstanceIs503UnlessTheServiceScalesToZero) {
  auto s = one_service(false);
  http::Response res;
  EXPECT_FALSE(admit_ready(s, res));
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(res.header("retry-after").value_or(""), "1");
  s.policy.scale_to_zero = true;
  http::Response waits;
  EXPECT_TRUE(admit_ready(s, waits)) << "it waits for the wake instead";
  EXPECT_TRUE(admit_ready(one_service(), waits));
  auto restarting = one_service(false);
  restarting.coming = 1;
  EXPECT_TRUE(admit_ready(restarting, waits)) << "it waits for the instance on its way";
}

TEST(Admission, TheCallersTimeLeftBoundsTheAttempts) {
  Policy p;
  p.timeout = 15s;
  EXPECT_EQ(attempt_timeout(p, std::nullopt), 15s);
  EXPECT_EQ(attempt_timeout(p, 900), 900ms);
  EXPECT_EQ(attempt_timeout(p, 60000), 15s);
}

TEST(Admission, TheBreakerRefusesPastTheServicesShareOfInFlight) {
  auto s = one_service();
  s.policy.max_in_flight = 4;  // over 2 threads: 2 each
  Stats stats;
  http::Response res;
  RequestAccount first(stats, nullptr, res, Clock::now());
  EXPECT_TRUE(admit_in_flight(s, 2, first, res));
  RequestAccount second(stats, nullptr, res, Clock::now());
  EXPECT_TRUE(admit_in_flight(s, 2, second, res));
  EXPECT_EQ(stats.breaker_opens.get(), 1u) << "the limit reached from below";
  http::Response refused;
  {
    RequestAccount third(stats, nullptr, refused, Clock::now());
    EXPECT_FALSE(admit_in_flight(s, 2, third, refused));
  }
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(stats.breaker_rejections.get(), 1u);
}

// Runs hold_for_wake to its end.
std::optional<RouteMatch> hold(WakeWait wait, std::chrono::milliseconds timeout,
                               http::Response& res) {
  asio::io_context io;
  std::optional<RouteMatch> out;
  asio::co_spawn(io, hold_for_wake("hello", timeout, std::move(wait), res),
                 [&](std::exception_ptr, std::optional<RouteMatch> m) { out = m; });
  io.run();
  return out;
}

TEST(Admission, AHeldRequestGoesOnOnceAnInstanceIsReady) {
  auto cold = one_service(false);
  cold.policy.scale_to_zero = true;
  const auto warm = one_service(true);
  int looks = 0, wakes = 0, held = 0;
  WakeWait wait{[&]() -> std::optional<RouteMatch> {
                  return RouteMatch{++looks < 3 ? &cold : &warm, {}, false, kNoRoute};
                },
                [&](const std::string& name) {
                  EXPECT_EQ(name, "hello");
                  ++wakes;
                },
                Clock::now(),
                "/hello",
                &held,
                8};
  http::Response res;
  const auto m = hold(std::move(wait), 5s, res);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->service, &warm);
  EXPECT_EQ(looks, 3);
  EXPECT_EQ(wakes, 1) << "once a second";
  EXPECT_EQ(held, 0) << "no longer held";
}

TEST(Admission, AHoldEndsWith503WhenFullOrTooSlowAnd404WhenTheRouteWent) {
  auto cold = one_service(false);
  cold.coming = 1;  // restarting: held as a cold start is
  int held = 8;
  http::Response full;
  EXPECT_FALSE(hold({[&] { return std::optional<RouteMatch>{}; }, {}, Clock::now(), "/x", &held, 8},
                    5s, full));
  EXPECT_EQ(full.status, 503);
  held = 0;
  http::Response slow;
  EXPECT_FALSE(hold({[&] {
                       return std::optional<RouteMatch>{RouteMatch{&cold, {}, false, kNoRoute}};
                     },
                     {},
                     Clock::now() - 1s,
                     "/x",
                     &held,
                     8},
                    500ms, slow));
  EXPECT_EQ(slow.status, 503);
  EXPECT_NE(slow.body.find("no instance of hello became ready within 500 ms"), std::string::npos)
      << slow.body;
  auto down = one_service(false);  // nothing on its way, no wake: no reason to wait
  http::Response none;
  EXPECT_FALSE(hold({[&] {
                       return std::optional<RouteMatch>{RouteMatch{&down, {}, false, kNoRoute}};
                     },
                     {},
                     Clock::now(),
                     "/x",
                     &held,
                     8},
                    5s, none));
  EXPECT_EQ(none.status, 503);
  EXPECT_NE(none.body.find("all down"), std::string::npos) << none.body;
  http::Response gone;
  EXPECT_FALSE(hold({[&] { return std::optional<RouteMatch>{}; }, {}, Clock::now(), "/x", &held, 8},
                    5s, gone));
  EXPECT_EQ(gone.status, 404);
}

}  // namespace
}  // namespace squadron::gateway
