// The supervisor with real processes: the hello binary and small shell scripts.
#include "squadron/supervisor/supervisor.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "fixture.hpp"

namespace squadron::supervisor {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using testing::bin_dir;

class SupervisorTest : public ::testing::Test {
 protected:
  // Runs the loop until `done()` holds or `timeout` passes; returns done().
  template <typename F>
  bool run_until(F done, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = SteadyClock::now() + timeout;
    while (!done() && SteadyClock::now() < deadline) {
      io_.restart();
      io_.run_for(5ms);
    }
    return done();
  }
  InstanceSpec hello() {
    InstanceSpec s;
    s.service = "hello";
    s.launch.argv = {bin_dir() + "/hello", "--threads", "1"};
    s.launch.cwd = "/";
    s.ready.path = "/readyz";
    s.ready.interval = 200ms;
    return s;
  }
  InstanceSpec script(std::string service, std::string sh) {
    InstanceSpec s;
    s.service = std::move(service);
    s.launch.argv = {"sh", "-c", std::move(sh)};
    s.launch.cwd = "/";
    return s;
  }
  InstanceState state(const std::string& id) {
    auto s = sup_.status(id);
    return s ? s->state : InstanceState::kStopped;
  }

  // What the supervisor reports, to the test's own functions.
  struct Hooks final : InstanceObserver {
    std::function<void(const InstanceStatus&)> change;
    std::function<void(const std::string&)> remove;
    void on_change(const InstanceStatus& s) override {
      if (change) change(s);
    }
    void on_remove(const std::string& id) override {
      if (remove) remove(id);
    }
    void on_output(const InstanceStatus&, std::string_view) override {}
  };

  boost::asio::io_context io_;
  PosixLauncher launcher_;
  core::SystemClock clock_;
  Supervisor sup_{io_, launcher_, clock_};
  Hooks hooks_;
  void SetUp() override { sup_.set_observer(&hooks_); }
};

TEST_F(SupervisorTest, StartsAnInstanceThatBecomesReadyOnItsOwnPort) {
  const auto id = sup_.add(hello());
  EXPECT_EQ(id, "hello-1");
  ASSERT_TRUE(run_until([&] { return state(id) == InstanceState::kReady; }))
      << to_string(state(id));
  const auto st = *sup_.status(id);
  EXPECT_GT(st.pid, 0);
  EXPECT_GT(st.port, 0);
  auto r = testing::fetch(st.port, "GET", "/hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "Hello World!");
  const auto id2 = sup_.add(hello());
  ASSERT_TRUE(run_until([&] { return state(id2) == InstanceState::kReady; }));
  EXPECT_NE(sup_.status(id2)->port, st.port) << "each instance gets its own port";
}

TEST_F(SupervisorTest, GivesEachInstanceItsIdentityAndCapturesItsOutput) {
  const auto id = sup_.add(
      script("worker",
             "echo \"$SQUADRON_SERVICE $SQUADRON_INSTANCE $SQUADRON_REVISION $HOST $PORT\"; "
             "echo oops >&2; exec sleep 100"));
  ASSERT_TRUE(run_until([&] { return sup_.logs(id, 10).size() >= 2; }));
  const auto port = sup_.status(id)->port;
  const auto lines = sup_.logs(id, 10);
  EXPECT_NE(
      std::find(lines.begin(), lines.end(), "worker worker-1 1 127.0.0.1 " + std::to_string(port)),
      lines.end());
  EXPECT_NE(std::find(lines.begin(), lines.end(), "oops"), lines.end());
  EXPECT_EQ(state(id), InstanceState::kStarting) << "nothing listens, so it never becomes ready";
}

TEST_F(SupervisorTest, WritesEachInstancesOutputToARotatedFile) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("squadron-logs-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  sup_.log_to(dir, 64 * 1024);
  // 2,000 lines of 100 bytes: 200 KB through a 64 KiB file
  const auto id =
      sup_.add(script("chatty",
                      "i=0; while [ $i -lt 2000 ]; do printf '%099d\\n' $i; i=$((i+1)); done; "
                      "echo last; exec sleep 100"));
  ASSERT_TRUE(run_until([&] {
    auto l = sup_.logs(id, 1);
    return !l.empty() && l.front() == "last";
  }));
  const auto current = dir / (id + ".log");
  ASSERT_TRUE(std::filesystem::exists(current));
  ASSERT_TRUE(std::filesystem::exists(dir / (id + ".log.1")));
  EXPECT_LE(std::filesystem::file_size(current), 64u * 1024);
  EXPECT_LE(std::filesystem::file_size(dir / (id + ".log.1")), 64u * 1024);
  std::ifstream in(current);
  std::string line, last_line;
  while (std::getline(in, line)) last_line = line;
  EXPECT_EQ(last_line, "last");
  sup_.stop(id);
  run_until([&] { return !sup_.status(id); });
  std::filesystem::remove_all(dir);
}

TEST_F(SupervisorTest, AKilledInstanceIsRestartedAndReadyAgain) {
  const auto id = sup_.add(hello());
  ASSERT_TRUE(run_until([&] { return state(id) == InstanceState::kReady; }));
  const pid_t first = sup_.status(id)->pid;
  const auto t0 = SteadyClock::now();
  ::kill(first, SIGKILL);
  ASSERT_TRUE(run_until([&] {
    auto s = sup_.status(id);
    return s && s->pid != first && s->state == InstanceState::kReady;
  }));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0);
  std::printf("ready again %lld ms after kill -9\n", static_cast<long long>(took.count()));
  EXPECT_EQ(sup_.status(id)->restarts, 1);
  EXPECT_EQ(sup_.status(id)->last_exit, "signal 9");
}

// Out of descriptors: before, making a port threw inside the detached coroutine and the instance
// sat in its state for good. Now every failed start is a line, a backoff, and another try.
TEST_F(SupervisorTest, OutOfDescriptorsAStartFailsIntoBackoffAndSucceedsOnceTheyReturn) {
  // The loop's reactor exists before (as the fleet's does long before any start).
  boost::asio::steady_timer warm(io_, 1ms);
  bool warmed = false;
  warm.async_wait([&](boost::system::error_code) { warmed = true; });
  ASSERT_TRUE(run_until([&] { return warmed; }));
  std::vector<int> hoard;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) hoard.push_back(fd);
  ASSERT_EQ(errno, EMFILE);
  const auto id = sup_.add(hello());
  const bool backed_off = run_until([&] { return state(id) == InstanceState::kBackoff; }, 5s);
  const auto failed = sup_.status(id);
  for (int fd : hoard) ::close(fd);
  ASSERT_TRUE(backed_off);
  EXPECT_NE(failed->last_exit.find("cannot start"), std::string::npos) << failed->last_exit;
  EXPECT_NE(failed->last_exit.find("Too many open files"), std::string::npos) << failed->last_exit;
  EXPECT_EQ(failed->pid, -1);
  ASSERT_TRUE(run_until([&] { return state(id) == InstanceState::kReady; }, 10s))
      << "supervision gave up";
  EXPECT_GT(sup_.status(id)->pid, 0);
  const auto lines = sup_.logs(id, 100);
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("squadron: cannot start") != std::string::npos;
  }));
}

