// TLS on the server's listeners, against real clients: curl and `openssl s_client` (Debian's), and
// OpenSSL's client API for what a command cannot hold open (a connection across a reload). The
// test makes its own CA and certificates with the `openssl` command.
#include <arpa/inet.h>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "process.hpp"
#include "squadron/http/server.hpp"

namespace squadron::http {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A command's exit status and what it printed (stdout and stderr).
using Ran = testing::CommandResult;
Ran run(const std::string& command) { return testing::run_command(command); }

// A CA of the test's own and leaf certificates it signs, in a fresh folder.
class Pki {
 public:
  Pki() {
    dir_ = fs::temp_directory_path() /
           ("squadron-tls-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(dir_);
    ok_ = run("cd " + dir_.string() +
              " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
              "-keyout ca.key -out ca.pem -days 2 -subj /CN=squadron-test-ca")
              .status == 0;
  }
  ~Pki() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  fs::path ca() const { return dir_ / "ca.pem"; }
  fs::path dir() const { return dir_; }
  // A certificate for `names` (the first is its common name) signed by the CA: `stem`.pem/.key.
  TlsCertificate issue(const std::string& stem, const std::vector<std::string>& names) {
    std::string san = "subjectAltName=";
    for (std::size_t i = 0; i < names.size(); ++i) san += (i ? ",DNS:" : "DNS:") + names[i];
    const Ran r = run("cd " + dir_.string() + " && printf '" + san + "' > " + stem +
                      ".ext && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                      "-keyout " +
                      stem + ".key -out " + stem + ".csr -subj /CN=" + names[0] +
                      " && openssl x509 -req -in " + stem +
                      ".csr -CA ca.pem -CAkey ca.key "
                      "-CAcreateserial -days 2 -out " +
                      stem + ".pem -extfile " + stem + ".ext");
    EXPECT_EQ(r.status, 0) << r.output;
    return {dir_ / (stem + ".pem"), dir_ / (stem + ".key")};
  }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
  bool ok_ = false;
};

class Echo final : public Handler {
 public:
  bool handle(Request& req, Response& res, std::size_t) override {
    if (req.path() == "/upload") return false;
    if (req.path() == "/upgrade") {  // a protocol of its own: every byte back, until the end
      res.status = 101;
      res.set_header("Connection", "Upgrade");
      res.set_header("Upgrade", "echo");
      res.upgraded = [](Upgraded& client) -> boost::asio::awaitable<void> {
        char buf[1024];
        while (const std::size_t n = co_await client.read_some(buf, sizeof buf)) {
          if (!co_await client.write(std::string_view(buf, n))) break;
        }
        client.shutdown_send();
      };
      return true;
    }
    res =
        Response::text(std::string(req.secure() ? "secure " : "plain ") + std::string(req.path()));
    return true;
  }
  boost::asio::awaitable<void> handle_async(Request& req, Response& res, std::size_t) override {
    std::size_t bytes = req.body().size();
    if (auto* reader = req.body_reader()) {
      std::string piece;
      while (co_await reader->read(piece)) bytes += piece.size();
    }
    res = Response::text("bytes=" + std::to_string(bytes));
  }
  void on_rejected(int, std::size_t) noexcept override {}
};

// A server on 127.0.0.1 with a TLS listener (and a plain one), run on a thread of its own.
class TlsServer {
 public:
  explicit TlsServer(std::shared_ptr<TlsListener> tls, ServerConfig config = {}) {
    config.port = 0;
    config.threads = 2;
    config.limits.stream_above = 64 * 1024;
    server_ = std::make_unique<Server>(config, handler_);
    EXPECT_FALSE(server_->listen());
    EXPECT_FALSE(server_->listen_also("127.0.0.1", 0, &tls_port_, std::move(tls)));
    thread_ = std::thread([this] { server_->run(); });
  }
  ~TlsServer() {
    server_->stop(1s);
    thread_.join();
  }
  std::uint16_t port() const { return tls_port_; }
  std::uint16_t plain_port() const { return server_->port(); }
  Server& server() { return *server_; }

