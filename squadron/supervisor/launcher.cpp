#include "squadron/supervisor/launcher.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

#include "squadron/core/limits.hpp"

extern char** environ;

namespace squadron::supervisor {

namespace fs = std::filesystem;
using boost::system::error_code;

fs::path resolve_program(const std::string& program, const fs::path& cwd) {
  auto executable = [](const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string::npos) {
    fs::path p(program);
    if (p.is_relative()) p = cwd / p;
    return executable(p) ? p.lexically_normal() : fs::path{};
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t colon = dirs.find(':', start);
    const std::string dir =
        dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    const fs::path candidate = (dir.empty() ? fs::path(".") : fs::path(dir)) / program;
    if (executable(candidate)) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return {};
}

namespace {

struct Pipe {
  int read = -1, write = -1;
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read = fds[0];
    write = fds[1];
    return true;
  }
  void close_both() {
    if (read >= 0) ::close(read);
    if (write >= 0) ::close(write);
    read = write = -1;
  }
};

error_code last_error() { return {errno, boost::system::system_category()}; }

}  // namespace

boost::system::result<LaunchedProcess> PosixLauncher::launch(const LaunchSpec& spec) {
  if (spec.argv.empty()) return error_code(EINVAL, boost::system::system_category());
  const fs::path program = resolve_program(spec.argv[0], spec.cwd);
  if (program.empty()) return error_code(ENOENT, boost::system::system_category());

  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string_view::npos && spec.env.count(std::string(kv.substr(0, eq))) != 0)
      continue;
    env_storage.emplace_back(kv);
  }
  for (const auto& [k, v] : spec.env) env_storage.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_storage = spec.argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string path = program.string();
  const std::string cwd = spec.cwd.string();
  std::vector<std::string> join;  // c_str() in the child
  for (const auto& f : spec.join) join.push_back(f.string());

  Pipe out, err, status;
  // The inherited descriptors, first copied above the range they land in (3 .. 3+n-1), so that
  // placing one never overwrites another; the copies are close-on-exec and closed below.
  std::vector<int> inherit;
  auto close_all = [&] {
    out.close_both();
    err.close_both();
    status.close_both();
    for (int fd : inherit) ::close(fd);
  };
  const int first_free = 3 + static_cast<int>(spec.inherit_fds.size());
  for (int fd : spec.inherit_fds) {
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, first_free);
    if (copy < 0) {
      const auto ec = last_error();
      close_all();
      return ec;
    }
    inherit.push_back(copy);
  }
  // Where its output goes: two pipes, or one named pipe that outlives us (child_out is the
  // child's end, opened for reading and writing so that it never lacks a reader).
  int child_out = -1;
  if (!spec.output_fifo.empty()) {
    ::unlink(spec.output_fifo.c_str());
    if (::mkfifo(spec.output_fifo.c_str(), 0600) != 0) {
      const auto ec = last_error();
      close_all();
      return ec;
    }
    child_out = ::open(spec.output_fifo.c_str(), O_RDWR | O_CLOEXEC);
    out.read = child_out < 0 ? -1 : ::open(spec.output_fifo.c_str(), O_RDONLY | O_CLOEXEC);
    if (child_out < 0 || out.read < 0) {
      const auto ec = last_error();
      if (child_out >= 0) ::close(child_out);
      close_all();
      return ec;
    }
    (void)::fcntl(child_out, F_SETPIPE_SZ, 1 << 20);  // best effort: pipe-max-size may be lower
    out.write = child_out;
  }
  if ((child_out < 0 && (!out.open() || !err.open())) || !status.open()) {
    const auto ec = last_error();
    close_all();
    return ec;
  }
  // The soft descriptor limit the fleet started with, not the one it raised for itself.
  rlimit child_nofile{};
  const bool restore_nofile =
      core::original_fd_limit() != 0 && ::getrlimit(RLIMIT_NOFILE, &child_nofile) == 0;
  if (restore_nofile) child_nofile.rlim_cur = core::original_fd_limit();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const auto ec = last_error();
    close_all();
    return ec;
  }
  if (pid == 0) {
    // Child.
    ::setpgid(0, 0);
    if (!spec.outlive_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the supervisor died before prctl took effect
    }
    // Into its place (its cgroup) first: what follows, exec included, counts against its limits.
    if (!join.empty()) {
      char pid_text[24];
      int n = 0;
      for (long v = ::getpid(); v > 0; v /= 10) pid_text[n++] = static_cast<char>('0' + v % 10);
      for (int i = 0; i < n / 2; ++i) std::swap(pid_text[i], pid_text[n - 1 - i]);
      for (const auto& f : join) {
        const int fd = ::open(f.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ::write(fd, pid_text, static_cast<std::size_t>(n)) != n) {
          const int e = errno;
          (void)!::write(status.write, &e, sizeof e);
          ::_exit(127);
        }
        ::close(fd);
      }
    }
    // Then who it runs as: groups first, while it still may change them.
    if (spec.run_as) {
      const auto& who = *spec.run_as;
      if (::setgroups(who.groups.size(), who.groups.data()) != 0 || ::setgid(who.gid) != 0 ||
          ::setuid(who.uid) != 0) {
        const int e = errno;
        (void)!::write(status.write, &e, sizeof e);
        ::_exit(127);
      }
    }
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) ::signal(s, SIG_DFL);
    if (restore_nofile) ::setrlimit(RLIMIT_NOFILE, &child_nofile);
    ::dup2(out.write, STDOUT_FILENO);
    ::dup2(child_out >= 0 ? child_out : err.write, STDERR_FILENO);
    // The status pipe moves above the inherited range before that range is filled.
    int report = status.write;
    if (report < first_free) report = ::fcntl(status.write, F_DUPFD_CLOEXEC, first_free);
    const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    for (std::size_t i = 0; i < inherit.size(); ++i) ::dup2(inherit[i], 3 + static_cast<int>(i));
    // Everything else above 2 (the fleet's listeners and connections, which Asio opens without
    // SOCK_CLOEXEC, its log files, the status pipe) closes at exec; the status pipe stays open
    // until then so that a failed exec can still say why.
    if (::syscall(SYS_close_range, static_cast<unsigned>(first_free), ~0U, CLOSE_RANGE_CLOEXEC) !=
        0) {
      for (int fd = first_free; fd < 65536; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      const int e = errno;
      (void)!::write(report, &e, sizeof e);
      ::_exit(127);
    }
    ::execve(path.c_str(), argv.data(), envp.data());
    const int e = errno;
    (void)!::write(report, &e, sizeof e);
    ::_exit(127);
  }
  // Parent. Also set the group from this side, so it holds whichever runs first.
  ::setpgid(pid, pid);
  ::close(out.write);
  if (err.write >= 0) ::close(err.write);
  ::close(status.write);
  for (int fd : inherit) ::close(fd);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(status.read, &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  ::close(status.read);
  if (n == sizeof child_errno) {
    // exec failed: reap the child and report why.
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(out.read);
    if (err.read >= 0) ::close(err.read);
    if (child_out >= 0) ::unlink(spec.output_fifo.c_str());
    return error_code(child_errno, boost::system::system_category());
  }
  ::fcntl(out.read, F_SETFL, O_NONBLOCK);
  if (err.read >= 0) ::fcntl(err.read, F_SETFL, O_NONBLOCK);
  return LaunchedProcess{pid, out.read, err.read};
}

void PosixLauncher::signal_group(pid_t pid, int signo) {
  if (pid > 0) ::kill(-pid, signo);
}

}  // namespace squadron::supervisor
