#include "squadron/gateway/grpc.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "squadron/gateway/upstream_request.hpp"
#include "squadron/http/parser.hpp"

namespace squadron::gateway {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(Grpc, TheGatewaysRefusalsBecomeTrailersOnlyAnswersWithTheirGrpcStatus) {
  struct Case {
    int http;
    const char* grpc;
  };
  for (const Case c : {Case{404, "12"}, Case{503, "14"}, Case{502, "14"}, Case{429, "14"},
                       Case{504, "4"}, Case{413, "8"}, Case{400, "13"}, Case{500, "2"}}) {
    http::Response res = http::Response::problem(c.http, "echo is unreachable: 100% busy");
    res.set_header("Retry-After", "1");
    Stats stats;
    auto call = http::Request::make_for_test("POST", "/echo.Echo/Say");
    grpc_answer(res, call, &stats);
    EXPECT_EQ(res.status, 200) << c.http;
    EXPECT_EQ(res.content_type, "application/grpc");
    EXPECT_TRUE(res.body.empty());
    EXPECT_EQ(res.header("grpc-status"), std::optional<std::string_view>(c.grpc)) << c.http;
    // The problem's detail, percent-encoded where gRPC asks.
    EXPECT_EQ(res.header("grpc-message"),
              std::optional<std::string_view>("echo is unreachable: 100%25 busy"));
    EXPECT_EQ(res.header("retry-after"), std::optional<std::string_view>("1"));
    EXPECT_EQ(stats.grpc[static_cast<std::size_t>(std::stoi(c.grpc))].get(), 1u);
  }
}

TEST(Grpc, AnUpstreamsStatusIsCountedWhereItComesAndACutStreamEndsUnavailable) {
  Stats stats;
  auto call = http::Request::make_for_test("POST", "/echo.Echo/Say");
  http::Response only;  // trailers only: the status in the head
  only.set_header("grpc-status", "5");
  grpc_answer(only, call, &stats);
  EXPECT_EQ(only.header("grpc-status"), std::optional<std::string_view>("5"));
  EXPECT_EQ(stats.grpc[5].get(), 1u);

  // A streamed answer: counted at its end by its trailers; one cut off ends with UNAVAILABLE.
  auto streamed = [&](std::vector<http::BodyPiece> pieces, http::Request& of) {
    auto left = std::make_shared<std::vector<http::BodyPiece>>(std::move(pieces));
    http::Response res;
    res.stream = [left]() -> asio::awaitable<http::BodyPiece> {
      http::BodyPiece p = std::move(left->front());
      left->erase(left->begin());
      co_return p;
    };
    grpc_answer(res, of, &stats);
    std::vector<http::BodyPiece> out;
    asio::io_context io;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          while (true) {
            out.push_back(co_await res.stream());
            if (out.back().end) break;
          }
        },
        asio::detached);
    io.run();
    return out;
  };
  const auto ok =
      streamed({http::BodyPiece::more("msg"), http::BodyPiece::last({{"grpc-status", "0"}})}, call);
  ASSERT_EQ(ok.size(), 2u);
  EXPECT_EQ(ok[0].data, "msg");
  EXPECT_EQ(stats.grpc[0].get(), 1u);
  const auto cut =
      streamed({http::BodyPiece::more("msg"), http::BodyPiece::failure("reset")}, call);
  ASSERT_EQ(cut.size(), 2u);
  EXPECT_FALSE(cut[1].failed()) << "a gRPC client reads a status, not a reset";
  EXPECT_EQ(cut[1].trailers.front(), (std::pair<std::string, std::string>{"grpc-status", "14"}));
  EXPECT_EQ(stats.grpc[14].get(), 1u);

  // Cut because its client gave up (the server reset the upstream's stream): CANCELLED; cut
  // once its deadline passed: DEADLINE_EXCEEDED, whoever reset it first.
  auto gave_up = http::Request::make_for_test("POST", "/echo.Echo/Chat");
  gave_up.cancel();
  streamed({http::BodyPiece::more("msg"), http::BodyPiece::failure("reset")}, gave_up);
  EXPECT_EQ(stats.grpc[1].get(), 1u);
  auto late = http::Request::make_for_test("POST", "/echo.Echo/Chat");
  late.set_deadline(std::chrono::steady_clock::now() - 1ms);
  streamed({http::BodyPiece::failure("the upstream's answer stalled")}, late);
  EXPECT_EQ(stats.grpc[4].get(), 1u);
  EXPECT_EQ(stats.grpc[14].get(), 1u) << "neither is the instance's failure";

  // A call its client cancelled before the answer's head: counted, whatever the answer says.
  http::Response refused = http::Response::problem(499, "the client cancelled the request");
  grpc_answer(refused, gave_up, &stats);
  EXPECT_EQ(stats.grpc[1].get(), 2u);
}

