// `squadron up` in the foreground with a real fleet: C++ hello x2 and echo x1.
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <signal.h>
#include <thread>

#include "fixture.hpp"

namespace squadron::testing {
namespace {

using namespace std::chrono_literals;

class Up : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("squadron-up-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "squadron.yaml")
        << "name: trio\ncontrol: { listen: 127.0.0.1:0 }\nservices:\n"
        << "  hello:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n"
        << "    replicas: 2\n    ready: { path: /readyz }\n"
        << "  echo:\n    command: " << bin_dir() << "/echo --threads 1\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Starts `squadron up` and waits for the fleet to be ready; returns the instances' pids and
  // ports.
  void start() {
    proc_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        bin_dir() + "/squadron", "up", "-f", (dir_ / "squadron.yaml").string()});
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (proc_->output().find("3/3 ready") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline && proc_->running()) {
      proc_->wait_exit(50ms);
    }
    proc_->wait_exit(200ms);  // let the table arrive
    ASSERT_NE(proc_->output().find("3/3 ready"), std::string::npos) << proc_->output();
    static const std::regex kStarting(R"(starting \(pid (\d+), port (\d+)\))");
    const std::string out = proc_->output();
    for (std::sregex_iterator it(out.begin(), out.end(), kStarting), end; it != end; ++it) {
      pids_.push_back(std::stoi((*it)[1]));
      ports_.push_back(static_cast<std::uint16_t>(std::stoi((*it)[2])));
    }
    ASSERT_EQ(pids_.size(), 3u) << out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<ChildProcess> proc_;
  std::vector<pid_t> pids_;
  std::vector<std::uint16_t> ports_;
};

TEST_F(Up, RunsEveryInstanceOnItsOwnPortAndStopsThemAllOnSigterm) {
  start();
  std::set<std::uint16_t> distinct(ports_.begin(), ports_.end());
  EXPECT_EQ(distinct.size(), 3u);
  for (auto port : ports_) {
    auto r = fetch(port, "GET", "/healthz");
    ASSERT_TRUE(r) << port;
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_NE(proc_->output().find("hello-1"), std::string::npos);
  EXPECT_NE(proc_->output().find("listening on http://127.0.0.1:"), std::string::npos)
      << "instance output is streamed";
  proc_->signal(SIGTERM);
  EXPECT_EQ(proc_->wait_exit(15s), 0) << proc_->output();
  EXPECT_TRUE(all_gone_within(pids_, 5s));
}

TEST_F(Up, KillDash9OfSquadronLeavesNoServiceProcess) {
  start();
  proc_->signal(SIGKILL);
  proc_->wait_exit(5s);
  EXPECT_TRUE(all_gone_within(pids_, 5s)) << "an instance outlived squadron";
}

TEST_F(Up, ABrokenManifestStartsNothing) {
  std::ofstream(dir_ / "broken.yaml") << "services:\n  hello:\n    replicas: 2\n";
  ChildProcess p({bin_dir() + "/squadron", "up", "-f", (dir_ / "broken.yaml").string()});
  EXPECT_EQ(p.wait_exit(10s), 2);
  EXPECT_NE(p.output().find("services.hello.command: a service needs a command"), std::string::npos)
      << p.output();
  EXPECT_EQ(p.output().find("starting"), std::string::npos);
}

}  // namespace
}  // namespace squadron::testing

namespace squadron::testing {
namespace {

TEST(UpPolyglot, TheCoursesFlaskAppRunsBesideTheCppHello) {
  const std::string manifest =
      std::string(SQUADRON_SOURCE_DIR) + "/examples/flask-hello/squadron.yaml";
  ChildProcess p({bin_dir() + "/squadron", "up", "-f", manifest});
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (p.output().find("5/5 ready") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline && p.running()) {
    p.wait_exit(50ms);
  }
  p.wait_exit(200ms);
  ASSERT_NE(p.output().find("5/5 ready"), std::string::npos) << p.output();  // + the gateway
  static const std::regex kUrl(R"((flask|hello) +\S+ +http://127\.0\.0\.1:(\d+))");
  const std::string out = p.output();
  int flask = 0, hello = 0;
  for (std::sregex_iterator it(out.begin(), out.end(), kUrl), end; it != end; ++it) {
    auto r = fetch(static_cast<std::uint16_t>(std::stoi((*it)[2])), "GET", "/hello");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "Hello World!");
    ((*it)[1] == "flask" ? flask : hello)++;
  }
  EXPECT_EQ(flask, 2);
  EXPECT_EQ(hello, 2);
  // And through the gateway (gateway.listen's default, 127.0.0.1:8080), by route.
  for (const char* path : {"/hello", "/py/hello"}) {
    const auto r = fetch(8080, "GET", path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->body, "Hello World!") << path;
  }
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait_exit(15s), 0) << p.output();
}

}  // namespace
}  // namespace squadron::testing

namespace squadron::testing {
namespace {

TEST(UpGuardian, KillDash9OfSquadronAlsoEndsWhatInstancesForked) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("squadron-guard-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\nservices:\n  forker:\n    command: sh -c 'sleep 100 & "
         "echo child=$!; wait'\n";
  ChildProcess p({bin_dir() + "/squadron", "up", "-f", (dir / "squadron.yaml").string()});
  static const std::regex kChild(R"(child=(\d+))");
  std::smatch m;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::string out;
  while (std::chrono::steady_clock::now() < deadline) {
    p.wait_exit(50ms);
    out = p.output();
    if (std::regex_search(out, m, kChild)) break;
  }
  ASSERT_TRUE(std::regex_search(out, m, kChild)) << out;
  const pid_t grandchild = std::stoi(m[1]);
  p.signal(SIGKILL);
  p.wait_exit(5s);
  EXPECT_TRUE(all_gone_within({grandchild}, 5s))
      << "a process forked by an instance outlived squadron";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace squadron::testing
