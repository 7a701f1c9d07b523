// PosixLauncher with real processes: output capture, environment, errors, process groups, and
// death with the supervisor.
#include "squadron/supervisor/launcher.hpp"

#include <chrono>
#include <fstream>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "process.hpp"

namespace squadron::supervisor {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// Reads `fd` until EOF or the deadline.
std::string read_all(int fd, std::chrono::milliseconds timeout = 5s) {
  std::string out;
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

int wait_status(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct Closer {
  LaunchedProcess p;
  ~Closer() {
    if (p.stdout_fd >= 0) ::close(p.stdout_fd);
    if (p.stderr_fd >= 0) ::close(p.stderr_fd);
  }
};

TEST(PosixLauncher, CapturesStdoutAndStderrApartAndTheExitCode) {
  PosixLauncher launcher;
  auto child = launcher.launch({{"sh", "-c", "echo out; echo err >&2; exit 3"}, "/", {}, {}, {}});
  ASSERT_TRUE(child) << child.error().message();
  Closer c{*child};
  EXPECT_EQ(read_all(child->stdout_fd), "out\n");
  EXPECT_EQ(read_all(child->stderr_fd), "err\n");
  EXPECT_EQ(wait_status(child->pid), 3);
}

TEST(PosixLauncher, AddsTheEnvironmentAndRunsInTheDirectory) {
  PosixLauncher launcher;
  auto child = launcher.launch(
      {{"sh", "-c", "echo \"$GREETING:$(pwd)\""}, "/tmp", {{"GREETING", "hi"}}, {}, {}});
  ASSERT_TRUE(child);
  Closer c{*child};
  EXPECT_EQ(read_all(child->stdout_fd), "hi:/tmp\n");
  wait_status(child->pid);
}

TEST(PosixLauncher, AProgramThatCannotRunIsAnErrorWithItsReason) {
  PosixLauncher launcher;
  auto missing = launcher.launch({{"no-such-program-squadron"}, "/", {}, {}, {}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().value(), ENOENT);
  auto bad_cwd = launcher.launch({{"sh", "-c", "true"}, "/no/such/dir", {}, {}, {}});
  ASSERT_FALSE(bad_cwd);
  EXPECT_EQ(bad_cwd.error().value(), ENOENT);
}

TEST(PosixLauncher, ResolvesRelativePathsAgainstTheWorkingDirectory) {
  EXPECT_FALSE(resolve_program("sh", "/").empty());
  EXPECT_EQ(resolve_program("./sh", "/bin"), std::filesystem::path("/bin/sh"));
  EXPECT_TRUE(resolve_program("./no-such", "/bin").empty());
}

TEST(PosixLauncher, EachProcessLeadsItsGroupAndAGroupSignalReachesItsChildren) {
  PosixLauncher launcher;
  auto child = launcher.launch({{"sh", "-c", "sleep 100 & echo $!; wait"}, "/", {}, {}, {}});
  ASSERT_TRUE(child);
  Closer c{*child};
  EXPECT_EQ(::getpgid(child->pid), child->pid);
  std::string line;
  const auto deadline = SteadyClock::now() + 5s;
  while (line.find('\n') == std::string::npos && SteadyClock::now() < deadline) {
    pollfd p{child->stdout_fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char buf[64];
      const ssize_t n = ::read(child->stdout_fd, buf, sizeof buf);
      if (n > 0) line.append(buf, static_cast<std::size_t>(n));
    }
  }
  const pid_t grandchild = std::stoi(line);
  launcher.signal_group(child->pid, SIGKILL);
  EXPECT_EQ(wait_status(child->pid), 128 + SIGKILL);
  EXPECT_TRUE(testing::all_gone_within({grandchild}, 5s))
      << "the grandchild survived the group signal";
}

TEST(PosixLauncher, ChildrenDieWithTheSupervisorEvenBySigkill) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t supervisor = ::fork();
  ASSERT_GE(supervisor, 0);
  if (supervisor == 0) {
    // A stand-in supervisor: start a long-lived child, report its pid, wait to be killed.
    PosixLauncher launcher;
    auto child = launcher.launch({{"sleep", "100"}, "/", {}, {}, {}});
    const pid_t pid = child ? child->pid : -1;
    (void)!::write(fds[1], &pid, sizeof pid);
    ::pause();
    ::_exit(0);
  }
  ::close(fds[1]);
  pid_t child = -1;
  ASSERT_EQ(::read(fds[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  ::close(fds[0]);
  ASSERT_GT(child, 0);
  ::kill(supervisor, SIGKILL);
  ::waitpid(supervisor, nullptr, 0);
  EXPECT_TRUE(testing::all_gone_within({child}, 5s)) << "the instance outlived its supervisor";
}

}  // namespace
}  // namespace squadron::supervisor

namespace squadron::supervisor {
namespace {

TEST(PosixLauncher, TheChildJoinsItsPlaceBeforeExec) {
  // A cgroup's cgroup.procs stands in as a plain file: the launcher, not the program, writes it.
  char dir[] = "/tmp/squadron-join-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::filesystem::path procs = std::filesystem::path(dir) / "cgroup.procs";
  std::ofstream(procs).close();
  PosixLauncher launcher;
  LaunchSpec spec;
  spec.argv = {"sh", "-c", "exit 0"};
  spec.cwd = "/";
  spec.join = {procs};
  auto child = launcher.launch(spec);
  ASSERT_TRUE(child) << child.error().message();
  ::close(child->stdout_fd);
  ::close(child->stderr_fd);
  EXPECT_EQ(wait_status(child->pid), 0);
  std::ifstream in(procs);
  std::string written;
  in >> written;
  EXPECT_EQ(written, std::to_string(child->pid));

  spec.join = {std::filesystem::path(dir) / "missing" / "cgroup.procs"};
  const auto refused = launcher.launch(spec);
  ASSERT_FALSE(refused) << "a place it cannot join: nothing runs";
  EXPECT_EQ(refused.error().value(), ENOENT);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace squadron::supervisor
