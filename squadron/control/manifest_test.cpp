#include "squadron/control/manifest.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>

namespace squadron::control {
namespace {

using namespace std::chrono_literals;

const std::filesystem::path kFile = std::filesystem::temp_directory_path() / "squadron.yaml";

ManifestResult parse(std::string_view text) { return parse_manifest(text, kFile); }

// The one error of a broken manifest, as the user sees it.
std::string only_error(std::string_view text) {
  auto r = parse(text);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.errors.size(), 1u) << (r.errors.size() > 1 ? r.errors[1].to_string() : "");
  return r.errors.empty() ? "" : r.errors.front().to_string();
}

TEST(Manifest, ReadsEveryFieldOfTheDocumentedExample) {
  auto r = parse(R"(name: shop
control: { listen: 127.0.0.1:9900 }
gateway: { listen: 127.0.0.1:8080 }
services:
  hello:
    command: [build/bin/hello, --threads, "1"]
    cwd: .
    env: { GREETING: hi, COUNT: 3 }
    replicas: 2
    port: auto
    ready: { path: /readyz, interval: 250ms, threshold: 2 }
    live: { path: /healthz }
    routes: [/hello, { prefix: /py, strip_prefix: true, host: a.example }]
    stop_grace: 5s
    restart: on-failure
  flask:
    command: python3 "app with space.py" --debug
    port: 5000
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const Manifest& m = *r.manifest;
  EXPECT_EQ(m.name, "shop");
  EXPECT_EQ(m.control_listen, "127.0.0.1:9900");
  ASSERT_EQ(m.services.size(), 2u);
  const ServiceSpec& hello = m.services[0];
  EXPECT_EQ(hello.name, "hello");
  EXPECT_EQ(hello.command, (std::vector<std::string>{"build/bin/hello", "--threads", "1"}));
  EXPECT_EQ(hello.cwd, std::filesystem::weakly_canonical(kFile.parent_path()));
  EXPECT_EQ(hello.env.at("GREETING"), "hi");
  EXPECT_EQ(hello.env.at("COUNT"), "3");
  EXPECT_EQ(hello.replicas, 2);
  EXPECT_FALSE(hello.port);
  EXPECT_EQ(hello.ready.path, "/readyz");
  EXPECT_EQ(hello.ready.interval, 250ms);
  EXPECT_EQ(hello.ready.threshold, 2);
  ASSERT_TRUE(hello.live);
  EXPECT_EQ(hello.live->path, "/healthz");
  ASSERT_EQ(hello.routes.size(), 2u);
  EXPECT_EQ(hello.routes[1].prefix, "/py");
  EXPECT_TRUE(hello.routes[1].strip_prefix);
  EXPECT_EQ(hello.routes[1].host, "a.example");
  EXPECT_EQ(hello.stop_grace, 5s);
  EXPECT_EQ(hello.restart, RestartPolicy::kOnFailure);
  const ServiceSpec& flask = m.services[1];
  EXPECT_EQ(flask.command, (std::vector<std::string>{"python3", "app with space.py", "--debug"}));
  EXPECT_EQ(flask.port, 5000);
  EXPECT_EQ(flask.replicas, 1);
  EXPECT_TRUE(flask.ready.tcp());
  EXPECT_EQ(flask.stop_grace, 10s);
  EXPECT_EQ(flask.restart, RestartPolicy::kAlways);
}

TEST(Manifest, BadYamlPointsAtThePlace) {
  const auto e = only_error("services:\n  hello:\n    command: [a, b\n    replicas: 2\n");
  EXPECT_NE(e.find("squadron.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("not valid YAML"), std::string::npos) << e;
}

TEST(Manifest, UnknownKeyGetsDidYouMean) {
  const auto e = only_error("services:\n  hello:\n    command: [x]\n    replica: 2\n");
  EXPECT_EQ(e.substr(0, e.find(", port")),
            kFile.string() +
                ":4:5: services.hello.replica: unknown key \"replica\" (did you mean \"replicas\"? "
                "known keys: command, cwd, env, replicas")
      << e;
  auto r = parse("servics:\n  a: { command: [x] }\n");
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors[0].to_string().find("did you mean \"services\"?"), std::string::npos);
}

TEST(Manifest, WrongTypeSaysWhatWasExpected) {
  EXPECT_EQ(
      only_error("services:\n  hello:\n    command: [x]\n    replicas: two\n"),
      kFile.string() +
          ":4:15: services.hello.replicas: expected a whole number from 0 to 1000, got \"two\"");
}

TEST(Manifest, AFixedPortAllowsOneReplica) {
  const auto e = only_error(
      "services:\n  flask:\n    command: [python3, app.py]\n    replicas: 2\n    port: 5000\n");
  EXPECT_NE(
      e.find(":4:15: services.flask.replicas: a fixed port (5000) allows only one replica, got 2"),
      std::string::npos)
      << e;
  EXPECT_NE(e.find("use port: auto"), std::string::npos);
}

TEST(Manifest, MissingCommand) {
  EXPECT_NE(only_error("services:\n  hello:\n    replicas: 1\n")
                .find(":2:3: services.hello.command: a service needs a command"),
            std::string::npos);
}

TEST(Manifest, DuplicateFixedPorts) {
  const auto e = only_error(
      "services:\n  a: { command: [x], port: 5000 }\n  b: { command: [y], port: 5000 }\n");
  EXPECT_NE(e.find(":3:28: services.b.port: port 5000 is already used by services.a.port"),
            std::string::npos)
      << e;
}

TEST(Manifest, PortCollidingWithTheGateway) {
  const auto e = only_error(
      "gateway: { listen: 127.0.0.1:8081 }\nservices:\n  a: { command: [x], port: 8081 }\n");
  EXPECT_NE(e.find("port 8081 is already used by gateway.listen"), std::string::npos) << e;
}

TEST(Manifest, NoServices) {
  EXPECT_NE(only_error("name: empty\n").find("services: the manifest has no services"),
            std::string::npos);
  EXPECT_NE(only_error("services: {}\n").find("the manifest has no services"), std::string::npos);
}

TEST(Manifest, BadValuesEachSayWhatToWrite) {
  EXPECT_NE(only_error("services:\n  a: { command: [x], stop_grace: soon }\n")
                .find("expected a duration, got \"soon\""),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  a: { command: [x], restart: allways }\n")
                .find("did you mean \"always\"?"),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  a: { command: [x], ready: { path: readyz } }\n")
                .find("must start with '/'"),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  a: { command: [x], ready: { path: /r, tcp: true } }\n")
                .find("not both"),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  a: { command: [x], env: { PORT: 1 } }\n")
                .find("PORT is set by Squadron"),
            std::string::npos);
  EXPECT_NE(
      only_error("services:\n  a: { command: [x], routes: [hello] }\n").find("must start with '/'"),
      std::string::npos);
  EXPECT_NE(only_error("services:\n  a: { command: [x], port: 70000 }\n").find("from 1 to 65535"),
            std::string::npos);
  EXPECT_NE(
      only_error("services:\n  a: { command: [x], cwd: no/such/dir }\n").find("no such directory"),
      std::string::npos);
  EXPECT_NE(
      only_error("services:\n  a: { command: 'python3 \"app.py' }\n").find("unterminated quote"),
      std::string::npos);
  EXPECT_NE(only_error("control: { listen: nowhere }\nservices:\n  a: { command: [x] }\n")
                .find("expected host:port"),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  Hello: { command: [x] }\n").find("not a valid service name"),
            std::string::npos);
}

TEST(Manifest, DuplicateKeysAreErrors) {
  EXPECT_NE(only_error("services:\n  a:\n    command: [x]\n    command: [y]\n")
                .find("this key appears twice"),
            std::string::npos);
}

TEST(Manifest, ReportsEveryErrorInFileOrder) {
  auto r = parse(
      "services:\n  a:\n    command: [x]\n    replicas: -1\n  b:\n    port: auto\n    restart: "
      "sometimes\n");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].path, "services.a.replicas");
  EXPECT_EQ(r.errors[1].path, "services.b.command");
  EXPECT_EQ(r.errors[2].path, "services.b.restart");
  EXPECT_LT(r.errors[0].line, r.errors[2].line);
}

TEST(Manifest, AMissingFileSaysWhatToDo) {
  auto r = load_manifest("/no/such/squadron.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].to_string().find("pass -f path/to/squadron.yaml"), std::string::npos);
}

}  // namespace
}  // namespace squadron::control

