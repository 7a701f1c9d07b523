#include "squadron/supervisor/supervisor.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <set>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "squadron/core/interpolate.hpp"
#include "squadron/core/ports.hpp"
#include "squadron/core/quantity.hpp"
#include "squadron/core/spawn.hpp"
#include "squadron/http/client.hpp"
#include "squadron/http/h2_client.hpp"
#include "squadron/supervisor/backoff.hpp"
#include "squadron/supervisor/grpc_health.hpp"
#include "squadron/supervisor/guardian.hpp"
#include "squadron/supervisor/probe_tracker.hpp"

namespace squadron::supervisor {

namespace asio = boost::asio;
using asio::experimental::awaitable_operators::operator||;
using tcp = asio::ip::tcp;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::size_t kRingLines = 1000;
constexpr std::size_t kMaxLine = 16 * 1024;

// Whether some process listens on `port` (any address): a fixed port is handed to a new process
// only once nobody holds it, so that a probe never reaches the process before it.
bool port_held(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;  // cannot tell: the start will say
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // TIME_WAIT is no holder
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(port);
  const bool held =
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno == EADDRINUSE;
  ::close(fd);
  return held;
}

// What the processes of each group in `groups` use, from /proc (one pass over it): without a
// cgroup, an instance is its process group.
template <typename Map>
std::map<pid_t, Usage> usage_of_groups(const Map& groups) {
  std::map<pid_t, Usage> out;
  static const long page = ::sysconf(_SC_PAGESIZE);
  static const long hz = ::sysconf(_SC_CLK_TCK);
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] < '1' || name[0] > '9') continue;
    const int fd = ::open((e.path() / "stat").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[1024];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    // The command may hold spaces and parentheses: fields count from after the last ')'.
    const char* p = std::strrchr(buf, ')');
    if (p == nullptr) continue;
    unsigned long long f[24] = {};  // f[k]: field k + 3 of stat(5)
    char state = 0;
    if (std::sscanf(p + 2,
                    "%c %llu %llu %*u %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                    "%*d %*d %*u %*u %llu",
                    &state, &f[1], &f[2], &f[11], &f[12], &f[21]) != 6)
      continue;
    const auto it = groups.find(static_cast<pid_t>(f[2]));  // f[2]: the process group
    if (it == groups.end()) continue;
    auto& u = out[it->first];
    ++u.processes;
    u.cpu_usec += (f[11] + f[12]) * 1'000'000ULL / static_cast<unsigned long long>(hz);
    u.rss_bytes += f[21] * static_cast<unsigned long long>(page);
  }
  return out;
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// The gRPC health protocol's Check over the thread's HTTP/2 pool (its connection to the instance
// kept for the next probe): SERVING with grpc-status 0 passes.
asio::awaitable<bool> grpc_probe(asio::io_context& context, asio::ip::address address,
                                 std::uint16_t port, const ProbeSpec& probe) {
  const std::string host = address.to_string();
  const std::string key = "probe " + host + ":" + std::to_string(port);
  const std::string bytes = health_check_request(host + ":" + std::to_string(port), *probe.grpc);
  const std::array<asio::const_buffer, 1> request{asio::buffer(bytes)};
  http::ExchangeOptions options;
  options.deadline = std::chrono::steady_clock::now() + probe.timeout;
  options.connect_timeout = probe.timeout;
  http::Response res;
  const auto x =
      co_await http::H2Pool::of(context).exchange({key, host, port}, request, options, res);
  if (x.outcome != http::Outcome::kAnswered || res.status != 200) co_return false;
  std::string body = std::move(res.body);
  std::optional<std::string_view> status = res.header("grpc-status");  // trailers only
  http::Fields trailers;
  while (res.stream) {
    http::BodyPiece piece = co_await res.stream();
    if (piece.failed()) co_return false;
    body += piece.data;
    if (piece.end) {
      trailers = std::move(piece.trailers);
      break;
    }
  }
  for (const auto& [name, value] : trailers) {
    if (name == "grpc-status") status = value;
  }
  co_return status == std::optional<std::string_view>("0") && health_status(body) == kServing;
}

