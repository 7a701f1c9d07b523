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

using namespace std::chrono_literals;
namespace json = boost::json;
namespace fs = std::filesystem;

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
    EXPECT_EQ(keys, (std::set<std::string>{"service", "id", "pid", "port", "state", "restarts",
                                           "uptime_s", "revision"}));
    EXPECT_EQ(o.at("state").as_string(), "ready");
    ports.insert(port_of(o));
    const bool flask = o.at("service").as_string() == "flask";
    const auto answer = fetch(port_of(o), "GET", flask ? "/hello" : "/healthz");
    ASSERT_TRUE(answer) << o.at("id").as_string();
    EXPECT_EQ(answer->status, 200);
  }
  EXPECT_EQ(ports.size(), 4u) << "distinct ports";
  EXPECT_EQ(of(list, "hello").size(), 2u);

  const auto again = cli({"up", "-d"});
  EXPECT_EQ(again.code, 1) << "one fleet per manifest folder";
  EXPECT_NE(again.output.find("already running"), std::string::npos) << again.output;
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

// The environment of the process `pid` (from /proc), as NAME=VALUE lines.
std::string environ_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::replace(all.begin(), all.end(), '\0', '\n');
  return all;
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

// Requests answered 200 on /hello by the hello instance on `port`, from its own /metrics.
long hello_count(std::uint16_t port) {
  const auto r = fetch(port, "GET", "/metrics");
  if (!r) return -1;
  const std::string key = "route=\"/hello\",status=\"200\"} ";
  const auto at = r->body.find(key);
  return at == std::string::npos ? 0 : std::stol(r->body.substr(at + key.size()));
}

class Gateway : public Fleet {
 protected:
  void start_routed() {
    std::ofstream(dir_ / "squadron.yaml")
        << "name: routed\ncontrol: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\n"
        << "services:\n"
        << "  hello:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n"
        << "    replicas: 3\n    ready: { path: /readyz }\n    routes: [/hello]\n"
        << "  flask:\n    command: [/usr/bin/python3, " << SQUADRON_SOURCE_DIR
        << "/examples/flask-hello/app.py]\n"
        << "    routes: [{ prefix: /py, strip_prefix: true }]\n";
    up();
    const auto list = ps();
    ASSERT_EQ(of(list, "gateway").size(), 1u) << "routes start the gateway";
    gateway_ = port_of(*of(list, "gateway")[0]);
    for (const auto* o : of(list, "hello")) hellos_.push_back(port_of(*o));
  }
  std::uint16_t gateway_ = 0;
  std::vector<std::uint16_t> hellos_;
};

TEST_F(Gateway, RoutesByPrefixAndSpreadsOverTheReadyReplicas) {
  start_routed();
  auto r = fetch(gateway_, "GET", "/py/hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "Hello World!") << "Flask, with /py stripped";
  r = fetch(gateway_, "GET", "/nowhere");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->header("content-type").value_or(""), "application/problem+json");

  std::vector<long> before;
  for (auto p : hellos_) before.push_back(hello_count(p));
  constexpr int kRequests = 3000;
  RawConnection c(gateway_);
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    const auto answer = c.read_response();
    ASSERT_TRUE(answer) << i;
    ASSERT_EQ(answer->status, 200) << i;
    ASSERT_EQ(answer->body, "Hello World!");
    ASSERT_TRUE(answer->header("x-request-id")) << "made by the gateway";
  }
  for (std::size_t i = 0; i < hellos_.size(); ++i) {
    const double share = double(hello_count(hellos_[i]) - before[i]) / kRequests;
    EXPECT_NEAR(share, 1.0 / 3, 0.05) << "replica " << i;
  }
}

TEST_F(Gateway, TheGatewaysOwnPortsAreBelowTheEphemeralRangeSoNoInstanceCanTakeThem) {
  // Instances get ports by binding port 0 (the kernel's ephemeral range); the gateway's
  // listeners, bound again at each of its restarts, must never be among them.
  start_routed();
  int low = 0;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low;
  ASSERT_GT(low, 11000);
  EXPECT_LT(gateway_, low) << "gateway.listen's port 0, chosen at start";
  const auto list = ps();
  const auto env = environ_of(pid_of(*of(list, "hello")[0]));
  int urls = 0;
  for (const char* name : {"SQUADRON_HELLO_URL=", "SQUADRON_FLASK_URL="}) {
    const auto at = env.find(name);
    ASSERT_NE(at, std::string::npos) << env;
    const auto colon = env.find(':', env.find("127.0.0.1", at));
    EXPECT_LT(std::stoi(env.substr(colon + 1)), low) << name;
    ++urls;
  }
  EXPECT_EQ(urls, 2);
  for (const auto* o : of(list, "hello")) EXPECT_GE(port_of(*o), low) << "instances: ephemeral";
}