TEST_F(SupervisorTest, ACrashLoopBacksOffWithGrowingDelays) {
  std::vector<SteadyClock::time_point> starts;
  bool saw_backoff = false;
  hooks_.change = [&](const InstanceStatus& s) {
    if (s.state == InstanceState::kStarting) starts.push_back(SteadyClock::now());
    saw_backoff |= s.state == InstanceState::kBackoff;
  };
  const auto id = sup_.add(script("crash", "echo boom; exit 3"));
  ASSERT_TRUE(run_until([&] { return starts.size() >= 4; }, 10s));
  EXPECT_TRUE(saw_backoff);
  EXPECT_EQ(sup_.status(id)->last_exit, "exit 3");
  // at once, then 0.5 s, then 1 s: each wait longer than the one before
  const auto gap1 = starts[1] - starts[0], gap2 = starts[2] - starts[1],
             gap3 = starts[3] - starts[2];
  EXPECT_LT(gap1, gap2);
  EXPECT_LT(gap2, gap3);
  EXPECT_GE(gap2, 450ms);
}

TEST_F(SupervisorTest, StopSendsSigtermThenSigkillsTheWholeGroupAfterTheGrace) {
  auto spec = script("stubborn", "trap '' TERM; sleep 100 & echo $!; wait");
  spec.stop_grace = 300ms;
  const auto id = sup_.add(spec);
  ASSERT_TRUE(run_until([&] { return !sup_.logs(id, 1).empty(); }));
  const pid_t grandchild = std::stoi(sup_.logs(id, 1).front());
  const auto t0 = SteadyClock::now();
  sup_.stop(id);
  ASSERT_TRUE(run_until([&] { return !sup_.status(id); }));
  EXPECT_GE(SteadyClock::now() - t0, 250ms) << "SIGKILL came before the grace period";
  EXPECT_TRUE(testing::all_gone_within({grandchild}, 5s)) << "the group's other process survived";
}