// One probe within its timeout: a TCP connect, (with a path) a GET whose status must be 2xx
// over the thread's connection pool — the connection not kept (Connection: close), as the
// kubelet's probes — or gRPC's health Check.
asio::awaitable<bool> probe_once(asio::ip::address address, std::uint16_t port, ProbeSpec probe) {
  auto executor = co_await asio::this_coro::executor;
  if (probe.port != 0) port = probe.port;
  if (probe.grpc) {
    auto* io = executor.target<asio::io_context::executor_type>();
    if (io == nullptr) co_return false;
    co_return co_await grpc_probe(io->context(), address, port, probe);
  }
  if (probe.path.empty()) {
    tcp::socket socket(executor);
    asio::steady_timer deadline(executor, probe.timeout);
    auto connected =
        co_await (socket.async_connect({address, port}, kAwait) || deadline.async_wait(kAwait));
    co_return connected.index() == 0 && !std::get<0>(std::get<0>(connected));
  }
  static constexpr std::pair<std::string_view, std::string_view> kFields[] = {
      {"Connection", "close"}};
  http::SimpleRequest request;
  request.target = probe.path;
  request.fields = kFields;
  request.deadline = std::chrono::steady_clock::now() + probe.timeout;
  request.connect_timeout = probe.timeout;
  http::Response res;
  auto* io = executor.target<asio::io_context::executor_type>();
  if (io == nullptr) co_return false;
  const auto x = co_await http::ConnectionPool::of(io->context())
                     .send(address.to_string(), port, request, res);
  co_return x.outcome == http::Outcome::kAnswered&& res.status >= 200 && res.status < 300;
}

}  // namespace

struct Supervisor::Instance : std::enable_shared_from_this<Instance> {
  Instance(Supervisor& s, InstanceSpec sp, std::string id)
      : sup(&s),
        spec(std::move(sp)),
        backoff(s.clock_),
        ready(spec.ready.interval, spec.ready.threshold, s.clock_),
        live(spec.live ? spec.live->interval : std::chrono::seconds(1),
             spec.live ? spec.live->threshold : 1, s.clock_),
        wait_timer(s.io_),
        kill_timer(s.io_) {
    st.service = spec.service;
    st.id = std::move(id);
    st.revision = spec.revision;
  }

