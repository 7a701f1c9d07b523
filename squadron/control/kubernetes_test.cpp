// The Kubernetes export, mapping by mapping: probes, drain arithmetic, rollout, HPA, PDB,
// Secrets, env_file, the Ingress, the warnings and errors, and determinism. Strict schema
// validation of whole exports runs in scripts/test (k8s-validate).
#include "squadron/control/kubernetes.hpp"

#include <gtest/gtest.h>

#include "squadron/control/gateway_file.hpp"

namespace squadron::control {
namespace {

ManifestResult parse(const std::string& text) { return parse_manifest(text, "/tmp/squadron.yaml"); }

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(KubernetesYaml, QuotesWhatAReaderWouldTakeForAnythingButAString) {
  boost::json::value v = {
      {"a", "8080"},  {"b", 8080},      {"c", "yes"},   {"d", "/readyz"},
      {"e", ""},      {"f", "a: b"},    {"g", "web-1"}, {"h", boost::json::array{}},
      {"i", nullptr}, {"j", "$(PORT)"}, {"k", true}};
  EXPECT_EQ(to_yaml(v),
            "a: \"8080\"\nb: 8080\nc: \"yes\"\nd: /readyz\ne: \"\"\nf: \"a: b\"\ng: web-1\nh: []\n"
            "i: null\nj: \"$(PORT)\"\nk: true\n");
  boost::json::value list = {{"xs", {{{"name", "a"}, {"port", 1}}, "b"}}};
  EXPECT_EQ(to_yaml(list), "xs:\n- name: a\n  port: 1\n- b\n");
}

TEST(KubernetesName, LowerCaseAndDashes) {
  EXPECT_EQ(kubernetes_name("catalog_api"), "catalog-api");
  EXPECT_EQ(kubernetes_name("Shop Front"), "shop-front");
}

constexpr const char* kShop = R"(name: shop
services:
  web:
    image: reg.example/web:1
    command: [bin/web, --port, "${PORT}"]
    replicas: 3
    ready: { path: /readyz, interval: 2s, timeout: 500ms, threshold: 4 }
    live: { path: /healthz }
    routes: [/, { prefix: /api, host: api.example.com }]
    stop_grace: 20s
    deploy: { max_surge: 25%, max_unavailable: 1, ready_timeout: 45s }
    resources: { memory: 256Mi, cpu: 500m }
    env: { MODE: prod }
  catalog:
    image: reg.example/catalog:1
    command: [catalog]
    routes: [/titles]
    autoscale: { min: 2, max: 6, metric: rps, target: 250, scale_down_delay: 20s }
  cache:
    image: redis:7
    command: [redis-server, --port, "${PORT}"]
    protocol: tcp
    port: 6379
)";

TEST(KubernetesExport, ADeploymentCarriesTheServicesProbesDrainRolloutAndLimits) {
  const auto m = parse(kShop);
  ASSERT_TRUE(m.ok()) << m.errors[0].to_string();
  const auto r = export_kubernetes(*m.manifest, {});
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  const auto& y = r.yaml;
  EXPECT_TRUE(has(y,
                  "kind: Deployment\nmetadata:\n  name: web\n  labels:\n"
                  "    app.kubernetes.io/name: web\n    app.kubernetes.io/part-of: shop\n"
                  "    app.kubernetes.io/managed-by: squadron\nspec:\n  replicas: 3\n"))
      << y;
  EXPECT_TRUE(has(y, "      maxSurge: \"25%\"\n      maxUnavailable: 1\n")) << y;
  EXPECT_TRUE(has(y, "  progressDeadlineSeconds: 45\n")) << y;
  EXPECT_TRUE(
      has(y, "        command:\n        - bin/web\n        - --port\n        - \"$(PORT)\"\n"))
      << y;
  EXPECT_TRUE(has(y,
                  "        readinessProbe:\n          httpGet:\n            path: /readyz\n"
                  "            port: http\n          periodSeconds: 2\n"
                  "          timeoutSeconds: 1\n          failureThreshold: 4\n"))
      << y;
  EXPECT_TRUE(has(y, "        livenessProbe:\n          httpGet:\n            path: /healthz\n"))
      << y;
  EXPECT_TRUE(has(y,
                  "        startupProbe:\n          httpGet:\n            path: /readyz\n"
                  "            port: http\n          periodSeconds: 2\n"
                  "          timeoutSeconds: 1\n          failureThreshold: 22\n"))
      << "liveness waits out ready_timeout (45 s / 2 s)\n"
      << y;
  // Drain: out of the endpoints (preStop), then SIGTERM with the service's whole grace.
  EXPECT_TRUE(has(y, "          preStop:\n            sleep:\n              seconds: 5\n")) << y;
  EXPECT_TRUE(has(y, "      terminationGracePeriodSeconds: 25\n")) << y;
  EXPECT_TRUE(has(y,
                  "          requests:\n            cpu: \"500m\"\n            memory: \"256Mi\"\n"
                  "          limits:\n            cpu: \"500m\"\n            memory: \"256Mi\"\n"))
      << y;
  EXPECT_TRUE(has(y, "        - name: PORT\n          value: \"8080\"\n")) << y;
  EXPECT_TRUE(has(y, "        - name: SQUADRON_CATALOG_URL\n          value: http://catalog:80\n"))
      << y;
  EXPECT_TRUE(has(y, "        - name: SQUADRON_CACHE_URL\n          value: tcp://cache:6379\n"))
      << y;
  EXPECT_TRUE(has(y, "        - name: MODE\n          value: prod\n")) << y;
  EXPECT_TRUE(has(y, "kind: PodDisruptionBudget\nmetadata:\n  name: web\n")) << y;
  EXPECT_TRUE(has(y, "  maxUnavailable: 1\n  selector:\n")) << y;
}

TEST(KubernetesExport, AnHpaKeepsTheAutoscalersBoundsMetricAndScaleDownDelay) {
  const auto m = parse(kShop);
  ASSERT_TRUE(m.ok());
  const auto r = export_kubernetes(*m.manifest, {});
  const auto& y = r.yaml;
  EXPECT_TRUE(has(y, "kind: HorizontalPodAutoscaler\nmetadata:\n  name: catalog\n")) << y;
  EXPECT_TRUE(has(y, "  minReplicas: 2\n  maxReplicas: 6\n")) << y;
  EXPECT_TRUE(has(y,
                  "        name: squadron_http_requests_per_second\n      target:\n"
                  "        type: AverageValue\n        averageValue: \"250\"\n"))
      << y;
  EXPECT_TRUE(has(y, "    scaleDown:\n      stabilizationWindowSeconds: 20\n")) << y;
  EXPECT_TRUE(has(y, "# services.catalog.autoscale.metric: rps is a Pods metric")) << y;
  EXPECT_TRUE(has(y, "kind: Deployment\nmetadata:\n  name: catalog\n")) << y;
}

TEST(KubernetesExport, CpuTargetsBecomeUtilizationOfTheRequest) {
  const auto m = parse(R"(services:
  a:
    image: a:1
    command: [a]
    resources: { cpu: 0.5 }
    autoscale: { min: 1, max: 3, metric: cpu, target: 40 }
  b:
    image: b:1
    command: [b]
    autoscale: { min: 0, max: 3, metric: cpu, target: 70 }
    routes: [/b]
)");
  ASSERT_TRUE(m.ok()) << m.errors[0].to_string();
  const auto r = export_kubernetes(*m.manifest, {});
  EXPECT_TRUE(has(r.yaml, "type: Utilization\n        averageUtilization: 80\n"))
      << "40 % of a core is 80 % of half a core\n"
      << r.yaml;
  EXPECT_TRUE(has(r.yaml, "type: AverageValue\n        averageValue: \"700m\"\n")) << r.yaml;
  bool warned = false;
  for (const auto& w : r.warnings) warned |= has(w, "services.b.autoscale.min") && has(w, "KEDA");
  EXPECT_TRUE(warned);
}

TEST(KubernetesExport, AServiceWithoutAnImageIsAnErrorNamingIt) {
  const auto m = parse("services:\n  web:\n    command: [web]\n  db:\n    command: [db]\n");
  ASSERT_TRUE(m.ok());
  auto r = export_kubernetes(*m.manifest, {});
  ASSERT_EQ(r.errors.size(), 2U);
  EXPECT_TRUE(has(r.errors[0], "services.web") && has(r.errors[0], "--image web=IMAGE"));
  EXPECT_TRUE(r.yaml.empty());
  ExportOptions o;
  o.images = {{"web", "w:1"}, {"db", "d:1"}};
  r = export_kubernetes(*m.manifest, o);
  EXPECT_TRUE(r.errors.empty());
  o.images["nope"] = "x:1";
  r = export_kubernetes(*m.manifest, o);
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_TRUE(has(r.errors[0], "no service \"nope\""));
}

TEST(KubernetesExport, WhatCannotMapIsAWarningNamingTheKeyAndACommentOnItsObject) {
  const auto m = parse(R"(services:
  web:
    image: w:1
    command: [web]
    routes: [{ prefix: /api, strip_prefix: true }]
    resources: { pids: 64 }
    user: nobody
    restart: on-failure
    proxy: { retries: 0 }
)");
  ASSERT_TRUE(m.ok()) << m.errors[0].to_string();
  const auto r = export_kubernetes(*m.manifest, {});
  std::string all;
  for (const auto& w : r.warnings) all += w + "\n";
  for (const char* key : {"services.web.routes[0]: strip_prefix", "services.web.resources.pids:",
                          "services.web.user:", "services.web.restart:", "services.web.proxy:"})
    EXPECT_TRUE(has(all, key)) << key << "\n" << all;
  EXPECT_TRUE(has(r.yaml, "# services.web.resources.pids:")) << r.yaml;
}

TEST(KubernetesExport, ATaskIsAJobAndEnvFilesAConfigMap) {
  const auto m = parse(R"(services:
  migrate:
    image: m:1
    command: [migrate]
    kind: task
  web:
    image: w:1
    command: [web]
    depends_on: { migrate: completed }
)");
  ASSERT_TRUE(m.ok()) << m.errors[0].to_string();
  const auto r = export_kubernetes(*m.manifest, {});
  EXPECT_TRUE(has(r.yaml, "kind: Job\nmetadata:\n  name: migrate\n")) << r.yaml;
  EXPECT_TRUE(has(r.yaml, "  backoffLimit: 0\n")) << r.yaml;
  EXPECT_TRUE(has(r.yaml, "      restartPolicy: Never\n")) << r.yaml;
  EXPECT_FALSE(has(r.yaml, "SQUADRON_MIGRATE_URL")) << "a task serves nothing";
  bool warned = false;
  for (const auto& w : r.warnings)
    warned |= has(w, "services.web.depends_on") && has(w, "--image kubectl=IMAGE");
  EXPECT_TRUE(warned) << "without a kubectl image the order cannot be kept";
  EXPECT_FALSE(has(r.yaml, "initContainers"));
}

TEST(KubernetesExport, DependantsWaitForATasksJobAndAServicesDeployment) {
  const auto m = parse(R"(name: shop
services:
  migrate:
    image: m:1
    command: [migrate]
    kind: task
  db:
    image: d:1
    command: [db]
  web:
    image: w:1
    command: [web]
    depends_on: { migrate: completed, db: ready }
)");
  ASSERT_TRUE(m.ok()) << m.errors[0].to_string();
  ExportOptions o;
  o.images["kubectl"] = "reg.example/kubectl:1.30";
  const auto r = export_kubernetes(*m.manifest, o);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  const auto& y = r.yaml;
  EXPECT_EQ(y.find("kind: ServiceAccount\nmetadata:\n  name: shop-start-order\n"), y.find("kind:"))
      << "the account first, before the pods that run as it\n"
      << y;
  EXPECT_TRUE(has(y, "kind: Role\nmetadata:\n  name: shop-start-order\n")) << y;
  EXPECT_TRUE(has(y, "kind: RoleBinding\nmetadata:\n  name: shop-start-order\n")) << y;
  EXPECT_TRUE(has(y,
                  "      serviceAccountName: shop-start-order\n      initContainers:\n"
                  "      - name: wait-for-migrate\n        image: reg.example/kubectl:1.30\n"
                  "        command:\n        - kubectl\n        - wait\n"
                  "        - --for=condition=complete\n        - job/migrate\n"))
      << y;
  EXPECT_TRUE(has(y,
                  "      - name: wait-for-db\n        image: reg.example/kubectl:1.30\n"
                  "        command:\n        - kubectl\n        - wait\n"
                  "        - --for=condition=available\n        - deployment/db\n"))
      << y;
}

TEST(KubernetesExport, TheSameManifestGivesTheSameBytes) {
  const auto m = parse(kShop);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(export_kubernetes(*m.manifest, {}).yaml, export_kubernetes(*m.manifest, {}).yaml);
}

TEST(KubernetesExport, TheIngressRoutesEachPrefixByHostLongestFirst) {
  const auto m = parse(kShop);
  ASSERT_TRUE(m.ok());
  const auto r = export_kubernetes(*m.manifest, {});
  EXPECT_TRUE(has(r.yaml, "kind: Ingress\nmetadata:\n  name: shop\n")) << r.yaml;
  EXPECT_TRUE(has(r.yaml,
                  "  - http:\n      paths:\n      - path: /titles\n        pathType: Prefix\n"
                  "        backend:\n          service:\n            name: catalog\n"))
      << r.yaml;
  EXPECT_TRUE(has(r.yaml, "  - host: api.example.com\n")) << r.yaml;
}

}  // namespace
}  // namespace squadron::control