namespace squadron::control {
namespace {

TEST(ManifestProxy, DefaultsAndOverridesAndPreciseErrors) {
  auto r = parse_manifest(
      "services:\n  a:\n    command: [x]\n    proxy: { timeout: 2s, retries: 0, balance: random "
      "}\n",
      "/tmp/squadron.yaml");
  ASSERT_TRUE(r.ok());
  const auto& p = r.manifest->services[0].proxy;
  EXPECT_EQ(p.timeout, std::chrono::seconds(2));
  EXPECT_EQ(p.retries, 0);
  EXPECT_EQ(p.balance, "random");
  EXPECT_EQ(p.max_in_flight, 1024) << "the design doc's default";
  EXPECT_EQ(p.max_connections, 1024) << "Envoy's default";
  EXPECT_EQ(p.eject_after, 5);
  r = parse_manifest("services:\n  a:\n    command: [x]\n    proxy: { max_connections: 32 }\n",
                     "/tmp/squadron.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.manifest->services[0].proxy.max_connections, 32);
  r = parse_manifest(
      "services:\n  a:\n    command: [x]\n    proxy: { retries: 9, balance: fast, "
      "max_connections: 0 }\n",
      "/tmp/squadron.yaml");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].path, "services.a.proxy.retries");
  EXPECT_EQ(r.errors[1].path, "services.a.proxy.balance");
  EXPECT_NE(r.errors[1].hint.find("round-robin"), std::string::npos);
  EXPECT_EQ(r.errors[2].path, "services.a.proxy.max_connections");
}

TEST(ManifestProxy, DurationsOutsideTheWatchContractsBoundsAreErrors) {
  // The gateway could not apply them (it would keep its default): refused here instead.
  const auto r = parse_manifest(
      "services:\n  a:\n    command: [x]\n    proxy: { timeout: 0s, connect_timeout: 48h, "
      "slow_start: 0s }\n",
      "/tmp/squadron.yaml");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].path, "services.a.proxy.timeout");
  EXPECT_EQ(r.errors[1].path, "services.a.proxy.connect_timeout");
  EXPECT_NE(r.errors[1].message.find("1ms to 24h"), std::string::npos) << r.errors[1].message;
}

