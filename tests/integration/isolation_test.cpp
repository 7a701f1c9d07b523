// Fault isolation on this machine's own cgroups (v1 here; v2 is tested against a fake tree in
// supervisor/cgroups_test.cpp): limits per instance, OOM kills seen and restarted, a daemonised
// child gone after `down` and after `kill -9` of the fleet, and what each instance uses in `ps`
// and the control plane's /metrics.
#include <fstream>
#include <regex>
#include <set>
#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "fleet_fixture.hpp"
#include "squadron/supervisor/cgroups.hpp"

namespace squadron::testing {
namespace {

// Whether this process may make cgroups here (root on a host with a hierarchy mounted).
std::string cgroups_unavailable() {
  const auto layout = supervisor::detect_cgroups();
  if (layout.version == 0) return layout.problem;
  std::string why;
  auto cg =
      supervisor::Cgroups::create(layout, "squadron-probe-" + std::to_string(::getpid()), &why);
  return cg ? "" : why;
}

class Isolation : public Fleet {
 protected:
  void SetUp() override {
    Fleet::SetUp();
    if (const auto why = cgroups_unavailable(); !why.empty()) GTEST_SKIP() << why;
  }
  // The pid an instance printed as "child=<pid>" in its log.
  pid_t child_of(const std::string& id) {
    static const std::regex kChild(R"(child=(\d+))");
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(dir_ / ".squadron" / "logs" / (id + ".log"));
      std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::smatch m;
      if (std::regex_search(all, m, kChild)) return std::stoi(m[1]);
      std::this_thread::sleep_for(20ms);
    }
    return -1;
  }
  void write_daemon_manifest() {
    std::ofstream(dir_ / "token.txt") << "t0ken\n";
    std::ofstream(dir_ / "squadron.yaml")
        << "name: daemons\ncontrol: { listen: 127.0.0.1:0 }\n"
        << "secrets:\n  token: { file: token.txt }\nservices:\n"
        << "  forker:\n    command: sh -c 'setsid sleep 300 & echo child=$!; exec " << bin_dir()
        << "/hello --threads 1'\n    secrets: [token]\n";
  }
};

TEST_F(Isolation, ADaemonisedChildOfAnInstanceIsGoneAfterDown) {
  write_daemon_manifest();
  up();
  const pid_t child = child_of("forker-1");
  ASSERT_GT(child, 0);
  ASSERT_FALSE(process_gone(child));
  const auto r = cli({"down"}, 30s);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(all_gone_within({child}, 5s))
      << "a child in a session of its own (setsid) outlived `squadron down`";
}

TEST_F(Isolation, ADaemonisedChildOfAnInstanceIsGoneAfterKillDash9OfTheFleet) {
  write_daemon_manifest();
  up();
  const pid_t child = child_of("forker-1");
  ASSERT_GT(child, 0);
  const pid_t fleet = daemon_pid();
  ASSERT_GT(fleet, 0);
  const auto env = environ_of(pid_of(*of(ps(), "forker")[0]));
  const fs::path secrets = env_value(env, "SQUADRON_SECRETS_DIR");
  ASSERT_FALSE(secrets.empty());
  ASSERT_TRUE(fs::exists(secrets / "token"));
  ::kill(fleet, SIGKILL);
  EXPECT_TRUE(all_gone_within({child}, 5s))
      << "a child in a session of its own (setsid) outlived kill -9 of the fleet";
  for (int i = 0; i < 250 && fs::exists(secrets.parent_path()); ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(fs::exists(secrets.parent_path())) << "the secrets outlived the fleet";
  fs::remove(dir_ / ".squadron" / "run.json");  // nothing left for TearDown to stop
}

TEST_F(Isolation, AnInstanceOverItsMemoryLimitIsOomKilledShownAsSuchAndRestarted) {
  // Listens first (so it is ready), then allocates 4 MiB every 10 ms without end.
  std::ofstream(dir_ / "hog.py")
      << "import os, socket, time\n"
         "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         "s.bind(('127.0.0.1', int(os.environ['PORT']))); s.listen()\n"
         "time.sleep(0.3)\nheap = []\n"
         "while True:\n  heap.append(bytearray(4 << 20)); time.sleep(0.01)\n";
  std::ofstream(dir_ / "squadron.yaml")
      << "name: hogs\ncontrol: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  hog:\n    command: [python3, hog.py]\n    resources: { memory: 48Mi }\n";
  cli({"up", "-d", "--timeout", "3s"}, 30s);  // it may be ready, or already killed: either
  const bool seen = eventually_ps([](const json::array& list) {
    for (const auto* o : of(list, "hog")) {
      if (o->at("oom_kills").as_int64() >= 2 && o->at("restarts").as_int64() >= 2 &&
          o->at("last_exit").as_string() == "oom-killed (limit 48 MiB)" &&
          o->at("memory_limit_bytes").as_int64() == (48 << 20))
        return true;
    }
    return false;
  });
  EXPECT_TRUE(seen) << json::serialize(ps());
  const auto events = cli({"events"});
  EXPECT_NE(events.output.find("after oom-killed (limit 48 MiB)"), std::string::npos)
      << events.output;
  const auto table = cli({"ps"});
  EXPECT_NE(table.output.find("oom-killed (limit 48 MiB)"), std::string::npos) << table.output;
  const auto metrics = fetch(control_port(), "GET", "/metrics");
  ASSERT_TRUE(metrics);
  static const std::regex kOom(
      R"(squadron_instance_oom_kills_total\{service="hog",instance="hog-1"\} ([0-9]+))");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(metrics->body, m, kOom)) << metrics->body;
  EXPECT_GE(std::stoi(m[1]), 2);
  EXPECT_NE(metrics->body.find("squadron_instance_memory_limit_bytes{service=\"hog\",instance="
                               "\"hog-1\"} 50331648"),
            std::string::npos)
      << metrics->body;
}

TEST_F(Isolation, PsShowsWhatEachInstanceUsesAndACpuLimitItsThrottledTime) {
  std::ofstream(dir_ / "spin.py") << "import os, socket\n"
                                     "s = socket.socket(); s.bind(('127.0.0.1', "
                                     "int(os.environ['PORT']))); s.listen()\n"
                                     "while True: pass\n";
  write_manifest("  spin:\n    command: [python3, spin.py]\n    resources: { cpu: 0.2 }\n");
  up();
  const bool measured = eventually_ps([](const json::array& list) {
    if (list.size() != 4) return false;
    for (const auto& v : list) {
      const auto& o = v.as_object();
      if (!o.at("rss_bytes").is_number() || !o.at("cpu_percent").is_number()) return false;
      if (o.at("rss_bytes").to_number<double>() <= 0) return false;
    }
    const auto* spin = of(list, "spin")[0];
    return spin->at("cpu_percent").to_number<double>() > 5;
  });
  const auto list = ps();
  ASSERT_TRUE(measured) << json::serialize(list);
  const double spin = of(list, "spin")[0]->at("cpu_percent").to_number<double>();
  EXPECT_LE(spin, 30.0) << "a spinning loop held to 0.2 of a core";
  const auto table = cli({"ps"});
  EXPECT_NE(table.output.find("RSS/LIMIT"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("CPU"), std::string::npos) << table.output;
  const auto metrics = fetch(control_port(), "GET", "/metrics");
  ASSERT_TRUE(metrics);
  static const std::regex kThrottled(
      R"(squadron_instance_cpu_throttled_seconds_total\{service="spin",instance="spin-1"\} ([0-9.e+-]+))");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(metrics->body, m, kThrottled)) << metrics->body;
  EXPECT_GT(std::stod(m[1]), 0.0);
  EXPECT_NE(metrics->body.find("squadron_instance_memory_rss_bytes{service=\"hello\""),
            std::string::npos);
}

// The CPUs a process may run on, from /proc/<pid>/status ("0-1").
std::string cpus_allowed(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Cpus_allowed_list:", 0) == 0) {
      const auto at = line.find_first_not_of(" \t", 18);
      return at == std::string::npos ? "" : line.substr(at);
    }
  }
  return "";
}