  // Nested in Supervisor, so these reach its private parts for the free coroutines below.
  void notify() { sup->changed(*this); }
  void remove() { sup->erase(st.id); }
  ProcessLauncher& launcher() { return sup->launcher_; }
  Guardian* guardian() { return sup->guardian_; }
  Isolation* isolation() { return sup->isolation_; }
  std::filesystem::path secrets_dir() const {
    return sup->secrets_dir_.empty() ? std::filesystem::path{} : sup->secrets_dir_ / st.id;
  }
  // Where it listens and is probed (HOST).
  const asio::ip::address& address() const { return sup->instance_address_; }
  // The named pipe its output goes through when instances outlive the supervisor (empty: none).
  std::filesystem::path fifo() const {
    return sup->fifo_dir_.empty() ? std::filesystem::path{} : sup->fifo_dir_ / (st.id + ".out");
  }
  // Its read end, opened anew (-1: none).
  int open_fifo() const {
    const auto f = fifo();
    return f.empty() ? -1 : ::open(f.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  }

  // SIGKILL to everything of it: its process group, and its cgroup (what left the group too).
  void kill_all() {
    sup->launcher_.signal_group(st.pid, SIGKILL);
    if (placed && sup->isolation_ != nullptr) sup->isolation_->kill(st.id);
  }

  // Processes of it the kernel killed for its memory limit since this start.
  std::uint64_t oom_kills_since_start() const {
    if (!placed || sup->isolation_ == nullptr) return 0;
    const auto u = sup->isolation_->usage(st.id);
    return u && u->oom_kills > oom_baseline ? u->oom_kills - oom_baseline : 0;
  }

  void set_state(InstanceState s) {
    if (st.state == s) return;
    st.state = s;
    sup->changed(*this);
  }

  ~Instance() {
    if (log_file != nullptr) std::fclose(log_file);
  }

  void add_line(std::string_view line) {
    if (line.size() > kMaxLine) line = line.substr(0, kMaxLine);
    ring.emplace_back(line);
    if (ring.size() > kRingLines) ring.pop_front();
    write_log(line);
    if (sup->observer_ != nullptr) sup->observer_->on_output(st, line);
  }

  void write_log(std::string_view line) {
    if (sup->log_dir_.empty()) return;
    const auto path = sup->log_dir_ / (st.id + ".log");
    if (log_file != nullptr && log_bytes + line.size() + 1 > sup->log_max_bytes_) {
      std::fclose(log_file);
      log_file = nullptr;
      std::error_code ec;
      std::filesystem::rename(path, sup->log_dir_ / (st.id + ".log.1"), ec);
    }
    if (log_file == nullptr) {
      // Owner only: a service's output may carry what it was given.
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      log_file = fd >= 0 ? ::fdopen(fd, "a") : nullptr;
      if (log_file == nullptr) {
        if (fd >= 0) ::close(fd);
        return;  // logging to disk is best effort; the ring still has it
      }
      std::error_code ec;
      const auto size = std::filesystem::file_size(path, ec);
      log_bytes = ec ? 0 : static_cast<std::size_t>(size);
    }
    std::fwrite(line.data(), 1, line.size(), log_file);
    std::fputc('\n', log_file);
    std::fflush(log_file);  // `logs -f` readers see each line as it comes
    log_bytes += line.size() + 1;
  }

  Supervisor* sup;
  InstanceSpec spec;
  InstanceStatus st;
  RestartBackoff backoff;
  ProbeTracker ready;
  ProbeTracker live;
  asio::steady_timer wait_timer;  // probe intervals and backoff waits; cancelled by stop()
  asio::steady_timer kill_timer;  // SIGKILL after the grace period
  std::deque<std::string> ring;
  std::FILE* log_file = nullptr;
  std::size_t log_bytes = 0;
  bool stop_requested = false;
  bool running = false;    // a process exists (started, not yet reaped)
  bool loop_done = false;  // run_instance returned because of the restart policy
  bool placed = false;     // its isolation made its place (cgroup) for this start
  LaunchSpec launched;     // this start's launch (environment, cgroup, user): exec probes too
  std::uint64_t oom_baseline = 0;  // the place's OOM kills when this start began
  bool adopting = false;           // its first watch is of the process adopt() was handed
  bool adopted = false;            // its process is not our child: its exit status cannot be read
  bool detached = false;           // let go by detach(): nothing of it is touched again
  std::set<asio::posix::stream_descriptor*> readers;     // its output's, while read
  asio::posix::stream_descriptor* exit_watch = nullptr;  // its pidfd's, while watched
};

namespace {

asio::awaitable<void> read_output(std::shared_ptr<Supervisor::Instance> self,
                                  std::unique_ptr<asio::posix::stream_descriptor> d) {
  std::string partial;
  char buf[4096];
  self->readers.insert(d.get());
  while (true) {
    auto [ec, n] = co_await d->async_read_some(asio::buffer(buf), kAwait);
    if (self->detached) co_return;  // what is left in the pipe is the next supervisor's
    if (ec) break;
    partial.append(buf, n);
    std::size_t start = 0;
    for (auto nl = partial.find('\n'); nl != std::string::npos; nl = partial.find('\n', start)) {
      self->add_line(std::string_view(partial).substr(start, nl - start));
      start = nl + 1;
    }
    partial.erase(0, start);
    if (partial.size() > kMaxLine) {
      self->add_line(partial);
      partial.clear();
    }
  }
  if (!partial.empty()) self->add_line(partial);
  self->readers.erase(d.get());
}

// Takes `fd` into the reactor of `executor`; once `ec` is set (by this call or an earlier one)
// it closes `fd` instead and returns nullptr. A negative `fd` is ignored.
std::unique_ptr<asio::posix::stream_descriptor> adopt(const asio::any_io_executor& executor, int fd,
                                                      boost::system::error_code& ec) {
  if (fd < 0) return nullptr;
  auto d = std::make_unique<asio::posix::stream_descriptor>(executor);
  if (!ec) d->assign(fd, ec);
  if (ec) {
    ::close(fd);
    return nullptr;
  }
  return d;
}

// The instance's own variables (${PORT}, ${SQUADRON_INSTANCE}, ...) in `argv` and the values of
// `env`, as the manifest left them for launch ($$: a literal $). Error: what is not set.
std::optional<std::string> expand_instance_variables(std::vector<std::string>& argv,
                                                     std::map<std::string, std::string>& env) {
  const auto given = env;
  const core::VariableLookup lookup = [&](std::string_view name) -> std::optional<std::string> {
    const auto it = given.find(std::string(name));
    return it == given.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  auto expand = [&](std::string& s) -> std::optional<std::string> {
    if (s.find('$') == std::string::npos) return std::nullopt;
    auto r = core::interpolate(s, lookup);
    if (auto* e = std::get_if<core::VariableError>(&r)) return e->message;
    s = std::move(std::get<std::string>(r));
    return std::nullopt;
  };
  for (auto& a : argv) {
    if (auto e = expand(a)) return e;
  }
  for (auto& [k, v] : env) {
    if (instance_variable(k)) continue;  // ours: as set
    if (auto e = expand(v)) return e;
  }
  return std::nullopt;
}

// Writes the instance's secrets into `dir` (made 0700 and owned by its user) and sets their
// variables in `env`. The error names the secret and the source, never the value.
std::optional<std::string> hand_secrets(const InstanceSpec& spec, const std::filesystem::path& dir,
                                        const std::optional<RunAs>& who,
                                        std::map<std::string, std::string>& env) {
  if (spec.secrets.empty()) return std::nullopt;
  if (dir.empty()) return "no place for secrets";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (::mkdir(dir.c_str(), 0700) != 0)
    return "cannot make " + dir.string() + ": " + std::strerror(errno);
  const uid_t uid = who ? who->uid : ::getuid();
  const gid_t gid = who ? who->gid : ::getgid();
  if (who && ::chown(dir.c_str(), uid, gid) != 0)
    return "cannot give " + dir.string() + " to its user";
  for (const auto& s : spec.secrets) {
    std::string value;
    if (!s.from_env.empty()) {
      const char* v = std::getenv(s.from_env.c_str());
      if (v == nullptr) return "secret " + s.name + ": " + s.from_env + " is not set";
      value = v;
    } else {
      std::ifstream in(s.file, std::ios::binary);
      if (!in) return "secret " + s.name + ": cannot read " + s.file.string();
      value.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const auto path = dir / s.target;
    const int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0400);
    if (fd < 0) return "secret " + s.name + ": cannot write " + path.string();
    const bool written =
        ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
    const bool owned = !who || ::fchown(fd, uid, gid) == 0;
    ::close(fd);
    if (!written || !owned) return "secret " + s.name + ": cannot write " + path.string();
    if (!s.env.empty()) {
      // As an environment variable, a file's trailing newline is not part of the secret.
      while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
      env[s.env] = value;
    }
  }
  return std::nullopt;
}

// Reads a pipe until its end, dropping what comes.
asio::awaitable<void> drain(std::unique_ptr<asio::posix::stream_descriptor> d) {
  char buf[1024];
  while (true) {
    auto [ec, n] = co_await d->async_read_some(asio::buffer(buf), kAwait);
    if (ec) break;
  }
}

// An exec probe: `probe.command` beside the instance (its cwd, environment, user, cgroup), passing
// when it exits 0 within the timeout; past it, its group is killed. Its output is read and
// dropped (a probe that writes must not die of a full pipe).
asio::awaitable<bool> exec_probe(std::shared_ptr<Supervisor::Instance> self, ProbeSpec probe) {
  auto executor = co_await asio::this_coro::executor;
  LaunchSpec spec = self->launched;
  spec.argv = probe.command;
  spec.inherit_fds.clear();
  auto env = spec.env;  // already expanded: only the command's references are left
  if (self->spec.expand_variables && expand_instance_variables(spec.argv, env)) co_return false;
  auto child = self->launcher().launch(spec);
  if (!child) co_return false;
  for (int fd : {child->stdout_fd, child->stderr_fd}) {
    boost::system::error_code dec;
    if (auto d = adopt(executor, fd, dec))
      core::spawn(executor, drain(std::move(d)), "exec probe output");
  }
  boost::system::error_code ec;
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child->pid, 0));
  if (auto exited = adopt(executor, pidfd, ec)) {
    asio::steady_timer deadline(executor, probe.timeout);
    auto r = co_await (exited->async_wait(asio::posix::descriptor_base::wait_read, kAwait) ||
                       deadline.async_wait(kAwait));
    if (r.index() == 1) self->launcher().signal_group(child->pid, SIGKILL);
  } else {
    self->launcher().signal_group(child->pid, SIGKILL);
  }
  int status = 0;
  while (::waitpid(child->pid, &status, 0) < 0 && errno == EINTR) {
  }
  self->launcher().signal_group(child->pid, SIGKILL);  // what it left behind, if anything
  co_return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// One probe of any kind: none (passes), exec, TCP or HTTP.
asio::awaitable<bool> probe(std::shared_ptr<Supervisor::Instance> self, std::uint16_t port,
                            ProbeSpec spec) {
  if (spec.none) co_return true;
  if (!spec.command.empty()) co_return co_await exec_probe(std::move(self), std::move(spec));
  co_return co_await probe_once(self->address(), port, std::move(spec));
}

// Reaps the instance's process once it has exited. The rest of its group (a script's
// background jobs) is killed first, while the unreaped leader still holds the pid and so the
// group id: a signal after the reap could reach a new process that got the same number. An
// adopted process is not our child: its status is not ours to read (nullopt), and its group is
// killed after its exit (the kernel hands out no pid still used as a group's id).
std::optional<int> reap(Supervisor::Instance& self) {
  if (self.adopted) {
    int status = 0;
    const bool ours = ::waitpid(self.st.pid, &status, WNOHANG) == self.st.pid;  // it may be
    self.kill_all();
    self.running = false;
    self.kill_timer.cancel();
    return ours ? std::optional<int>(status) : std::nullopt;
  }
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(self.st.pid), &info, WEXITED | WNOWAIT) != 0 &&
         errno == EINTR) {
  }
  self.kill_all();
  int status = 0;
  while (::waitpid(self.st.pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (auto* g = self.guardian()) g->forget(self.st.pid);
  self.running = false;
  self.kill_timer.cancel();
  return status;
}

// Watches a process started (or adopted) for the instance: probes it by its spec until it ends,
// then reaps it. Returns its wait status (nullopt: unknown, for an adopted one), or at once,
// with the process left running, when the supervisor let it go (Supervisor::detach).
asio::awaitable<std::optional<int>> watch_process(
    std::shared_ptr<Supervisor::Instance> self,
    std::unique_ptr<asio::posix::stream_descriptor> exited,
    std::unique_ptr<asio::posix::stream_descriptor> out,
    std::unique_ptr<asio::posix::stream_descriptor> err) {
  auto executor = co_await asio::this_coro::executor;
  auto& st = self->st;
  const auto& spec = self->spec;
  const std::uint16_t port = st.port;
  if (!self->adopted) {
    // A (re)start is news even when the state stays "starting": the pid and port changed.
    st.state = InstanceState::kStarting;
    self->notify();
  }
  for (auto* d : {&out, &err}) {
    if (*d) core::spawn(executor, read_output(self, std::move(*d)), "output of " + st.id);
  }
  self->exit_watch = exited.get();
  const auto launched = std::chrono::steady_clock::now();
  while (true) {
    const bool ready_now = self->ready.passing();
    // While starting: every 5 ms for the first 200 ms (a cold start is often that short), then
    // every probe_interval_while_starting.
    const auto starting_interval =
        std::chrono::steady_clock::now() - launched < std::chrono::milliseconds(200)
            ? std::min<std::chrono::milliseconds>(std::chrono::milliseconds(5),
                                                  spec.probe_interval_while_starting)
            : spec.probe_interval_while_starting;
    const auto interval = ready_now ? spec.ready.interval : starting_interval;
    self->wait_timer.expires_after(interval);
    auto r = co_await (exited->async_wait(asio::posix::descriptor_base::wait_read, kAwait) ||
                       self->wait_timer.async_wait(kAwait));
    if (self->detached) co_return std::nullopt;
    if (r.index() == 0) break;           // the process ended
    if (self->stop_requested) continue;  // wait for the exit that stop() caused
    if (self->ready.due() || !ready_now) {
      const bool passed = co_await probe(self, port, spec.ready);
      if (self->detached) co_return std::nullopt;
      self->ready.record(passed);
      if (self->ready.passing() && !ready_now) self->backoff.on_ready();
      self->set_state(self->ready.passing() ? InstanceState::kReady : InstanceState::kStarting);
    }
    if (spec.live && self->live.due()) {
      const bool passed = co_await probe(self, port, *spec.live);
      if (self->detached) co_return std::nullopt;
      self->live.record(passed);
      if (self->live.failed_after_passing()) {
        self->add_line("squadron: liveness probe failed " + std::to_string(spec.live->threshold) +
                       " times: restarting");
        self->kill_all();
      }
    }
  }
  self->exit_watch = nullptr;
  co_return reap(*self);
}

// Says how the instance's process ended (its last_exit, an OOM kill told apart); whether it
// failed.
bool judge_exit(Supervisor::Instance& self, std::optional<int> status) {
  auto& st = self.st;
  if (!status) {
    st.last_exit = "ended (adopted from an earlier agent: its exit status is unknown)";
    return true;
  }
  st.last_exit = describe_exit(*status);
  bool failed = !(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  if (const auto oom = self.oom_kills_since_start(); oom > 0) {
    // The kernel's OOM killer, not the program: said as Kubernetes says OOMKilled.
    st.oom_kills += static_cast<int>(oom);
    const auto& limit = self.spec.resources.memory_bytes;
    const std::string shown = limit ? core::format_bytes(*limit) : "of the fleet";
    if (WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) {
      st.last_exit = "oom-killed (limit " + shown + ")";
    } else {
      st.last_exit += " after an oom-kill (limit " + shown + ")";
    }
    failed = true;
    self.add_line("squadron: " + st.last_exit + ": the kernel killed " +
                  (oom == 1 ? std::string("a process") : std::to_string(oom) + " processes") +
                  " of it for using more memory than its limit");
  }
  return failed;
}

// Supervises one instance until it is stopped or its restart policy says no more. Every way a
// start can fail (no port, no descriptors, fork, exec, pidfd) is a line in its log, a state
// change (an event) and a retry after the backoff: supervision never gives up by itself.
asio::awaitable<void> run_instance(std::shared_ptr<Supervisor::Instance> self,
                                   ProcessLauncher* launcher) {
  auto executor = co_await asio::this_coro::executor;
  auto& st = self->st;
  auto& spec = self->spec;
  bool waited_for_port = false;
  while (!self->stop_requested) {
    std::optional<std::string> cannot;  // why this start failed before the process ran
    bool failed = true;
    if (self->adopting) {
      // A process that a supervisor before this one started (Supervisor::adopt): watched as it
      // is, from its pid and its output's named pipe.
      self->adopting = false;
      boost::system::error_code ec;
      const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, st.pid, 0));
      auto exited = adopt(executor, pidfd, ec);
      auto out = adopt(executor, self->open_fifo(), ec);
      std::optional<int> status;  // unknown: it is not our child
      if (exited) {
        status = co_await watch_process(self, std::move(exited), std::move(out), nullptr);
        if (self->detached) co_return;
      } else {
        reap(*self);  // gone already
      }
      failed = judge_exit(*self, status);
    } else {
      // A fixed port is handed over, never shared: wait while another process still holds it (a
      // predecessor's straggler, or a stranger), so that the probe reaches this instance only.
      // (A port whose listener the fleet holds and hands over, the gateway's, is held by design.)
      if (spec.port && spec.launch.inherit_fds.empty() && port_held(*spec.port)) {
        if (!waited_for_port) {
          self->add_line("squadron: port " + std::to_string(*spec.port) +
                         " is held by another process; waiting for it");
          waited_for_port = true;
        }
        self->wait_timer.expires_after(std::chrono::milliseconds(20));
        co_await self->wait_timer.async_wait(kAwait);
        continue;
      }
      waited_for_port = false;
      std::uint16_t port = 0;
      if (spec.port) {
        port = *spec.port;
      } else if (auto p = core::pick_port()) {
        port = *p;
      } else {
        cannot = "no free port: " + p.error().message();
      }
      if (!cannot) {
        LaunchSpec launch = spec.launch;
        launch.env["PORT"] = std::to_string(port);
        launch.env["HOST"] = self->address().to_string();
        launch.env["SQUADRON_SERVICE"] = spec.service;
        launch.env["SQUADRON_INSTANCE"] = st.id;
        launch.env["SQUADRON_REVISION"] = spec.revision;
        if (!spec.secrets.empty())
          launch.env["SQUADRON_SECRETS_DIR"] = self->secrets_dir().string();
        if (spec.expand_variables) {
          if (auto bad = expand_instance_variables(launch.argv, launch.env))
            cannot = "in its command or env: " + *bad;
        }
        if (!cannot && !spec.secrets.empty()) {
          // (After the expansion: a secret's value is never read as a reference.)
          if (auto bad = hand_secrets(spec, self->secrets_dir(), launch.run_as, launch.env))
            cannot = *bad;
        }
        boost::system::result<LaunchedProcess> child = boost::system::error_code{};
        self->placed = false;
        if (auto* place = self->isolation(); place != nullptr && !cannot) {
          if (auto join = place->prepare(st.id, spec)) {
            launch.join = std::move(*join);
            self->placed = true;
            const auto before = place->usage(st.id);
            self->oom_baseline = before ? before->oom_kills : 0;
          } else {
            cannot = "no place to run it: " + join.error().message();
          }
        }
        if (!cannot) {
          if (const auto fifo = self->fifo(); !fifo.empty()) {
            launch.outlive_parent = true;
            launch.output_fifo = fifo;
          }
          self->launched = launch;
          child = launcher->launch(launch);
        }
        if (cannot) {
          // nothing ran: said below as a failed start
        } else if (!child) {
          cannot = child.error().message();
        } else {
          st.pid = child->pid;
          st.port = port;
          st.started_at = std::chrono::system_clock::now();
          self->running = true;
          if (auto* g = self->guardian()) g->watch(child->pid);
          self->backoff.on_start();
          self->ready.reset();
          self->live.reset();
          boost::system::error_code ec;
          auto out = adopt(executor, child->stdout_fd, ec);
          auto err = adopt(executor, child->stderr_fd, ec);
          // A pidfd turns "the process ended" into readability (Linux 5.3+); glibc's wrapper
          // lacks C linkage in C++ here, so the system call is made directly.
          const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child->pid, 0));
          if (pidfd < 0 && !ec) ec = {errno, boost::system::system_category()};
          auto exited = adopt(executor, pidfd, ec);
          if (ec) {
            // It cannot be watched: it goes again, and the start counts as failed.
            self->kill_all();
            reap(*self);
            cannot = "cannot watch the process: " + ec.message();
          } else {
            const auto status =
                co_await watch_process(self, std::move(exited), std::move(out), std::move(err));
            if (self->detached) co_return;
            failed = judge_exit(*self, status);
          }
        }
      }
    }
    if (cannot) {
      st.pid = -1;
      st.last_exit = "cannot start: " + *cannot;
      self->add_line("squadron: " + st.last_exit);
      self->backoff.on_start();  // a failed start is a quick exit
    }
    if (self->stop_requested) break;
    if (!cannot &&
        (spec.restart == Restart::kNever || (spec.restart == Restart::kOnFailure && !failed))) {
      self->loop_done = true;
      self->set_state(failed ? InstanceState::kFailed : InstanceState::kStopped);
      self->notify();
      co_return;  // stays listed with its last exit until stopped
    }
    auto delay = self->backoff.on_exit();
    // A start that failed before anything ran is retried after a pause even the first time:
    // what made it fail (descriptors, memory) rarely passes in no time.
    if (cannot) delay = std::max<std::chrono::milliseconds>(delay, self->backoff.policy().first);
    ++st.restarts;
    if (delay.count() > 0) {
      self->set_state(InstanceState::kBackoff);
      self->wait_timer.expires_after(delay);
      co_await self->wait_timer.async_wait(kAwait);
    }
  }
  self->set_state(InstanceState::kStopped);
  self->remove();
}

}  // namespace

