#include "squadron/control/state.hpp"

#include <fstream>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace squadron::control {
namespace {

namespace fs = std::filesystem;

class State : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("squadron-state-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  fs::path dir_;
};

TEST_F(State, AtomicWriteCreatesTheFolderLeavesNoTemporaryAndSetsTheMode) {
  const auto file = dir_ / "a" / "f.json";
  ASSERT_FALSE(write_file_atomic(file, "one", 0600));
  ASSERT_FALSE(write_file_atomic(file, "two", 0600));
  EXPECT_EQ(read(file), "two");
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_ / "a")) ++entries;
  EXPECT_EQ(entries, 1) << "no temporary file left behind";
}

TEST_F(State, ProcessesThatMakeTheTokenTogetherAllGetTheSameOne) {
  // A cluster's servers sharing the manifest's folder start together: one token for all of
  // them, or the CLI's is refused by whichever made another.
  const StateDir d(dir_);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  constexpr int kProcesses = 8;
  std::vector<pid_t> children;
  for (int i = 0; i < kProcesses; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::error_code ec;
      const auto t = load_or_create_token(d.token(), ec);
      const std::string line = (t ? *t : "error: " + ec.message()) + "\n";
      [[maybe_unused]] auto n = ::write(fds[1], line.data(), line.size());
      ::_exit(0);
    }
    children.push_back(pid);
  }
  ::close(fds[1]);
  for (const pid_t pid : children) ::waitpid(pid, nullptr, 0);
  std::string all;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    all.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  std::set<std::string> tokens;
  std::istringstream lines(all);
  for (std::string line; std::getline(lines, line);) tokens.insert(line);
  ASSERT_EQ(tokens.size(), 1u) << all;
  EXPECT_EQ(read_token(d.token()), std::optional<std::string>(*tokens.begin()));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(d.root)) ++entries;
  EXPECT_EQ(entries, 1) << "no temporary file left behind";
}

TEST_F(State, TheTokenIsMadeOnceSecretAndKept) {
  const StateDir d(dir_);
  std::error_code ec;
  const auto t1 = load_or_create_token(d.token(), ec);
  ASSERT_TRUE(t1) << ec.message();
  EXPECT_EQ(t1->size(), 64u);
  struct stat st {};
  ASSERT_EQ(::stat(d.token().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto t2 = load_or_create_token(d.token(), ec);
  EXPECT_EQ(t1, t2) << "a restarted fleet keeps the token its users have";
  EXPECT_EQ(read_token(d.token()), t1);
  fs::remove(d.token());
  const auto t3 = load_or_create_token(d.token(), ec);
  ASSERT_TRUE(t3);
  EXPECT_NE(t1, t3) << "random, not derived";
}

TEST_F(State, DesiredScaleRoundTripsAndABadFileIsIgnoredWithAWarning) {
  const StateDir d(dir_);
  std::string warning;
  EXPECT_TRUE(load_desired(d.state(), warning).empty());
  EXPECT_TRUE(warning.empty()) << "a missing file is not a problem";
  ASSERT_FALSE(save_desired(d.state(), {{"hello", {8, 2}}, {"api", {0, 1}}}));
  const auto back = load_desired(d.state(), warning);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back.at("hello").replicas, 8);
  EXPECT_EQ(back.at("hello").manifest_replicas, 2);
  EXPECT_EQ(back.at("api").replicas, 0);
  for (const char* bad :
       {"{", "[]", R"({"services":{"hello":{"replicas":-3,"manifest_replicas":1}}})",
        R"({"services":{"hello":{"replicas":"8"}}})"}) {
    ASSERT_FALSE(write_file_atomic(d.state(), bad));
    EXPECT_TRUE(load_desired(d.state(), warning).empty()) << bad;
    EXPECT_FALSE(warning.empty()) << bad;
  }
}

TEST_F(State, RunInfoRoundTrips) {
  const StateDir d(dir_);
  EXPECT_FALSE(load_run_info(d.run()));
  ASSERT_FALSE(save_run_info(d.run(), {1234, "http://127.0.0.1:9900", 42}));
  const auto info = load_run_info(d.run());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->pid, 1234);
  EXPECT_EQ(info->control_url, "http://127.0.0.1:9900");
  EXPECT_EQ(info->started_at_ms, 42);
}

TEST_F(State, TheLockIsExclusiveUntilClosed) {
  const StateDir d(dir_);
  std::error_code ec;
  const int a = try_lock(d.lock(), ec);
  ASSERT_GE(a, 0) << ec.message();
  const int b = try_lock(d.lock(), ec);  // another open file description: refused
  EXPECT_LT(b, 0);
  EXPECT_EQ(ec, std::errc::resource_unavailable_try_again);
  ::close(a);
  const int c = try_lock(d.lock(), ec);
  EXPECT_GE(c, 0);
  ::close(c);
}

}  // namespace
}  // namespace squadron::control