TEST(ManifestProxy, ARouteMayHaveARateLimit) {
  auto r = parse_manifest(
      "services:\n  a:\n    command: [x]\n    routes:\n      - /free\n"
      "      - { prefix: /api, rate_limit: { rate: 100, burst: 250 } }\n"
      "      - { prefix: /b, rate_limit: { rate: 7 } }\n",
      "/tmp/squadron.yaml");
  ASSERT_TRUE(r.ok());
  const auto& routes = r.manifest->services[0].routes;
  ASSERT_EQ(routes.size(), 3u);
  EXPECT_EQ(routes[0].rate, 0) << "no limit unless asked";
  EXPECT_EQ(routes[1].rate, 100);
  EXPECT_EQ(routes[1].burst, 250);
  EXPECT_EQ(routes[2].burst, 7) << "burst defaults to one second's worth";
  r = parse_manifest(
      "services:\n  a:\n    command: [x]\n    routes:\n"
      "      - { prefix: /api, rate_limit: { burst: 5 } }\n"
      "      - { prefix: /b, rate_limit: { rate: 0 } }\n"
      "      - { prefix: /c, rate_limit: { rate: 5, per: 1s } }\n",
      "/tmp/squadron.yaml");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].path, "services.a.routes[0].rate_limit");
  EXPECT_NE(r.errors[0].hint.find("rate: 100"), std::string::npos);
  EXPECT_EQ(r.errors[1].path, "services.a.routes[1].rate_limit.rate");
  EXPECT_EQ(r.errors[2].path, "services.a.routes[2].rate_limit.per");
}

TEST(ManifestDeploy, SurgeAndUnavailableAreCountsOrPercentagesWithKubernetesRounding) {
  auto r = parse_manifest(
      "services:\n  a:\n    command: [x]\n"
      "  b:\n    command: [x]\n    deploy: { max_surge: 2, max_unavailable: 1, ready_timeout: 5s "
      "}\n"
      "  c:\n    command: [x]\n    deploy: { max_surge: 25%, max_unavailable: 25% }\n",
      "/tmp/squadron.yaml");
  ASSERT_TRUE(r.ok()) << r.errors[0].to_string();
  const auto& a = r.manifest->services[0].deploy;
  EXPECT_EQ(a.surge(4), 1) << "the design doc's defaults: one extra, none fewer";
  EXPECT_EQ(a.unavailable(4), 0);
  EXPECT_EQ(a.ready_timeout, std::chrono::seconds(30));
  const auto& b = r.manifest->services[1].deploy;
  EXPECT_EQ(b.surge(10), 2);
  EXPECT_EQ(b.unavailable(10), 1);
  EXPECT_EQ(b.ready_timeout, std::chrono::seconds(5));
  const auto& c = r.manifest->services[2].deploy;
  EXPECT_EQ(c.surge(10), 3) << "25% of 10 rounded up";
  EXPECT_EQ(c.unavailable(10), 2) << "25% of 10 rounded down";
  EXPECT_EQ(c.surge(1), 1);
  EXPECT_EQ(c.unavailable(1), 0);
  EXPECT_EQ(c.surge(0) + c.unavailable(0), 1) << "never both 0: then one surge instance";
}

TEST(ManifestDeploy, ARolloutThatCouldNeverProgressIsRefusedWithAHint) {
  const auto r = parse_manifest(
      "services:\n  a:\n    command: [x]\n"
      "    deploy: { max_surge: 0, max_unavailable: 0%, ready_timeout: soon, max_extra: 1 }\n"
      "  b:\n    command: [x]\n    deploy: { max_surge: 120%, max_unavailable: -1 }\n",
      "/tmp/squadron.yaml");
  ASSERT_EQ(r.errors.size(), 5u);  // in file order
  EXPECT_EQ(r.errors[0].path, "services.a.deploy.max_surge");
  EXPECT_NE(r.errors[0].hint.find("max_unavailable: 1"), std::string::npos);
  EXPECT_EQ(r.errors[0].line, 4);
  EXPECT_GT(r.errors[0].column, 1);
  EXPECT_EQ(r.errors[1].path, "services.a.deploy.ready_timeout");
  EXPECT_EQ(r.errors[2].path, "services.a.deploy.max_extra");
  EXPECT_NE(r.errors[2].hint.find("max_surge"), std::string::npos);
  EXPECT_EQ(r.errors[3].path, "services.b.deploy.max_surge");
  EXPECT_EQ(r.errors[4].path, "services.b.deploy.max_unavailable");
}