TEST(Grpc, AnAnswerGivenUpBeforeItsEndIsCountedAsItGoesAndTheTransportStillHearsTheCancel) {
  Stats stats;
  // The server stops pulling once the client reset the stream (with a piece of the answer on
  // its way): the call is counted CANCELLED when its answer goes, and the transport's own
  // on_cancel (which resets the upstream's stream) still runs.
  auto call = http::Request::make_for_test("POST", "/echo.Echo/Chat");
  bool upstream_reset = false;
  call.on_cancel([&] { upstream_reset = true; });
  http::Response res;
  res.stream = []() -> asio::awaitable<http::BodyPiece> { co_return http::BodyPiece::more("m"); };
  grpc_answer(res, call, &stats);
  call.cancel();
  EXPECT_TRUE(upstream_reset);
  res = http::Response{};
  EXPECT_EQ(stats.grpc[1].get(), 1u);
  // Given up with nobody cancelling (an HTTP/1.1 client gone): cut, UNAVAILABLE.
  auto quiet = http::Request::make_for_test("POST", "/echo.Echo/Chat");
  http::Response other;
  other.stream = []() -> asio::awaitable<http::BodyPiece> { co_return http::BodyPiece::last(); };
  grpc_answer(other, quiet, &stats);
  other = http::Response{};
  EXPECT_EQ(stats.grpc[14].get(), 1u);
}

TEST(Grpc, ACallCutWithoutItsStatusIsCountedByWhoEndedIt) {
  const auto t = std::chrono::steady_clock::time_point() + 1h;
  const auto none = std::chrono::steady_clock::time_point::max();
  EXPECT_EQ(grpc_code_of_cut(false, t, none), 14);  // the instance cut it off
  EXPECT_EQ(grpc_code_of_cut(true, t, none), 1);    // its client gave up
  EXPECT_EQ(grpc_code_of_cut(true, t, t + 1s), 1);
  EXPECT_EQ(grpc_code_of_cut(false, t, t + 1s), 14);
  // At its deadline, or within 5 ms of it (the client's timer fired first): DEADLINE_EXCEEDED.
  EXPECT_EQ(grpc_code_of_cut(true, t, t + 5ms), 4);
  EXPECT_EQ(grpc_code_of_cut(true, t, t + 6ms), 1);
  EXPECT_EQ(grpc_code_of_cut(false, t, t), 4);
  EXPECT_EQ(grpc_code_of_cut(false, t, t - 1s), 4);
}

TEST(Grpc, AMessageIsPercentEncodedOutsidePrintableAscii) {
  EXPECT_EQ(grpc_message("plain text"), "plain text");
  EXPECT_EQ(grpc_message("50% \xc3\xa9\n"), "50%25 %C3%A9%0A");
}

TEST(Grpc, ATimeoutValueIsReadInEachUnitAndRoundedUpToAMillisecond) {
  EXPECT_EQ(http::grpc_timeout_ms("1H"), 3'600'000);
  EXPECT_EQ(http::grpc_timeout_ms("2M"), 120'000);
  EXPECT_EQ(http::grpc_timeout_ms("3S"), 3000);
  EXPECT_EQ(http::grpc_timeout_ms("250m"), 250);
  EXPECT_EQ(http::grpc_timeout_ms("1500u"), 2);
  EXPECT_EQ(http::grpc_timeout_ms("1n"), 1);
  for (const char* bad : {"", "S", "12", "1s", "123456789S", "-1S", "1.5S"})
    EXPECT_EQ(http::grpc_timeout_ms(bad), std::nullopt) << bad;
}

void parse(std::string_view raw, http::Request& req) {
  http::RequestParser parser{http::ParserLimits{}};
  auto r = parser.feed(raw, req);
  if (r.status == http::ParseStatus::kHeadersDone) r = parser.feed(raw.substr(r.consumed), req);
  ASSERT_EQ(r.status, http::ParseStatus::kComplete);
}

TEST(Grpc, ACallGoesUpstreamWithTheTimeLeftAsItsGrpcTimeoutAndAsksForTrailers) {
  http::Request req;
  parse(
      "POST /echo.Echo/Say HTTP/1.1\r\nHost: gw\r\nContent-Type: application/grpc+proto\r\n"
      "grpc-timeout: 2S\r\nTE: trailers\r\nContent-Length: 5\r\n\r\nhello",
      req);
  EXPECT_TRUE(is_grpc(req));
  EXPECT_EQ(req.timeout_left_ms(), 2000) << "the call's deadline caps the route timeout";
  Cluster s;
  s.name = "echo";
  const RouteMatch m{&s, "/echo.Echo/", false, 0};
  HeadBuffers buffers;
  UpstreamRequest up(buffers);
  up.build(req, m, false, 1800ms, std::chrono::steady_clock::time_point{});
  EXPECT_TRUE(up.grpc);
  EXPECT_FALSE(up.replayable) << "retried only when the upstream did not take it";
  EXPECT_NE(up.head().find("\r\ngrpc-timeout: 1800m\r\n"), std::string::npos) << up.head();
  EXPECT_EQ(up.head().find("2S"), std::string::npos) << "the client's figure is not passed on";
  EXPECT_NE(up.head().find("\r\nTE: trailers\r\n"), std::string::npos) << up.head();
  EXPECT_EQ(up.options.body_idle_timeout, 0ms) << "the deadline bounds the whole call";

  http::Request web;  // gRPC-Web is not gRPC: no trailers, its own framing
  parse("POST /x HTTP/1.1\r\nHost: gw\r\nContent-Type: application/grpc-web\r\n\r\n", web);
  EXPECT_FALSE(is_grpc(web));
}

}  // namespace
}  // namespace squadron::gateway
