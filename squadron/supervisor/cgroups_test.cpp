// Cgroups against fake cgroup file trees (a temporary folder standing in for /sys/fs/cgroup):
// both layouts, what each limit writes where, usage and OOM counts read back, and killing
// through cgroup.procs (a real child process listed in the fake file) or cgroup.kill.
#include "squadron/supervisor/cgroups.hpp"

#include <algorithm>
#include <csignal>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "squadron/supervisor/supervisor.hpp"

namespace squadron::supervisor {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s;
}

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

class FakeTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/squadron-cgroups-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  // A v1 layout: each controller's own cgroup at root/<controller>/own.
  CgroupLayout v1(std::initializer_list<const char*> controllers) {
    CgroupLayout l;
    l.version = 1;
    for (const char* c : controllers) {
      l.v1[c] = root_ / c / "own";
      fs::create_directories(l.v1[c]);
    }
    return l;
  }
  CgroupLayout v2(const std::string& controllers = "cpuset cpu io memory pids") {
    CgroupLayout l;
    l.version = 2;
    l.unified = root_ / "unified" / "own";
    put(l.unified / "cgroup.controllers", controllers + "\n");
    return l;
  }
  static InstanceSpec limited() {
    InstanceSpec s;
    s.service = "hog";
    s.resources.memory_bytes = 64ULL << 20;
    s.resources.millicores = 500;
    s.resources.pids = 64;
    return s;
  }
  fs::path root_;
};

