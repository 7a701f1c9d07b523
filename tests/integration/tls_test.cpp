// HTTPS at the front door, with the real binaries and curl: `squadron up` with gateway.tls (its
// redirect listener and HSTS), and the standalone gateway's certificates replaced under it
// (seen by a new connection without a restart, while an open one goes on).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <signal.h>

#include "fleet_fixture.hpp"
#include "raw_client.hpp"

namespace squadron::testing {
namespace {

// A command's output (stdout and stderr) and exit status.
CommandResult sh(const std::string& command) { return run_command(command); }

// A self-signed certificate for localhost and 127.0.0.1 (its CN `cn`) as `stem`.pem/.key in `dir`.
void make_certificate(const fs::path& dir, const std::string& stem, const std::string& cn) {
  const auto [code, out] =
      sh("cd " + dir.string() +
         " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
         "-subj /CN=" +
         cn + " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " + stem + ".key -out " +
         stem + ".pem");
  ASSERT_EQ(code, 0) << out;
}

using Tls = Fleet;

TEST_F(Tls, TheFrontDoorServesHttpsRedirectsPlainHttpAndSaysHttpsUpstream) {
  make_certificate(dir_, "site", "localhost");
  const auto https = free_port(), plain = free_port();
  std::ofstream(dir_ / "squadron.yaml")
      << "name: tls\ncontrol: { listen: 127.0.0.1:0 }\n"
      << "gateway:\n  listen: 127.0.0.1:" << https << "\n"
      << "  tls: { cert: site.pem, key: site.key, redirect: 127.0.0.1:" << plain
      << ", hsts: true }\n"
      << "services:\n  echo:\n    command: " << bin_dir() << "/echo --threads 1\n"
      << "    routes: [/]\n";
  const auto up = cli({"up", "-d"}, 60s);
  ASSERT_EQ(up.code, 0) << up.output;
  EXPECT_NE(up.output.find("https://127.0.0.1:" + std::to_string(https)), std::string::npos)
      << up.output;
  const std::string url = "https://localhost:" + std::to_string(https);
  const auto [code, out] = sh("curl -sS -i --max-time 10 --cacert " + (dir_ / "site.pem").string() +
                              " " + url + "/shop");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("HTTP/2 200"), std::string::npos) << out;  // h2 by ALPN
  EXPECT_NE(out.find("strict-transport-security: max-age=63072000"), std::string::npos) << out;
  EXPECT_NE(out.find("\"x-forwarded-proto\":\"https\""), std::string::npos) << out;
  const auto [code1, out1] = sh("curl -sS -i --http1.1 --max-time 10 --cacert " +
                                (dir_ / "site.pem").string() + " " + url + "/shop");
  ASSERT_EQ(code1, 0) << out1;
  EXPECT_NE(out1.find("HTTP/1.1 200"), std::string::npos) << out1;
  EXPECT_NE(out1.find("Strict-Transport-Security: max-age=63072000"), std::string::npos) << out1;
  const auto [rcode, redirected] =
      sh("curl -sS -i --max-time 10 http://127.0.0.1:" + std::to_string(plain) + "/shop?a=1");
  EXPECT_NE(redirected.find("HTTP/1.1 308"), std::string::npos) << redirected;
  EXPECT_NE(redirected.find("Location: https://127.0.0.1:" + std::to_string(https) + "/shop?a=1"),
            std::string::npos)
      << redirected;
  // Plain HTTP on the TLS port gets no answer in clear.
  const auto [pcode, cleartext] =
      sh("curl -sS --max-time 5 http://127.0.0.1:" + std::to_string(https) + "/");
  EXPECT_NE(pcode, 0) << cleartext;
}

TEST_F(Tls, TheStandaloneGatewayTakesNewCertificatesWithoutARestart) {
  make_certificate(dir_, "site", "first");
  make_certificate(dir_, "next", "second");
  auto echo = start_service("echo");
  const auto echo_port = echo->wait_for_port();
  ASSERT_TRUE(echo_port) << echo->output();
  std::ofstream(dir_ / "gateway.yaml")
      << "listen: 127.0.0.1:0\ntls: { cert: site.pem, key: site.key }\nupstreams:\n"
      << "  echo: { endpoints: [127.0.0.1:" << *echo_port << "], routes: [/] }\n";
  ChildProcess gateway({bin_dir() + "/squadron", "gateway", "-c", (dir_ / "gateway.yaml").string(),
                        "--threads", "1"});
  const auto port = gateway.wait_for_port();
  ASSERT_TRUE(port) << gateway.output();
  auto subject = [&] {
    return sh("openssl s_client -connect 127.0.0.1:" + std::to_string(*port) +
              " -servername localhost </dev/null | grep -m1 '^subject='")
        .output;
  };
  EXPECT_NE(subject().find("CN = first"), std::string::npos);
  fs::copy_file(dir_ / "next.pem", dir_ / "site.pem", fs::copy_options::overwrite_existing);
  fs::copy_file(dir_ / "next.key", dir_ / "site.key", fs::copy_options::overwrite_existing);
  EXPECT_TRUE(
      eventually([&] { return subject().find("CN = second") != std::string::npos; }, 10s, 100ms))
      << gateway.output_now();
  EXPECT_NE(gateway.output_now().find("TLS certificates reloaded (a file changed)"),
            std::string::npos);
  // A key that does not fit: the gateway says so and keeps the last good pair.
  std::ofstream(dir_ / "site.key") << "broken";
  gateway.signal(SIGHUP);
  EXPECT_TRUE(eventually(
      [&] { return gateway.output_now().find("not reloaded (SIGHUP)") != std::string::npos; }, 10s,
      50ms))
      << gateway.output_now();
  EXPECT_NE(subject().find("CN = second"), std::string::npos);
  gateway.signal(SIGTERM);
  EXPECT_EQ(gateway.wait_exit(15s), 0) << gateway.output();
}

}  // namespace
}  // namespace squadron::testing
