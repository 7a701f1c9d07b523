#include "squadron/gateway/attempts.hpp"

#include <algorithm>
#include <deque>
#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "squadron/http/parser.hpp"

namespace squadron::gateway {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// What an instance does with each exchange, in turn (the last one repeats).
struct Step {
  http::Outcome outcome = http::Outcome::kAnswered;
  int status = 200;
  bool sent = true;
  const char* grpc_status = nullptr;  // a gRPC answer with trailers only: this grpc-status
  bool replayable = false;            // the transport could send the request again
  bool cancel = false;                // the client gives up during the exchange
};

class FakeTransport final : public http::Transport {
 public:
  FakeTransport() = default;
  std::map<std::string, std::deque<Step>, std::less<>> script;
  std::vector<std::string> calls;

  asio::awaitable<http::Exchange> exchange(http::Upstream upstream,
                                           std::span<const asio::const_buffer>,
                                           const http::ExchangeOptions& options,
                                           http::Response& res) override {
    calls.emplace_back(upstream.key);
    auto& steps = script[std::string(upstream.key)];
    const Step step = steps.empty() ? Step{} : steps.front();
    if (steps.size() > 1) steps.pop_front();
    if (step.cancel) options.client->cancel();
    if (step.outcome == http::Outcome::kAnswered) res = http::Response::text("from", step.status);
    if (step.grpc_status != nullptr) {
      res = http::Response{};
      res.set_header("grpc-status", step.grpc_status);
    }
    co_return http::Exchange{step.outcome, step.sent,
                             step.outcome == http::Outcome::kAnswered ? "" : "scripted failure",
                             step.replayable};
  }
};

// Both instances do `step` every time.
FakeTransport both(Step step) {
  FakeTransport t;
  t.script["hello-1"] = {step};
  t.script["hello-2"] = {step};
  return t;
}

Cluster two_instances() {
  Cluster s;
  s.name = "hello";
  s.ready = {{"hello-1", "127.0.0.1", 1, 0}, {"hello-2", "127.0.0.1", 2, 0}};
  s.policy.balancing = Balance::kRoundRobin;
  s.policy.slow_start = 0ms;
  return s;
}

struct Outcome {
  http::Response res;
  Stats stats;
};

// One request's Forward: its account in `stats`, an (empty) upstream request with a 5 s deadline.
Forward forward_of(Stats& stats, http::Response& res, HeadBuffers& heads, bool replayable) {
  const auto now = std::chrono::steady_clock::now();
  Forward f{RequestAccount(stats, nullptr, res, now), UpstreamRequest(heads), nullptr, 5000ms, {}};
  f.request.options.deadline = now + 5s;
  f.request.replayable = replayable;
  return f;
}

// The attempt loop over `transport` for one request; `latest` is what the newest table says.
void run(const Cluster& service, FakeTransport& transport, bool replayable, Outcome& out,
         const Cluster* latest = nullptr, bool grpc = false) {
  Attempts attempts(42, [&](std::string_view) { return latest != nullptr ? latest : &service; });
  attempts.set_transport(&transport);
  asio::io_context io;
  HeadBuffers heads;
  Forward f = forward_of(out.stats, out.res, heads, replayable);
  f.request.grpc = grpc;
  asio::co_spawn(io, attempts.run(service, std::move(f), out.res), asio::detached);
  io.run();
}

TEST(Attempts, AGrpcCallAnsweredUnavailableGoesToAnotherInstanceIfItCanGoAgainAsItWas) {
  const auto s = two_instances();
  FakeTransport t;
  t.script["hello-1"] = {{http::Outcome::kAnswered, 200, true, "14", true}};
  t.script["hello-2"] = {{http::Outcome::kAnswered, 200, true, "0", true}};
  Outcome retried;
  run(s, t, false, retried, nullptr, /*grpc=*/true);
  ASSERT_EQ(t.calls.size(), 2u);
  EXPECT_EQ(retried.res.header("grpc-status"), std::optional<std::string_view>("0"));
  EXPECT_EQ(retried.stats.retries.get(), 1u);
  // Its streamed body went past what the transport keeps: the UNAVAILABLE is the answer.
  t.calls.clear();
  t.script["hello-1"] = {{http::Outcome::kAnswered, 200, true, "14", false}};
  t.script["hello-2"] = {{http::Outcome::kAnswered, 200, true, "14", false}};
  Outcome kept;
  run(s, t, false, kept, nullptr, true);
  EXPECT_EQ(t.calls.size(), 1u);
  EXPECT_EQ(kept.res.header("grpc-status"), std::optional<std::string_view>("14"));
  // Any other status is the call's answer, not retried.
  t.calls.clear();
  t.script["hello-1"] = {{http::Outcome::kAnswered, 200, true, "13", true}};
  t.script["hello-2"] = {{http::Outcome::kAnswered, 200, true, "13", true}};
  Outcome other;
  run(s, t, false, other, nullptr, true);
  EXPECT_EQ(t.calls.size(), 1u);
}

TEST(Attempts, ARefusedInstanceIsRetriedOnAnotherAtOnce) {
  const auto s = two_instances();
  FakeTransport t = both({http::Outcome::kRefused, 0, false});
  Outcome r;
  run(s, t, /*replayable=*/false, r);  // refused: nothing was sent, so even a POST may go again
  ASSERT_EQ(t.calls.size(), 2u);
  EXPECT_NE(t.calls[0], t.calls[1]) << "each instance once";
  EXPECT_EQ(r.res.status, 503);
  EXPECT_NE(r.res.body.find("hello is unreachable: hello-"), std::string::npos) << r.res.body;
  EXPECT_EQ(r.stats.retries.get(), 1u);
  EXPECT_EQ(r.stats.requests.get(), 1u) << "the request's account went with it";
  EXPECT_EQ(r.stats.in_flight.get(), 0u);
  EXPECT_EQ(r.stats.responses[4].get(), 1u) << "and recorded its 503";
}

TEST(Attempts, TheFirstInstanceThatAnswersIsTheAnswer) {
  const auto s = two_instances();
  FakeTransport t;
  t.script["hello-1"] = {{http::Outcome::kFailed, 0, false}};
  t.script["hello-2"] = {{http::Outcome::kAnswered, 201, true}};
  Outcome r;
  run(s, t, true, r);
  EXPECT_EQ(r.res.status, 201);
  EXPECT_EQ(t.calls.back(), "hello-2");
}

TEST(Attempts, A503IsRetriedForAnIdempotentRequestOnlyAndPassedOnOtherwise) {
  const auto s = two_instances();
  FakeTransport t = both({http::Outcome::kAnswered, 503, true});
  Outcome get;
  run(s, t, true, get);
  EXPECT_EQ(t.calls.size(), 2u) << "another instance may do better";
  EXPECT_EQ(get.res.status, 503);
  t.calls.clear();
  Outcome post;
  run(s, t, false, post);
  EXPECT_EQ(t.calls.size(), 1u) << "a POST may have been acted on";
  EXPECT_EQ(post.res.status, 503);
  EXPECT_EQ(post.res.body, "from") << "the upstream's own answer";
}

TEST(Attempts, ATimeoutIs504AndNotRetried) {
  const auto s = two_instances();
  FakeTransport t = both({http::Outcome::kTimeout, 0, true});
  Outcome r;
  run(s, t, true, r);
  EXPECT_EQ(t.calls.size(), 1u);
  EXPECT_EQ(r.res.status, 504);
  EXPECT_NE(r.res.body.find("did not answer within 5000 ms"), std::string::npos) << r.res.body;
  EXPECT_EQ(r.stats.timeouts.get(), 1u);
}

TEST(Attempts, AFailureAfterSendingARequestThatCannotBeReplayedIs502) {
  const auto s = two_instances();
  FakeTransport t = both({http::Outcome::kFailed, 0, true});
  Outcome r;
  run(s, t, false, r);
  EXPECT_EQ(t.calls.size(), 1u);
  EXPECT_EQ(r.res.status, 502);
  EXPECT_NE(r.res.body.find("failed during the request"), std::string::npos) << r.res.body;
}

TEST(Attempts, AMalformedAnswerIs502AndNotRetried) {
  const auto s = two_instances();
  FakeTransport t = both({http::Outcome::kMalformed, 0, true});
  Outcome r;
  run(s, t, true, r);
  EXPECT_EQ(t.calls.size(), 1u);
  EXPECT_EQ(r.res.status, 502);
  EXPECT_NE(r.res.body.find("cannot be passed on"), std::string::npos) << r.res.body;
}

TEST(Attempts, RetriesAreBoundedByThePolicy) {
  auto s = two_instances();
  s.policy.retries = 0;
  FakeTransport t = both({http::Outcome::kRefused, 0, false});
  Outcome r;
  run(s, t, true, r);
  EXPECT_EQ(t.calls.size(), 1u);
  EXPECT_EQ(r.res.status, 503);
  EXPECT_EQ(r.stats.retries.get(), 0u);
}

TEST(Attempts, ARequestItsClientCancelledGoesNowhereElseAndDoesNotCountAgainstTheInstance) {
  auto s = two_instances();
  s.policy.eject_after = 1;
  // The client resets its stream while the instance has it: the transport gives up on it (a
  // failure, or a refusal when its HEADERS had not left yet).
  for (const auto outcome : {http::Outcome::kFailed, http::Outcome::kRefused}) {
    FakeTransport t = both({outcome, 0, outcome == http::Outcome::kFailed, nullptr, true, true});
    Attempts attempts(42, [&](std::string_view) { return &s; });
    attempts.set_transport(&t);
    asio::io_context io;
    HeadBuffers heads;
    Stats stats;
    http::Response res;
    auto client = http::Request::make_for_test("GET", "/hello");
    Forward f = forward_of(stats, res, heads, true);
    f.request.options.client = &client;
    asio::co_spawn(io, attempts.run(s, std::move(f), res), asio::detached);
    io.run();
    EXPECT_EQ(t.calls.size(), 1u) << "retried for a client that is gone";
    EXPECT_EQ(res.status, 499);
    EXPECT_EQ(stats.retries.get(), 0u);
    EXPECT_EQ(stats.ejections.get(), 0u);
    EXPECT_FALSE(attempts.balancer().ejected(t.calls[0], std::chrono::steady_clock::now()));
  }
}

TEST(Attempts, ConsecutiveFailuresEjectAnInstance) {
  auto s = two_instances();
  s.policy.retries = 0;
  s.policy.eject_after = 3;
  FakeTransport t;
  t.script["hello-1"] = {{http::Outcome::kFailed, 0, false}};
  t.script["hello-2"] = {{http::Outcome::kAnswered, 200, true}};
  Attempts attempts(1, [&](std::string_view) { return &s; });  // one balancer sees them all
  attempts.set_transport(&t);
  asio::io_context io;
  HeadBuffers heads;
  Stats stats;
  for (int i = 0; i < 8; ++i) {
    http::Response res;
    asio::co_spawn(io, attempts.run(s, forward_of(stats, res, heads, true), res), asio::detached);
    io.run();
    io.restart();
  }
  EXPECT_EQ(stats.ejections.get(), 1u);
  EXPECT_TRUE(attempts.balancer().ejected("hello-1", std::chrono::steady_clock::now()));
  const auto to_first = std::count(t.calls.begin(), t.calls.end(), "hello-1");
  EXPECT_EQ(to_first, 3) << "no request goes to an ejected instance";
}

}  // namespace
}  // namespace squadron::gateway