TEST_F(SupervisorTest, RestartNeverLeavesAFailedInstanceUntilStopped) {
  auto spec = script("once", "exit 1");
  spec.restart = Restart::kNever;
  const auto id = sup_.add(spec);
  ASSERT_TRUE(run_until([&] { return state(id) == InstanceState::kFailed; }));
  EXPECT_EQ(sup_.status(id)->restarts, 0);
  EXPECT_EQ(sup_.status(id)->last_exit, "exit 1");
  sup_.stop(id);
  EXPECT_FALSE(sup_.status(id));
}

TEST_F(SupervisorTest, StopAllEndsEveryInstance) {
  sup_.add(hello());
  sup_.add(script("sleeper", "exec sleep 100"));
  sup_.add(script("crash", "exit 3"));
  ASSERT_TRUE(run_until(
      [&] { return sup_.snapshot().size() == 3 && state("hello-1") == InstanceState::kReady; }));
  bool done = false;
  sup_.stop_all([&] { done = true; });
  ASSERT_TRUE(run_until([&] { return done; }));
  EXPECT_TRUE(sup_.snapshot().empty());
}

}  // namespace
}  // namespace squadron::supervisor

namespace squadron::supervisor {
namespace {

TEST_F(SupervisorTest, ADrainedStopKeepsServingAsDrainingThenStops) {
  const auto id = sup_.add(hello());
  ASSERT_TRUE(run_until([&] { return state(id) == InstanceState::kReady; }));
  const auto port = sup_.status(id)->port;
  std::vector<std::string> removed;
  hooks_.remove = [&](const std::string& gone) { removed.push_back(gone); };
  sup_.stop(id, 300ms);
  EXPECT_EQ(state(id), InstanceState::kDraining);
  const auto r = testing::fetch(port, "GET", "/hello");  // still answers while draining
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(run_until([&] { return state(id) != InstanceState::kDraining; }, 5s));
  ASSERT_TRUE(run_until([&] { return !sup_.status(id); }, 10s));
  EXPECT_EQ(removed, std::vector<std::string>{id});
}

TEST_F(SupervisorTest, StopAllCutsADrainShort) {
  const auto id = sup_.add(hello());
  ASSERT_TRUE(run_until([&] { return state(id) == InstanceState::kReady; }));
  sup_.stop(id, 1h);
  EXPECT_EQ(state(id), InstanceState::kDraining);
  bool all = false;
  sup_.stop_all([&] { all = true; });
  EXPECT_TRUE(run_until([&] { return all; }, 10s)) << "not an hour";
}

}  // namespace
}  // namespace squadron::supervisor

