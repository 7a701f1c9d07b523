#include <csignal>
#include <thread>

#include "fixture.hpp"

namespace squadron::testing {
namespace {

using namespace std::chrono_literals;

class Drain : public ServiceTest {};

TEST_F(Drain, SigtermLetsARequestInFlightFinishThenExitsZero) {
  start("echo");
  RawConnection busy(port_);
  RawConnection idle(port_);
  ASSERT_TRUE(busy.send("GET /work?delay_ms=2000 HTTP/1.1\r\nHost: t\r\n\r\n"));
  // Wait until the server holds the request (in-flight gauge), not for a fixed time.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  bool in_flight = false;
  while (!in_flight && std::chrono::steady_clock::now() < deadline) {
    auto m = fetch(port_, "GET", "/metrics");
    in_flight = m && m->body.find("squadron_http_requests_in_flight{service=\"echo\"} 2") !=
                         std::string::npos;
  }
  ASSERT_TRUE(in_flight);
  proc_->signal(SIGTERM);
  auto r = busy.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Connection").value_or(""), "close");
  EXPECT_TRUE(idle.closed_within(5s)) << "idle keep-alive connections are closed at once";
  EXPECT_EQ(proc_->wait_exit(10s), 0) << proc_->output();
}

TEST_F(Drain, ReadyzTurns503DuringTheDrainDelayWhileStillServing) {
  start("echo", {"--drain-delay", "1500ms"});
  EXPECT_EQ(fetch(port_, "GET", "/readyz")->status, 200);
  proc_->signal(SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  int ready = 200;
  while (ready != 503 && std::chrono::steady_clock::now() < deadline)
    ready = fetch(port_, "GET", "/readyz")->status;
  EXPECT_EQ(ready, 503);
  auto served = fetch(port_, "GET", "/during-drain");
  ASSERT_TRUE(served) << "new connections are still accepted during the drain delay";
  EXPECT_EQ(served->status, 200);
  EXPECT_EQ(proc_->wait_exit(10s), 0);
  EXPECT_FALSE(RawConnection(port_).ok()) << "after the drain the port is closed";
}

TEST_F(Drain, RequestsPastTheGracePeriodAreCutAndTheProcessStillExits) {
  start("echo", {"--grace", "300ms"});
  RawConnection busy(port_);
  ASSERT_TRUE(busy.send("GET /long?delay_ms=30000 HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(100ms);  // let the request reach the server (a pace, not a sync)
  proc_->signal(SIGTERM);
  EXPECT_EQ(proc_->wait_exit(5s), 0);
  EXPECT_TRUE(busy.closed_within(2s));
}

}  // namespace
}  // namespace squadron::testing