TEST_F(Gateway, AmbiguousFramingNeverReachesAnUpstream) {
  start_routed();
  long total = 0;
  for (auto p : hellos_) total += hello_count(p);
  for (const char* smuggle : {"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                              "4\r\nTransfer-Encoding: chunked\r\n"
                              "\r\n0\r\n\r\n",
                              "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                              "4\r\nContent-Length: 5\r\n\r\nabcde"}) {
    RawConnection c(gateway_);
    ASSERT_TRUE(c.send(smuggle));
    const auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
  }
  long after = 0;
  for (auto p : hellos_) after += hello_count(p);
  EXPECT_EQ(after, total);
}

TEST_F(Gateway, AKilledGatewayServesAgainWithinASecond) {
  start_routed();
  const auto list = ps();
  const pid_t pid = pid_of(*of(list, "gateway")[0]);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  const auto start = std::chrono::steady_clock::now();
  std::optional<RawResponse> r;
  while (std::chrono::steady_clock::now() - start < 5s) {
    r = fetch(gateway_, "GET", "/hello");  // the same port: gateway.listen's, kept across restarts
    if (r && r->status == 200) break;
    std::this_thread::sleep_for(10ms);  // polling pace
  }
  ASSERT_TRUE(r && r->status == 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  // The new process answered; the fleet's list shows it once the supervisor has recorded the
  // restart, which can trail the first answer by a moment.
  pid_t now = pid;
  json::array after;
  eventually(
      [&] {
        after = ps();
        const auto gateways = of(after, "gateway");
        if (!gateways.empty()) now = pid_of(*gateways[0]);
        return now != pid;
      },
      5s);
  ASSERT_NE(now, pid) << "a new gateway process";
  EXPECT_EQ(port_of(*of(after, "gateway")[0]), gateway_) << "on the same address";
}

}  // namespace
}  // namespace squadron::testing