namespace squadron::supervisor {
namespace {

// Records what the supervisor asks of its isolation seam; a file stands in for cgroup.procs.
struct RecordingIsolation final : Isolation {
  std::filesystem::path dir;
  std::vector<std::string> prepared, released;
  bool fail = false;
  boost::system::result<std::vector<std::filesystem::path>> prepare(const std::string& id,
                                                                    const InstanceSpec&) override {
    prepared.push_back(id);
    if (fail) return boost::system::error_code(EACCES, boost::system::system_category());
    const auto procs = dir / (id + ".procs");
    std::ofstream(procs, std::ios::app).close();
    return std::vector<std::filesystem::path>{procs};
  }
  bool adopt(const std::string& id, const InstanceSpec&) override {
    adopted.push_back(id);
    return true;
  }
  void kill(const std::string& id) override { killed.push_back(id); }
  std::optional<Usage> usage(const std::string&) const override { return std::nullopt; }
  void release(const std::string& id) override { released.push_back(id); }
  std::vector<std::string> killed, adopted;
};

TEST_F(SupervisorTest, EveryStartJoinsThePlaceItsIsolationMadeAndItGoesWithTheInstance) {
  RecordingIsolation place;
  char dir[] = "/tmp/squadron-place-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  place.dir = dir;
  sup_.set_isolation(&place);
  const auto id = sup_.add(hello());
  ASSERT_TRUE(run_until([&] { return state(id) == InstanceState::kReady; }));
  std::ifstream in(place.dir / (id + ".procs"));
  std::string pid;
  in >> pid;
  EXPECT_EQ(pid, std::to_string(sup_.status(id)->pid)) << "the process joined before exec";
  sup_.stop(id);
  ASSERT_TRUE(run_until([&] { return !sup_.status(id); }, 10s));
  EXPECT_EQ(place.prepared, std::vector<std::string>{id});
  EXPECT_EQ(place.released, std::vector<std::string>{id});

  place.fail = true;
  const auto refused = sup_.add(hello());
  ASSERT_TRUE(run_until([&] { return state(refused) == InstanceState::kBackoff; }, 10s));
  EXPECT_NE(sup_.status(refused)->last_exit.find("no place to run it"), std::string::npos)
      << sup_.status(refused)->last_exit;
  EXPECT_EQ(sup_.status(refused)->pid, -1) << "nothing ran outside its place";
  sup_.stop(refused);
  ASSERT_TRUE(run_until([&] { return !sup_.status(refused); }, 10s));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace squadron::supervisor

namespace squadron::supervisor {
namespace {

TEST_F(SupervisorTest, AWorkerThatServesNoPortIsReadyOnceStartedWithReadyNone) {
  auto spec = script("worker", "exec sleep 30");
  spec.ready.none = true;
  const auto id = sup_.add(spec);
  ASSERT_TRUE(run_until([&] { return state(id) == InstanceState::kReady; }, 5s));
  sup_.stop(id);
  ASSERT_TRUE(run_until([&] { return !sup_.status(id); }, 10s));
}

TEST_F(SupervisorTest, AnExecProbeIsReadyOnlyOnceItsCommandSucceedsInTheInstancesEnvironment) {
  char dir[] = "/tmp/squadron-exec-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  // Ready only once the file exists: the probe runs in the instance's cwd with its PORT.
  auto spec = script("db", "sleep 0.4; echo $PORT > started; exec sleep 30");
  spec.launch.cwd = dir;
  spec.ready.command = {"sh", "-c", "echo probing; test \"$(cat started)\" = \"$PORT\""};
  spec.ready.interval = 100ms;
  const auto id = sup_.add(spec);
  ASSERT_TRUE(run_until([&] { return state(id) == InstanceState::kStarting; }, 5s));
  ASSERT_TRUE(
      run_until([&] { return std::filesystem::exists(std::string(dir) + "/started"); }, 5s));
  EXPECT_TRUE(run_until([&] { return state(id) == InstanceState::kReady; }, 5s));

  // A probe that hangs past its timeout fails (and is killed), so the instance is not ready.
  auto hung = script("hung", "exec sleep 30");
  hung.ready.command = {"sleep", "30"};
  hung.ready.timeout = 100ms;
  const auto hid = sup_.add(hung);
  run_until([] { return false; }, 600ms);
  EXPECT_EQ(state(hid), InstanceState::kStarting);
  for (const auto& i : {id, hid}) sup_.stop(i);
  ASSERT_TRUE(run_until([&] { return !sup_.status(id) && !sup_.status(hid); }, 10s));
  std::filesystem::remove_all(dir);
}

TEST_F(SupervisorTest, AGracefulStopSendsTheServicesStopSignal) {
  // Exits 0 on SIGINT only; SIGTERM would end it by the signal.
  auto spec = script("pg", "trap 'exit 0' INT; echo ready; while :; do sleep 0.05; done");
  spec.ready.none = true;
  spec.stop_signal = SIGINT;
  const auto id = sup_.add(spec);
  ASSERT_TRUE(run_until([&] { return state(id) == InstanceState::kReady; }, 5s));
  std::string last_exit;
  hooks_.change = [&](const InstanceStatus& s) {
    if (s.id == id) last_exit = s.last_exit;
  };
  sup_.stop(id);
  ASSERT_TRUE(run_until([&] { return !sup_.status(id); }, 10s));
  EXPECT_EQ(last_exit, "exit 0") << "stopped cleanly by SIGINT, not killed";
}

TEST_F(SupervisorTest, AnInstanceRunsAsTheUserItIsGiven) {
  if (::getuid() != 0) GTEST_SKIP() << "only root may run a process as another user";
  char dir[] = "/tmp/squadron-user-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  ::chmod(dir, 0777);
  auto spec = script("as", "id -u > who; id -g >> who; exec sleep 30");
  spec.launch.cwd = dir;
  spec.launch.run_as = RunAs{65534, 65534, {65534}};
  spec.ready.none = true;
  const auto id = sup_.add(spec);
  const auto who = std::string(dir) + "/who";
  std::error_code ec;
  ASSERT_TRUE(run_until([&] { return std::filesystem::file_size(who, ec) > 0 && !ec; }, 5s));
  run_until([] { return false; }, 100ms);
  std::ifstream in(who);
  std::string uid, gid;
  in >> uid >> gid;
  EXPECT_EQ(uid, "65534");
  EXPECT_EQ(gid, "65534");
  sup_.stop(id);
  ASSERT_TRUE(run_until([&] { return !sup_.status(id); }, 10s));
  std::filesystem::remove_all(dir);
}

// An agent's restart (cluster/agent.hpp): instances of a detachable supervisor outlive it, and
// the next one adopts them as they are — same pids, still ready, their output (written while
// no supervisor read it) read on from their pipes; stopped, and restarted by their policy, as
// its own.
TEST_F(SupervisorTest, ADetachedInstanceOutlivesItsSupervisorAndTheNextOneAdoptsIt) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("squadron-fifos-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto first = std::make_unique<Supervisor>(io_, launcher_, clock_);
  first->set_detachable(dir);
  const auto web = first->add(hello());
  auto ticking = script("ticker", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.02; done");
  ticking.ready.none = true;
  const auto ticker = first->add(ticking);
  auto ready = [&](Supervisor& s, const std::string& id) {
    const auto st = s.status(id);
    return st && st->state == InstanceState::kReady;
  };
  ASSERT_TRUE(run_until([&] { return ready(*first, web) && first->logs(ticker, 5).size() >= 3; }));
  auto held = first->held();
  ASSERT_EQ(held.size(), 2u);
  std::map<std::string, Supervisor::Held> by_id;
  for (const auto& h : held) by_id[h.spec.id] = h;
  const pid_t web_pid = by_id.at(web).status.pid;
  const pid_t ticker_pid = by_id.at(ticker).status.pid;
  struct Reaper {  // should the test fail before they are adopted: nothing is left running
    std::vector<pid_t> pids;
    ~Reaper() {
      for (pid_t p : pids) ::kill(-p, SIGKILL);
    }
  } reaper{{web_pid, ticker_pid}};
  const std::string last_seen = first->logs(ticker, 1).front();  // "tick N"
  first->detach();
  first.reset();
  run_until([] { return false; }, 300ms);  // the first one's loops wind down; ticks pile up

  EXPECT_EQ(::kill(web_pid, 0), 0) << "it outlived its supervisor";
  auto answer = testing::fetch(by_id.at(web).status.port, "GET", "/hello");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->body, "Hello World!");

  sup_.set_detachable(dir);
  auto stale = by_id.at(ticker);
  stale.start_ticks += 1;  // as if its pid now were another process's
  EXPECT_FALSE(sup_.adopt(stale));
  ASSERT_TRUE(sup_.adopt(by_id.at(web)));
  ASSERT_TRUE(sup_.adopt(by_id.at(ticker)));
  EXPECT_FALSE(sup_.adopt(by_id.at(web))) << "an id already supervised";
  EXPECT_EQ(state(web), InstanceState::kReady) << "adopted as it was, never 'starting'";
  EXPECT_EQ(sup_.status(web)->pid, web_pid);
  EXPECT_EQ(sup_.status(web)->port, by_id.at(web).status.port);

  // Its output goes on where the first supervisor stopped reading: no line lost meanwhile.
  const int last = std::stoi(last_seen.substr(5));
  auto has_tick = [&](int n) {
    const auto lines = sup_.logs(ticker, 1000);
    return std::find(lines.begin(), lines.end(), "tick " + std::to_string(n)) != lines.end();
  };
  ASSERT_TRUE(run_until([&] { return has_tick(last + 20); })) << last_seen;
  for (int n = last + 1; n <= last + 20; ++n) EXPECT_TRUE(has_tick(n)) << n;

  // Its exit (a process that is not the supervisor's child) is seen, and its policy restarts it.
  ::kill(ticker_pid, SIGKILL);
  ASSERT_TRUE(run_until([&] {
    const auto st = sup_.status(ticker);
    return st && st->pid > 0 && st->pid != ticker_pid;
  }));
  EXPECT_EQ(sup_.status(ticker)->restarts, 1);

  // Stopped as its own: gone, process and all.
  std::vector<std::string> removed;
  hooks_.remove = [&](const std::string& id) { removed.push_back(id); };
  sup_.stop(web);
  ASSERT_TRUE(run_until([&] { return !removed.empty(); }));
  EXPECT_EQ(removed.front(), web);
  EXPECT_TRUE(run_until([&] { return ::kill(web_pid, 0) != 0; }, 5s));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace squadron::supervisor
