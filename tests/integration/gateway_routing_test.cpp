// The gateway's data path: routes and spread, its own ports, framing, a killed gateway, the
// per-service addresses, metrics, rate limits and deadlines, streamed bodies, answers never
// crossed.
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
  // Its parts too, for programs that take a host and a port (redis-cli -h -p, psql -h -p).
  const std::string url = "SQUADRON_FLASK_URL=http://127.0.0.1:";
  const auto url_at = env.find(url) + url.size();
  const std::string port = env.substr(url_at, env.find('\n', url_at) - url_at);
  EXPECT_NE(env.find("\nSQUADRON_FLASK_HOST=127.0.0.1\n"), std::string::npos) << env;
  EXPECT_NE(env.find("\nSQUADRON_FLASK_PORT=" + port + "\n"), std::string::npos) << env;
  EXPECT_NE(env.find("\nSQUADRON_FLASK_ADDR=127.0.0.1:" + port + "\n"), std::string::npos) << env;
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
  // One machine: no hosts (a cluster's), said so.
  EXPECT_FALSE(json::parse(fleet->body).as_object().contains("hosts"));
  const auto hosts = fetch(control, "GET", "/api/v1/hosts");
  ASSERT_TRUE(hosts);
  EXPECT_EQ(hosts->status, 404);
  EXPECT_NE(hosts->body.find("cluster:"), std::string::npos) << hosts->body;
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