Supervisor::Supervisor(asio::io_context& io, ProcessLauncher& launcher, const core::Clock& clock)
    : io_(io), launcher_(launcher), clock_(clock) {}

Supervisor::~Supervisor() {
  if (detached_) return;  // what runs is the next supervisor's, with its secrets and pipes
  // Whatever still runs goes with us.
  for (auto& [id, inst] : instances_) {
    if (inst->running) inst->kill_all();
  }
  if (!secrets_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(secrets_dir_, ec);
  }
}

std::string Supervisor::add(const InstanceSpec& spec) {
  if (!spec.id.empty() && instances_.count(spec.id) != 0) return spec.id;
  const std::string id =
      spec.id.empty() ? spec.service + "-" + std::to_string(++next_index_[spec.service]) : spec.id;
  auto inst = std::make_shared<Instance>(*this, spec, id);
  instances_[id] = inst;
  supervise(inst);
  return id;
}

void Supervisor::supervise(const std::shared_ptr<Instance>& inst) {
  // Should the loop ever end by an exception, its process goes and the loop starts over after
  // the backoff, or the instance is forgotten if it was being stopped: it never sits for good.
  core::spawn(io_, run_instance(inst, &launcher_), "supervision of " + inst->st.id, [this, inst] {
    if (inst->running) {
      inst->kill_all();
      reap(*inst);
    }
    inst->st.pid = -1;
    inst->st.last_exit = "supervision failed; starting over";
    inst->add_line("squadron: " + inst->st.last_exit);
    if (inst->stop_requested || instances_.find(inst->st.id) == instances_.end()) {
      inst->set_state(InstanceState::kStopped);
      erase(inst->st.id);
      return;
    }
    inst->set_state(InstanceState::kBackoff);
    inst->wait_timer.expires_after(inst->backoff.on_exit());
    inst->wait_timer.async_wait([this, inst](boost::system::error_code) { supervise(inst); });
  });
}

