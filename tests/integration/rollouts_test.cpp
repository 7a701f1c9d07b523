// Deploys, automatic rollbacks and apply under load, through the gateway.
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

TEST_F(Gateway, ADeployReplacesEveryInstanceWithoutAFailedRequestAndAFailingOneRollsBack) {
  std::ofstream(dir_ / "squadron.yaml")
      << "control: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\nservices:\n"
      << "  echo:\n    command: " << bin_dir() << "/echo --threads 1\n"
      << "    replicas: 3\n    routes: [/echo]\n    ready: { path: /readyz }\n";
  up();
  const auto gateway = port_of(*of(ps(), "gateway")[0]);
  Load load(gateway, {.threads = 4, .target = "/echo"});
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
  load.stop();
  EXPECT_GT(load.answered(), 100);
  EXPECT_EQ(load.failed(), 0) << "no request failed through three rollouts: "
                              << load.first_failure();
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
  Load load(gateway, {.threads = 3, .target = "/echo"});
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

  load.stop();
  EXPECT_GT(load.answered(), 100);
  EXPECT_EQ(load.failed(), 0) << "no request failed through the applies: " << load.first_failure();
}

}  // namespace
}  // namespace squadron::testing
