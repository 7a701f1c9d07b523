// The fleet against a fake runner and a fake clock: reconciling, rollouts, apply and the desired
// state, each step driven by the test (an instance becomes ready, crashes, is gone) — no process
// is started and nothing sleeps.
#include <algorithm>
#include <map>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "squadron/control/fleet.hpp"
#include "squadron/registry/memory_registry.hpp"

namespace squadron::control {
namespace {

namespace sv = squadron::supervisor;
using namespace std::chrono_literals;

// Instances as the fleet asked for them; the test moves them through their states.
class FakeRunner final : public sv::Runner {
 public:
  std::map<std::string, sv::InstanceStatus> instances;
  std::vector<std::string> stops;  // every stop() asked, in order
  std::function<void()> all_stopped;

  std::string add(const sv::InstanceSpec& spec) override {
    const auto id = spec.service + "-" + std::to_string(++next_[spec.service]);
    sv::InstanceStatus st;
    st.service = spec.service;
    st.id = id;
    st.pid = 1000 + static_cast<int>(instances.size());
    st.port = spec.port.value_or(static_cast<std::uint16_t>(20000 + next_[spec.service]));
    st.revision = spec.revision;
    instances[id] = st;
    tell(id);
    return id;
  }
  void stop(const std::string& id, std::chrono::milliseconds drain) override {
    auto it = instances.find(id);
    if (it == instances.end()) return;
    stops.push_back(id);
    it->second.state =
        drain.count() > 0 ? sv::InstanceState::kDraining : sv::InstanceState::kStopping;
    tell(id);
  }
  void stop_all(std::function<void()> done) override {
    all_stopped = std::move(done);
    for (auto& [id, st] : instances) stop(id, 0ms);
  }
  std::vector<sv::InstanceStatus> snapshot() const override {
    std::vector<sv::InstanceStatus> out;
    for (const auto& [id, st] : instances) out.push_back(st);
    return out;
  }
  std::vector<std::string> logs(const std::string&, std::size_t) const override { return {}; }
  void set_observer(sv::InstanceObserver* o) override { observer_ = o; }

  void set(const std::string& id, sv::InstanceState s, std::string last_exit = {}) {
    auto& st = instances.at(id);
    st.state = s;
    st.last_exit = std::move(last_exit);
    tell(id);
  }
  // Every instance asked to stop has exited.
  void reap() {
    std::vector<std::string> gone;
    for (const auto& [id, st] : instances) {
      if (st.state == sv::InstanceState::kStopping || st.state == sv::InstanceState::kDraining)
        gone.push_back(id);
    }
    for (const auto& id : gone) {
      instances.erase(id);
      if (observer_ != nullptr) observer_->on_remove(id);
    }
    if (instances.empty() && all_stopped) std::exchange(all_stopped, nullptr)();
  }
  std::vector<std::string> in(sv::InstanceState s) const {
    std::vector<std::string> out;
    for (const auto& [id, st] : instances) {
      if (st.state == s) out.push_back(id);
    }
    return out;
  }
  // Those that run revision `r` (any state but stopping).
  int running(const std::string& revision) const {
    return static_cast<int>(std::count_if(instances.begin(), instances.end(), [&](const auto& kv) {
      return kv.second.revision == revision && kv.second.state != sv::InstanceState::kStopping &&
             kv.second.state != sv::InstanceState::kDraining;
    }));
  }

 private:
  void tell(const std::string& id) {
    if (observer_ != nullptr) observer_->on_change(instances.at(id));
  }
  std::map<std::string, int> next_;
  sv::InstanceObserver* observer_ = nullptr;
};

Manifest manifest(std::string_view yaml) {
  auto r = parse_manifest(yaml, "/tmp/fleet/squadron.yaml");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return *r.manifest;
}

struct FleetOnAFakeRunner : ::testing::Test {
  boost::asio::io_context io;
  FakeRunner runner;
  registry::MemoryRegistry reg{io.get_executor()};
  core::FakeClock clock;
  MemoryDesiredStore store;
  std::unique_ptr<Fleet> fleet;