void Supervisor::stop(const std::string& id, std::chrono::milliseconds drain) {
  auto it = instances_.find(id);
  if (it == instances_.end()) return;
  auto inst = it->second;
  if (inst->stop_requested) {
    // Already draining: a stop without a drain period (stop_all) cuts the drain short.
    if (drain.count() == 0 && inst->st.state == InstanceState::kDraining) inst->kill_timer.cancel();
    return;
  }
  inst->stop_requested = true;
  if (inst->running && drain.count() > 0) {
    inst->st.state = InstanceState::kDraining;
    changed(*inst);
    inst->kill_timer.expires_after(drain);
    inst->kill_timer.async_wait([this, inst](boost::system::error_code) { terminate(inst); });
    return;
  }
  terminate(inst);
}

void Supervisor::terminate(const std::shared_ptr<Instance>& inst) {
  if (instances_.find(inst->st.id) == instances_.end()) return;  // gone while draining
  inst->st.state = InstanceState::kStopping;
  changed(*inst);
  if (inst->running) {
    launcher_.signal_group(inst->st.pid, inst->spec.stop_signal);
    inst->kill_timer.expires_after(inst->spec.stop_grace);
    inst->kill_timer.async_wait([this, inst](boost::system::error_code ec) {
      if (!ec && inst->running) inst->kill_all();
    });
  } else if (inst->loop_done) {
    erase(inst->st.id);  // ended by its restart policy: nothing left to stop
  } else {
    inst->wait_timer.cancel();  // in backoff: stop waiting; the loop sees stop_requested and ends
  }
}