 private:
  Echo handler_;
  std::unique_ptr<Server> server_;
  std::uint16_t tls_port_ = 0;
  std::thread thread_;
};

std::string curl(const Pki& pki, const std::string& host, std::uint16_t port,
                 const std::string& options, const std::string& path = "/hello") {
  return "curl -sS --max-time 10 --cacert " + pki.ca().string() + " --resolve " + host + ":" +
         std::to_string(port) + ":127.0.0.1 " + options + " https://" + host + ":" +
         std::to_string(port) + path;
}

// A blocking OpenSSL client connection: one request at a time, answers read by length.
class Client {
 public:
  Client(std::uint16_t port, const std::string& server_name, const fs::path& ca) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"  // OpenSSL's macro
    SSL_set_tlsext_host_name(ssl_, server_name.c_str());
#pragma GCC diagnostic pop
    SSL_set1_host(ssl_, server_name.c_str());
    connected_ = SSL_connect(ssl_) == 1;
  }
  ~Client() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  bool connected() const { return connected_; }
  std::string peer_name() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return "";
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    return cn;
  }
  bool send(std::string_view bytes) {
    return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) > 0;
  }
  // Reads until `until` arrived (or the connection ended): what came.
  std::string read_until(std::string_view until) {
    std::string in;
    char buf[4096];
    while (in.find(until) == std::string::npos) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
    }
    return in;
  }
  // The body of the answer to GET `path` ("" when the connection failed).
  std::string get(const std::string& path) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
    if (SSL_write(ssl_, req.data(), static_cast<int>(req.size())) <= 0) return "";
    std::string in;
    char buf[4096];
    while (true) {
      const auto end = in.find("\r\n\r\n");
      if (end != std::string::npos) {
        const auto cl = in.find("Content-Length: ");
        const std::size_t length = std::stoul(in.substr(cl + 16));
        if (in.size() >= end + 4 + length) return in.substr(end + 4, length);
      }
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) return "";
      in.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki_.ok()) << "the openssl command made no CA";
    a_ = pki_.issue("a", {"a.test", "www.a.test"});
    b_ = pki_.issue("b", {"b.test", "*.b.test"});
  }
  std::shared_ptr<TlsListener> listener() {
    std::string error;
    auto tls = TlsListener::make({.certificates = {a_, b_}}, error);
    EXPECT_TRUE(tls) << error;
    return tls;
  }
  Pki pki_;
  TlsCertificate a_, b_;
};

TEST_F(TlsTest, CurlGetsItsAnswerOverTls13And12WithHttp2OrHttp11ByAlpn) {
  TlsServer s(listener());
  for (const std::string version : {"--tlsv1.3", "--tlsv1.2 --tls-max 1.2"}) {
    const Ran h2 = run(curl(pki_, "a.test", s.port(), version + " --http2 -w ' %{http_version}'"));
    EXPECT_EQ(h2.status, 0) << h2.output;
    EXPECT_EQ(h2.output, "secure /hello 2") << version;
    const Ran h1 =
        run(curl(pki_, "a.test", s.port(), version + " --http1.1 -w ' %{http_version}'"));
    EXPECT_EQ(h1.status, 0) << h1.output;
    EXPECT_EQ(h1.output, "secure /hello 1.1") << version;
  }
  // The plain listener beside it is still plain.
  const Ran plain =
      run("curl -sS --max-time 10 http://127.0.0.1:" + std::to_string(s.plain_port()) + "/p");
  EXPECT_EQ(plain.output, "plain /p");
}

TEST_F(TlsTest, AnHttp2ConnectionQuietPastATickIsTrimmedAndServesTheNextRequest) {
  ServerConfig config;
  config.header_timeout = 400ms;  // a 100 ms tick: its buffers' pages go while it is quiet
  TlsServer s(listener(), config);
  const Ran r =
      run("H2_TLS=1 /usr/bin/python3 " + std::string(SQUADRON_SOURCE_DIR) +
          "/tests/support/h2_client.py " + std::to_string(s.port()) + " twice /hello 0.5 2>&1");
  EXPECT_NE(r.output.find(R"("second": {"status": 200, "body": "secure /hello")"),
            std::string::npos)
      << r.output;
}

TEST_F(TlsTest, ASelfSignedCertificateIsMadeOnceWithItsKeyPrivateAndCurlTrustsItByItsFile) {
  const TlsCertificate made{pki_.dir() / "self" / "self-signed.pem",
                            pki_.dir() / "self" / "self-signed.key"};
  ASSERT_EQ(ensure_self_signed(made, {"localhost", "127.0.0.1", "::1"}), "");
  EXPECT_EQ(check_tls({.certificates = {made}}), "");
  EXPECT_EQ(fs::status(made.key).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  // Made once: a second call keeps the files (a client trusting them goes on trusting them).
  const auto written = fs::last_write_time(made.cert);
  std::ifstream first(made.cert);
  const std::string before((std::istreambuf_iterator<char>(first)), {});
  ASSERT_EQ(ensure_self_signed(made, {"localhost"}), "");
  std::ifstream second(made.cert);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(second)), {}), before);
  EXPECT_EQ(fs::last_write_time(made.cert), written);
  std::string error;
  TlsServer s(TlsListener::make({.certificates = {made}}, error));
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    const Ran r =
        run("curl -sS --max-time 10 --http2 -w ' %{http_version}' --cacert " + made.cert.string() +
            " https://" + host + ":" + std::to_string(s.port()) + "/self");
    EXPECT_EQ(r.output, "secure /self 2") << host;
  }
}

