// The state an agent leaves for the next one: read back as written, replaced at once, and bad
// files refused with what is wrong (the next agent then adopts nothing, and says why).
#include "squadron/cluster/agent_state.hpp"

#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace squadron::cluster {
namespace {
namespace sv = squadron::supervisor;

sv::Supervisor::Held held(const std::string& id, pid_t pid) {
  sv::Supervisor::Held h;
  h.spec.service = "hello";
  h.spec.id = id;
  h.spec.revision = "3";
  h.spec.launch.argv = {"/usr/bin/hello", "--port", "${PORT}"};
  h.spec.expand_variables = true;
  h.status.pid = pid;
  h.status.port = 41234;
  h.status.state = sv::InstanceState::kReady;
  h.status.restarts = 2;
  h.status.started_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000));
  h.start_ticks = 123456789;
  return h;
}

TEST(AgentState, IsReadBackAsWritten) {
  AgentState s{.lease = 7587869374947283543, .instances = {held("hello-a", 4242), held("b", 9)}};
  std::string error;
  const auto back = parse_agent_state(agent_state_text(s), error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->lease, s.lease);
  ASSERT_EQ(back->instances.size(), 2u);
  const auto& h = back->instances[0];
  EXPECT_EQ(h.spec.id, "hello-a");
  EXPECT_EQ(h.spec.revision, "3");
  EXPECT_EQ(h.spec.launch.argv, s.instances[0].spec.launch.argv);
  EXPECT_EQ(h.status.id, "hello-a");
  EXPECT_EQ(h.status.service, "hello");
  EXPECT_EQ(h.status.pid, 4242);
  EXPECT_EQ(h.status.port, 41234);
  EXPECT_EQ(h.status.state, sv::InstanceState::kReady);
  EXPECT_EQ(h.status.restarts, 2);
  EXPECT_EQ(h.status.started_at, s.instances[0].status.started_at);
  EXPECT_EQ(h.start_ticks, 123456789u);
}

TEST(AgentState, BadTextSaysWhatIsWrong) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "not a JSON object"},
      {"[]", "not a JSON object"},
      {R"({"instances": []})", "lease"},
      {R"({"lease": -1, "instances": []})", "lease"},
      {R"({"lease": 1})", "instances"},
      {R"({"lease": 1, "instances": [3]})", "instances[0]: expected an object"},
      {R"({"lease": 1, "instances": [{}]})", "instances[0].spec: missing"},
      {R"({"lease": 1, "instances": [{"spec": {"service": "a", "argv": ["x"]}}]})",
       "instances[0].spec.id: missing"},
  };
  for (const auto& [text, want] : cases) {
    std::string error;
    EXPECT_FALSE(parse_agent_state(text, error)) << text;
    EXPECT_NE(error.find(want), std::string::npos) << text << " -> " << error;
  }
  auto bad = agent_state_text({.lease = 1, .instances = {held("a", 5)}});
  bad.replace(bad.find("\"state\":\"ready\""), 15, "\"state\":\"sleepy\"");
  std::string error;
  EXPECT_FALSE(parse_agent_state(bad, error));
  EXPECT_NE(error.find("instances[0]: expected pid, port, state"), std::string::npos) << error;
  // A start time past what a system_clock time point holds (found by agent_state_fuzz).
  auto late = agent_state_text({.lease = 1, .instances = {held("a", 5)}});
  late.replace(late.find("\"started_at_ms\":1700000"), 23, "\"started_at_ms\":11700000000000");
  EXPECT_FALSE(parse_agent_state(late, error)) << late;
}

TEST(AgentState, IsSavedWholeAndForItsOwnerOnly) {
  char tmpl[] = "/tmp/squadron-agent-state-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::filesystem::path file = std::filesystem::path(tmpl) / "agent.json";
  std::string error;
  EXPECT_FALSE(load_agent_state(file, error));
  EXPECT_EQ(error, "") << "no file: nothing to adopt, and nothing wrong";
  ASSERT_TRUE(save_agent_state(file, {.lease = 5, .instances = {held("a", 5)}}, error)) << error;
  ASSERT_TRUE(save_agent_state(file, {.lease = 6, .instances = {}}, error)) << error;
  const auto back = load_agent_state(file, error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->lease, 6);
  EXPECT_TRUE(back->instances.empty());
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(file.string() + ".tmp"));
  std::ofstream(file) << "{";
  EXPECT_FALSE(load_agent_state(file, error));
  EXPECT_NE(error.find(file.string() + ": not a JSON object"), std::string::npos) << error;
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace squadron::cluster