void Supervisor::stop_all(std::function<void()> done) {
  all_stopped_ = std::move(done);
  std::vector<std::string> ids;
  for (const auto& [id, inst] : instances_) ids.push_back(id);
  for (const auto& id : ids) stop(id);
  if (instances_.empty() && all_stopped_) {
    auto cb = std::move(all_stopped_);
    all_stopped_ = nullptr;
    cb();
  }
}

void Supervisor::changed(Instance& inst) {
  if (observer_ != nullptr) observer_->on_change(inst.st);
}

void Supervisor::erase(const std::string& id) {
  auto it = instances_.find(id);
  if (it == instances_.end()) return;
  if (const auto fifo = it->second->fifo(); !fifo.empty()) ::unlink(fifo.c_str());
  instances_.erase(it);
  if (!secrets_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(secrets_dir_ / id, ec);
  }
  if (isolation_ != nullptr) isolation_->release(id);
  if (observer_ != nullptr) observer_->on_remove(id);
  if (instances_.empty() && all_stopped_) {
    auto cb = std::move(all_stopped_);
    all_stopped_ = nullptr;
    cb();
  }
}

void Supervisor::set_instance_address(const asio::ip::address& address) {
  instance_address_ = address;
}

void Supervisor::set_detachable(std::filesystem::path fifo_dir) {
  std::error_code ec;
  std::filesystem::create_directories(fifo_dir, ec);
  ::chmod(fifo_dir.c_str(), 0700);
  fifo_dir_ = std::move(fifo_dir);
}

