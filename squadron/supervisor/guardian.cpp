#include "squadron/supervisor/guardian.hpp"

#include <cerrno>
#include <initializer_list>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace squadron::supervisor {
namespace {

constexpr int kMaxGroups = 8192;

// The guardian's whole life, after fork: async-signal-safe calls only, no allocation.
[[noreturn]] void guard(int fd) {
  ::setpgid(0, 0);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::signal(s, SIG_IGN);
  static pid_t groups[kMaxGroups];
  int count = 0;
  char buf[512];
  char line[32];
  int line_len = 0;
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the supervisor is gone
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] != '\n') {
        if (line_len < static_cast<int>(sizeof line)) line[line_len++] = buf[i];
        continue;
      }
      pid_t pgid = 0;
      for (int j = 1; j < line_len; ++j) pgid = pgid * 10 + (line[j] - '0');
      if (line_len > 1 && line[0] == '+' && count < kMaxGroups) {
        groups[count++] = pgid;
      } else if (line_len > 1 && line[0] == '-') {
        for (int j = 0; j < count; ++j) {
          if (groups[j] == pgid) {
            groups[j] = groups[--count];
            break;
          }
        }
      }
      line_len = 0;
    }
  }
  for (int j = 0; j < count; ++j) ::kill(-groups[j], SIGKILL);
  ::_exit(0);
}

}  // namespace

Guardian::Guardian() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return;
  }
  if (pid == 0) {
    ::close(fds[0]);
    // Close everything else the supervisor had open (listening sockets, pipes of instances).
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != fds[1]) ::close(fd);
    }
    guard(fds[1]);
  }
  ::close(fds[1]);
  fd_ = fds[0];
  pid_ = pid;
}

Guardian::~Guardian() {
  if (fd_ < 0) return;
  ::close(fd_);
  int status;
  ::waitpid(pid_, &status, 0);
}

void Guardian::send(char op, pid_t pgid) noexcept {
  if (fd_ < 0 || pgid <= 0) return;
  char msg[24];
  int len = 0;
  char digits[16];
  int d = 0;
  for (pid_t v = pgid; v > 0; v /= 10) digits[d++] = static_cast<char>('0' + v % 10);
  msg[len++] = op;
  while (d > 0) msg[len++] = digits[--d];
  msg[len++] = '\n';
  ssize_t sent;
  do {
    sent = ::send(fd_, msg, static_cast<std::size_t>(len), MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
}

void Guardian::watch(pid_t pgid) noexcept { send('+', pgid); }
void Guardian::forget(pid_t pgid) noexcept { send('-', pgid); }

}  // namespace squadron::supervisor
