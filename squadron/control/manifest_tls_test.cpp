// gateway: { tls: ... } in a manifest and in the standalone gateway's file: certificates that
// load and match their keys, and every problem found at validate time with its place and file.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "squadron/control/gateway_file.hpp"
#include "squadron/control/manifest.hpp"

namespace squadron::control {
namespace {

namespace fs = std::filesystem;

class ManifestTls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("squadron-manifest-tls-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    for (const char* stem : {"a", "b"}) {
      const std::string cmd = "cd " + dir_.string() +
                              " && openssl req -x509 -newkey ec -pkeyopt "
                              "ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=" +
                              stem + ".test -keyout " + stem + ".key -out " + stem +
                              ".pem >/dev/null 2>&1";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << "the openssl command made no certificate";
    }
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  ManifestResult parse(const std::string& gateway) {
    return parse_manifest(
        "gateway:\n" + gateway + "services:\n  web: { command: [x], routes: [/] }\n",
        dir_ / "squadron.yaml");
  }
  std::string only_error(const std::string& gateway) {
    auto r = parse(gateway);
    EXPECT_EQ(r.errors.size(), 1u);
    return r.errors.empty() ? "" : r.errors.front().to_string();
  }
  fs::path dir_;
};

TEST_F(ManifestTls, SelfSignedNeedsNoFilesAndTakesNoCertificateBesideIt) {
  auto r =
      parse("  listen: 127.0.0.1:8443\n  tls: { self_signed: true, redirect: 127.0.0.1:8080 }\n");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  ASSERT_TRUE(r.manifest->gateway_tls);
  EXPECT_TRUE(r.manifest->gateway_tls->self_signed);
  EXPECT_TRUE(r.manifest->gateway_tls->certificates.empty());
  EXPECT_STREQ(url_scheme(*r.manifest, "gateway"), "https");
  const std::string both = only_error("  tls: { self_signed: true, cert: a.pem, key: a.key }\n");
  EXPECT_NE(both.find("squadron.yaml:2:"), std::string::npos) << both;
  EXPECT_NE(both.find("gateway.tls.self_signed: self_signed and a certificate: both given"),
            std::string::npos)
      << both;
  const std::string not_bool = only_error("  tls: { self_signed: yes please }\n");
  EXPECT_NE(not_bool.find("gateway.tls.self_signed"), std::string::npos) << not_bool;
}

TEST_F(ManifestTls, ACertificateAndItsKeyRelativeToTheManifest) {
  auto r = parse(
      "  listen: 127.0.0.1:8443\n  tls: { cert: a.pem, key: a.key, redirect: "
      "127.0.0.1:8080, hsts: true }\n");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  ASSERT_TRUE(r.manifest->gateway_tls);
  const auto& tls = *r.manifest->gateway_tls;
  ASSERT_EQ(tls.certificates.size(), 1u);
  EXPECT_EQ(tls.certificates[0].cert, dir_ / "a.pem");
  EXPECT_EQ(tls.certificates[0].key, dir_ / "a.key");
  EXPECT_EQ(tls.redirect, "127.0.0.1:8080");
  EXPECT_TRUE(tls.hsts);
  EXPECT_STREQ(url_scheme(*r.manifest, "gateway"), "https");
  EXPECT_STREQ(url_scheme(*r.manifest, "web"), "http");
}

TEST_F(ManifestTls, SeveralCertificatesForSni) {
  auto r = parse(
      "  tls:\n    certificates:\n      - { cert: a.pem, key: a.key }\n"
      "      - { cert: " +
      (dir_ / "b.pem").string() + ", key: b.key }\n");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  ASSERT_EQ(r.manifest->gateway_tls->certificates.size(), 2u);
  EXPECT_EQ(r.manifest->gateway_tls->certificates[1].cert, dir_ / "b.pem");
  EXPECT_FALSE(r.manifest->gateway_tls->hsts);
}

TEST_F(ManifestTls, AKeyThatIsNotTheCertificatesIsNamedWithItsPlace) {
  const auto e = only_error("  tls: { cert: a.pem, key: b.key }\n");
  EXPECT_NE(e.find("squadron.yaml:2:8: gateway.tls: " + (dir_ / "b.key").string() +
                   ": is not the key of the certificate in " + (dir_ / "a.pem").string()),
            std::string::npos)
      << e;
}

TEST_F(ManifestTls, MissingFilesAndShapesAreErrors) {
  EXPECT_NE(only_error("  tls: { cert: nope.pem, key: a.key }\n")
                .find(":2:16: gateway.tls.cert: cannot read " + (dir_ / "nope.pem").string()),
            std::string::npos);
  EXPECT_NE(
      only_error("  tls: { cert: a.pem }\n").find("gateway.tls.key: a certificate needs its key"),
      std::string::npos);
  EXPECT_NE(only_error("  tls: { cert: a.pem, key: a.key, certificates: [] }\n")
                .find("cert/key and certificates: both given"),
            std::string::npos);
  EXPECT_NE(only_error("  tls: { cert: a.pem, key: a.key, redirect: nowhere }\n")
                .find("gateway.tls.redirect: expected host:port"),
            std::string::npos);
  EXPECT_NE(only_error("  tls: { cert: a.pem, key: a.key, ciphers: all }\n").find("ciphers"),
            std::string::npos);
  std::ofstream(dir_ / "junk.pem") << "-----BEGIN CERTIFICATE-----\nnot base64\n";
  EXPECT_NE(
      only_error("  tls: { cert: junk.pem, key: a.key }\n").find("junk.pem: not a PEM certificate"),
      std::string::npos);
}

TEST_F(ManifestTls, TheRedirectListenerNeedsAPortOfItsOwn) {
  const auto e = only_error(
      "  listen: 127.0.0.1:8443\n  tls: { cert: a.pem, key: a.key, redirect: "
      "127.0.0.1:8443 }\n");
  EXPECT_NE(e.find("gateway.tls.redirect: port 8443 is gateway.listen's too"), std::string::npos)
      << e;
}

TEST_F(ManifestTls, AClustersHostGatewaysDoNotSpeakTlsYetAndSaySo) {
  auto r = parse_manifest(
      "name: shop\ncluster: { etcd: [10.0.0.1:2379] }\ngateway:\n"
      "  tls: { cert: a.pem, key: a.key }\n"
      "services:\n  web: { command: [x], routes: [/] }\n",
      dir_ / "squadron.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].to_string().find("gateway.tls: HTTPS on every host's gateway in a cluster "
                                         "is not built yet"),
            std::string::npos)
      << r.errors[0].to_string();
}

