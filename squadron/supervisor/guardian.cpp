#include "squadron/supervisor/guardian.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <initializer_list>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "squadron/supervisor/cgroups.hpp"

namespace squadron::supervisor {
namespace {

constexpr int kMaxGroups = 8192;
constexpr int kMaxDirs = 8;
constexpr int kPathMax = 4096;

// The fleet's cgroup directories, as the supervisor said them.
struct Dirs {
  char kill[kPathMax] = {};     // whose instance cgroups list every process
  char freezer[kPathMax] = {};  // v1's freezer (may be empty)
  char remove[kMaxDirs][kPathMax] = {};
  int removes = 0;
  char secrets[kPathMax] = {};  // the instances' secrets: <dir>/<instance>/<file>
};

// Calls on_entry(fd of `dir`, name, type) for every entry of `dir` but . and .. (getdents64: no
// allocation).
template <typename F>
void each_entry(const char* dir, F&& on_entry) {
  const int fd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  alignas(8) char buf[8192];
  struct Entry {
    ino64_t ino;
    off64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[1];
  };
  while (true) {
    const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n <= 0) break;
    for (long at = 0; at < n;) {
      const auto* e = reinterpret_cast<const Entry*>(buf + at);
      at += e->reclen;
      if (std::strcmp(e->name, ".") != 0 && std::strcmp(e->name, "..") != 0)
        on_entry(fd, e->name, e->type);
    }
  }
  ::close(fd);
}

// Calls on_dir with the path and the name of every subdirectory of `dir`.
template <typename F>
void each_subdir(const char* dir, F&& on_dir) {
  each_entry(dir, [&](int, const char* name, unsigned char type) {
    char path[kPathMax];
    const std::size_t len = std::strlen(dir);
    if (type != DT_DIR || len + std::strlen(name) + 2 > sizeof path) return;
    std::memcpy(path, dir, len);
    path[len] = '/';
    std::strcpy(path + len + 1, name);
    on_dir(path, name);
  });
}

// Removes `dir`'s files (not its folders), then `dir` itself if it is empty.
void remove_files_then(const char* dir) {
  each_entry(dir, [](int fd, const char* name, unsigned char type) {
    if (type != DT_DIR) ::unlinkat(fd, name, 0);
  });
  ::rmdir(dir);
}

// Kills every process in the fleet's instance cgroups (even those that left their process
// group), then removes the cgroups.
void kill_cgroups(const Dirs& d) {
  if (d.kill[0] != '\0') {
    each_subdir(d.kill, [&](const char* path, const char* name) {
      char state[kPathMax] = {};
      if (d.freezer[0] != '\0' && std::strlen(d.freezer) + std::strlen(name) + 16 < sizeof state) {
        std::strcpy(state, d.freezer);
        std::strcat(state, "/");
        std::strcat(state, name);
        std::strcat(state, "/freezer.state");
      }
      kill_cgroup(path, state);
    });
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    bool left = false;
    for (int i = 0; i < d.removes; ++i) {
      each_subdir(d.remove[i], [&](const char* path, const char*) {
        if (::rmdir(path) != 0) left = true;
      });
      if (::rmdir(d.remove[i]) != 0 && errno != ENOENT) left = true;
    }
    if (!left) break;
    timespec t{0, 5'000'000};
    ::nanosleep(&t, nullptr);
  }
}

// The guardian's whole life, after fork: async-signal-safe calls only, no allocation.
[[noreturn]] void guard(int fd) {
  ::setpgid(0, 0);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::signal(s, SIG_IGN);
  static pid_t groups[kMaxGroups];
  static Dirs dirs;
  int count = 0;
  char buf[512];
  static char line[kPathMax + 2];
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
      const char op = line_len > 0 ? line[0] : 0;
      if ((op == 'K' || op == 'F' || op == 'R' || op == 'S') &&
          line_len < static_cast<int>(sizeof line) && line_len - 1 < kPathMax) {
        char* to = op == 'K'                 ? dirs.kill
                   : op == 'F'               ? dirs.freezer
                   : op == 'S'               ? dirs.secrets
                   : dirs.removes < kMaxDirs ? dirs.remove[dirs.removes++]
                                             : nullptr;
        if (to != nullptr) {
          std::memcpy(to, line + 1, static_cast<std::size_t>(line_len - 1));
          to[line_len - 1] = '\0';
        }
        line_len = 0;
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
  kill_cgroups(dirs);
  if (dirs.secrets[0] != '\0') {  // secrets never outlive the fleet on disk
    each_subdir(dirs.secrets, [](const char* path, const char*) { remove_files_then(path); });
    ::rmdir(dirs.secrets);
  }
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

void Guardian::say(char op, const std::string& path) noexcept {
  if (fd_ < 0 || path.empty() || path.size() >= static_cast<std::size_t>(kPathMax)) return;
  const std::string msg = op + path + "\n";
  ssize_t sent;
  do {
    sent = ::send(fd_, msg.data(), msg.size(), MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
}

void Guardian::watch_cgroups(const Cgroups& cgroups) noexcept {
  say('K', cgroups.kill_dir().string());
  say('F', cgroups.freezer_dir().string());
  for (const auto& d : cgroups.fleet_dirs()) say('R', d.string());
}

void Guardian::remove_secrets(const std::filesystem::path& dir) noexcept { say('S', dir.string()); }

void Guardian::forget(pid_t pgid) noexcept { send('-', pgid); }

}  // namespace squadron::supervisor
