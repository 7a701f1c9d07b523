#include <csignal>
#include <thread>

#include "fixture.hpp"

namespace squadron::testing {
namespace {

using namespace std::chrono_literals;

TEST(Drain, SigtermLetsARequestInFlightFinishThenExitsZero) {
  auto p = start_service("echo");
  auto port = p->wait_for_port();
  ASSERT_TRUE(port);
  RawConnection busy(*port);
  RawConnection idle(*port);
  ASSERT_TRUE(busy.send("GET /work?delay_ms=2000 HTTP/1.1\r\nHost: t\r\n\r\n"));
  // Wait until the server holds the request (in-flight gauge), not for a fixed time.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  bool in_flight = false;
  while (!in_flight && std::chrono::steady_clock::now() < deadline) {
    auto m = fetch(*port, "GET", "/metrics");
    in_flight = m && m->body.find("squadron_http_requests_in_flight{service=\"echo\"} 2") !=
                         std::string::npos;
  }
  ASSERT_TRUE(in_flight);
  p->signal(SIGTERM);
  auto r = busy.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Connection").value_or(""), "close");
  EXPECT_TRUE(idle.closed_within(5s)) << "idle keep-alive connections are closed at once";
  EXPECT_EQ(p->wait_exit(10s), 0) << p->output();
}

TEST(Drain, ReadyzTurns503DuringTheDrainDelayWhileStillServing) {
  auto p = start_service("echo", {"--drain-delay", "1500ms"});
  auto port = p->wait_for_port();
  ASSERT_TRUE(port);
  EXPECT_EQ(fetch(*port, "GET", "/readyz")->status, 200);
  p->signal(SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  int ready = 200;
  while (ready != 503 && std::chrono::steady_clock::now() < deadline)
    ready = fetch(*port, "GET", "/readyz")->status;
  EXPECT_EQ(ready, 503);
  auto served = fetch(*port, "GET", "/during-drain");
  ASSERT_TRUE(served) << "new connections are still accepted during the drain delay";
  EXPECT_EQ(served->status, 200);
  EXPECT_EQ(p->wait_exit(10s), 0);
  EXPECT_FALSE(RawConnection(*port).ok()) << "after the drain the port is closed";
}

TEST(Drain, RequestsPastTheGracePeriodAreCutAndTheProcessStillExits) {
  auto p = start_service("echo", {"--grace", "300ms"});
  auto port = p->wait_for_port();
  ASSERT_TRUE(port);
  RawConnection busy(*port);
  ASSERT_TRUE(busy.send("GET /long?delay_ms=30000 HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(100ms);  // let the request reach the server (a pace, not a sync)
  p->signal(SIGTERM);
  EXPECT_EQ(p->wait_exit(5s), 0);
  EXPECT_TRUE(busy.closed_within(2s));
}

}  // namespace
}  // namespace squadron::testing