TEST_F(Isolation, ACpuLimitOfHalfACoreRunsOnOneCoreAndTheOthersOnEvery) {
  const auto all = cpus_allowed(::getpid());
  if (all.find_first_of(",-") == std::string::npos) GTEST_SKIP() << "one CPU: " << all;
  write_manifest("  capped:\n    command: [" + bin_dir() +
                 "/hello, --threads, \"1\"]\n    replicas: 2\n    resources: { cpu: 0.5 }\n");
  up();
  const bool shown = eventually_ps([](const json::array& list) {
    const auto capped = of(list, "capped");
    return capped.size() == 2 && capped[0]->at("cpus").is_string() &&
           capped[1]->at("cpus").is_string();
  });
  const auto list = ps();
  ASSERT_TRUE(shown) << json::serialize(list);
  const auto capped = of(list, "capped");
  std::set<std::string> cores;
  for (const auto* o : capped) {
    ASSERT_TRUE(o->at("cpus").is_string()) << json::serialize(*o);
    const std::string cpus(o->at("cpus").as_string());
    EXPECT_EQ(cpus.find_first_of(",-"), std::string::npos) << "one core: " << cpus;
    EXPECT_EQ(cpus_allowed(pid_of(*o)), cpus) << "the kernel's affinity is the one shown";
    cores.insert(cpus);
  }
  EXPECT_EQ(cores.size(), 2U) << "two replicas, two cores";
  const auto* hello = of(list, "hello")[0];
  EXPECT_TRUE(hello->at("cpus").is_null()) << json::serialize(*hello);
  EXPECT_EQ(cpus_allowed(pid_of(*hello)), all) << "no limit: every core";
}

}  // namespace
}  // namespace squadron::testing