TEST_F(TlsTest, SniChoosesTheCertificateThatNamesTheHostAndTheFirstOtherwise) {
  TlsServer s(listener());
  // curl checks the certificate names the host it asked for.
  for (const std::string host : {"a.test", "www.a.test", "b.test", "api.b.test"}) {
    const Ran r = run(curl(pki_, host, s.port(), ""));
    EXPECT_EQ(r.status, 0) << host << ": " << r.output;
  }
  const Ran other = run("openssl s_client -connect 127.0.0.1:" + std::to_string(s.port()) +
                        " -servername c.test </dev/null");
  EXPECT_NE(other.output.find("CN = a.test"), std::string::npos) << other.output;
}

TEST_F(TlsTest, ProtocolsBeforeTls12AreRefused) {
  TlsServer s(listener());
  const Ran r = run(curl(pki_, "a.test", s.port(), "--tlsv1.0 --tls-max 1.1"));
  EXPECT_NE(r.status, 0) << r.output;
}

TEST_F(TlsTest, ASessionTicketResumesTheSession) {
  TlsServer s(listener());
  const std::string ticket = (pki_.dir() / "session").string();
  const std::string connect =
      "printf 'GET / HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n' "
      "| openssl s_client -ign_eof -connect 127.0.0.1:" +
      std::to_string(s.port()) + " -servername a.test ";
  for (const std::string version : {"-tls1_3", "-tls1_2"}) {
    const Ran first = run(connect + version + " -sess_out " + ticket);
    EXPECT_NE(first.output.find("New, TLSv1."), std::string::npos) << first.output;
    const Ran again = run(connect + version + " -sess_in " + ticket);
    EXPECT_NE(again.output.find("Reused, TLSv1."), std::string::npos) << version << again.output;
    if (version == "-tls1_3") {  // a TLS 1.3 client uses a ticket once: it gets a new one
      EXPECT_NE(again.output.find("New Session Ticket arrived"), std::string::npos) << again.output;
    }
    EXPECT_NE(again.output.find("secure /"), std::string::npos) << again.output;
  }
}

TEST_F(TlsTest, AReloadServesTheNewCertificateAndOpenConnectionsGoOn) {
  auto tls = listener();
  TlsServer s(tls);
  Client before(s.port(), "a.test", pki_.ca());
  ASSERT_TRUE(before.connected());
  EXPECT_EQ(before.get("/1"), "secure /1");
  // a.test's files replaced by a certificate under another common name (same names covered).
  const auto next = pki_.issue("a2", {"www.a.test", "a.test"});
  EXPECT_FALSE(tls->files_changed());
  fs::copy_file(next.cert, a_.cert, fs::copy_options::overwrite_existing);
  fs::copy_file(next.key, a_.key, fs::copy_options::overwrite_existing);
  EXPECT_TRUE(tls->files_changed());
  std::string error;
  ASSERT_TRUE(tls->reload(error)) << error;
  EXPECT_FALSE(tls->files_changed());
  EXPECT_EQ(before.get("/2"), "secure /2") << "the open connection goes on";
  EXPECT_EQ(before.peer_name(), "a.test");
  Client after(s.port(), "a.test", pki_.ca());
  ASSERT_TRUE(after.connected());
  EXPECT_EQ(after.peer_name(), "www.a.test");
  EXPECT_EQ(after.get("/3"), "secure /3");
  // A bad file: the reload fails, naming it, and the last good certificates stay.
  std::ofstream(a_.key) << "not a key";
  EXPECT_FALSE(tls->reload(error));
  EXPECT_NE(error.find(a_.key.string()), std::string::npos) << error;
  Client still(s.port(), "a.test", pki_.ca());
  EXPECT_TRUE(still.connected());
  EXPECT_EQ(still.get("/4"), "secure /4");
}

TEST_F(TlsTest, LargeBodiesAndPipelinedRequestsCrossTls) {
  TlsServer s(listener());
  const std::string body = (pki_.dir() / "body").string();
  ASSERT_EQ(run("head -c 3000000 /dev/urandom > " + body).status, 0);
  const Ran up = run(curl(pki_, "a.test", s.port(), "--data-binary @" + body, "/upload"));
  EXPECT_EQ(up.output, "bytes=3000000");
  // Three requests in one write: three answers, in order.
  const Ran piped =
      run("printf 'GET /1 HTTP/1.1\\r\\nHost: a\\r\\n\\r\\nGET /2 HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n"
          "GET /3 HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n' | openssl s_client "
          "-quiet -ign_eof -connect 127.0.0.1:" +
          std::to_string(s.port()) + " -servername a.test");
  const auto one = piped.output.find("secure /1"), two = piped.output.find("secure /2"),
             three = piped.output.find("secure /3");
  EXPECT_TRUE(one != std::string::npos && two != std::string::npos && three != std::string::npos &&
              one < two && two < three)
      << piped.output;
}