namespace squadron::testing {
namespace {

std::string flaky_py() {
  return std::string(SQUADRON_SOURCE_DIR) + "/tests/integration/services/flaky.py";
}

long count_of(std::uint16_t port) {
  const auto r = fetch(port, "GET", "/count");
  return r && r->status == 200 ? std::stol(r->body) : -1;
}

TEST_F(Gateway, AnInstanceAnswering503IsEjectedAndItsRequestsRetriedElsewhere) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  flaky:\n    command: [/usr/bin/python3, " << flaky_py() << "]\n"
      << "    replicas: 3\n    env: { FAIL_INSTANCE: flaky-2 }\n    routes: [/flaky]\n";
  up();
  const auto list = ps();
  const auto gateway = port_of(*of(list, "gateway")[0]);
  std::uint16_t failing = 0;
  for (const auto* o : of(list, "flaky")) {
    if (o->at("id").as_string() == "flaky-2") failing = port_of(*o);
  }
  ASSERT_NE(failing, 0);
  RawConnection c(gateway);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(c.send("GET /flaky HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    const auto r = c.read_response();
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << "a 503 of a GET is retried on another instance: " << r->body;
  }
  // Ejected after 5 failures: of 1,000 requests, at most those 5 (plus 1%) reached it.
  EXPECT_LE(count_of(failing), 15);
  // ...and the ejection is among the fleet's events (from the gateway's counters, each second).
  std::string events;
  eventually(
      [&] {
        events = cli({"events", "flaky"}).output;
        return events.find("ejected") != std::string::npos;
      },
      10s, 100ms);
  EXPECT_NE(events.find("gateway: 1 instance ejected"), std::string::npos) << events;
}

TEST_F(Gateway, ARetiredInstanceStopsOnlyOnceTheGatewayHasNoRequestInFlightToIt) {
  // flaky.py dies at once on SIGTERM, so a request it is still answering would be cut (a 502:
  // no retries here). The fleet waits for the gateway's word instead of a fixed drain.
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  flaky:\n    command: [/usr/bin/python3, " << flaky_py() << "]\n"
      << "    replicas: 2\n    routes: [/flaky]\n    proxy: { retries: 0 }\n";
  up();
  const auto list = ps();
  const auto gateway = port_of(*of(list, "gateway")[0]);
  std::vector<std::uint16_t> ports;
  for (const auto* o : of(list, "flaky")) ports.push_back(port_of(*o));
  constexpr int kSlow = 6;
  std::vector<int> status(kSlow, 0);
  std::vector<std::thread> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.emplace_back([&, i] {
      const auto r = fetch(gateway, "GET", "/flaky/slow/1500");
      status[i] = r ? r->status : -1;
    });
  }
  // Every slow request has reached an instance (each counts it before it sleeps).
  eventually(
      [&] {
        long n = 0;
        for (auto p : ports) n += std::max(0L, count_of(p));
        return n >= kSlow;
      },
      10s);
  const auto scaled = std::chrono::steady_clock::now();
  const auto r = cli({"scale", "flaky=1"});
  ASSERT_EQ(r.code, 0) << r.output;
  for (auto& t : slow) t.join();
  for (int i = 0; i < kSlow; ++i) EXPECT_EQ(status[i], 200) << "slow request " << i;
  // ...and it went soon after its last request, not at the stop_grace bound (10 s).
  eventually([&] { return of(ps(), "flaky").size() <= 1; }, 9s, 20ms);
  EXPECT_EQ(of(ps(), "flaky").size(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - scaled, 5s);
}

TEST_F(Gateway, AHangingServiceGets504AtItsTimeoutAndOthersAreUnaffected) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  stuck:\n    command: [/usr/bin/python3, " << flaky_py() << "]\n"
      << "    routes: [/stuck]\n    proxy: { timeout: 500ms, retries: 0 }\n"
      << "  hello:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n"
      << "    routes: [/hello]\n";
  up();
  const auto gateway = port_of(*of(ps(), "gateway")[0]);
  std::vector<RawConnection> hung;
  for (int i = 0; i < 20; ++i) {
    hung.emplace_back(gateway);
    ASSERT_TRUE(hung.back().send("GET /stuck/hang HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  }
  for (int i = 0; i < 100; ++i) {  // meanwhile, another service answers as usual
    const auto r = fetch(gateway, "GET", "/hello");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
  for (auto& c : hung) {
    const auto r = c.read_response(5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 504);
    EXPECT_NE(r->body.find("did not answer within 500 ms"), std::string::npos) << r->body;
  }
}

}  // namespace
}  // namespace squadron::testing

namespace squadron::testing {
namespace {

TEST_F(Gateway, GetsSurviveKilledReplicas) {
  start_routed();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, bad{0};
  std::string first_bad;
  std::thread load([&] {
    auto c = std::make_unique<RawConnection>(gateway_);
    while (!stop) {
      std::optional<RawResponse> r;
      if (c->send("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) r = c->read_response();
      if (r && r->status == 200) {
        ++ok;
        continue;
      }
      if (bad++ == 0) first_bad = r ? r->body : "no answer from the gateway";
      c = std::make_unique<RawConnection>(gateway_);
    }
  });
  for (int kill = 0; kill < 3; ++kill) {
    std::this_thread::sleep_for(300ms);  // load runs meanwhile: pacing, not synchronisation
    const auto list = ps();
    for (const auto* o : of(list, "hello")) {
      if (o->at("state").as_string() == "ready") {
        ::kill(pid_of(*o), SIGKILL);
        break;
      }
    }
  }
  std::this_thread::sleep_for(300ms);
  stop = true;
  load.join();
  EXPECT_GT(ok.load(), 100);
  EXPECT_EQ(bad.load(), 0) << first_bad;
}

}  // namespace
}  // namespace squadron::testing

namespace squadron::testing {
namespace {

TEST_F(Gateway, ScalingDownUnderLoadFailsNoRequestNotEvenAPost) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  echo:\n    command: [" << bin_dir() << "/echo, --threads, \"1\"]\n"
      << "    replicas: 4\n    ready: { path: /readyz }\n    routes: [/echo]\n";
  up();
  const auto gateway = port_of(*of(ps(), "gateway")[0]);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, bad{0};
  std::string first_bad;
  std::thread load([&] {
    auto c = std::make_unique<RawConnection>(gateway);
    while (!stop) {
      std::optional<RawResponse> r;
      if (c->send("POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello"))
        r = c->read_response();
      if (r && r->status == 200) {
        ++ok;
        continue;
      }
      if (bad++ == 0) first_bad = r ? std::to_string(r->status) + " " + r->body : "no answer";
      c = std::make_unique<RawConnection>(gateway);
    }
  });
  // The load runs before, during and after the scale-down (which, with the drain ending as soon
  // as the gateway is done with an instance, can take only milliseconds).
  auto wait_for_ok = [&](int n) { eventually([&] { return ok.load() >= n; }, 10s, 5ms); };
  wait_for_ok(50);
  const auto r = cli({"scale", "echo=1"});
  const int at_scale = ok.load();
  eventually([&] { return of(ps(), "echo").size() <= 1; }, 10s);  // the three retired ones gone
  wait_for_ok(ok.load() + 50);
  stop = true;
  load.join();
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_GE(at_scale, 50);
  EXPECT_EQ(of(ps(), "echo").size(), 1u);
  EXPECT_GT(ok.load(), at_scale + 49) << "and after";
  EXPECT_EQ(bad.load(), 0) << first_bad;
}

}  // namespace
}  // namespace squadron::testing

namespace squadron::testing {
namespace {

TEST_F(Gateway, EveryInstanceGetsAStableUrlForEveryService) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  hello:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n"
      << "    replicas: 2\n    routes: [/hello]\n"
      << "  caller-app:\n    command: sh -c 'echo url=$SQUADRON_HELLO_URL "
      << "self=$SQUADRON_CALLER_APP_URL; exec /usr/bin/python3 " << flaky_py() << "'\n";
  up();
  const auto r = cli({"logs", "caller-app"});
  const auto at = r.output.find("url=http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << r.output;
  EXPECT_NE(r.output.find("self=http://127.0.0.1:"), std::string::npos) << r.output;
  const auto port = static_cast<std::uint16_t>(std::stoi(r.output.substr(at + 21)));
  for (int i = 0; i < 4; ++i) {  // any path: the whole listener is hello's
    const auto answer = fetch(port, "GET", "/hello");
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, 200);
    EXPECT_EQ(answer->body, "Hello World!");
  }
  const auto health = fetch(port, "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << "not only the routed prefix";
}

TEST_F(Gateway, CountsEveryAnswerLimitsRatesAndCarriesTheDeadline) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  echo:\n    command: " << bin_dir() << "/echo --threads 1\n"
      << "    routes: [/echo, { prefix: /limited, rate_limit: { rate: 1, burst: 3 } }]\n"
      << "    proxy: { timeout: 4s }\n";
  up();
  const auto gateway = port_of(*of(ps(), "gateway")[0]);
  // The deadline travels: the route timeout, or less when the caller's is shorter.
  auto seen_timeout = [&](std::string_view extra) {
    const auto r = fetch(gateway, "GET", "/echo", extra);
    EXPECT_TRUE(r && r->status == 200);
    if (!r || r->status != 200) return -1L;
    const auto v = json::parse(r->body);
    const auto* h = v.at("headers").as_object().if_contains("x-squadron-timeout-ms");
    return h != nullptr ? std::stol(std::string(h->as_string())) : -1L;
  };
  EXPECT_EQ(seen_timeout({}), 4000);
  const long capped = seen_timeout("X-Squadron-Timeout-Ms: 1500\r\n");
  EXPECT_GT(capped, 1000);
  EXPECT_LE(capped, 1500);
  const auto spent = fetch(gateway, "GET", "/echo", "X-Squadron-Timeout-Ms: 0\r\n");
  ASSERT_TRUE(spent);
  EXPECT_EQ(spent->status, 504) << "a spent deadline is not worked on";

  // 3 at once (the burst), then 1 a second: 10 quick requests get at most 4 through.
  int ok = 0;
  int limited = 0;
  for (int i = 0; i < 10; ++i) {
    const auto r = fetch(gateway, "GET", "/limited");
    ASSERT_TRUE(r);
    if (r->status == 429) {
      ++limited;
      EXPECT_TRUE(r->header("retry-after")) << "429 says when to come back";
    } else {
      ++ok;
    }
  }
  EXPECT_GE(ok, 3);
  EXPECT_LE(ok, 4);
  EXPECT_EQ(ok + limited, 10);

  // The gateway's own /metrics, and the control plane's samples of them (every second).
  const auto control = control_port();
  const auto fleet = fetch(control, "GET", "/api/v1/fleet");
  ASSERT_TRUE(fleet);
  const std::string metrics_url(json::parse(fleet->body).at("gateway_metrics").as_string());
  const auto admin = static_cast<std::uint16_t>(std::stoi(metrics_url.substr(17)));
  const auto text = fetch(admin, "GET", "/metrics");
  ASSERT_TRUE(text);
  EXPECT_EQ(text->status, 200);
  EXPECT_NE(text->body.find("squadron_service_requests_total{service=\"echo\"} 13"),
            std::string::npos)
      << text->body;
  EXPECT_NE(text->body.find("squadron_route_rate_limited_total{service=\"echo\",route=\"/"
                            "limited\"} " +
                            std::to_string(limited)),
            std::string::npos);
  EXPECT_NE(text->body.find("squadron_service_timeouts_total{service=\"echo\"} 1"),
            std::string::npos);
  json::value sample;
  for (int i = 0; i < 50; ++i) {  // sampled once a second: wait for the one after our requests
    const auto r = fetch(control, "GET", "/api/v1/metrics?service=echo&history=5");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const auto v = json::parse(r->body);
    const auto* echo = v.at("services").as_object().if_contains("echo");
    if (echo != nullptr && echo->at("latest").at("requests").to_number<std::uint64_t>() == 13) {
      sample = echo->at("latest");
      break;
    }
    std::this_thread::sleep_for(100ms);  // polling pace
  }
  ASSERT_TRUE(sample.is_object()) << "the control plane samples the gateway";
  EXPECT_EQ(sample.at("rate_limited").to_number<int>(), limited);
  EXPECT_EQ(sample.at("timeouts").to_number<int>(), 1);
  const auto bad = fetch(control, "GET", "/api/v1/metrics?history=many");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

// The peak resident memory of process `pid` in KiB (VmHWM), or -1.
long peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST_F(Gateway, LargeAndChunkedUploadsStreamThroughInConstantMemory) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  sink:\n    command: [/usr/bin/python3, " << flaky_py() << "]\n"
      << "    routes: [/sink]\n    proxy: { timeout: 60s }\n";
  up();
  const auto list = ps();
  const auto gateway = port_of(*of(list, "gateway")[0]);
  const pid_t gateway_pid = pid_of(*of(list, "gateway")[0]);
  const long rss_before = peak_rss_kib(gateway_pid);
  ASSERT_GT(rss_before, 0);

  // 256 MiB announced by Content-Length, sent 1 MiB at a time: far over the SDK's 8 MiB limit,
  // and the gateway never holds it.
  constexpr std::size_t kMiB = 1 << 20;
  constexpr std::size_t kPieces = 256;
  std::string piece(kMiB, 'x');
  for (std::size_t i = 0; i < piece.size(); ++i) piece[i] = static_cast<char>('a' + i % 26);
  std::uint32_t crc = 0;
  {
    RawConnection c(gateway);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.send("POST /sink HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                       std::to_string(kPieces * kMiB) + "\r\n\r\n"));
    for (std::size_t i = 0; i < kPieces; ++i) ASSERT_TRUE(c.send(piece)) << i;
    const auto r = c.read_response(60s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_NE(r->body.find("bytes=268435456 "), std::string::npos) << r->body;
    EXPECT_NE(r->body.find("framing=length"), std::string::npos) << r->body;
    // The same connection serves the next request: the body was read to its end.
    ASSERT_TRUE(c.send("GET /sink HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    const auto next = c.read_response(5s);
    ASSERT_TRUE(next);
    EXPECT_EQ(next->status, 200);
  }
  // Chunked in, chunked on: 3 chunks of odd sizes, and the bytes arrive intact.
  {
    RawConnection c(gateway);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(
        c.send("PUT /sink HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
    std::string all;
    for (std::size_t size : {std::size_t{100000}, std::size_t{1}, std::size_t{3 * kMiB + 7}}) {
      const std::string chunk = piece.substr(0, std::min(size, piece.size())) +
                                std::string(size > piece.size() ? size - piece.size() : 0, 'z');
      all += chunk;
      char line[32];
      std::snprintf(line, sizeof line, "%zx\r\n", chunk.size());
      ASSERT_TRUE(c.send(line));
      ASSERT_TRUE(c.send(chunk));
      ASSERT_TRUE(c.send("\r\n"));
    }
    ASSERT_TRUE(c.send("0\r\n\r\n"));
    const auto r = c.read_response(30s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    boost::crc_32_type crc32;  // zlib's CRC-32, as the Python upstream computes it
    crc32.process_bytes(all.data(), all.size());
    crc = crc32.checksum();
    char expect[64];
    std::snprintf(expect, sizeof expect, "bytes=%zu crc=%08x framing=chunked", all.size(), crc);
    EXPECT_EQ(r->body, expect);
  }
  const long rss_after = peak_rss_kib(gateway_pid);
  EXPECT_LT(rss_after - rss_before, 32 * 1024)
      << "peak RSS grew from " << rss_before << " KiB to " << rss_after << " KiB";

  // Large answers flow back the same way, whatever their framing; the pattern arrives intact.
  for (const char* framing : {"bytes", "chunked", "close"}) {
    RawConnection c(gateway);
    ASSERT_TRUE(c.send(std::string("GET /sink/") + framing + "/" + std::to_string(64 * kMiB) +
                       " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    const auto r = c.read_response(60s);
    ASSERT_TRUE(r) << framing;
    EXPECT_EQ(r->status, 200);
    ASSERT_EQ(r->body.size(), 64 * kMiB) << framing;
    bool intact = true;
    for (std::size_t i = 0; i < r->body.size() && intact; i += 4099)
      intact = static_cast<unsigned char>(r->body[i]) == i % 256;
    EXPECT_TRUE(intact) << framing;
    // A close-delimited answer goes on chunked (the client connection stays usable).
    EXPECT_EQ(r->header("transfer-encoding").value_or(""),
              std::string_view(framing) == "bytes" ? "" : "chunked")
        << framing;
  }
  const long rss_after_download = peak_rss_kib(gateway_pid);
  EXPECT_LT(rss_after_download - rss_before, 32 * 1024)
      << "peak RSS grew from " << rss_before << " KiB to " << rss_after_download << " KiB";

  // A body cut off mid-way never reaches the upstream as complete, and the gateway lives on.
  {
    RawConnection c(gateway);
    ASSERT_TRUE(
        c.send("POST /sink HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000\r\n\r\n"));
    ASSERT_TRUE(c.send(piece));
  }
  const auto after = fetch(gateway, "GET", "/sink");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

TEST_F(Gateway, TheAutoscalerFollowsConcurrencyUpAtOnceAndDownAfterItsDelay) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  echo:\n    command: " << bin_dir() << "/echo --threads 1\n"
      << "    routes: [/echo]\n    ready: { path: /readyz }\n"
      << "    autoscale: { min: 1, max: 4, metric: concurrency, target: 2, "
         "scale_down_delay: 3s }\n";
  up();
  const auto gateway = port_of(*of(ps(), "gateway")[0]);
  ASSERT_EQ(of(ps(), "echo").size(), 1u);
  // 12 clients, each with a 200 ms request in flight all the time: ~12 in flight, target 2.
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  std::vector<std::thread> load;
  for (int i = 0; i < 12; ++i) {
    load.emplace_back([&] {
      while (!stop.load()) {
        const auto r = fetch(gateway, "GET", "/echo?delay_ms=200");
        if (!r || r->status != 200) ++failed;
      }
    });
  }
  int ready = 0;
  const auto step = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - step < 15s && ready < 4) {
    std::this_thread::sleep_for(200ms);  // polling pace
    ready = 0;
    const auto list = ps();
    for (const auto* o : of(list, "echo")) ready += o->at("state").as_string() == "ready";
  }
  const auto took = std::chrono::steady_clock::now() - step;
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_EQ(ready, 4) << "scaled to max";
  EXPECT_LT(took, 8s);
  EXPECT_EQ(failed.load(), 0);
  // Quiet: back to min once the delay has passed without demand.
  int left = 4;
  const auto quiet = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - quiet < 20s && left != 1) {
    std::this_thread::sleep_for(250ms);  // polling pace
    left = static_cast<int>(of(ps(), "echo").size());
  }
  EXPECT_EQ(left, 1);
  EXPECT_GE(std::chrono::steady_clock::now() - quiet, 3s) << "not before scale_down_delay";
  // Every decision is an event with its inputs and rule.
  const auto r = cli({"events", "echo"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("autoscale 1 -> "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("concurrency "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("-> 1: concurrency"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(down)"), std::string::npos) << r.output;
  // The API shows the autoscaler's state.
  const auto svc = fetch(control_port(), "GET", "/api/v1/services/echo");
  ASSERT_TRUE(svc);
  const auto v = json::parse(svc->body);
  EXPECT_EQ(v.at("autoscale").at("max").as_int64(), 4);
  EXPECT_EQ(v.at("autoscale").at("metric").as_string(), "concurrency");
}

TEST_F(Gateway, AnIdleServiceScalesToZeroAndTheGatewayWakesItForTheNextRequest) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  hello:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n"
      << "    routes: [/hello]\n"
      << "    autoscale: { min: 0, max: 2, target: 8, scale_down_delay: 2s }\n";
  up();
  const auto gateway = port_of(*of(ps(), "gateway")[0]);
  auto r = fetch(gateway, "GET", "/hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  std::size_t left = 1;
  const auto quiet = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - quiet < 15s && left != 0) {
    std::this_thread::sleep_for(200ms);  // polling pace
    left = of(ps(), "hello").size();
  }
  ASSERT_EQ(left, 0u) << "idle for scale_down_delay: scaled to zero";
  // The next request waits while the gateway wakes the service, and is answered.
  const auto before = std::chrono::steady_clock::now();
  r = fetch(gateway, "GET", "/hello");
  const auto cold = std::chrono::steady_clock::now() - before;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, "Hello World!");
  EXPECT_LT(cold, 3s) << "a cold start, not a retry loop";
  const auto events = cli({"events", "hello"});
  EXPECT_NE(events.output.find("(idle)"), std::string::npos) << events.output;
  EXPECT_NE(events.output.find("(wake)"), std::string::npos) << events.output;
  // Waking a service that cannot sleep is refused precisely.
  const auto no = fetch(control_port(), "POST", "/api/v1/services/gateway/wake", auth());
  ASSERT_TRUE(no);
  EXPECT_EQ(no->status, 409);
}

TEST_F(Gateway, ADeployReplacesEveryInstanceWithoutAFailedRequestAndAFailingOneRollsBack) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  echo:\n    command: " << bin_dir() << "/echo --threads 1\n"
      << "    replicas: 3\n    routes: [/echo]\n    ready: { path: /readyz }\n";
  up();
  const auto gateway = port_of(*of(ps(), "gateway")[0]);
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  std::atomic<int> answered{0};
  std::vector<std::thread> load;
  for (int i = 0; i < 4; ++i) {
    load.emplace_back([&] {
      while (!stop.load()) {
        const auto r = fetch(gateway, "GET", "/echo");
        if (!r || r->status != 200) ++failed;
        ++answered;
      }
    });
  }
  auto revisions = [&] {
    std::multiset<std::string> out;
    const auto list = ps();
    for (const auto* o : of(list, "echo")) out.insert(std::string(o->at("revision").as_string()));
    return out;
  };
  auto r = cli({"deploy", "echo", "--env", "COLOR=blue"}, 60s);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("revision 2 runs on every instance"), std::string::npos) << r.output;
  EXPECT_EQ(revisions(), (std::multiset<std::string>{"2", "2", "2"}));

  // A revision that cannot start: the rollout stops and the service rolls back by itself.
  r = cli({"deploy", "echo", "--command", "/bin/sh -c 'exit 3'"}, 60s);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("revision 3 failed and was rolled back"), std::string::npos) << r.output;
  EXPECT_EQ(revisions(), (std::multiset<std::string>{"2", "2", "2"}));
  const auto events = cli({"events", "echo"});
  EXPECT_NE(events.output.find("rolling back to revision 2"), std::string::npos) << events.output;

  const auto h = cli({"history", "echo"});
  EXPECT_EQ(h.code, 0) << h.output;
  EXPECT_NE(h.output.find("failed"), std::string::npos) << h.output;
  EXPECT_NE(h.output.find("set COLOR"), std::string::npos) << h.output;

  r = cli({"rollback", "echo"}, 60s);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(revisions(), (std::multiset<std::string>{"1", "1", "1"}));
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_GT(answered.load(), 100);
  EXPECT_EQ(failed.load(), 0) << "no request failed through three rollouts";
  // Bad input gets a precise answer.
  const auto bad =
      fetch(control_port(), "POST", "/api/v1/services/echo/deploy",
            auth() + "Content-Type: application/json\r\n", "{\"env\": {\"PORT\": \"1\"}}");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("not yours to set"), std::string::npos) << bad->body;
}

TEST_F(Gateway, ApplyRollsWhatChangedUpdatesRoutesInPlaceAddsAndRemovesServices) {
  auto manifest = [&](const std::string& echo_extra, const std::string& hello_routes,
                      const std::string& more) {
    std::ofstream(dir_ / "squadron.yaml")
        << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
        << "  echo:\n    command: " << bin_dir() << "/echo --threads 1\n"
        << "    replicas: 2\n    routes: [/echo]\n    ready: { path: /readyz }\n"
        << echo_extra << "  hello:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n"
        << "    routes: " << hello_routes << "\n"
        << more;
  };
  manifest("", "[/hello]", "");
  up();
  const auto before = ps();
  const auto gateway = port_of(*of(before, "gateway")[0]);
  const std::string hello_id(of(before, "hello")[0]->at("id").as_string());
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  std::atomic<int> answered{0};
  std::vector<std::thread> load;
  for (int i = 0; i < 3; ++i) {
    load.emplace_back([&] {
      while (!stop.load()) {
        const auto r = fetch(gateway, "GET", "/echo");
        if (!r || r->status != 200) ++failed;
        ++answered;
      }
    });
  }
  const std::string flask = "  flask:\n    command: [/usr/bin/python3, " +
                            std::string(SQUADRON_SOURCE_DIR) +
                            "/examples/flask-hello/app.py]\n"
                            "    routes: [{ prefix: /py, strip_prefix: true }]\n";
  manifest("    env: { COLOR: blue }\n    deploy: { max_surge: 2 }\n",
           "[/hello, { prefix: /greet, strip_prefix: true }]", flask);

  auto r = cli({"apply", "--dry-run"});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("deploy     2         env COLOR, deploy"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("update     1         routes"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("flask                add"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("nothing was changed"), std::string::npos) << r.output;
  EXPECT_TRUE(of(ps(), "flask").empty()) << "a dry run changes nothing";

  r = cli({"apply"}, 60s);
  EXPECT_EQ(r.code, 0) << r.output;
  auto list = ps();
  std::multiset<std::string> revisions;
  for (const auto* o : of(list, "echo"))
    revisions.insert(std::string(o->at("revision").as_string()));
  EXPECT_EQ(revisions, (std::multiset<std::string>{"2", "2"})) << "echo rolled to revision 2";
  ASSERT_EQ(of(list, "hello").size(), 1u);
  EXPECT_EQ(of(list, "hello")[0]->at("id").as_string(), hello_id) << "routes change in place";
  ASSERT_EQ(of(list, "flask").size(), 1u);
  EXPECT_EQ(of(list, "flask")[0]->at("state").as_string(), "ready");
  auto greet = fetch(gateway, "GET", "/greet/hello");
  ASSERT_TRUE(greet);
  EXPECT_EQ(greet->status, 200) << "the new route reached the gateway";
  EXPECT_EQ(greet->body, "Hello World!");
  auto py = fetch(gateway, "GET", "/py/hello");
  ASSERT_TRUE(py);
  EXPECT_EQ(py->status, 200) << "the added service is routed";

  // max_surge: 2 starts both successors before the first old instance is retired.
  const auto events = cli({"events", "echo"});
  const auto first_retire = events.output.find("retiring echo-");
  ASSERT_NE(first_retire, std::string::npos) << events.output;
  const std::string head = events.output.substr(0, first_retire);
  EXPECT_NE(head.find("echo-3       starting"), std::string::npos) << events.output;
  EXPECT_NE(head.find("echo-4       starting"), std::string::npos) << events.output;

  // Unchanged: nothing to do. A bad manifest: every problem with its place, nothing changes.
  r = cli({"apply"});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("already runs this manifest"), std::string::npos) << r.output;
  const auto bad =
      fetch(control_port(), "POST", "/api/v1/apply", auth() + "Content-Type: application/json\r\n",
            "{\"manifest\": \"services:\\n  a:\\n    comand: [x]\\n\"}");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 422) << bad->body;
  EXPECT_NE(bad->body.find("\"path\":\"services.a.comand\""), std::string::npos) << bad->body;
  EXPECT_NE(bad->body.find("\"line\":3"), std::string::npos) << bad->body;

  // Removed from the file: its instances stop and its routes leave the gateway.
  manifest("    env: { COLOR: blue }\n    deploy: { max_surge: 2 }\n",
           "[/hello, { prefix: /greet, strip_prefix: true }]", "");
  r = cli({"apply"}, 60s);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("flask                remove"), std::string::npos) << r.output;
  eventually([&] { return of(ps(), "flask").empty(); }, 10s, 50ms);  // drains, then stops
  EXPECT_TRUE(of(ps(), "flask").empty());
  py = fetch(gateway, "GET", "/py/hello");
  ASSERT_TRUE(py);
  EXPECT_EQ(py->status, 404);

  stop = true;
  for (auto& t : load) t.join();
  EXPECT_GT(answered.load(), 100);
  EXPECT_EQ(failed.load(), 0) << "no request failed through the applies";
}

TEST_F(Gateway, TheStreamflixDemoRendersItsPageAndSurvivesRatingsGoingAway) {
  // The demo's own manifest, on free ports, with its database in this test's folder.
  const std::string example = std::string(SQUADRON_SOURCE_DIR) + "/examples/streamflix";
  std::ifstream in(example + "/squadron.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty());
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
      text.replace(at, from.size(), to);
  };
  replace_all("127.0.0.1:9900", "127.0.0.1:0");
  replace_all("127.0.0.1:8080", "127.0.0.1:0");
  replace_all("../../build/bin", bin_dir());
  replace_all(".data/ratings.db", (dir_ / "ratings.db").string());
  replace_all("recommendations/app.py", example + "/recommendations/app.py");
  replace_all("../flask/app.py", example + "/../flask/app.py");
  replace_all("data/titles.json", example + "/data/titles.json");
  replace_all("data/ratings-seed.json", example + "/data/ratings-seed.json");
  std::ofstream(dir_ / "squadron.yaml") << text;
  up();
  const auto list = ps();
  for (const char* s : {"web", "catalog", "ratings", "recommendations", "hello"})
    EXPECT_EQ(of(list, s).size(), 1u) << s;
  const auto gateway = port_of(*of(list, "gateway")[0]);

  auto page = fetch(gateway, "GET", "/");
  ASSERT_TRUE(page);
  ASSERT_EQ(page->status, 200) << page->body;
  EXPECT_NE(page->body.find("Orbit of Nine"), std::string::npos) << "the catalogue";
  EXPECT_NE(page->body.find("&#9733;"), std::string::npos) << "average ratings";
  EXPECT_NE(page->body.find("Because you watched"), std::string::npos) << "recommendations";
  auto count_of_t02 = [&] {
    const auto r = fetch(gateway, "GET", "/ratings/t02");
    return r && r->status == 200 ? json::parse(r->body).at("count").to_number<int>() : -1;
  };
  const int before_rating = count_of_t02();
  ASSERT_GT(before_rating, 0) << "seeded on first start";
  const auto rated = fetch(gateway, "POST", "/ratings", "Content-Type: application/json\r\n",
                           R"({"title_id": "t02", "user": "tester", "stars": 5})");
  ASSERT_TRUE(rated);
  EXPECT_EQ(rated->status, 201) << rated->body;
  const auto bad = fetch(gateway, "POST", "/ratings", "Content-Type: application/json\r\n",
                         R"({"title_id": "t02", "user": "tester", "stars": 9})");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 422);
  const auto hello = fetch(gateway, "GET", "/hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->body, "Hello World!");

  // ratings gone: the page still renders within the route timeout, ratings marked unavailable.
  ASSERT_EQ(cli({"scale", "ratings=0"}).code, 0);
  const auto before = std::chrono::steady_clock::now();
  page = fetch(gateway, "GET", "/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 15s) << "the route timeout";
  EXPECT_NE(page->body.find("ratings unavailable"), std::string::npos);
  EXPECT_NE(page->body.find("Orbit of Nine"), std::string::npos);

  // Back: nothing it stored was lost.
  ASSERT_EQ(cli({"scale", "ratings=1"}).code, 0);
  EXPECT_EQ(count_of_t02(), before_rating + 1);
  EXPECT_TRUE(fs::exists(dir_ / "ratings.db"));
}

TEST_F(Gateway, EveryAnswerGoesToItsOwnRequestUnderMixedLoad) {
  // Slow and fast requests over the same pooled upstream connections, many ready at once: each
  // client must get the answer to its own request (a shared read buffer once mixed them up).
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  echo:\n    command: " << bin_dir() << "/echo --threads 1\n"
      << "    replicas: 2\n    routes: [/echo]\n    ready: { path: /readyz }\n";
  up();
  const auto gateway = port_of(*of(ps(), "gateway")[0]);
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::atomic<int> failed{0};
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 24; ++i) {
    clients.emplace_back([&, i] {
      RawConnection c(gateway);
      for (int n = 0; !stop.load(); ++n) {
        const std::string tag = "c" + std::to_string(i) + "n" + std::to_string(n);
        const std::string target =
            "/echo?" + tag + (i % 3 == 0 ? "&delay_ms=" + std::to_string(50 + n % 5 * 40) : "");
        if (!c.send("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) {
          ++failed;
          return;
        }
        const auto r = c.read_response(5s);
        if (!r || r->status != 200) {
          ++failed;
          return;
        }
        ++answered;
        const auto v = json::parse(r->body);
        if (v.at("query").as_string().find(tag) != 0) ++wrong;
      }
    });
  }
  std::this_thread::sleep_for(3s);  // the load's length, not synchronisation
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_GT(answered.load(), 500);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0) << "answers handed to the wrong request";
}

}  // namespace
}  // namespace squadron::testing