TEST(ManifestAutoscale, BoundsMetricTargetAndWindows) {
  auto r = parse_manifest(
      "services:\n  a:\n    command: [x]\n    routes: [/a]\n"
      "    autoscale: { min: 2, max: 12, metric: rps, target: 150.5, scale_down_delay: 10s }\n",
      "/tmp/squadron.yaml");
  ASSERT_TRUE(r.ok());
  const auto& a = *r.manifest->services[0].autoscale;
  EXPECT_EQ(a.min, 2);
  EXPECT_EQ(a.max, 12);
  EXPECT_EQ(a.metric, ScaleMetric::kRps);
  EXPECT_DOUBLE_EQ(a.target, 150.5);
  EXPECT_EQ(a.scale_down_delay, std::chrono::seconds(10));
  EXPECT_EQ(a.panic_window, std::chrono::seconds(6)) << "the design doc's default";
  r = parse_manifest(
      "services:\n  a:\n    command: [x]\n    routes: [/a]\n"
      "    autoscale: { min: 5, max: 2, metric: latency, target: -1 }\n",
      "/tmp/squadron.yaml");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].path, "services.a.autoscale.min");
  EXPECT_EQ(r.errors[1].path, "services.a.autoscale.metric");
  EXPECT_NE(r.errors[1].hint.find("concurrency, rps, cpu"), std::string::npos);
  EXPECT_EQ(r.errors[2].path, "services.a.autoscale.target");
  // Traffic metrics need the gateway; min 0 needs routes; a fixed port cannot scale.
  r = parse_manifest(
      "services:\n  a:\n    command: [x]\n    autoscale: { target: 8 }\n"
      "  b:\n    command: [x]\n    autoscale: { min: 0, metric: cpu, target: 70 }\n"
      "  c:\n    command: [x]\n    port: 5000\n    autoscale: { metric: cpu, target: 70 }\n",
      "/tmp/squadron.yaml");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].path, "services.a.autoscale.metric") << "in file order";
  EXPECT_EQ(r.errors[1].path, "services.b.autoscale.min");
  EXPECT_EQ(r.errors[2].path, "services.c.autoscale");
}

TEST(ManifestProxy, GatewayIsAReservedServiceName) {
  const auto r = parse_manifest("services:\n  gateway:\n    command: [x]\n", "/tmp/squadron.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].path, "services.gateway");
}

}  // namespace
}  // namespace squadron::control

