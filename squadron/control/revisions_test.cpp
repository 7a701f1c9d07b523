#include "squadron/control/revisions.hpp"

#include <gtest/gtest.h>

namespace squadron::control {
namespace {

using namespace std::chrono_literals;

Route route(std::string prefix) {
  Route r;
  r.prefix = std::move(prefix);
  return r;
}

ServiceSpec service(std::string name) {
  ServiceSpec s;
  s.name = std::move(name);
  s.command = {"/bin/app", "--fast"};
  s.cwd = "/srv";
  s.env = {{"COLOR", "blue"}, {"SQUADRON_OTHER_URL", "http://127.0.0.1:4000"}};
  s.routes = {route("/app")};
  return s;
}

TEST(DefinitionHash, CoversWhatInstancesRunButNotSquadronsVariablesOrPolicies) {
  const auto a = service("a");
  auto b = a;
  b.env["SQUADRON_OTHER_URL"] = "http://127.0.0.1:5000";  // another start, another port
  b.routes.clear();
  b.replicas = 7;
  b.deploy.max_surge = 3;
  EXPECT_EQ(definition_hash(a), definition_hash(b));
  EXPECT_EQ(definition_hash(a).size(), 8u);
  auto c = a;
  c.env["COLOR"] = "green";
  EXPECT_NE(definition_hash(a), definition_hash(c));
  auto d = a;
  d.ready.path = "/readyz";
  EXPECT_NE(definition_hash(a), definition_hash(d));
  auto e = a;
  e.port = 5000;
  EXPECT_NE(definition_hash(a), definition_hash(e));
}

TEST(Revisions, ReadBackAsSavedWithTheManifestsRoutesAndVariables) {
  const auto now =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1'795'000'000'000));
  auto r1 = service("web");
  auto r2 = r1;
  r2.env["COLOR"] = "green";
  r2.command = {"/bin/app", "--faster"};
  r2.live = Probe{.path = "/healthz", .interval = 2s, .timeout = 500ms, .threshold = 5};
  r2.stop_grace = 3s;
  r2.restart = RestartPolicy::kOnFailure;
  auto r3 = r2;
  r3.port = 8081;
  r3.env.erase("COLOR");
  Histories saved;
  saved["web"] = {{{1, definition_hash(r1), r1, now, "the manifest", false},
                   {2, definition_hash(r2), r2, now + 1s, "deploy: COLOR=green", false},
                   {3, definition_hash(r3), r3, now + 2s, "apply squadron.yaml: port", true}},
                  1,
                  definition_hash(r1)};
  const std::string text = revisions_json(saved);

  // The manifest at the next start: new routes, new Squadron variables.
  auto manifest = service("web");
  manifest.routes = {route("/v2")};
  manifest.env["SQUADRON_OTHER_URL"] = "http://127.0.0.1:4100";
  std::string warning;
  const auto back = parse_revisions(text, {manifest, service("other")}, warning);
  EXPECT_EQ(warning, "");
  ASSERT_EQ(back.size(), 1u) << "a service without a saved history is left out";
  const auto& h = back.at("web");
  EXPECT_EQ(h.base, definition_hash(r1));
  ASSERT_EQ(h.revisions.size(), 3u);
  EXPECT_EQ(h.current, 1u);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& want = saved["web"].revisions[i];
    const auto& got = h.revisions[i];
    EXPECT_EQ(got.number, want.number);
    EXPECT_EQ(got.hash, want.hash) << i;
    EXPECT_EQ(got.cause, want.cause);
    EXPECT_EQ(got.failed, want.failed);
    EXPECT_EQ(got.at, want.at);
    EXPECT_EQ(got.spec.command, want.spec.command);
    EXPECT_EQ(got.spec.cwd, want.spec.cwd);
    EXPECT_EQ(got.spec.port, want.spec.port);
    EXPECT_EQ(got.spec.ready, want.spec.ready);
    EXPECT_EQ(got.spec.live, want.spec.live);
    EXPECT_EQ(got.spec.stop_grace, want.spec.stop_grace);
    EXPECT_EQ(got.spec.restart, want.spec.restart);
    EXPECT_EQ(got.spec.routes, manifest.routes) << "routes are the manifest's";
    EXPECT_EQ(got.spec.env.at("SQUADRON_OTHER_URL"), "http://127.0.0.1:4100")
        << "Squadron's variables are this start's";
  }
  EXPECT_EQ(h.revisions[1].spec.env.at("COLOR"), "green");
  EXPECT_EQ(h.revisions[2].spec.env.count("COLOR"), 0u);
}

TEST(Revisions, AnUnreadableHistoryIsNamedAndLeftOutNeverThrown) {
  std::string warning;
  EXPECT_TRUE(parse_revisions("{not json", {service("a")}, warning).empty());
  EXPECT_NE(warning.find("not JSON"), std::string::npos) << warning;
  warning.clear();
  EXPECT_TRUE(parse_revisions("[1, 2]", {service("a")}, warning).empty());
  EXPECT_NE(warning.find("services"), std::string::npos) << warning;

  Histories saved;
  const auto a = service("a");
  saved["a"] = {{{1, definition_hash(a), a, {}, "the manifest", false}}, 0, definition_hash(a)};
  saved["b"] = saved["a"];
  std::string text = revisions_json(saved);
  // b's current revision is not in its list: b is unreadable, a is fine.
  const auto at = text.find("\"current\":1", text.find("\"b\""));
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 11, "\"current\":9");
  warning.clear();
  const auto back = parse_revisions(text, {service("a"), service("b")}, warning);
  EXPECT_EQ(back.size(), 1u);
  EXPECT_EQ(back.count("a"), 1u);
  EXPECT_EQ(warning, "unreadable history of b");
}

}  // namespace
}  // namespace squadron::control
