// The fleet as a user drives it: `squadron up -d`, ps, scale, restart, logs, down, and the
// control API underneath, with real services over real sockets (control.listen on port 0).
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <signal.h>
#include <sstream>
#include <thread>

#include <boost/crc.hpp>
#include <boost/json.hpp>

#include "fleet_fixture.hpp"

namespace squadron::testing {
namespace {

TEST_F(Fleet, UpDetachedReturnsWithEveryInstanceReadyOnItsOwnPort) {
  write_manifest("  flask:\n    command: [/usr/bin/python3, " + std::string(SQUADRON_SOURCE_DIR) +
                 "/examples/flask-hello/app.py]\n");
  const auto r = cli({"up", "-d"}, 60s);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("4/4 ready"), std::string::npos) << r.output;
  const auto list = ps();
  ASSERT_EQ(list.size(), 4u);
  std::set<std::uint16_t> ports;
  for (const auto& v : list) {
    const auto& o = v.as_object();
    std::set<std::string> keys;
    for (const auto& kv : o) keys.insert(std::string(kv.key()));
    EXPECT_EQ(keys,
              (std::set<std::string>{"service", "id", "pid", "port", "state", "restarts",
                                     "uptime_s", "revision", "rss_bytes", "cpu_percent", "cpus",
                                     "memory_limit_bytes", "oom_kills", "last_exit"}));
    EXPECT_EQ(o.at("state").as_string(), "ready");
    ports.insert(port_of(o));
    const bool flask = o.at("service").as_string() == "flask";
    const auto answer = fetch(port_of(o), "GET", flask ? "/hello" : "/healthz");
    ASSERT_TRUE(answer) << o.at("id").as_string();
    EXPECT_EQ(answer->status, 200);
  }
  EXPECT_EQ(ports.size(), 4u) << "distinct ports";
  EXPECT_EQ(of(list, "hello").size(), 2u);