TEST(DetectCgroups, ThisKindOfHostMountsV1ControllersBesideAnEmptyUnifiedTree) {
  const std::string mountinfo =
      "30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n"
      "31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "32 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "33 25 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
      "34 25 0:30 /docker/abc /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n"
      "35 25 0:31 / /proc rw - proc proc rw\n";
  const std::string self =
      "5:freezer:/docker/abc/inner\n4:pids:/\n3:memory:/api/x\n2:cpu,cpuacct:/\n0::/\n";
  const auto l = detect_cgroups(mountinfo, self);
  ASSERT_EQ(l.version, 1) << l.problem;
  EXPECT_EQ(l.v1.at("memory"), "/sys/fs/cgroup/memory/api/x");
  EXPECT_EQ(l.v1.at("cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(l.v1.at("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(l.v1.at("pids"), "/sys/fs/cgroup/pids");
  EXPECT_EQ(l.v1.at("freezer"), "/sys/fs/cgroup/freezer/inner") << "relative to the mount's root";
}

TEST(DetectCgroups, AUnifiedHostIsV2) {
  const auto l =
      detect_cgroups("29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
                     "0::/user.slice/user-1000.slice/session-2.scope\n");
  ASSERT_EQ(l.version, 2);
  EXPECT_EQ(l.unified, "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope");
}

TEST(DetectCgroups, NoneMountedSaysSo) {
  const auto l = detect_cgroups("35 25 0:31 / /proc rw - proc proc rw\n", "0::/\n");
  EXPECT_EQ(l.version, 0);
  EXPECT_FALSE(l.problem.empty());
}

TEST(FleetCgroupName, OwnPerFolderAndSafe) {
  const auto a = fleet_cgroup_name("Shop Front", "/srv/a");
  EXPECT_EQ(a.rfind("squadron-shop_front-", 0), 0U) << a;
  EXPECT_EQ(a, fleet_cgroup_name("Shop Front", "/srv/a"));
  EXPECT_NE(a, fleet_cgroup_name("Shop Front", "/srv/b"));
}

TEST_F(FakeTree, V1WritesEachLimitInItsControllersHierarchyAndJoinsEveryOne) {
  auto cg = Cgroups::create(v1({"memory", "cpu", "cpuacct", "pids", "freezer"}), "squadron-t");
  ASSERT_TRUE(cg) << cg.error().message();
  EXPECT_EQ((*cg)->version(), 1);
  put(root_ / "memory/own/squadron-t/hog-1/memory.memsw.limit_in_bytes", "");
  const auto join = (*cg)->prepare("hog-1", limited());
  ASSERT_TRUE(join) << join.error().message();
  EXPECT_EQ(join->size(), 5U);
  EXPECT_EQ(slurp(root_ / "memory/own/squadron-t/hog-1/memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(slurp(root_ / "memory/own/squadron-t/hog-1/memory.memsw.limit_in_bytes"), "67108864")
      << "no swap past the limit";
  EXPECT_EQ(slurp(root_ / "cpu/own/squadron-t/hog-1/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(slurp(root_ / "cpu/own/squadron-t/hog-1/cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(slurp(root_ / "cpu/own/squadron-t/hog-1/cpu.shares"), "512")
      << "as Kubernetes: 1024 a core";
  EXPECT_EQ(slurp(root_ / "pids/own/squadron-t/hog-1/pids.max"), "64");
  EXPECT_EQ((*cg)->kill_dir(), root_ / "freezer/own/squadron-t") << "the freezer holds them still";

  // A restart without limits opens them again.
  InstanceSpec open;
  open.service = "hog";
  ASSERT_TRUE((*cg)->prepare("hog-1", open));
  EXPECT_EQ(slurp(root_ / "memory/own/squadron-t/hog-1/memory.limit_in_bytes"), "-1");
  EXPECT_EQ(slurp(root_ / "cpu/own/squadron-t/hog-1/cpu.cfs_quota_us"), "-1");
  EXPECT_EQ(slurp(root_ / "cpu/own/squadron-t/hog-1/cpu.shares"), "1024");
  EXPECT_EQ(slurp(root_ / "pids/own/squadron-t/hog-1/pids.max"), "max");
}

TEST_F(FakeTree, V1ReadsUsageThrottlingAndOomKills) {
  auto cg = Cgroups::create(v1({"memory", "cpu", "cpuacct", "pids"}), "squadron-t");
  ASSERT_TRUE(cg);
  ASSERT_TRUE((*cg)->prepare("hog-1", limited()));
  const fs::path f = root_ / "memory/own/squadron-t/hog-1";
  put(f / "memory.stat",
      "cache 4096\nrss 1000\ntotal_cache 8192\ntotal_rss 3000000\n"
      "total_mapped_file 100000\n");
  put(f / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  put(root_ / "cpu/own/squadron-t/hog-1/cpu.stat",
      "nr_periods 40\nnr_throttled 12\nthrottled_time 900000000\n");
  put(root_ / "cpuacct/own/squadron-t/hog-1/cpuacct.usage", "2500000000\n");
  put(root_ / "pids/own/squadron-t/hog-1/cgroup.procs", "41\n42\n");
  const auto u = (*cg)->usage("hog-1");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->from_cgroup);
  EXPECT_EQ(u->rss_bytes, 3'100'000U);
  EXPECT_EQ(u->oom_kills, 2U);
  EXPECT_EQ(u->nr_throttled, 12U);
  EXPECT_EQ(u->throttled_usec, 900'000U);
  EXPECT_EQ(u->cpu_usec, 2'500'000U);
  EXPECT_EQ(u->processes, 2);
  EXPECT_FALSE((*cg)->usage("nobody-1")) << "no such place";
}

TEST_F(FakeTree, V2EnablesControllersAndWritesTheUnifiedFiles) {
  auto cg = Cgroups::create(v2(), "squadron-t");
  ASSERT_TRUE(cg) << cg.error().message();
  EXPECT_EQ((*cg)->version(), 2);
  const fs::path fleet = root_ / "unified/own/squadron-t";
  EXPECT_EQ(slurp(fleet / "cgroup.subtree_control"), "+cpuset") << "the last one written";
  const auto join = (*cg)->prepare("hog-1", limited());
  ASSERT_TRUE(join) << join.error().message();
  EXPECT_EQ(*join, std::vector<fs::path>{fleet / "hog-1/cgroup.procs"});
  EXPECT_EQ(slurp(fleet / "hog-1/memory.max"), "67108864");
  EXPECT_EQ(slurp(fleet / "hog-1/memory.swap.max"), "0");
  EXPECT_EQ(slurp(fleet / "hog-1/cpu.max"), "50000 100000");
  EXPECT_EQ(slurp(fleet / "hog-1/cpu.weight"), "20") << "Kubernetes' shares-to-weight mapping";
  EXPECT_EQ(slurp(fleet / "hog-1/pids.max"), "64");
  InstanceSpec open;
  ASSERT_TRUE((*cg)->prepare("hog-1", open));
  EXPECT_EQ(slurp(fleet / "hog-1/memory.max"), "max");
  EXPECT_EQ(slurp(fleet / "hog-1/cpu.max"), "max 100000");
  EXPECT_EQ(slurp(fleet / "hog-1/cpu.weight"), "100");

  put(fleet / "hog-1/memory.stat", "anon 2000000\nfile 9000000\nfile_mapped 48000\n");
  put(fleet / "hog-1/cpu.stat",
      "usage_usec 1200000\nuser_usec 1000000\nsystem_usec 200000\n"
      "nr_periods 10\nnr_throttled 4\nthrottled_usec 300000\n");
  put(fleet / "hog-1/memory.events", "low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\n");
  const auto u = (*cg)->usage("hog-1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->rss_bytes, 2'048'000U);
  EXPECT_EQ(u->cpu_usec, 1'200'000U);
  EXPECT_EQ(u->throttled_usec, 300'000U);
  EXPECT_EQ(u->nr_throttled, 4U);
  EXPECT_EQ(u->oom_kills, 3U);
}

TEST(CpuList, ParsesAndFormatsTheKernelsRanges) {
  EXPECT_EQ(parse_cpu_list("0-3,6\n"), (std::vector<int>{0, 1, 2, 3, 6}));
  EXPECT_EQ(parse_cpu_list("5, 1-2"), (std::vector<int>{1, 2, 5}));
  EXPECT_EQ(parse_cpu_list(""), std::vector<int>{});
  EXPECT_EQ(parse_cpu_list("3-1"), std::vector<int>{}) << "unreadable: empty, not half of it";
  EXPECT_EQ(parse_cpu_list("0-x"), std::vector<int>{});
  EXPECT_EQ(format_cpu_list({0, 1, 2, 3, 6, 8, 9}), "0-3,6,8-9");
  EXPECT_EQ(format_cpu_list({}), "");
}

TEST(PickCpus, AsManyCoresAsTheLimitRoundedUpWhereTheFewestAreCommitted) {
  const std::vector<int> four{0, 1, 2, 3};
  EXPECT_EQ(pick_cpus(four, {}, 500), std::vector<int>{3}) << "half a core: one, the highest";
  EXPECT_EQ(pick_cpus(four, {}, 1500), (std::vector<int>{2, 3}));
  EXPECT_EQ(pick_cpus(four, {{3, 500}}, 500), std::vector<int>{2}) << "spread";
  EXPECT_EQ(pick_cpus(four, {{3, 500}, {2, 500}, {1, 200}, {0, 900}}, 2000),
            (std::vector<int>{1, 3}))
      << "the least committed, then the highest of two equals";
  EXPECT_EQ(pick_cpus(four, {}, 4000), std::vector<int>{}) << "every core: not confined";
  EXPECT_EQ(pick_cpus(four, {}, 3500), std::vector<int>{});
  EXPECT_EQ(pick_cpus({0, 1}, {}, 500), std::vector<int>{1});
  EXPECT_EQ(pick_cpus({4}, {}, 500), std::vector<int>{}) << "one core: nothing to choose";
}

TEST_F(FakeTree, V1ConfinesACpuLimitToItsCoresAndReleasesThem) {
  auto l = v1({"memory", "cpu", "pids", "cpuset"});
  put(root_ / "cpuset/own/cpuset.cpus", "0-3\n");
  put(root_ / "cpuset/own/cpuset.mems", "0\n");
  auto cg = Cgroups::create(l, "squadron-t");
  ASSERT_TRUE(cg) << cg.error().message();
  const fs::path fleet = root_ / "cpuset/own/squadron-t";
  EXPECT_EQ(slurp(fleet / "cpuset.cpus"), "0-3") << "a new v1 cpuset has no CPUs of its own";
  EXPECT_EQ(slurp(fleet / "cpuset.mems"), "0");

  const auto join = (*cg)->prepare("hog-1", limited());
  ASSERT_TRUE(join) << join.error().message();
  EXPECT_NE(std::find(join->begin(), join->end(), fleet / "hog-1/cgroup.procs"), join->end());
  EXPECT_EQ(slurp(fleet / "hog-1/cpuset.cpus"), "3");
  EXPECT_EQ(slurp(fleet / "hog-1/cpuset.mems"), "0");
  ASSERT_TRUE((*cg)->prepare("hog-2", limited()));
  EXPECT_EQ(slurp(fleet / "hog-2/cpuset.cpus"), "2") << "the next replica on another core";
  EXPECT_EQ((*cg)->cpus_of("hog-2"), std::vector<int>{2});
  InstanceSpec open;
  ASSERT_TRUE((*cg)->prepare("web-1", open));
  EXPECT_EQ(slurp(fleet / "web-1/cpuset.cpus"), "0-3") << "no CPU limit: every core";
  EXPECT_EQ((*cg)->cpus_of("web-1"), std::vector<int>{});

  (*cg)->release("hog-1");
  ASSERT_TRUE((*cg)->prepare("hog-3", limited()));
  EXPECT_EQ(slurp(fleet / "hog-3/cpuset.cpus"), "3") << "hog-1's core is free again";
  ASSERT_TRUE((*cg)->prepare("hog-2", open)) << "a restart without the limit";
  EXPECT_EQ(slurp(fleet / "hog-2/cpuset.cpus"), "0-3");
  ASSERT_TRUE((*cg)->prepare("hog-4", limited()));
  EXPECT_EQ(slurp(fleet / "hog-4/cpuset.cpus"), "2") << "hog-2 gave its core back";
}

TEST_F(FakeTree, V1WithoutCpusetsStillLimits) {
  auto l = v1({"memory", "cpu", "pids", "cpuset"});  // its own cgroup's CPUs unreadable
  auto cg = Cgroups::create(l, "squadron-t");
  ASSERT_TRUE(cg) << cg.error().message();
  ASSERT_TRUE((*cg)->prepare("hog-1", limited()));
  EXPECT_EQ(slurp(root_ / "cpu/own/squadron-t/hog-1/cpu.cfs_quota_us"), "50000");
  EXPECT_FALSE(fs::exists(root_ / "cpuset/own/squadron-t/hog-1/cpuset.cpus"));
  EXPECT_EQ((*cg)->cpus_of("hog-1"), std::vector<int>{});
}

TEST_F(FakeTree, V2ConfinesACpuLimitWithTheCpusetController) {
  auto l = v2();
  put(l.unified / "cpuset.cpus.effective", "0-1\n");
  auto cg = Cgroups::create(l, "squadron-t");
  ASSERT_TRUE(cg) << cg.error().message();
  const fs::path fleet = root_ / "unified/own/squadron-t";
  ASSERT_TRUE((*cg)->prepare("hog-1", limited()));
  EXPECT_EQ(slurp(fleet / "hog-1/cpuset.cpus"), "1");
  InstanceSpec open;
  ASSERT_TRUE((*cg)->prepare("hog-1", open));
  EXPECT_EQ(slurp(fleet / "hog-1/cpuset.cpus"), "\n") << "empty: the fleet's CPUs";
  auto without = Cgroups::create(v2("cpu memory pids"), "squadron-u");
  ASSERT_TRUE(without);
  ASSERT_TRUE((*without)->prepare("hog-1", limited()));
  EXPECT_FALSE(fs::exists(root_ / "unified/own/squadron-u/hog-1/cpuset.cpus"));
}

TEST_F(FakeTree, V2WithoutTheMemoryControllerRefusesAMemoryLimitButRunsOthers) {
  auto cg = Cgroups::create(v2("cpu pids"), "squadron-t");
  ASSERT_TRUE(cg);
  EXPECT_FALSE((*cg)->controls("memory"));
  EXPECT_FALSE((*cg)->prepare("hog-1", limited())) << "a limit it cannot set is no limit";
  InstanceSpec cpu_only;
  cpu_only.resources.millicores = 250;
  EXPECT_TRUE((*cg)->prepare("web-1", cpu_only));
}

TEST_F(FakeTree, NoPermissionSaysWhy) {
  auto layout = v1({"memory"});
  layout.v1["memory"] = root_ / "missing" / "own";  // its parent does not exist: mkdir fails
  std::string why;
  auto cg = Cgroups::create(layout, "squadron-t", &why);
  EXPECT_FALSE(cg);
  EXPECT_NE(why.find("cannot make"), std::string::npos) << why;
}

// A child that sleeps until killed; its pid is what the fake cgroup.procs lists.
pid_t sleeper() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();  // out of our process group, as a daemonised child would be
    while (true) ::pause();
  }
  return pid;
}

bool killed_by_sigkill(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

TEST_F(FakeTree, KillReachesEveryListedProcessEvenOneThatLeftItsGroup) {
  auto cg = Cgroups::create(v1({"memory", "pids", "freezer"}), "squadron-t");
  ASSERT_TRUE(cg);
  ASSERT_TRUE((*cg)->prepare("svc-1", InstanceSpec{}));
  const pid_t a = sleeper(), b = sleeper();
  // (The fake freezer.state reads back what was written, as the kernel's does once frozen.)
  put(root_ / "freezer/own/squadron-t/svc-1/cgroup.procs",
      std::to_string(a) + "\n" + std::to_string(b) + "\n");
  put(root_ / "freezer/own/squadron-t/svc-1/freezer.state", "THAWED\n");
  const int signalled =
      kill_cgroup((root_ / "freezer/own/squadron-t/svc-1").c_str(),
                  (root_ / "freezer/own/squadron-t/svc-1/freezer.state").c_str(), 1);
  EXPECT_EQ(signalled, 2);
  EXPECT_TRUE(killed_by_sigkill(a));
  EXPECT_TRUE(killed_by_sigkill(b));
  EXPECT_EQ(slurp(root_ / "freezer/own/squadron-t/svc-1/freezer.state"), "THAWED")
      << "frozen while killed, thawed after";
}

TEST_F(FakeTree, V2KillsThroughCgroupKillWhereTheKernelHasIt) {
  auto cg = Cgroups::create(v2(), "squadron-t");
  ASSERT_TRUE(cg);
  ASSERT_TRUE((*cg)->prepare("svc-1", InstanceSpec{}));
  const fs::path dir = root_ / "unified/own/squadron-t/svc-1";
  put(dir / "cgroup.kill", "");
  put(dir / "cgroup.procs", "");
  (*cg)->kill("svc-1");
  EXPECT_EQ(slurp(dir / "cgroup.kill"), "1");
}

// A cgroup's directory is removed with its control files in it; a fake one once they are gone.
void kernel_files_vanish(const fs::path& root) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  for (const auto& f : files) fs::remove(f);
}

TEST_F(FakeTree, ReleaseRemovesThePlace) {
  auto cg = Cgroups::create(v1({"memory", "pids"}), "squadron-t");
  ASSERT_TRUE(cg);
  ASSERT_TRUE((*cg)->prepare("svc-1", InstanceSpec{}));
  EXPECT_TRUE(fs::exists(root_ / "pids/own/squadron-t/svc-1"));
  kernel_files_vanish(root_);
  (*cg)->release("svc-1");
  EXPECT_FALSE(fs::exists(root_ / "memory/own/squadron-t/svc-1"));
  EXPECT_FALSE(fs::exists(root_ / "pids/own/squadron-t/svc-1"));
}

TEST_F(FakeTree, ANewFleetClearsWhatACrashedOneLeft) {
  // What a fleet that died left: its instance's cgroups, a process still in them.
  const pid_t left = sleeper();
  put(root_ / "pids/own/squadron-t/svc-2/cgroup.procs", std::to_string(left) + "\n");
  fs::create_directories(root_ / "memory/own/squadron-t/svc-2");
  auto next = Cgroups::create(v1({"memory", "pids"}), "squadron-t");
  ASSERT_TRUE(next);
  EXPECT_TRUE(killed_by_sigkill(left)) << "what the crashed fleet left is killed";
  EXPECT_FALSE(fs::exists(root_ / "memory/own/squadron-t/svc-2")) << "and its cgroups removed";
}

}  // namespace
}  // namespace squadron::supervisor