namespace squadron::control {
namespace {

TEST(ManifestResources, KubernetesUnitsForMemoryCpuAndPids) {
  auto r = parse(R"(services:
  db:
    command: [postgres]
    resources: { memory: 256Mi, cpu: 0.5, pids: 256 }
  web:
    command: [web]
    resources: { memory: 1.5Gi, cpu: 250m }
  free:
    command: [free]
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& db = r.manifest->services[0].resources;
  EXPECT_EQ(db.memory_bytes, 256ULL << 20);
  EXPECT_EQ(db.millicores, 500U);
  EXPECT_EQ(db.pids, 256U);
  const auto& web = r.manifest->services[1].resources;
  EXPECT_EQ(web.memory_bytes, 3ULL << 29);
  EXPECT_EQ(web.millicores, 250U);
  EXPECT_FALSE(web.pids);
  EXPECT_FALSE(r.manifest->services[2].resources.any());
}

TEST(ManifestResources, BadAmountsSayWhatToWrite) {
  EXPECT_EQ(
      only_error("services:\n  a:\n    command: [x]\n    resources: { memory: 256MB }\n"),
      kFile.string() +
          ":4:26: services.a.resources.memory: expected an amount of memory, got \"256MB\" "
          "(write it like 256Mi, 1Gi or 512M (Ki, Mi, Gi: powers of 1024; k, M, G: of 1000))");
  EXPECT_NE(only_error("services:\n  a:\n    command: [x]\n    resources: { memory: 64 }\n")
                .find("below the least an instance can run in (4Mi) (a bare number is bytes: "
                      "write 64Mi, not 64)"),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  a:\n    command: [x]\n    resources: { cpu: 0 }\n")
                .find("services.a.resources.cpu: expected a share of CPU in cores, got \"0\""),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  a:\n    command: [x]\n    resources: { pids: -1 }\n")
                .find("services.a.resources.pids: expected a whole number from 1"),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  a:\n    command: [x]\n    resources: { memroy: 1Gi }\n")
                .find("unknown key \"memroy\" (did you mean \"memory\"?"),
            std::string::npos);
}

}  // namespace
}  // namespace squadron::control

namespace squadron::control {
namespace {

TEST(ManifestProbes, NoneForAWorkerAndExecProbesWithTheirTimeouts) {
  auto r = parse(R"(services:
  worker:
    command: [python3, worker.py]
    ready: none
  db:
    command: [postgres]
    ready: { command: [pg_isready, -q], interval: 2s, timeout: 3s, threshold: 5 }
    live: { command: "pg_isready -q -t 1" }
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_TRUE(r.manifest->services[0].ready.none);
  EXPECT_FALSE(r.manifest->services[0].ready.tcp());
  const auto& db = r.manifest->services[1];
  EXPECT_EQ(db.ready.command, (std::vector<std::string>{"pg_isready", "-q"}));
  EXPECT_EQ(db.ready.timeout, 3s);
  EXPECT_EQ(db.ready.threshold, 5);
  EXPECT_EQ(db.live->command, (std::vector<std::string>{"pg_isready", "-q", "-t", "1"}));
}

TEST(ManifestProbes, WhatWasRefusedBeforeNowHasAHint) {
  EXPECT_NE(only_error("services:\n  w:\n    command: [x]\n    ready: { tcp: false }\n")
                .find("or write ready: none for a service that serves no port"),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  w:\n    command: [x]\n    live: none\n")
                .find("a liveness probe cannot be none"),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  w:\n    command: [x]\n    ready: { path: /r, command: [y] }\n")
                .find("a probe is one of an HTTP path, a TCP connect or a command"),
            std::string::npos);
}

TEST(ManifestUser, NamesAndNumbersResolvedAndUnknownOnesRefused) {
  auto r = parse(
      "services:\n  a:\n    command: [x]\n    user: root\n  b:\n    command: [x]\n"
      "    user: \"12345:54321\"\n");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  ASSERT_TRUE(r.manifest->services[0].run_as);
  EXPECT_EQ(r.manifest->services[0].run_as->uid, 0U);
  EXPECT_EQ(r.manifest->services[0].run_as->gid, 0U);
  ASSERT_TRUE(r.manifest->services[1].run_as);
  EXPECT_EQ(r.manifest->services[1].run_as->uid, 12345U);
  EXPECT_EQ(r.manifest->services[1].run_as->gid, 54321U);
  EXPECT_EQ(only_error("services:\n  a:\n    command: [x]\n    user: nobody-such\n"),
            kFile.string() +
                ":4:11: services.a.user: no user \"nobody-such\" on this machine "
                "(create it (useradd --system nobody-such), or give a number: "
                "user: 999)");
}

TEST(ManifestStopSignal, NamesWithOrWithoutSig) {
  auto r = parse(
      "services:\n  a:\n    command: [x]\n    stop_signal: SIGINT\n  b:\n"
      "    command: [x]\n    stop_signal: quit\n");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.manifest->services[0].stop_signal, SIGINT);
  EXPECT_EQ(r.manifest->services[1].stop_signal, SIGQUIT);
  EXPECT_NE(only_error("services:\n  a:\n    command: [x]\n    stop_signal: SIGTREM\n")
                .find("did you mean \"SIGTERM\"?"),
            std::string::npos);
}

TEST(ManifestCommand, AnEmptyArgumentIsKeptAnEmptyProgramIsNot) {
  auto r = parse("services:\n  r:\n    command: [redis-server, --save, \"\", --port, \"1\"]\n");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.manifest->services[0].command,
            (std::vector<std::string>{"redis-server", "--save", "", "--port", "1"}));
  EXPECT_NE(only_error("services:\n  r:\n    command: [\"\", x]\n").find("command[0]"),
            std::string::npos);
}

TEST(ManifestProtocol, TcpHasNoRoutesAndOtherProtocolsAreNamed) {
  auto r = parse(
      "services:\n  db:\n    command: [x]\n    protocol: tcp\n  web:\n"
      "    command: [x]\n    protocol: http\n    routes: [/]\n");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_TRUE(r.manifest->services[0].tcp);
  EXPECT_FALSE(r.manifest->services[1].tcp);
  const auto routes =
      only_error("services:\n  db:\n    command: [x]\n    routes: [/db]\n    protocol: tcp\n");
  EXPECT_NE(routes.find("squadron.yaml:4:13: services.db.routes"), std::string::npos) << routes;
  EXPECT_NE(routes.find("SQUADRON_DB_HOST and SQUADRON_DB_PORT"), std::string::npos) << routes;
  const auto typo = only_error("services:\n  db:\n    command: [x]\n    protocol: tpc\n");
  EXPECT_NE(typo.find("services.db.protocol: unknown protocol"), std::string::npos) << typo;
  EXPECT_NE(typo.find("did you mean \"tcp\"?"), std::string::npos) << typo;
  // A TCP service may wait at zero: the gateway's TCP front wakes it.
  EXPECT_TRUE(parse("services:\n  db:\n    command: [x]\n    protocol: tcp\n"
                    "    autoscale: { min: 0, max: 1, metric: concurrency, target: 1 }\n")
                  .ok());
}

}  // namespace
}  // namespace squadron::control