namespace squadron::testing {
namespace {

// Every file under `dir` whose text holds `needle`.
std::vector<std::string> files_holding(const fs::path& dir, const std::string& needle) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec)) continue;
    std::ifstream in(e.path(), std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find(needle) != std::string::npos) found.push_back(e.path().string());
  }
  return found;
}

TEST_F(Fleet, ASecretReachesItsInstanceAsAPrivateFileAndAVariableAndNowhereElse) {
  const std::string secret = "s3cr3t-" + std::to_string(::getpid()) + "-value";
  fs::create_directories(dir_ / "secrets");
  std::ofstream(dir_ / "secrets" / "db.txt") << secret << "\n";
  // The instance checks what it was given and says so (never the value itself).
  std::ofstream(dir_ / "squadron.yaml")
      << "name: secrets\ncontrol: { listen: 127.0.0.1:0 }\n"
      << "secrets:\n  db_password: { file: ./secrets/db.txt }\n"
      << "services:\n  db:\n    command: [sh, -c, 'f=${SQUADRON_SECRETS_DIR}/db_password; "
         "test \"$$(cat $$f)\" = \"$$DB_PASSWORD\" && echo secret-ok; stat -c \"mode=%a\" $$f; "
         "stat -c \"dir=%a\" ${SQUADRON_SECRETS_DIR}; exec "
      << bin_dir() << "/hello --threads 1']\n"
      << "    secrets: [{ source: db_password, env: DB_PASSWORD }]\n"
      << "    ready: { path: /readyz }\n";
  up();
  const auto logs = cli({"logs", "db"});
  EXPECT_NE(logs.output.find("secret-ok"), std::string::npos) << logs.output;
  EXPECT_NE(logs.output.find("mode=400"), std::string::npos) << logs.output;
  EXPECT_NE(logs.output.find("dir=700"), std::string::npos) << logs.output;

  // Nowhere in what the fleet answers, shows or keeps.
  std::string everything;
  for (const char* path :
       {"/api/v1/fleet", "/api/v1/services", "/api/v1/services/db", "/api/v1/instances",
        "/api/v1/metrics", "/metrics", "/api/v1/watch", "/", "/ui/app.js"}) {
    const auto r = fetch(control_port(), "GET", path);
    ASSERT_TRUE(r) << path;
    everything += r->body;
  }
  for (const char* path :
       {"/api/v1/events", "/api/v1/services/db/history", "/api/v1/logs?service=gateway"}) {
    const auto r = fetch(control_port(), "GET", path, "", auth());
    ASSERT_TRUE(r) << path;
    everything += r->body;
  }
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"ps"}, {"ps", "--json"}, {"events"}, {"history", "db"}})
    everything += cli(args).output;
  EXPECT_EQ(everything.find(secret), std::string::npos) << "the secret's value was shown";
  EXPECT_TRUE(files_holding(dir_, secret).size() == 1 &&
              files_holding(dir_, secret)[0] == (dir_ / "secrets" / "db.txt").string())
      << "written under the fleet's folder: " << files_holding(dir_, secret).size();
  // Its private folder goes with the fleet.
  const pid_t db = pid_of(*of(ps(), "db")[0]);
  const auto env = environ_of(db);
  const std::string secrets_dir = env_value(env, "SQUADRON_SECRETS_DIR");
  ASSERT_FALSE(secrets_dir.empty());
  EXPECT_TRUE(fs::exists(secrets_dir));
  EXPECT_EQ(secrets_dir.find(dir_.string()), std::string::npos) << "not under the fleet's folder";
  ASSERT_EQ(cli({"down"}).code, 0);
  EXPECT_FALSE(fs::exists(secrets_dir)) << "left behind after down";
}

