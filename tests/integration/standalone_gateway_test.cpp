// `squadron gateway -c FILE`: the gateway standalone in front of real echo servers on loopback —
// balanced, a killed upstream invisible to GETs, reloads (SIGHUP and a changed file) under load
// with no failed request, a bad file that leaves the running one serving, and a DNS name with
// two addresses (a private /etc/hosts in a mount namespace of the gateway's own), and requests
// past max_connections waiting for one.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <signal.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/json.hpp>

#include "fixture.hpp"

namespace squadron::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class StandaloneGateway : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/squadron-gw-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (gateway_ && gateway_->running()) {
      gateway_->signal(SIGTERM);
      EXPECT_EQ(gateway_->wait_exit(15s), 0) << gateway_->output();
    }
    gateway_.reset();
    echoes_.clear();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // An echo server answering {"instance": name} (on port 0, or as `args` say); returns its port.
  std::uint16_t echo(const std::string& name, std::vector<std::string> args = {}) {
    std::vector<std::string> argv{bin_dir() + "/echo", "--threads", "1"};
    if (args.empty()) args = {"--port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = std::make_unique<ChildProcess>(std::move(argv),
                                            std::vector<std::string>{"SQUADRON_INSTANCE=" + name});
    const auto port = p->wait_for_port();
    EXPECT_TRUE(port) << p->output();
    echoes_[name] = std::move(p);
    return port.value_or(0);
  }
  void write_file(const std::vector<std::string>& endpoints, const std::string& extra = "") {
    std::string list;
    for (const auto& e : endpoints) list += (list.empty() ? "" : ", ") + e;
    const fs::path tmp = dir_ / "gateway.yaml.tmp";
    std::ofstream(tmp) << "listen: 127.0.0.1:0\nresolve_every: 200ms\nupstreams:\n  echo:\n"
                       << "    endpoints: [" << list << "]\n    routes: [/]\n"
                       << extra;
    fs::rename(tmp, dir_ / "gateway.yaml");  // whole, as a ConfigMap update swaps it
  }
  void start_gateway(std::vector<std::string> prefix = {}) {
    std::vector<std::string> argv = std::move(prefix);
    for (const auto& a :
         {bin_dir() + "/squadron", std::string("gateway"), std::string("-c"),
          (dir_ / "gateway.yaml").string(), std::string("--threads"), std::string("1")})
      argv.push_back(a);
    gateway_ = std::make_unique<ChildProcess>(std::move(argv));
    const auto port = gateway_->wait_for_port();
    ASSERT_TRUE(port) << gateway_->output();
    port_ = *port;
  }
  // Who answered GET /: the instance's name, "" on a failure.
  std::string who(std::uint16_t port) {
    const auto r = fetch(port, "GET", "/");
    if (!r || r->status != 200) return "";
    boost::system::error_code ec;
    const auto v = boost::json::parse(r->body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("instance")) return "";
    return std::string(v.as_object().at("instance").as_string());
  }
  std::map<std::string, int> tally(int n) {
    std::map<std::string, int> seen;
    for (int i = 0; i < n; ++i) ++seen[who(port_)];
    return seen;
  }

  fs::path dir_;
  std::map<std::string, std::unique_ptr<ChildProcess>> echoes_;
  std::unique_ptr<ChildProcess> gateway_;
  std::uint16_t port_ = 0;
};

TEST_F(StandaloneGateway, BalancesOverItsEndpointsAndAKilledOneCostsNoGet) {
  const auto a = echo("a");
  const auto b = echo("b");
  write_file({"127.0.0.1:" + std::to_string(a), "127.0.0.1:" + std::to_string(b)});
  start_gateway();
  auto seen = tally(200);
  EXPECT_EQ(seen[""], 0);
  EXPECT_GT(seen["a"], 40);
  EXPECT_GT(seen["b"], 40);
  echoes_["b"]->signal(SIGKILL);
  ASSERT_TRUE(echoes_["b"]->wait_exit(5s));
  seen = tally(200);
  EXPECT_EQ(seen[""], 0) << "a refused connection is retried on another endpoint";
  EXPECT_EQ(seen["a"], 200);
}