namespace squadron::control {
namespace {

// A manifest in a folder of its own, with the files beside it that `files` names.
ManifestResult parse_in_folder(const std::string& manifest,
                               const std::map<std::string, std::string>& files = {}) {
  char tmpl[] = "/tmp/squadron-vars-XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl), nullptr);
  const std::filesystem::path dir = tmpl;
  for (const auto& [name, text] : files) std::ofstream(dir / name) << text;
  auto r = parse_manifest(manifest, dir / "squadron.yaml");
  std::filesystem::remove_all(dir);
  return r;
}

TEST(ManifestVariables, FromTheEnvironmentAndDotEnvWithComposesRules) {
  ::setenv("TAG_FOR_THE_TEST", "from-env", 1);
  ::setenv("SHARED_VAR", "env-wins", 1);
  auto r = parse_in_folder(
      "name: ${FLEET:-shop}\nservices:\n  db:\n    command: [postgres, -p, \"${PORT}\", "
      "--tag, $TAG_FOR_THE_TEST, --cost, $$5]\n    env: { PASSWORD: \"${DB_PASSWORD:?set it in "
      ".env}\", SHARED: $SHARED_VAR, ME: \"${SQUADRON_INSTANCE}\" }\n    replicas: ${REPLICAS}\n",
      {{".env", "DB_PASSWORD=s3cr$t\nREPLICAS=2\nSHARED_VAR=dotenv-loses\n"}});
  ::unsetenv("TAG_FOR_THE_TEST");
  ::unsetenv("SHARED_VAR");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.manifest->name, "shop");
  const auto& db = r.manifest->services[0];
  // The instance's own names wait for its launch; $ in values put in now is doubled for it.
  EXPECT_EQ(db.command, (std::vector<std::string>{"postgres", "-p", "${PORT}", "--tag", "from-env",
                                                  "--cost", "$$5"}));
  EXPECT_EQ(db.env.at("PASSWORD"), "s3cr$$t");
  EXPECT_EQ(db.env.at("SHARED"), "env-wins");
  EXPECT_EQ(db.env.at("ME"), "${SQUADRON_INSTANCE}");
  EXPECT_EQ(db.replicas, 2);
}

TEST(ManifestVariables, AnUnsetVariableIsAnErrorAtItsLineAndColumn) {
  auto r = parse_in_folder(
      "services:\n  web:\n    command: [python3, -m, http.server, "
      "\"${UNSET_FOR_TEST}\"]\n");
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0].line, 3);
  EXPECT_EQ(r.errors[0].column, 42) << r.errors[0].to_string();  // the $
  EXPECT_EQ(r.errors[0].path, "services.web.command[3]");
  EXPECT_EQ(r.errors[0].message, "variable UNSET_FOR_TEST is not set");
  auto port = parse_in_folder("services:\n  web:\n    command: [x]\n    cwd: /srv/${PORT}\n");
  ASSERT_FALSE(port.errors.empty());
  EXPECT_TRUE(std::any_of(port.errors.begin(), port.errors.end(), [](const ManifestError& e) {
    return e.message == "PORT is given to each instance when it starts";
  }));
  auto required = parse_in_folder("services:\n  web:\n    command: [x, \"${KEY:?the API key}\"]\n");
  ASSERT_EQ(required.errors.size(), 1U);
  EXPECT_EQ(required.errors[0].message, "KEY: the API key");
}

TEST(ManifestEnvFile, FilesJoinTheEnvironmentAndEnvOverridesThem) {
  auto r = parse_in_folder(
      "services:\n  web:\n    command: [x]\n    env_file: [common.env, web.env]\n"
      "    env: { LEVEL: debug }\n",
      {{"common.env", "LEVEL=info\nREGION=eu\nPRICE=5$\n"}, {"web.env", "REGION=us\n"}});
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& env = r.manifest->services[0].env;
  EXPECT_EQ(env.at("LEVEL"), "debug");
  EXPECT_EQ(env.at("REGION"), "us");
  EXPECT_EQ(env.at("PRICE"), "5$$") << "a file's $ is no reference";
  auto missing = parse_in_folder("services:\n  web:\n    command: [x]\n    env_file: nope.env\n");
  ASSERT_EQ(missing.errors.size(), 1U);
  EXPECT_EQ(missing.errors[0].line, 4);
  EXPECT_NE(missing.errors[0].message.find("cannot read"), std::string::npos);
  auto bad = parse_in_folder("services:\n  web:\n    command: [x]\n    env_file: bad.env\n",
                             {{"bad.env", "OK=1\nPORT=80\n"}});
  ASSERT_EQ(bad.errors.size(), 1U);
  EXPECT_NE(bad.errors[0].message.find("sets PORT, which Squadron sets for each instance"),
            std::string::npos);
}

}  // namespace
}  // namespace squadron::control