std::optional<unsigned long long> process_start_ticks(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command may hold spaces and parentheses: fields count from after the last ')'.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  char state = 0;
  unsigned long long ticks = 0;
  int pgid = 0;
  // Fields 3 (state), 5 (process group) and 22 (start time, in clock ticks since boot).
  if (std::sscanf(text.c_str() + close + 2,
                  "%c %*d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                  &state, &pgid, &ticks) != 3 ||
      state == 'Z' || pgid != pid)
    return std::nullopt;  // gone (a zombie is), or not the leader of its group
  return ticks;
}

std::vector<Supervisor::Held> Supervisor::held() const {
  std::vector<Held> out;
  for (const auto& [id, inst] : instances_) {
    if (!inst->running || inst->st.pid <= 0) continue;
    const auto ticks = process_start_ticks(inst->st.pid);
    if (!ticks) continue;
    Held h;
    h.spec = inst->spec;
    h.spec.id = id;
    h.status = inst->st;
    h.start_ticks = *ticks;
    out.push_back(std::move(h));
  }
  return out;
}

bool Supervisor::adopt(const Held& h) {
  const std::string& id = h.spec.id;
  if (id.empty() || instances_.count(id) != 0) return false;
  const auto ticks = process_start_ticks(h.status.pid);
  if (!ticks || *ticks != h.start_ticks) return false;  // gone, or its pid is another's now
  auto inst = std::make_shared<Instance>(*this, h.spec, id);
  inst->st = h.status;
  inst->st.id = id;
  inst->running = true;
  inst->adopting = true;
  inst->adopted = true;
  if (isolation_ != nullptr && isolation_->adopt(id, h.spec)) {
    inst->placed = true;
    const auto u = isolation_->usage(id);
    inst->oom_baseline = u ? u->oom_kills : 0;
  }
  // As it was: a ready instance stays ready (its next probe says otherwise if it is not).
  const bool was_ready = h.status.state == InstanceState::kReady;
  if (was_ready) {
    for (int i = 0; i < std::max(1, h.spec.ready.threshold); ++i) inst->ready.record(true);
    inst->backoff.on_ready();
  }
  inst->st.state = was_ready ? InstanceState::kReady : InstanceState::kStarting;
  instances_[id] = inst;
  inst->add_line("squadron: adopted (pid " + std::to_string(h.status.pid) + ", port " +
                 std::to_string(h.status.port) + ")");
  changed(*inst);
  supervise(inst);
  return true;
}

void Supervisor::detach() {
  detached_ = true;
  for (auto& [id, inst] : instances_) {
    inst->detached = true;
    inst->wait_timer.cancel();
    inst->kill_timer.cancel();
    for (auto* d : inst->readers) d->close();
    inst->readers.clear();
    if (inst->exit_watch != nullptr) inst->exit_watch->close();
  }
  instances_.clear();
}

void Supervisor::log_to(std::filesystem::path dir, std::size_t max_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  log_dir_ = std::move(dir);
  log_max_bytes_ = max_bytes;
}

std::vector<InstanceStatus> Supervisor::snapshot() const {
  std::vector<InstanceStatus> out;
  for (const auto& [id, inst] : instances_) out.push_back(inst->st);
  return out;
}

std::optional<InstanceStatus> Supervisor::status(const std::string& id) const {
  auto it = instances_.find(id);
  if (it == instances_.end()) return std::nullopt;
  return it->second->st;
}

std::map<std::string, Usage> Supervisor::usage() const {
  std::map<std::string, Usage> out;
  std::map<pid_t, std::string> by_group;  // instances without a cgroup: read from /proc
  for (const auto& [id, inst] : instances_) {
    if (!inst->running) continue;
    if (inst->placed && isolation_ != nullptr) {
      if (auto u = isolation_->usage(id)) {
        out[id] = *u;
        continue;
      }
    }
    by_group[inst->st.pid] = id;
  }
  if (!by_group.empty()) {
    for (auto& [pgid, u] : usage_of_groups(by_group)) out[by_group[pgid]] = u;
  }
  return out;
}

std::vector<std::string> Supervisor::logs(const std::string& id, std::size_t lines) const {
  auto it = instances_.find(id);
  if (it == instances_.end()) return {};
  const auto& ring = it->second->ring;
  const std::size_t n = std::min(lines, ring.size());
  return {ring.end() - static_cast<long>(n), ring.end()};
}

}  // namespace squadron::supervisor