TEST_F(StandaloneGateway, ReloadsUnderLoadOnSighupAndOnAChangedFileLosingNoRequest) {
  const auto a = echo("a");
  const auto b = echo("b");
  const auto c = echo("c");
  auto at = [](std::uint16_t p) { return "127.0.0.1:" + std::to_string(p); };
  write_file({at(a), at(b)});
  start_gateway();
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, done{0};
  std::thread load([&] {
    while (!stop) {
      if (who(port_).empty()) ++failed;
      ++done;
    }
  });
  // SIGHUP: b out, c in.
  write_file({at(a), at(c)});
  gateway_->signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return who(port_) == "c"; }, 5s));
  // A changed file alone (no signal): c out, b back.
  write_file({at(a), at(b)});
  EXPECT_TRUE(eventually([&] { return who(port_) == "b"; }, 5s));
  const auto after = tally(100);
  EXPECT_EQ(after.count("c"), 0U) << "c left the table";
  // A broken file: the running one keeps serving.
  { std::ofstream(dir_ / "gateway.yaml") << "upstreams: [nope\n"; }
  gateway_->signal(SIGHUP);
  EXPECT_TRUE(eventually(
      [&] {
        return gateway_->output_now().find("still serving the last good one") != std::string::npos;
      },
      5s))
      << gateway_->output();
  const int before = done;
  EXPECT_TRUE(eventually([&] { return done > before + 50; }, 10s));
  stop = true;
  load.join();
  EXPECT_EQ(failed, 0) << "of " << done << " requests";
  EXPECT_GT(done, 100);
}

TEST_F(StandaloneGateway, PastMaxConnectionsRequestsWaitForAConnectionAndAreAllAnswered) {
  const auto a = echo("a");
  write_file({"127.0.0.1:" + std::to_string(a)}, "    proxy: { max_connections: 2 }\n");
  start_gateway();
  // Six requests of 300 ms each at once, over two connections to the instance: three turns, so
  // not all answered before 900 ms (six connections would answer them all in about 300 ms).
  std::atomic<int> answered{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int i = 0; i < 6; ++i) {
    clients.emplace_back([&] {
      const auto r = fetch(port_, "GET", "/?delay_ms=300");
      if (r && r->status == 200) ++answered;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(answered, 6);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms) << "more than two at once";
}

TEST_F(StandaloneGateway, ADnsNameWithTwoAddressesIsTwoEndpoints) {
  if (::geteuid() != 0 || !fs::exists("/usr/bin/unshare"))
    GTEST_SKIP() << "needs root and unshare (a private /etc/hosts in a mount namespace)";
  const auto port = free_port();
  echo("one", {"--host", "127.0.0.1", "--port", std::to_string(port)});
  echo("two", {"--host", "127.0.0.2", "--port", std::to_string(port)});
  std::ofstream(dir_ / "hosts")
      << "127.0.0.1 localhost\n127.0.0.1 twin.test\n127.0.0.2 twin.test\n";
  write_file({"twin.test:" + std::to_string(port)});
  const std::string script =
      "mount --bind " + (dir_ / "hosts").string() + " /etc/hosts && exec \"$0\" \"$@\"";
  start_gateway(
      {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script});
  std::map<std::string, int> seen;
  EXPECT_TRUE(eventually(
      [&] {
        ++seen[who(port_)];
        return seen["one"] > 5 && seen["two"] > 5;
      },
      10s))
      << "one " << seen["one"] << ", two " << seen["two"] << "\n"
      << gateway_->output();
}

TEST_F(StandaloneGateway, AFileWithProblemsIsRefusedWithEachOneAndExit2) {
  std::ofstream(dir_ / "gateway.yaml") << "listen: nowhere\nupstreams:\n  web:\n    routes: [/]\n";
  ChildProcess p({bin_dir() + "/squadron", "gateway", "-c", (dir_ / "gateway.yaml").string()});
  EXPECT_EQ(p.wait_exit(10s), 2);
  EXPECT_NE(p.output().find("gateway.yaml:1:9: listen: expected host:port"), std::string::npos)
      << p.output();
  EXPECT_NE(p.output().find("upstreams.web.endpoints"), std::string::npos) << p.output();
}

}  // namespace
}  // namespace squadron::testing
