#include "squadron/gateway/tunnel.hpp"

#include <atomic>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "squadron/gateway/proxy.hpp"

namespace squadron::gateway {
namespace {

using namespace std::chrono_literals;

// A blocking loopback socket with a 5 s receive limit.
int dial(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string recv_some(int fd) {
  char buf[256];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// An upstream on a port of its own: says its name to each connection, echoes, and answers the
// client's half-close with "bye" before closing. One connection at a time, on its own thread.
class Upstream {
 public:
  explicit Upstream(std::string name) : name_(std::move(name)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        ++accepted_;
        ::send(c, name_.data(), name_.size(), MSG_NOSIGNAL);
        char buf[256];
        ssize_t n;
        while ((n = ::recv(c, buf, sizeof buf, 0)) > 0) ::send(c, buf, n, MSG_NOSIGNAL);
        ::send(c, "bye", 3, MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~Upstream() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }

 private:
  std::string name_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// A table with service "db" on listener `listen`: its instances (id, port, state).
std::shared_ptr<const RouteTable> table(
    std::uint16_t listen, const std::vector<std::tuple<std::string, int, std::string>>& instances,
    std::uint64_t revision, int timeout_ms = 3000) {
  boost::json::array list;
  for (const auto& [id, port, state] : instances) {
    list.push_back(
        {{"service", "db"}, {"id", id}, {"host", "127.0.0.1"}, {"port", port}, {"state", state}});
  }
  const boost::json::value v = {
      {"revision", revision},
      {"services",
       boost::json::array{{{"name", "db"},
                           {"routes", boost::json::array{}},
                           {"discovery_port", listen},
                           {"proxy", {{"timeout_ms", timeout_ms}, {"slow_start_ms", 0}}}}}},
      {"instances", std::move(list)}};
  std::string error;
  auto t = RouteTable::from_watch(v, error);
  EXPECT_TRUE(t) << error;
  return t;
}

class TcpFrontTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(front_.listen("127.0.0.1", 0, &port_));
    front_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    front_.stop(0ms);
    work_.reset();
    thread_.join();
  }

  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  Proxy proxy_{ProxyConfig{}};
  TcpFront front_{proxy_, {&io_}};
  std::uint16_t port_ = 0;
  std::thread thread_;
};

TEST_F(TcpFrontTest, PassesBytesBothWaysAndTheHalfClose) {
  Upstream up("one;");
  proxy_.publish(table(port_, {{"db-1", up.port(), "ready"}}, 1));
  const int c = dial(port_);
  ASSERT_GE(c, 0);
  EXPECT_EQ(recv_some(c), "one;");
  ASSERT_EQ(::send(c, "ping", 4, 0), 4);
  EXPECT_EQ(recv_some(c), "ping");
  ::shutdown(c, SHUT_WR);  // reaches the upstream, whose last word comes back before its close
  EXPECT_EQ(recv_some(c), "bye");
  EXPECT_EQ(recv_some(c), "");
  ::close(c);
  // The connection is the service's request (counted when it was taken).
  const auto metrics = proxy_.metrics().json();
  std::int64_t requests = -1;
  for (const auto& s : metrics.at("services").as_array()) {
    if (s.at("name") == "db") requests = s.at("requests").to_number<std::int64_t>();
  }
  EXPECT_EQ(requests, 1);
}

TEST_F(TcpFrontTest, ARefusedInstanceIsSkippedForAReadyOne) {
  Upstream up("live;");
  // A port nobody listens on: the first pick may land there and must go on to the other.
  const int closed = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(closed, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(closed, reinterpret_cast<sockaddr*>(&a), &len);
  const int dead_port = ntohs(a.sin_port);
  ::close(closed);
  proxy_.publish(table(port_, {{"db-1", dead_port, "ready"}, {"db-2", up.port(), "ready"}}, 1));
  for (int k = 0; k < 6; ++k) {
    const int c = dial(port_);
    ASSERT_GE(c, 0);
    EXPECT_EQ(recv_some(c), "live;") << "connection " << k;
    ::close(c);
  }
}

TEST_F(TcpFrontTest, AConnectionWaitsForAnInstanceThatIsStarting) {
  Upstream up("late;");
  proxy_.publish(table(port_, {{"db-1", up.port(), "starting"}}, 1));
  const int c = dial(port_);
  ASSERT_GE(c, 0);
  std::this_thread::sleep_for(100ms);  // pacing: the connection is held meanwhile
  EXPECT_EQ(up.accepted(), 0);
  proxy_.publish(table(port_, {{"db-1", up.port(), "ready"}}, 2));
  EXPECT_EQ(recv_some(c), "late;");
  ::close(c);
}

TEST_F(TcpFrontTest, WithNoInstanceComingTheConnectionIsClosed) {
  proxy_.publish(table(port_, {}, 1));
  const int c = dial(port_);
  ASSERT_GE(c, 0);
  EXPECT_EQ(recv_some(c), "") << "closed, not held";
  ::close(c);
}

TEST_F(TcpFrontTest, AStopEndsAConnectionHeldForAnInstanceAtOnce) {
  // Held for up to a minute for an instance that is starting; the stop ends the wait (else the
  // gateway's contexts would stop with the connection's coroutine still suspended in it).
  proxy_.publish(table(port_, {{"db-1", 1, "starting"}}, 1, 60'000));
  const int c = dial(port_);
  ASSERT_GE(c, 0);
  for (int k = 0; k < 200 && front_.open() == 0; ++k) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(front_.open(), 1u);
  front_.stop(0ms);
  char byte;
  EXPECT_EQ(::recv(c, &byte, 1, 0), 0) << "closed by the gateway, not left waiting (5 s limit)";
  ::close(c);
  // Its coroutine is over too (polled: the stop reaches the I/O thread by a post).
  for (int k = 0; k < 400 && front_.open() != 0; ++k) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(front_.open(), 0u) << "still held after the stop";
}

}  // namespace
}  // namespace squadron::gateway