namespace squadron::control {
namespace {

TEST(KubernetesYaml, AFilesTextIsALiteralBlock) {
  boost::json::value v = {
      {"data", {{"gateway.yaml", "listen: 0.0.0.0:8080\nupstreams:\n  a: 1\n"}}}};
  EXPECT_EQ(to_yaml(v),
            "data:\n  gateway.yaml: |\n    listen: 0.0.0.0:8080\n    upstreams:\n"
            "      a: 1\n");
}

TEST(KubernetesExport, WithTheGatewayTheIngressSendsEverythingToItAndItsFileReadsBack) {
  // catalog with session affinity over HTTP/2 (a gRPC service), which the gateway's file keeps
  std::string shop = kShop;
  shop.replace(shop.find("    routes: [/titles]\n"), 22,
               "    routes: [/titles]\n"
               "    proxy: { affinity: { cookie: sticky }, protocol: h2c }\n"
               "    ready: { grpc: squadron.Catalog }\n");
  const auto m = parse(shop);
  ASSERT_TRUE(m.ok());
  ExportOptions o;
  o.gateway = true;
  auto r = export_kubernetes(*m.manifest, o);
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_NE(r.errors[0].find("--image gateway=IMAGE"), std::string::npos);
  o.images["gateway"] = "reg.example/squadron:1";
  r = export_kubernetes(*m.manifest, o);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  const auto& y = r.yaml;
  EXPECT_TRUE(has(y, "kind: Deployment\nmetadata:\n  name: shop-gateway\n")) << y;
  EXPECT_TRUE(has(y, "kind: Service\nmetadata:\n  name: web-pods\n")) << y;
  EXPECT_TRUE(has(y, "  clusterIP: None\n")) << y;
  EXPECT_TRUE(has(y, "            name: shop-gateway\n")) << "the Ingress's backend\n" << y;
  EXPECT_FALSE(has(y, "            name: catalog\n            port:")) << y;
  // The ConfigMap's file is one the standalone gateway reads, with the routes and policies.
  const auto at = y.find("  gateway.yaml: |\n");
  ASSERT_NE(at, std::string::npos) << y;
  std::string file;
  for (std::size_t line = y.find('\n', at) + 1;
       line < y.size() && y.compare(line, 4, "    ") == 0;) {
    const auto end = y.find('\n', line);
    file += y.substr(line + 4, end - line - 4) + "\n";
    line = end + 1;
  }
  const auto g = parse_gateway_file(file, "/tmp/gateway.yaml");
  ASSERT_TRUE(g.ok()) << file << (g.errors.empty() ? "" : g.errors[0].to_string());
  ASSERT_EQ(g.config->upstreams.size(), 2U) << "web and catalog; cache has no routes";
  EXPECT_EQ(g.config->upstreams[1].endpoints, std::vector<std::string>{"catalog-pods:8080"});
  EXPECT_EQ(g.config->upstreams[0].service.routes.size(), 2U);
  EXPECT_EQ(g.config->upstreams[0].service.routes[1].host, "api.example.com");
  EXPECT_EQ(g.config->upstreams[1].service.proxy.affinity, "cookie");
  EXPECT_EQ(g.config->upstreams[1].service.proxy.affinity_name, "sticky");
  EXPECT_EQ(g.config->upstreams[0].service.proxy.affinity, "");
  EXPECT_EQ(g.config->upstreams[1].service.proxy.protocol, "h2c");
  EXPECT_EQ(g.config->upstreams[0].service.proxy.protocol, "");
  // The Service says its port speaks HTTP/2 without TLS, to an Ingress or a mesh.
  EXPECT_TRUE(has(y, "    appProtocol: kubernetes.io/h2c\n")) << y;
  // Its readiness by the gRPC health protocol: the kubelet's own gRPC probe.
  EXPECT_TRUE(has(y,
                  "        readinessProbe:\n          grpc:\n            port: 8080\n"
                  "            service: squadron.Catalog\n"))
      << y;
}

}  // namespace
}  // namespace squadron::control