namespace squadron::gateway {
namespace {

std::string set_cookie(const http::Response& res) {
  for (const auto& [name, value] : res.headers) {
    if (name == "Set-Cookie") return value;
  }
  return "";
}

// The attempt loop for one request with affinity `a`; which instance answered.
std::string run_affine(const Cluster& service, FakeTransport& t, const Affinity& a, Outcome& out) {
  Attempts attempts(42, [&](std::string_view) { return &service; });
  attempts.set_transport(&t);
  asio::io_context io;
  HeadBuffers heads;
  Forward f = forward_of(out.stats, out.res, heads, true);
  f.affinity = a;
  asio::co_spawn(io, attempts.run(service, std::move(f), out.res), asio::detached);
  io.run();
  return t.calls.empty() ? "" : t.calls.back();
}

TEST(Affinity, TheCookieNamesTheInstanceAndTheNextRequestFollowsIt) {
  const auto s = two_instances();  // round-robin: without the cookie they would alternate
  http::Request req;
  http::RequestParser parser{http::ParserLimits{}};
  ASSERT_EQ(parser.feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n", req).status,
            http::ParseStatus::kComplete);
  registry::ProxyPolicy policy;
  policy.affinity = "cookie";
  policy.affinity_name = "sticky";
  Affinity a = affinity_of(req, policy);
  EXPECT_TRUE(a.token.empty());
  FakeTransport t;
  Outcome first;
  const std::string chosen = run_affine(s, t, a, first);
  const std::string cookie = set_cookie(first.res);
  EXPECT_EQ(cookie, "sticky=" + instance_token(chosen) + "; Path=/; HttpOnly; SameSite=Lax");
  EXPECT_EQ(instance_token(chosen).size(), 16u);
  EXPECT_EQ(cookie.find(chosen), std::string::npos) << "the instance's name stays inside";
  // The browser sends it back (among others): the same instance, ten times, and no new cookie.
  http::Request again;
  http::RequestParser p2{http::ParserLimits{}};
  const std::string raw =
      "GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1; sticky=" + instance_token(chosen) +
      "; b=2\r\n\r\n";
  ASSERT_EQ(p2.feed(raw, again).status, http::ParseStatus::kComplete);
  a = affinity_of(again, policy);
  EXPECT_EQ(a.token, instance_token(chosen));
  for (int i = 0; i < 10; ++i) {
    Outcome next;
    EXPECT_EQ(run_affine(s, t, a, next), chosen);
    EXPECT_EQ(set_cookie(next.res), "");
  }
  // Its instance gone (draining instances are not ready either): another, and a new cookie.
  Cluster one = s;
  one.ready.erase(std::find_if(one.ready.begin(), one.ready.end(),
                               [&](const Endpoint& e) { return e.id == chosen; }));
  Outcome moved;
  const std::string other = run_affine(one, t, a, moved);
  EXPECT_NE(other, chosen);
  EXPECT_EQ(set_cookie(moved.res).rfind("sticky=" + instance_token(other) + ";", 0), 0u);
}

TEST(Affinity, AHeaderOrTheSourceAddressMapsToOneInstance) {
  const auto s = two_instances();
  registry::ProxyPolicy policy;
  policy.affinity = "header";
  policy.affinity_name = "x-session";
  http::Request req;
  http::RequestParser parser{http::ParserLimits{}};
  ASSERT_EQ(parser.feed("GET / HTTP/1.1\r\nHost: a\r\nX-Session: abc\r\n\r\n", req).status,
            http::ParseStatus::kComplete);
  const Affinity a = affinity_of(req, policy);
  ASSERT_TRUE(a.key);
  FakeTransport t;
  Outcome r;
  const std::string first = run_affine(s, t, a, r);
  for (int i = 0; i < 10; ++i) {
    Outcome next;
    EXPECT_EQ(run_affine(s, t, a, next), first);
  }
  EXPECT_EQ(set_cookie(r.res), "") << "no cookie for a header's affinity";
  policy.affinity = "source_ip";
  req.set_remote_address("192.0.2.9");
  const Affinity by_ip = affinity_of(req, policy);
  ASSERT_TRUE(by_ip.key);
  EXPECT_NE(*by_ip.key, *a.key);
}

}  // namespace
}  // namespace squadron::gateway
