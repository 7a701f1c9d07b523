// Services with `protocol: tcp` (a database, a cache) reached by name through the gateway's L4
// front: SQUADRON_<NAME>_HOST/_PORT/_ADDR and a tcp:// URL, connections balanced over ready
// instances, half-closes passed through, a connection held while the only instance restarts,
// an open connection keeping its retired instance draining until it ends, and a service an
// apply adds or turns into TCP reachable at once.
#include <netinet/in.h>
#include <set>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "fleet_fixture.hpp"

namespace squadron::testing {
namespace {

// A blocking client connection with a 10 s receive limit (no test waits on it for longer).
class Conn {
 public:
  explicit Conn(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Conn() { ::close(fd_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  bool ok() const { return ok_; }
  bool send(const std::string& s) {
    return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  void half_close() { ::shutdown(fd_, SHUT_WR); }
  // The next line without its '\n'; "" at the end of the stream or after the time limit.
  std::string line() {
    while (true) {
      const auto nl = buffered_.find('\n');
      if (nl != std::string::npos) {
        std::string l = buffered_.substr(0, nl);
        buffered_.erase(0, nl + 1);
        return l;
      }
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return "";
      buffered_.append(buf, static_cast<std::size_t>(n));
    }
  }
  // Whether the peer ended the stream (0 from recv) rather than the time limit passing.
  bool at_end() {
    char c;
    return buffered_.empty() && ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int fd_;
  bool ok_ = false;
  std::string buffered_;
};

std::string tcp_echo() {
  return std::string(SQUADRON_SOURCE_DIR) + "/tests/integration/services/tcp_echo.py";
}

class TcpServices : public Fleet {
 protected:
  // `store`: the TCP echo service with `replicas` and `extra` keys; `more`: other services.
  void write(int replicas, const std::string& extra = "", const std::string& more = "") {
    std::ofstream(dir_ / "squadron.yaml")
        << "name: tcpfleet\ncontrol: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\n"
        << "services:\n  store:\n    command: [python3, " << tcp_echo() << "]\n"
        << "    protocol: tcp\n    replicas: " << replicas << "\n"
        << extra << more;
  }
  // A variable as an instance of `service` sees it.
  std::string variable(std::string_view service, const std::string& name) {
    const auto list = ps();
    const auto instances = of(list, service);
    if (instances.empty()) return "";
    return env_value(environ_of(pid_of(*instances[0])), name);
  }
  std::uint16_t store_port() {
    const auto p = variable("store", "SQUADRON_STORE_PORT");
    return p.empty() ? 0 : static_cast<std::uint16_t>(std::stoi(p));
  }
};

TEST_F(TcpServices, ConnectionsPassThroughBalancedByNameAndHalfClosed) {
  write(2);
  up();
  const auto port = store_port();
  ASSERT_NE(port, 0);
  EXPECT_EQ(variable("store", "SQUADRON_STORE_URL"), "tcp://127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(variable("store", "SQUADRON_STORE_HOST"), "127.0.0.1");
  EXPECT_EQ(variable("store", "SQUADRON_STORE_ADDR"), "127.0.0.1:" + std::to_string(port));

  // Held open together, least connections puts them on both instances.
  std::vector<std::unique_ptr<Conn>> conns;
  std::set<std::string> greeted_by;
  for (int k = 0; k < 4; ++k) {
    conns.push_back(std::make_unique<Conn>(port));
    ASSERT_TRUE(conns.back()->ok());
    greeted_by.insert(conns.back()->line());
  }
  EXPECT_EQ(greeted_by, (std::set<std::string>{"hi store-1", "hi store-2"}));

  // Bytes both ways, then the client's half-close reaches the instance, whose last words and
  // close come back.
  Conn& c = *conns[0];
  ASSERT_TRUE(c.send("PING 1\r\nbinary\x01\x02\n"));
  EXPECT_EQ(c.line(), "PING 1\r");
  EXPECT_EQ(c.line(), "binary\x01\x02");
  c.half_close();
  EXPECT_EQ(c.line(), "bye");
  EXPECT_TRUE(c.at_end());

  // The gateway counts each connection as a request of the service; the control plane samples
  // it once a second, so wait for the first sample after the connections.
  std::string body;
  for (int i = 0; i < 50; ++i) {
    const auto metrics = fetch(control_port(), "GET", "/api/v1/metrics", auth());
    ASSERT_TRUE(metrics);
    body = metrics->body;
    if (body.find("\"store\"") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);  // polling pace
  }
  EXPECT_NE(body.find("\"store\""), std::string::npos) << body;
}

TEST_F(TcpServices, AConnectionWhileTheOnlyInstanceRestartsWaitsAndGetsThrough) {
  write(1);
  up();
  const auto port = store_port();
  ASSERT_NE(port, 0);
  {
    Conn first(port);
    ASSERT_EQ(first.line(), "hi store-1");
  }
  const auto list = ps();
  ASSERT_EQ(of(list, "store").size(), 1u);
  const pid_t pid = pid_of(*of(list, "store")[0]);
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(process_gone(pid) || all_gone_within({pid}, 5s));
  // Without the hold this connection is refused by the dead instance's port (or closed at once).
  Conn during(port);
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(during.line(), "hi store-1") << "the connection was not held for the restart";
  ASSERT_TRUE(during.send("still there\n"));
  EXPECT_EQ(during.line(), "still there");
}

TEST_F(TcpServices, AnOpenConnectionKeepsItsRetiredInstanceDrainingUntilItEnds) {
  write(2, "    stop_grace: 30s\n");
  up();
  const auto port = store_port();
  ASSERT_NE(port, 0);
  auto a = std::make_unique<Conn>(port), b = std::make_unique<Conn>(port);
  const std::string on_a = a->line(), on_b = b->line();
  ASSERT_NE(on_a, on_b);
  ASSERT_EQ(cli({"scale", "store=1", "--no-wait"}).code, 0);
  std::string retired;
  ASSERT_TRUE(eventually_ps([&](const json::array& l) {
    for (const auto* o : of(l, "store")) {
      if (o->at("state").as_string() == "draining") retired = std::string(o->at("id").as_string());
    }
    return !retired.empty();
  })) << "no instance of store went draining";
  Conn& open = ("hi " + retired == on_a) ? *a : *b;
  Conn& kept = ("hi " + retired == on_a) ? *b : *a;
  // The retired instance keeps serving the connection it has; new ones go to the other.
  ASSERT_TRUE(open.send("during the drain\n"));
  EXPECT_EQ(open.line(), "during the drain");
  for (int k = 0; k < 3; ++k) {
    Conn fresh(port);
    EXPECT_NE(fresh.line(), "hi " + retired);
  }
  std::this_thread::sleep_for(1500ms);  // the drain would have ended by now without the count
  EXPECT_TRUE(eventually_ps(
      [&](const json::array& l) {
        for (const auto* o : of(l, "store")) {
          if (o->at("id").as_string() == retired) return o->at("state").as_string() == "draining";
        }
        return false;
      },
      2s))
      << retired << " stopped while a connection to it was open";
  // Its last connection ends: it stops well before stop_grace.
  (&open == a.get() ? a : b).reset();
  EXPECT_TRUE(eventually_ps([&](const json::array& l) { return of(l, "store").size() == 1; }, 10s));
  ASSERT_TRUE(kept.send("other\n"));
  EXPECT_EQ(kept.line(), "other");
}

TEST_F(TcpServices, AServiceAnApplyAddsOrTurnsIntoTcpIsReachableAtOnce) {
  const std::string web =
      "  web:\n    command: [" + bin_dir() + "/hello, --threads, \"1\"]\n    routes: [/]\n";
  const std::string plain = "  plain:\n    command: [python3, " + tcp_echo() + "]\n";
  write(1, "", web + plain);  // plain: an HTTP service as far as the gateway knows
  up();
  // cache added by apply as a TCP service, plain turned into one.
  write(1, "",
        web + plain + "    protocol: tcp\n  cache:\n    command: [python3, " + tcp_echo() +
            "]\n    protocol: tcp\n");
  auto r = cli({"apply"}, 60s);
  ASSERT_EQ(r.code, 0) << r.output;
  auto port_of_service = [&](std::string_view service) {
    std::uint16_t port = 0;
    EXPECT_TRUE(eventually_ps([&](const json::array& l) {
      for (const auto* o : of(l, service)) {
        if (o->at("state").as_string() != "ready") continue;
        const auto p =
            env_value(environ_of(pid_of(*o)),
                      service == "cache" ? "SQUADRON_CACHE_PORT" : "SQUADRON_PLAIN_PORT");
        port = p.empty() ? 0 : static_cast<std::uint16_t>(std::stoi(p));
      }
      return port != 0;
    }));
    return port;
  };
  for (const std::string service : {"cache", "plain"}) {
    const auto port = port_of_service(service);
    bool through = false;
    for (int k = 0; k < 100 && !through; ++k) {  // once the gateway is redeployed with it
      Conn c(port);
      through = c.ok() && c.line() == "hi " + service + "-1";
      if (!through) std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(through) << service << " is not reachable as a TCP service through its port";
  }
}

}  // namespace
}  // namespace squadron::testing