// What the server sends back to `bytes` sent on a new raw connection, until it closes (a 10 s
// receive timeout ends the wait: then `closed` is false).
std::string raw_exchange(std::uint16_t port, std::string_view bytes, bool& closed,
                         bool half_close = false) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  closed = false;
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size())) {
    if (half_close) ::shutdown(fd, SHUT_WR);
    timeval wait{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    char buf[512];
    ssize_t n = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
    closed = n == 0 || (n < 0 && errno == ECONNRESET);
  }
  ::close(fd);
  return got;
}

TEST_F(TlsTest, AHandshakeThatStopsIsClosedAtTheHeaderTimeoutAndPlainHttpAtOnce) {
  ServerConfig config;
  config.header_timeout = 300ms;
  TlsServer s(listener(), config);
  bool closed = false;
  const char partial[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};  // a ClientHello's start
  EXPECT_EQ(raw_exchange(s.port(), std::string_view(partial, sizeof partial), closed), "");
  EXPECT_TRUE(closed) << "closed, not left waiting";
  const std::string answer = raw_exchange(s.port(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n", closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(answer.find("HTTP/1.1"), std::string::npos) << "no plaintext answer on a TLS port";
}

TEST_F(TlsTest, AnUpgradedConnectionPassesBytesBothWaysOverTlsAndInPlain) {
  TlsServer s(listener());
  Client tls(s.port(), "a.test", pki_.ca());
  ASSERT_TRUE(tls.connected());
  // The request and the new protocol's first bytes in one write: those reach the handler too.
  ASSERT_TRUE(
      tls.send("GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
               "Upgrade: echo\r\n\r\nearly"));
  const std::string head = tls.read_until("early");
  EXPECT_EQ(head.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Connection: Upgrade\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find("Connection: close"), std::string::npos) << head;
  for (const std::string& m : std::vector<std::string>{"one", std::string(20000, 'x'), "three"}) {
    ASSERT_TRUE(tls.send(m));
    EXPECT_EQ(tls.read_until(m).size(), m.size());
  }
  // In plain HTTP on the other listener, the same; the client's FIN ends it.
  bool closed = false;
  const std::string plain = raw_exchange(
      s.plain_port(),
      "GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello",
      closed, true);
  EXPECT_NE(plain.find("101 Switching Protocols"), std::string::npos) << plain;
  EXPECT_EQ(plain.substr(plain.size() - 5), "hello") << plain;
  EXPECT_TRUE(closed);
}

TEST_F(TlsTest, AKeyThatIsNotTheCertificatesIsAnErrorNamingTheFile) {
  EXPECT_EQ(check_tls({.certificates = {a_}}), "");
  const std::string mismatched = check_tls({.certificates = {{a_.cert, b_.key}}});
  EXPECT_NE(mismatched.find(b_.key.string() + ": is not the key of the certificate in " +
                            a_.cert.string()),
            std::string::npos)
      << mismatched;
  const std::string missing = check_tls({.certificates = {{pki_.dir() / "nope.pem", a_.key}}});
  EXPECT_NE(missing.find("nope.pem: not a PEM certificate"), std::string::npos) << missing;
  std::string error;
  EXPECT_EQ(certificate_names(b_.cert, error), (std::vector<std::string>{"b.test", "*.b.test"}));
}

TEST(TicketKeys, ANewKeyEachLifetimeAndOldOnesDecryptForOneMore) {
  TicketKeys keys(std::chrono::seconds(60));
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  const auto first = keys.current(t0);
  EXPECT_EQ(keys.current(t0 + 59s).name, first.name);
  TicketKeys::Key found;
  bool fresh = false;
  ASSERT_TRUE(keys.find(first.name.data(), t0 + 10s, found, fresh));
  EXPECT_TRUE(fresh);
  const auto second = keys.current(t0 + 60s);
  EXPECT_NE(second.name, first.name);
  ASSERT_TRUE(keys.find(first.name.data(), t0 + 90s, found, fresh));
  EXPECT_FALSE(fresh) << "an older key decrypts, and the client gets a new ticket";
  EXPECT_EQ(found.aes, first.aes);
  EXPECT_FALSE(keys.find(first.name.data(), t0 + 120s, found, fresh)) << "expired";
  keys.current(t0 + 130s);
  EXPECT_EQ(keys.size(), 2u) << "the expired key is dropped";
}

}  // namespace
}  // namespace squadron::http