  // One fleet per folder: up -d again converges the running one to the manifest (as compose).
  std::ofstream(dir_ / "squadron.yaml", std::ios::app) << "    replicas: 2\n";  // flask x2
  const auto again = cli({"up", "-d"});
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("already running"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("applying the manifest"), std::string::npos) << again.output;
  EXPECT_EQ(of(ps(), "flask").size(), 2u) << again.output;
  ChildProcess foreground(
      {bin_dir() + "/squadron", "up", "--file", (dir_ / "squadron.yaml").string()});
  EXPECT_EQ(foreground.wait_exit(10s), 1);
  EXPECT_NE(foreground.output().find("`squadron apply` (or `up -d`) brings it to this manifest"),
            std::string::npos)
      << foreground.output();
}

TEST_F(Fleet, AKilledInstanceIsReplacedAndTheOthersNeverNotice) {
  write_manifest();
  up();
  const auto before = ps();
  const auto* victim = of(before, "hello")[0];
  const pid_t dead = pid_of(*victim);
  const std::string id(victim->at("id").as_string());
  ASSERT_EQ(::kill(dead, SIGKILL), 0);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  json::array after;
  bool ready = false;
  while (!ready && std::chrono::steady_clock::now() < deadline) {
    after = ps();
    for (const auto* o : of(after, "hello")) {
      ready = ready || (o->at("id").as_string() == id && pid_of(*o) != dead &&
                        o->at("state").as_string() == "ready");
    }
  }
  ASSERT_TRUE(ready) << json::serialize(after);
  for (const auto& v : before) {
    const auto& o = v.as_object();
    if (o.at("id").as_string() == id) continue;
    bool same = false;
    for (const auto& w : after) {
      same = same || (w.as_object().at("id") == o.at("id") && pid_of(w.as_object()) == pid_of(o) &&
                      w.as_object().at("restarts").as_int64() == 0);
    }
    EXPECT_TRUE(same) << o.at("id").as_string() << " was disturbed";
  }
}

TEST_F(Fleet, ScaleUpReturnsWhenReadyAndScaleDownStopsGracefully) {
  write_manifest();
  up();
  auto r = cli({"scale", "hello=8"});
  ASSERT_EQ(r.code, 0) << r.output;
  auto list = ps();
  ASSERT_EQ(of(list, "hello").size(), 8u);
  std::vector<pid_t> pids;
  for (const auto* o : of(list, "hello")) {
    EXPECT_EQ(o->at("state").as_string(), "ready");
    pids.push_back(pid_of(*o));
  }
  r = cli({"scale", "hello=1"});
  ASSERT_EQ(r.code, 0) << r.output;
  list = ps();
  ASSERT_EQ(of(list, "hello").size(), 1u);
  EXPECT_EQ(of(list, "echo").size(), 1u) << "other services untouched";
  pids.erase(std::remove(pids.begin(), pids.end(), pid_of(*of(list, "hello")[0])), pids.end());
  EXPECT_TRUE(all_gone_within(pids, 5s));
  // Gracefully: each stopped instance ended by its own exit 0 after SIGTERM, not SIGKILL.
  const auto events = fetch(control_port(), "GET", "/api/v1/events", auth());
  ASSERT_TRUE(events);
  int graceful = 0;
  const auto doc = json::parse(events->body);  // kept: the loop walks inside it
  for (const auto& e : doc.at("events").as_array()) {
    const auto msg = e.at("message").as_string();
    if (msg.starts_with("stopped") && msg.ends_with("after exit 0")) ++graceful;
  }
  EXPECT_EQ(graceful, 7) << events->body;

  // The scale is kept: a restarted fleet comes back with it.
  ASSERT_EQ(cli({"scale", "hello=3"}).code, 0);
  ASSERT_EQ(cli({"down"}).code, 0);
  up();
  EXPECT_EQ(of(ps(), "hello").size(), 3u);
}

TEST_F(Fleet, ACrashingServiceBacksOffAndTheRestIsUnaffected) {
  write_manifest("  crasher:\n    command: sh -c 'echo about to fail; exit 3'\n");
  const auto r = cli({"up", "-d", "--timeout", "20s"}, 60s);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("crasher-1: backoff after exit 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("about to fail"), std::string::npos) << "its last output is shown";
  // hello and echo get ready regardless, and stay so while it keeps failing with growing delays.
  std::map<std::string, pid_t> healthy;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (healthy.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    healthy.clear();
    for (const auto& v : ps()) {
      const auto& o = v.as_object();
      if (o.at("service").as_string() != "crasher" && o.at("state").as_string() == "ready")
        healthy[std::string(o.at("id").as_string())] = pid_of(o);
    }
  }
  ASSERT_EQ(healthy.size(), 3u);
  deadline = std::chrono::steady_clock::now() + 10s;
  std::int64_t restarts = 0;
  json::array list;
  while (restarts < 3 && std::chrono::steady_clock::now() < deadline) {
    list = ps();
    ASSERT_EQ(of(list, "crasher").size(), 1u);
    restarts = of(list, "crasher")[0]->at("restarts").as_int64();
    std::this_thread::sleep_for(100ms);  // polling pace, not synchronisation
  }
  EXPECT_GE(restarts, 3);
  EXPECT_EQ(of(list, "crasher")[0]->at("state").as_string(), "backoff");
  for (const auto& v : list) {
    const auto& o = v.as_object();
    if (o.at("service").as_string() == "crasher") continue;
    EXPECT_EQ(o.at("state").as_string(), "ready");
    EXPECT_EQ(pid_of(o), healthy[std::string(o.at("id").as_string())]);
  }
}

TEST_F(Fleet, RestartReplacesEachInstanceOnlyOnceItsSuccessorIsReady) {
  write_manifest();
  up();
  std::set<std::string> old_ids;
  const auto before = ps();
  for (const auto* o : of(before, "hello")) old_ids.insert(std::string(o->at("id").as_string()));
  const auto r = cli({"restart", "hello"});
  ASSERT_EQ(r.code, 0) << r.output;
  const auto list = ps();
  ASSERT_EQ(of(list, "hello").size(), 2u);
  for (const auto* o : of(list, "hello")) {
    EXPECT_EQ(old_ids.count(std::string(o->at("id").as_string())), 0u);
    EXPECT_EQ(o->at("state").as_string(), "ready");
  }
  // The order of events: each retirement follows its successor's readiness.
  const auto events = fetch(control_port(), "GET", "/api/v1/events", auth());
  ASSERT_TRUE(events);
  std::vector<std::string> retire;
  const auto doc = json::parse(events->body);  // kept: the loop walks inside it
  for (const auto& e : doc.at("events").as_array()) {
    const std::string msg(e.at("message").as_string());
    if (msg.find("3 ready, 2 wanted; retiring") != std::string::npos) retire.push_back(msg);
  }
  EXPECT_EQ(retire.size(), 2u) << events->body;
}

TEST_F(Fleet, ADeployedRevisionSurvivesARestartOfTheFleetUnlessTheManifestChanged) {
  write_manifest();
  up();
  auto r = cli({"deploy", "echo", "--env", "COLOR=blue"}, 60s);
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_EQ(cli({"down"}, 30s).code, 0);

  up();
  auto list = ps();
  ASSERT_EQ(of(list, "echo").size(), 1u);
  EXPECT_EQ(of(list, "echo")[0]->at("revision").as_string(), "2") << "as it last ran";
  EXPECT_NE(environ_of(pid_of(*of(list, "echo")[0])).find("\nCOLOR=blue\n"), std::string::npos);
  const auto h = cli({"history", "echo"});
  EXPECT_NE(h.output.find("the manifest"), std::string::npos) << h.output;
  EXPECT_NE(h.output.find("current  set COLOR"), std::string::npos) << h.output;
  ASSERT_EQ(cli({"down"}, 30s).code, 0);

  // Edited while the fleet was down: the file wins, as revision 3.
  write_manifest("    env: { SIZE: L }\n");
  up();
  list = ps();
  ASSERT_EQ(of(list, "echo").size(), 1u);
  EXPECT_EQ(of(list, "echo")[0]->at("revision").as_string(), "3");
  const auto env = environ_of(pid_of(*of(list, "echo")[0]));
  EXPECT_NE(env.find("\nSIZE=L\n"), std::string::npos) << env;
  EXPECT_EQ(env.find("COLOR="), std::string::npos) << env;
  EXPECT_EQ(of(list, "hello")[0]->at("revision").as_string(), "1") << "hello never changed";
  r = cli({"rollback", "echo"}, 60s);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(environ_of(pid_of(*of(ps(), "echo")[0])).find("\nCOLOR=blue\n"), std::string::npos)
      << "revision 2 again, from the saved history";
}

TEST_F(Fleet, TheControlApiRefusesMutationsWithoutTheTokenAndBadInputPrecisely) {
  write_manifest("  fixed:\n    command: " + bin_dir() +
                 "/hello --threads 1\n    port: " + std::to_string(free_port()) + "\n");
  up();
  const auto port = control_port();
  struct Case {
    const char* target;
    const char* body;
  };
  for (const Case c : {Case{"/api/v1/services/hello/scale", R"({"replicas":3})"},
                       Case{"/api/v1/services/hello/restart", ""}, Case{"/api/v1/down", ""}}) {
    auto r = fetch(port, "POST", c.target, "Content-Type: application/json\r\n", c.body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << c.target;
    EXPECT_EQ(r->header("content-type").value_or(""), "application/problem+json");
    r = fetch(port, "POST", c.target, "Authorization: Bearer not-the-token\r\n", c.body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << c.target;
  }
  EXPECT_EQ(of(ps(), "hello").size(), 2u) << "nothing changed";
  auto status = [&](std::string_view method, std::string_view target, std::string_view body) {
    const auto r = fetch(port, method, target, auth(), body);
    return r ? r->status : 0;
  };
  EXPECT_EQ(status("POST", "/api/v1/services/hello/scale", "{\"replicas\":"), 400);
  EXPECT_EQ(status("POST", "/api/v1/services/hello/scale", R"({"replicas":"three"})"), 400);
  EXPECT_EQ(status("POST", "/api/v1/services/hello/scale", R"({"replicas":-1})"), 400);
  EXPECT_EQ(status("POST", "/api/v1/services/hello/scale", "[]"), 400);
  EXPECT_EQ(status("POST", "/api/v1/services/nope/scale", R"({"replicas":1})"), 404);
  EXPECT_EQ(status("POST", "/api/v1/services/fixed/scale", R"({"replicas":2})"), 409);
  EXPECT_EQ(status("GET", "/api/v1/services/nope", ""), 404);
  EXPECT_EQ(status("GET", "/api/v1/instances/nope-1", ""), 404);
  EXPECT_EQ(status("GET", "/api/v1/nothing", ""), 404);
  EXPECT_EQ(status("DELETE", "/api/v1/services/hello", ""), 405);
  EXPECT_EQ(status("GET", "/api/v1/watch?since=x", ""), 400);
  EXPECT_EQ(status("GET", "/api/v1/logs?tail=many", ""), 400);
  EXPECT_EQ(status("GET", "/api/v1/logs?service=nope", ""), 404);
  // The CLI says the same, and what to do.
  const auto r = cli({"scale", "nope=2"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("no service \"nope\""), std::string::npos) << r.output;
}

TEST_F(Fleet, TheWatchStreamWakesOnChangeAsLongPollAndAsServerSentEvents) {
  write_manifest();
  up();
  const auto port = control_port();
  auto snap = fetch(port, "GET", "/api/v1/watch");
  ASSERT_TRUE(snap);
  const auto rev = json::parse(snap->body).at("revision").to_number<std::uint64_t>();
  EXPECT_EQ(json::parse(snap->body).at("instances").as_array().size(), 3u);

  // A long-poll at the current revision waits; a scale wakes it with a newer one.
  RawConnection poll(port);
  ASSERT_TRUE(poll.send("GET /api/v1/watch?since=" + std::to_string(rev) +
                        "&timeout=20s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  RawConnection sse(port);
  ASSERT_TRUE(sse.send("GET /api/v1/watch?since=" + std::to_string(rev) +
                       " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"));
  ASSERT_EQ(cli({"scale", "echo=2"}).code, 0);
  const auto woke = poll.read_response(10s);
  ASSERT_TRUE(woke);
  EXPECT_GT(json::parse(woke->body).at("revision").to_number<std::uint64_t>(), rev);
  std::string stream;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (stream.find("\n\n") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    sse.read_some(stream, deadline);
  EXPECT_NE(stream.find("text/event-stream"), std::string::npos) << stream;
  EXPECT_NE(stream.find("event: snapshot"), std::string::npos) << stream;
}

TEST_F(Fleet, LogsShowsTheTailAndFollowsNewOutput) {
  write_manifest();
  up();
  auto r = cli({"logs", "hello", "--tail", "5"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("hello-1 | "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("listening on"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("echo-1 | "), std::string::npos) << "only hello's";

  ChildProcess follow({bin_dir() + "/squadron", "-f", (dir_ / "squadron.yaml").string(), "logs",
                       "--follow", "--tail", "0"});
  follow.wait_exit(300ms);
  ASSERT_EQ(cli({"scale", "hello=3"}).code, 0);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (follow.output().find("hello-3 | ") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    follow.wait_exit(50ms);
  EXPECT_NE(follow.output().find("hello-3 | "), std::string::npos) << follow.output();
  ASSERT_EQ(cli({"down"}).code, 0);
  EXPECT_EQ(follow.wait_exit(10s), 0) << "a followed log ends with the fleet";
}

TEST_F(Fleet, DownStopsEverythingAndKillDash9OfTheFleetLeavesNothing) {
  write_manifest();
  up();
  std::vector<pid_t> pids;
  for (const auto& v : ps()) pids.push_back(pid_of(v.as_object()));
  ASSERT_EQ(pids.size(), 3u);
  auto r = cli({"down"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(all_gone_within(pids, 1s)) << "down returns once everything is gone";
  r = cli({"ps"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("no fleet is running"), std::string::npos) << r.output;

  up();
  pids.clear();
  for (const auto& v : ps()) pids.push_back(pid_of(v.as_object()));
  const pid_t daemon = daemon_pid();
  ASSERT_GT(daemon, 0);
  ASSERT_EQ(::kill(daemon, SIGKILL), 0);
  EXPECT_TRUE(all_gone_within(pids, 5s)) << "an instance outlived squadron";
  r = cli({"ps"});
  EXPECT_EQ(r.code, 1) << "a crashed fleet is not mistaken for a running one";
  up();  // and a new one starts in the same folder
}

}  // namespace
}  // namespace squadron::testing

namespace squadron::testing {
namespace {

TEST_F(Fleet, AnInstancesPortReachesItsCommandAsAVariable) {
  // A program that does not read PORT itself, given it on its command line.
  std::ofstream(dir_ / "squadron.yaml")
      << "name: vars\ncontrol: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  files:\n    command: [python3, -m, http.server, \"${PORT}\", --bind, \"${HOST}\"]\n"
      << "    replicas: 2\n    env: { WHO: \"instance ${SQUADRON_INSTANCE} costs $$5\" }\n";
  up();
  const auto list = ps();
  ASSERT_EQ(list.size(), 2u);
  for (const auto* o : of(list, "files")) {
    const auto r = fetch(port_of(*o), "GET", "/");
    ASSERT_TRUE(r) << o->at("id").as_string();
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(environ_of(pid_of(*o))
                  .find("WHO=instance " + std::string(o->at("id").as_string()) + " costs $5"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace squadron::testing