TEST_F(Fleet, AnUnknownSecretIsAManifestErrorWithItsPlace) {
  std::ofstream(dir_ / "squadron.yaml")
      << "services:\n  db:\n    command: [x]\n    secrets: [db_pasword]\n";
  const auto r = cli({"validate"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find(":4:15: services.db.secrets[0]: no secret \"db_pasword\" under secrets: "
                          "at the top"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace squadron::testing

namespace squadron::testing {
namespace {

TEST_F(Fleet, ACallToARestartingDependencyThroughItsUrlWaitsForItInsteadOfFailing) {
  // `slow` takes a second to be ready after each start; `caller` reaches it by its URL.
  std::ofstream(dir_ / "squadron.yaml")
      << "name: deps\ncontrol: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\n"
      << "services:\n  slow:\n    command: [sh, -c, 'sleep 1; exec " << bin_dir()
      << "/hello --threads 1']\n    ready: { path: /readyz, interval: 100ms }\n"
      << "    routes: [/hello]\n    proxy: { timeout: 10s }\n"
      << "  caller:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n";
  up();
  const auto all = ps();
  const auto caller = of(all, "caller");
  ASSERT_EQ(caller.size(), 1u);
  const auto env = environ_of(pid_of(*caller[0]));
  static const std::regex kUrl(R"(SQUADRON_SLOW_URL=http://127\.0\.0\.1:(\d+))");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(env, m, kUrl)) << env;
  const auto port = static_cast<std::uint16_t>(std::stoi(m[1]));
  ASSERT_EQ(fetch(port, "GET", "/hello")->status, 200);
  // Kill it: it restarts at once and is ready a second later; a call meanwhile waits.
  ::kill(pid_of(*of(ps(), "slow")[0]), SIGKILL);
  bool restarting = false;
  for (int i = 0; i < 500 && !restarting; ++i) {
    const auto now = ps();
    for (const auto* o : of(now, "slow")) restarting = o->at("state").as_string() == "starting";
    if (!restarting) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(restarting);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = fetch(port, "GET", "/hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms) << "it was answered by the new one";
}

}  // namespace
}  // namespace squadron::testing

namespace squadron::testing {
namespace {

TEST_F(Fleet, AMigrationTaskRunsOnceAndItsDependantsStartAfterItExits0) {
  // The task takes a moment and leaves a mark; web checks the mark exists when it starts.
  std::ofstream(dir_ / "squadron.yaml")
      << "name: tasks\ncontrol: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  migrate:\n    kind: task\n    command: [sh, -c, 'sleep 0.5; echo run >> runs; echo "
         "migrated']\n"
      << "  web:\n    command: [sh, -c, 'test -f runs && echo saw-migration; exec " << bin_dir()
      << "/hello --threads 1']\n    depends_on: { migrate: completed }\n"
      << "    ready: { path: /readyz }\n";
  const auto r = cli({"up", "-d"}, 60s);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto list = ps();
  ASSERT_EQ(of(list, "migrate").size(), 1u);
  EXPECT_EQ(of(list, "migrate")[0]->at("state").as_string(), "stopped");
  EXPECT_EQ(of(list, "migrate")[0]->at("last_exit").as_string(), "exit 0");
  EXPECT_EQ(of(list, "web")[0]->at("state").as_string(), "ready");
  EXPECT_NE(cli({"logs", "web"}).output.find("saw-migration"), std::string::npos);
  std::this_thread::sleep_for(1s);  // (pacing: nothing should run it again)
  std::ifstream in(dir_ / "runs");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "run\n") << "once per up";
  const auto events = cli({"events"}).output;
  EXPECT_NE(events.find("waiting for migrate to be completed"), std::string::npos) << events;
}

TEST_F(Fleet, ATaskAnApplyChangesRunsAgainOnceAndTheApplySucceeds) {
  auto write = [&](const std::string& step) {
    std::ofstream(dir_ / "squadron.yaml")
        << "name: tasks\ncontrol: { listen: 127.0.0.1:0 }\nservices:\n"
        << "  migrate:\n    kind: task\n    command: [sh, -c, 'echo " << step << " >> runs']\n"
        << "  web:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n"
        << "    depends_on: { migrate: completed }\n";
  };
  write("first");
  ASSERT_EQ(cli({"up", "-d"}, 60s).code, 0);
  write("second");  // a new migration: its task runs once more, and that is a success
  const auto r = cli({"apply"}, 60s);
  EXPECT_EQ(r.code, 0) << r.output;
  std::this_thread::sleep_for(1s);  // (pacing: nothing should run it a third time)
  std::ifstream in(dir_ / "runs");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "first\nsecond\n");
  const auto list = ps();
  ASSERT_EQ(of(list, "migrate").size(), 1u);
  EXPECT_EQ(of(list, "migrate")[0]->at("last_exit").as_string(), "exit 0");
  EXPECT_EQ(of(list, "migrate")[0]->at("revision").as_string(), "2");
  const auto events = cli({"events"}).output;
  EXPECT_EQ(events.find("rollback"), std::string::npos) << events;
}

TEST_F(Fleet, AFailedTaskBlocksItsDependantsAndUpSaysWhy) {
  std::ofstream(dir_ / "squadron.yaml")
      << "name: tasks\ncontrol: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  migrate:\n    kind: task\n    command: [sh, -c, 'echo no database; exit 3']\n"
      << "  web:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n"
      << "    depends_on: { migrate: completed }\n";
  const auto r = cli({"up", "-d", "--timeout", "20s"}, 60s);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("migrate-1: failed after exit 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("web: not started, blocked: migrate failed (exit 3)"), std::string::npos)
      << r.output;
  EXPECT_TRUE(of(ps(), "web").empty()) << "it never started";
}

}  // namespace
}  // namespace squadron::testing

namespace squadron::testing {
namespace {

TEST_F(Fleet, AnInstanceRunAsAnotherUserReadsItsOwnSecretAndNoOneElseCan) {
  if (::getuid() != 0) GTEST_SKIP() << "only root may run an instance as another user";
  fs::create_directories(dir_ / "secrets");
  std::ofstream(dir_ / "secrets" / "pw.txt") << "hunter2\n";
  ::chmod(dir_.c_str(), 0755);
  std::ofstream(dir_ / "squadron.yaml")
      << "name: users\ncontrol: { listen: 127.0.0.1:0 }\n"
      << "secrets:\n  pw: { file: ./secrets/pw.txt }\n"
      << "services:\n  db:\n    user: nobody\n    ready: none\n    secrets: [pw]\n"
      << "    command: [sh, -c, 'id -un; test \"$$(cat ${SQUADRON_SECRETS_DIR}/pw)\" = hunter2 && "
         "echo readable; exec sleep 60']\n";
  up();
  bool readable = false;
  std::string out;
  for (int i = 0; i < 100 && !readable; ++i) {
    out = cli({"logs", "db"}).output;
    readable = out.find("readable") != std::string::npos;
    if (!readable) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(readable) << out;
  EXPECT_NE(out.find("nobody"), std::string::npos) << out;
  // Its folder is its user's alone.
  const auto env = environ_of(pid_of(*of(ps(), "db")[0]));
  const std::string folder = env_value(env, "SQUADRON_SECRETS_DIR");
  ASSERT_FALSE(folder.empty());
  struct stat st {};
  ASSERT_EQ(::stat(folder.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, 65534u);
}

}  // namespace
}  // namespace squadron::testing