  void start(std::string_view yaml) {
    fleet = std::make_unique<Fleet>(io, runner, reg, clock, manifest(yaml), FleetOptions{},
                                    FleetCollaborators{&store, nullptr, nullptr, nullptr});
    fleet->start();
    settle();
  }
  // Runs what the fleet posted (its reconcile passes).
  void settle() {
    for (int i = 0; i < 10; ++i) {
      io.restart();
      if (io.poll() == 0) break;
    }
  }
  void all_ready() {
    for (const auto& id : runner.in(sv::InstanceState::kStarting))
      runner.set(id, sv::InstanceState::kReady);
    settle();
  }
  bool has_event(std::string_view text) const {
    const auto events = reg.events_since(0);
    return std::any_of(events.begin(), events.end(),
                       [&](const auto& e) { return e.message.find(text) != std::string::npos; });
  }
  ~FleetOnAFakeRunner() override { fleet.reset(); }
};

constexpr std::string_view kHello =
    "services:\n  hello:\n    command: [hello]\n    replicas: 3\n    env: { COLOR: red }\n";

TEST_F(FleetOnAFakeRunner, ScaleUpStartsTheMissingAndScaleDownRetiresTheNewest) {
  start(kHello);
  EXPECT_EQ(runner.instances.size(), 3u);
  all_ready();
  ASSERT_FALSE(fleet->scale("hello", 5));
  settle();
  EXPECT_EQ(runner.instances.size(), 5u);
  all_ready();
  ASSERT_FALSE(fleet->scale("hello", 2));
  settle();
  EXPECT_EQ(runner.stops, (std::vector<std::string>{"hello-5", "hello-4", "hello-3"}));
  runner.reap();
  settle();
  EXPECT_EQ(runner.instances.size(), 2u) << "nothing started again";
  ASSERT_EQ(store.scale.count("hello"), 1u) << "the scale command is saved";
  EXPECT_EQ(store.scale.at("hello").replicas, 2);
}

TEST_F(FleetOnAFakeRunner, ACrashedInstanceIsNotReplacedWhileItsRestartPolicyKeepsIt) {
  start(kHello);
  all_ready();
  runner.set("hello-2", sv::InstanceState::kBackoff, "exit 3");
  settle();
  EXPECT_EQ(runner.instances.size(), 3u) << "the supervisor restarts it; the fleet waits";
  EXPECT_TRUE(has_event("backoff (pid")) << "its state change is an event";
  EXPECT_EQ(reg.find("hello-2")->state, registry::State::kBackoff) << "and in the registry";
}

TEST_F(FleetOnAFakeRunner, ADeployReplacesOneAtATimeEachOnlyOnceItsSuccessorIsReady) {
  start(kHello);
  all_ready();
  auto spec = *fleet->manifest().find("hello");
  spec.env["COLOR"] = "blue";
  const auto r = fleet->deploy("hello", spec, "deploy: COLOR=blue");
  ASSERT_EQ(std::get<int>(r), 2);
  settle();
  for (int round = 0; round < 3; ++round) {
    // max_surge 1, max_unavailable 0: one successor at a time, no old one gone before it.
    EXPECT_EQ(runner.running("2"), round + 1) << "round " << round;
    EXPECT_EQ(runner.running("1"), 3 - round) << "round " << round;
    EXPECT_EQ(runner.in(sv::InstanceState::kReady).size(), 3u) << "never below the desired";
    all_ready();  // the successor is ready: an old one goes, the next successor starts
    runner.reap();
    settle();
  }
  EXPECT_EQ(runner.running("2"), 3);
  EXPECT_EQ(runner.running("1"), 0);
  EXPECT_FALSE(fleet->rolling("hello"));
  EXPECT_TRUE(has_event("deploy of revision 2 done: 3 instances replaced"));
  ASSERT_TRUE(store.revisions);
  EXPECT_EQ(store.revisions->at("hello").revisions.size(), 2u) << "the history is saved";
}

TEST_F(FleetOnAFakeRunner, ASuccessorThatCrashesRollsTheDeployBackByItself) {
  start(kHello);
  all_ready();
  auto spec = *fleet->manifest().find("hello");
  spec.env["COLOR"] = "broken";
  ASSERT_EQ(std::get<int>(fleet->deploy("hello", spec, "deploy: COLOR=broken")), 2);
  settle();
  const auto surge = runner.in(sv::InstanceState::kStarting);
  ASSERT_EQ(surge.size(), 1u);
  runner.set(surge[0], sv::InstanceState::kBackoff, "exit 1");
  settle();
  EXPECT_TRUE(has_event("deploy of revision 2 failed"));
  EXPECT_EQ(fleet->revision("hello"), 1) << "back to what ran";
  EXPECT_EQ(runner.instances.at(surge[0]).state, sv::InstanceState::kStopping);
  EXPECT_EQ(runner.running("1"), 3) << "the old instances never stopped serving";
  runner.reap();
  settle();
  EXPECT_FALSE(fleet->rolling("hello"));
  const auto history = fleet->history("hello");
  ASSERT_EQ(history.size(), 2u);
  EXPECT_TRUE(history[1].as_object().at("failed").as_bool());
}

TEST_F(FleetOnAFakeRunner, ASuccessorNotReadyInTimeRollsBackOnTheFakeClock) {
  start(
      "services:\n  hello:\n    command: [hello]\n    replicas: 2\n"
      "    deploy: { ready_timeout: 5s }\n");
  all_ready();
  auto spec = *fleet->manifest().find("hello");
  spec.env["SLOW"] = "1";
  fleet->deploy("hello", spec, "deploy: SLOW=1");
  settle();
  const auto surge = runner.in(sv::InstanceState::kStarting);
  ASSERT_EQ(surge.size(), 1u);
  clock.advance(4s);
  runner.set(surge[0], sv::InstanceState::kStarting);  // any news makes a pass
  settle();
  EXPECT_TRUE(fleet->rolling("hello")) << "within its ready_timeout";
  clock.advance(2s);
  runner.set(surge[0], sv::InstanceState::kStarting);
  settle();
  EXPECT_TRUE(has_event("was not ready within 5s"));
  EXPECT_EQ(fleet->revision("hello"), 1);
}

TEST_F(FleetOnAFakeRunner, AFixedPortIsHandedOverNeverShared) {
  start("services:\n  db:\n    command: [db]\n    port: 6380\n");
  all_ready();
  auto spec = *fleet->manifest().find("db");
  spec.env["V"] = "2";
  fleet->deploy("db", spec, "deploy: V=2");
  settle();
  EXPECT_EQ(runner.stops, std::vector<std::string>{"db-1"}) << "the old one goes first";
  EXPECT_EQ(runner.instances.size(), 1u) << "no successor while the port is held";
  runner.reap();
  settle();
  ASSERT_EQ(runner.instances.size(), 1u);
  EXPECT_EQ(runner.instances.begin()->second.revision, "2");
  EXPECT_EQ(runner.instances.begin()->second.port, 6380);
}

TEST_F(FleetOnAFakeRunner, ApplyAddsRemovesUpdatesAndDeploysAsPlanned) {
  start(
      "services:\n  hello:\n    command: [hello]\n    replicas: 2\n"
      "  old:\n    command: [old]\n  web:\n    command: [web]\n");
  all_ready();
  const auto next = manifest(
      "services:\n  hello:\n    command: [hello]\n    replicas: 3\n"
      "  web:\n    command: [web, --v2]\n  new:\n    command: [new]\n");
  const auto dry = fleet->apply(next, "apply", true);
  ASSERT_TRUE(std::holds_alternative<ApplyPlan>(dry));
  settle();
  EXPECT_TRUE(runner.stops.empty()) << "a dry run changes nothing";
  const auto r = fleet->apply(next, "apply", false);
  ASSERT_TRUE(std::holds_alternative<ApplyPlan>(r));
  std::map<std::string, std::string> action;
  for (const auto& s : std::get<ApplyPlan>(r).steps) action[s.service] = s.action;
  EXPECT_EQ(action,
            (std::map<std::string, std::string>{
                {"hello", "update"}, {"web", "deploy"}, {"new", "add"}, {"old", "remove"}}));
  settle();
  EXPECT_EQ(runner.instances.at("old-1").state, sv::InstanceState::kStopping);
  EXPECT_EQ(runner.instances.count("new-1"), 1u);
  EXPECT_EQ(fleet->desired("hello"), 3);
  EXPECT_TRUE(fleet->rolling("web"));
  EXPECT_EQ(fleet->manifest().find("old"), nullptr);
}

TEST(PlanApply, NamesWhatChangedAndWarnsOfWhatTakesEffectAtTheNextUp) {
  const auto now = manifest("services:\n  a:\n    command: [a]\n    env: { X: '1' }\n");
  const auto next = manifest(
      "name: other\nservices:\n  a:\n    command: [a]\n    env: { X: '2', Y: '3' }\n"
      "    routes: [/a]\n");
  const std::vector<Revision> revisions{
      {1, definition_hash(now.services[0]), now.services[0], {}, "the manifest", false}};
  auto running = [&](std::string_view name) -> std::optional<RunningService> {
    if (name != "a") return std::nullopt;
    return RunningService{&revisions, 0, revisions[0].hash, false};
  };
  const auto r = plan_apply(now, next, running, {});
  const auto& plan = std::get<ApplyPlan>(r);
  ASSERT_EQ(plan.steps.size(), 1u);
  EXPECT_EQ(plan.steps[0].action, "deploy");
  EXPECT_EQ(plan.steps[0].detail, "env X, Y, routes");
  EXPECT_EQ(plan.steps[0].revision, 2);
  ASSERT_GE(plan.warnings.size(), 1u);
  EXPECT_NE(plan.warnings[0].find("name"), std::string::npos) << plan.warnings[0];
  auto restarting = [&](std::string_view name) -> std::optional<RunningService> {
    return RunningService{&revisions, 0, revisions[0].hash, name == "a"};
  };
  const auto refused = plan_apply(now, next, restarting, {});
  ASSERT_TRUE(std::holds_alternative<CommandError>(refused));
  EXPECT_EQ(std::get<CommandError>(refused).status, 409);
  // HTTPS at the front door (the gateway's start arguments) is one of those settings.
  auto tls = now;
  tls.gateway_tls = TlsSpec{{{"/srv/site.pem", "/srv/site.key"}}, "", true};
  const auto with_tls = std::get<ApplyPlan>(plan_apply(now, tls, running, {}));
  ASSERT_EQ(with_tls.warnings.size(), 1u);
  EXPECT_NE(with_tls.warnings[0].find("gateway.tls none -> { certificates: [/srv/site.pem+/srv/"
                                      "site.key], redirect: none, hsts: true }: the fleet's own"),
            std::string::npos)
      << with_tls.warnings[0];
}

TEST_F(FleetOnAFakeRunner, TheSavedScaleComesBackAtTheNextStart) {
  start(kHello);
  ASSERT_FALSE(fleet->scale("hello", 5));
  settle();
  fleet.reset();
  runner.instances.clear();
  start(kHello);
  EXPECT_EQ(fleet->desired("hello"), 5);
  EXPECT_EQ(runner.instances.size(), 5u);
  EXPECT_TRUE(has_event("replicas 5 as last scaled (the manifest says 3)"));
}

}  // namespace
}  // namespace squadron::control