namespace squadron::control {
namespace {

TEST(ManifestDependsOn, ConditionsTasksAndComposesLongForm) {
  auto r = parse(R"(services:
  migrate:
    command: [python3, migrate.py]
    kind: task
  ratings:
    command: [ratings]
  web:
    command: [web]
    depends_on: { ratings: ready, migrate: completed, cache: { condition: service_started } }
  cache:
    command: [cache]
  worker:
    command: [worker]
    depends_on: [ratings]
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& migrate = r.manifest->services[0];
  EXPECT_TRUE(migrate.task);
  EXPECT_EQ(migrate.restart, RestartPolicy::kNever);
  EXPECT_TRUE(migrate.ready.none);
  const auto& web = r.manifest->services[2];
  EXPECT_EQ(web.depends_on, (std::vector<Dependency>{{"ratings", Condition::kReady},
                                                     {"migrate", Condition::kCompleted},
                                                     {"cache", Condition::kStarted}}));
  EXPECT_EQ(r.manifest->services[4].depends_on,
            (std::vector<Dependency>{{"ratings", Condition::kStarted}}));
}

TEST(ManifestDependsOn, ACycleIsRefusedWithTheCycleNamed) {
  const auto e = only_error(R"(services:
  a:
    command: [a]
    depends_on: [b]
  b:
    command: [b]
    depends_on: { c: ready }
  c:
    command: [c]
    depends_on: [a]
)");
  EXPECT_NE(e.find(":4:17: services.a.depends_on: a cycle: a -> b -> c -> a"), std::string::npos)
      << e;
}

TEST(ManifestDependsOn, UnknownNamesAndImpossibleConditionsAreErrors) {
  EXPECT_NE(only_error("services:\n  web:\n    command: [w]\n    depends_on: [ratigns]\n"
                       "  ratings:\n    command: [r]\n")
                .find("no service \"ratigns\" (did you mean \"ratings\"?"),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  web:\n    command: [w]\n    depends_on: { db: completed }\n"
                       "  db:\n    command: [d]\n")
                .find("db never completes: it is restarted whenever it ends (make it a task"),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  web:\n    command: [w]\n    depends_on: { db: healty }\n"
                       "  db:\n    command: [d]\n")
                .find("unknown condition \"healty\" (did you mean \"healthy\"?"),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  m:\n    command: [m]\n    kind: task\n    restart: always\n")
                .find("a task with restart: always never completes"),
            std::string::npos);
}

}  // namespace
}  // namespace squadron::control

namespace squadron::control {
namespace {

TEST(ManifestCompose, ComposesKeysAndValuesGetTheSquadronWayAsTheirHint) {
  const auto r = parse(R"(version: "3.8"
services:
  web:
    image: nginx
    command: [nginx]
    environment: { A: b }
    ports: ["8080:80"]
    restart: "no"
    mem_limit: 256m
    deploy: { resources: { limits: { cpus: "0.5" } } }
  db:
    command: [postgres]
    restart: unless-stopped
)");
  ASSERT_FALSE(r.ok());
  std::string all;
  for (const auto& e : r.errors) all += e.to_string() + "\n";
  for (const char* want :
       {":1:1: version: \"version\" is docker compose's key, not Squadron's (a squadron.yaml has "
        "no version: remove it)",
        "services.web.environment: \"environment\" is docker compose's key, not Squadron's "
        "(write env: { NAME: value })",
        "services.web.ports: \"ports\" is docker compose's key",
        "services.web.restart: expected always, on-failure or never, got \"no\" (write restart: "
        "never (compose's \"no\"))",
        "services.web.mem_limit: \"mem_limit\" is docker compose's key, not Squadron's (write "
        "resources: { memory: 256Mi })",
        "services.web.deploy.resources: \"resources\" is docker compose's key, not Squadron's "
        "(write resources: { memory: 256Mi, cpu: 0.5 } on the service",
        "services.db.restart: expected always, on-failure or never, got \"unless-stopped\" "
        "(write restart: always (compose's unless-stopped))"})
    EXPECT_NE(all.find(want), std::string::npos) << want << "\n" << all;
}

}  // namespace
}  // namespace squadron::control