TEST_F(ManifestTls, TheStandaloneGatewaysFileTakesTheSameTls) {
  auto r = parse_gateway_file(
      "listen: 127.0.0.1:8443\ntls: { cert: a.pem, key: a.key }\n"
      "upstreams: { web: { endpoints: [127.0.0.1:9000], routes: [/] } }\n",
      dir_ / "gateway.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  ASSERT_TRUE(r.config->tls);
  EXPECT_EQ(r.config->tls->certificates[0].key, dir_ / "a.key");
  auto bad = parse_gateway_file(
      "listen: 127.0.0.1:8443\ntls: { cert: a.pem, key: b.key }\n"
      "upstreams: { web: { endpoints: [127.0.0.1:9000], routes: [/] } }\n",
      dir_ / "gateway.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.errors.front().to_string().find("gateway.yaml:2:6: tls: "), std::string::npos)
      << bad.errors.front().to_string();
}

TEST(ManifestProxyProtocol, H2cSpeaksHttp2ToTheInstancesAndAnythingElseSaysWhatIsKnown) {
  const fs::path file = fs::temp_directory_path() / "squadron.yaml";
  auto parse = [&](const std::string& protocol) {
    return parse_manifest(
        "services:\n  greeter:\n    command: [x]\n    routes: [/]\n"
        "    proxy: { protocol: " +
            protocol + " }\n",
        file);
  };
  auto r = parse("h2c");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.manifest->services[0].proxy.protocol, "h2c");
  r = parse("http1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.manifest->services[0].proxy.protocol, "");
  const auto e = parse("h2");
  ASSERT_FALSE(e.ok());
  const std::string said = e.errors.front().to_string();
  EXPECT_NE(said.find("squadron.yaml:5:24: services.greeter.proxy.protocol: unknown upstream "
                      "protocol \"h2\""),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("use h2c (HTTP/2 without TLS, for gRPC services)"), std::string::npos)
      << said;
}

TEST(ManifestGrpcProbe, ReadinessByTheGrpcHealthProtocolOfTheServerOrOfAService) {
  const fs::path file = fs::temp_directory_path() / "squadron.yaml";
  auto parse = [&](const std::string& ready) {
    return parse_manifest("services:\n  greeter:\n    command: [x]\n    ready: " + ready +
                              "\n    live: " + ready + "\n",
                          file);
  };
  auto r = parse("{ grpc: true }");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.manifest->services[0].ready.grpc, std::optional<std::string>(""));
  EXPECT_FALSE(r.manifest->services[0].ready.tcp());
  EXPECT_EQ(r.manifest->services[0].live->grpc, std::optional<std::string>(""));
  r = parse("{ grpc: squadron.example.Echo, interval: 2s }");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.manifest->services[0].ready.grpc,
            std::optional<std::string>("squadron.example.Echo"));
  r = parse("{ grpc: false, path: /readyz }");
  ASSERT_FALSE(r.ok()) << "grpc beside another probe";
  const auto e = parse("{ grpc: true, tcp: true }");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.errors.front().to_string().find(
                "services.greeter.ready.grpc: a probe is one of an HTTP path, a TCP connect, a "
                "command or gRPC"),
            std::string::npos)
      << e.errors.front().to_string();
}

TEST(ManifestAffinity, ProxyAffinityTakesACookieAHeaderOrTheSourceAddress) {
  const fs::path file = fs::temp_directory_path() / "squadron.yaml";
  auto parse = [&](const std::string& affinity) {
    return parse_manifest(
        "services:\n  web:\n    command: [x]\n    routes: [/]\n    proxy: { affinity: " + affinity +
            " }\n",
        file);
  };
  auto r = parse("{ cookie: io }");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.manifest->services[0].proxy.affinity, "cookie");
  EXPECT_EQ(r.manifest->services[0].proxy.affinity_name, "io");
  r = parse("{ header: X-Session }");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.manifest->services[0].proxy.affinity, "header");
  r = parse("{ source_ip: true }");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.manifest->services[0].proxy.affinity, "source_ip");
  for (const auto& [bad, says] : std::vector<std::pair<std::string, std::string>>{
           {"{ cookie: a, header: b }", "session affinity takes one key"},
           {"{ cookie: \"a b\" }", "cannot name a cookie"},
           {"{ sticky: yes }", "sticky"},
           {"cookie", "expected"}}) {
    const auto e = parse(bad);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_NE(e.errors.front().to_string().find(says), std::string::npos)
        << e.errors.front().to_string();
    EXPECT_NE(e.errors.front().to_string().find("services.web.proxy.affinity"), std::string::npos)
        << e.errors.front().to_string();
  }
}

}  // namespace
}  // namespace squadron::control