namespace squadron::control {
namespace {

TEST(ManifestCluster, WithoutClusterTheFleetIsOneProcess) {
  const auto r = parse("services:\n  a: { command: [x] }\n");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.manifest->cluster.has_value());
}

TEST(ManifestCluster, EachServiceHasAPortOfItsOwnThatOtherServicesDoNotMove) {
  const auto r = parse("services:\n  web: { command: [x] }\n  catalog: { command: [x] }\n");
  ASSERT_TRUE(r.ok());
  const auto ports = cluster_service_ports(*r.manifest);
  ASSERT_EQ(ports.size(), 2u);
  std::map<std::string, std::uint16_t> by_name(ports.begin(), ports.end());
  EXPECT_NE(by_name.at("web"), by_name.at("catalog"));
  for (const auto& [name, port] : ports) {
    EXPECT_GE(port, kClusterServicePortBase) << name;
    EXPECT_LT(port, kClusterServicePortBase + kClusterServicePorts) << name;
  }
  // Another service comes: the ports of the others stay (their instances' URLs stay true).
  const auto more = parse(
      "services:\n  web: { command: [x] }\n  catalog: { command: [x] }\n"
      "  ratings: { command: [x] }\n");
  ASSERT_TRUE(more.ok());
  std::map<std::string, std::uint16_t> after;
  for (const auto& [name, port] : cluster_service_ports(*more.manifest)) after[name] = port;
  EXPECT_EQ(after.at("web"), by_name.at("web"));
  EXPECT_EQ(after.at("catalog"), by_name.at("catalog"));
  EXPECT_EQ(after.size(), 3u);
  // 70 services: the 64 ports go to 64 of them, each once; the rest get none.
  std::string many = "services:\n";
  for (int i = 0; i < 70; ++i) many += "  s" + std::to_string(i) + ": { command: [x] }\n";
  const auto full = parse(many);
  ASSERT_TRUE(full.ok());
  const auto given = cluster_service_ports(*full.manifest);
  EXPECT_EQ(given.size(), kClusterServicePorts);
  std::set<std::uint16_t> distinct;
  for (const auto& [name, port] : given) distinct.insert(port);
  EXPECT_EQ(distinct.size(), given.size());
  // And the variables name them.
  auto m = *r.manifest;
  add_service_urls(m, ports);
  EXPECT_EQ(m.services[0].env.at("SQUADRON_CATALOG_URL"),
            "http://127.0.0.1:" + std::to_string(by_name.at("catalog")));
  EXPECT_EQ(m.services[1].env.at("SQUADRON_WEB_PORT"), std::to_string(by_name.at("web")));
}

TEST(ManifestCluster, ReadsItsMembersTtlAndEachServicesPlacement) {
  const auto r = parse(
      "name: shop\n"
      "cluster: { etcd: [10.213.0.11:2379, 'http://10.213.0.12:2379'], ttl: 3s }\n"
      "services:\n"
      "  db: { command: [x], placement: { hosts: [h3] } }\n"
      "  web: { command: [x], placement: { labels: { zone: b } } }\n");
  ASSERT_TRUE(r.ok()) << r.errors[0].to_string();
  ASSERT_TRUE(r.manifest->cluster.has_value());
  EXPECT_EQ(r.manifest->cluster->etcd.size(), 2u);
  EXPECT_EQ(r.manifest->cluster->ttl, 3s);
  EXPECT_EQ(r.manifest->services[0].placement_hosts, std::vector<std::string>{"h3"});
  EXPECT_EQ(r.manifest->services[1].placement_labels.at("zone"), "b");
}

TEST(ManifestCluster, EachMistakeSaysWhereAndWhatToWrite) {
  EXPECT_NE(only_error("cluster: { ttl: 5s }\nservices:\n  a: { command: [x] }\n")
                .find("cluster.etcd: a cluster needs its etcd members"),
            std::string::npos);
  EXPECT_NE(only_error("cluster: { etcd: [etcd-1:2379] }\nservices:\n  a: { command: [x] }\n")
                .find("cluster.etcd[0]: etcd member 'etcd-1:2379': name the member by its address"),
            std::string::npos);
  EXPECT_NE(
      only_error("cluster: { etcd: [10.0.0.1:2379], ttl: 1s }\nservices:\n  a: { command: [x] }\n")
          .find("cluster.ttl: expected whole seconds from 2s to 10m"),
      std::string::npos);
  EXPECT_NE(
      only_error("cluster: { etcd: [10.0.0.1:2379], ttls: 1s }\nservices:\n  a: { command: [x] }\n")
          .find("did you mean \"ttl\"?"),
      std::string::npos);
  EXPECT_NE(
      only_error(
          "name: My_Shop\ncluster: { etcd: [10.0.0.1:2379] }\nservices:\n  a: { command: [x] }\n")
          .find("name: \"My_Shop\" cannot name a cluster's fleet"),
      std::string::npos);
  EXPECT_NE(only_error("services:\n  a: { command: [x], placement: { hosts: [H1] } }\n")
                .find("services.a.placement.hosts[0]: \"H1\" is not a host's name"),
            std::string::npos);
  EXPECT_NE(only_error("services:\n  a: { command: [x], placement: { zone: a } }\n")
                .find("services.a.placement"),
            std::string::npos);
}

}  // namespace
}  // namespace squadron::control
