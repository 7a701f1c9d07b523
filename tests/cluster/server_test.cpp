// `squadron server` ×2 and `squadron agent` ×2 as processes against a real etcd: one server leads
// and runs the fleet over both hosts, the other answers by asking it; SIGKILL of the leader lets
// the standby lead within 5 s with no instance restarted and the scale it was given kept; SIGTERM
// of a server leaves the instances running.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "agent_process.hpp"
#include "etcd.hpp"
#include "process.hpp"
#include "raw_client.hpp"
#include "squadron/control/manifest.hpp"
#include "sync_etcd.hpp"

namespace squadron::cluster {
namespace {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::ChildProcess;
using testing::SyncEtcd;

struct Seen {
  std::string id;
  std::string state;
  std::string node;
  int pid = 0;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(etcd_.ready()) << etcd_.why();
    char tmpl[] = "/tmp/squadron-server-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ / "squadron.yaml") << fmt::format(R"(name: t
cluster: {{ etcd: [{}], ttl: 2s }}
services:
  hello:
    command: [{}/hello, --port, "${{PORT}}", --threads, "1"]
    replicas: 4
    ready: {{ path: /hello, interval: 100ms }}
    routes: [/hello]
)",
                                                         etcd_.endpoint(0), testing::bin_dir());
    for (const auto* s : {"s1", "s2"}) ports_[s] = testing::free_port();
    for (const auto* h : {"h1", "h2"}) {
      std::filesystem::create_directories(dir_ / h);
      gateways_[h] = testing::free_port();
      start_agent(h);
    }
    ASSERT_TRUE(
        SyncEtcd::eventually([&] { return sync_.list("/squadron/t/hosts/").size() == 2; }, 10s));
    for (const auto* s : {"s1", "s2"}) start_server(s);
  }
  void TearDown() override {
    servers_.clear();
    agents_.clear();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Whether host `host`'s gateway answers GET /hello as hello does.
  bool answers(const std::string& host) {
    const auto r = testing::fetch(gateways_[host], "GET", "/hello");
    return r && r->status == 200 && r->body == "Hello World!";
  }

  // Starts host `h`'s agent with its gateway; an agent before it hands its instances over.
  void start_agent(const std::string& h) {
    if (agents_[h]) agents_[h]->hand_over();
    const std::string control = fmt::format("http://127.0.0.1:{}", ports_["s1"]);
    const std::string standby = fmt::format("http://127.0.0.1:{}", ports_["s2"]);
    agents_[h] = std::make_unique<testing::AgentProcess>(
        std::vector<std::string>{testing::bin_dir() + "/squadron",
                                 "agent",
                                 "--etcd",
                                 etcd_.endpoint(0),
                                 "--fleet",
                                 "t",
                                 "--name",
                                 h,
                                 "--address",
                                 "127.0.0.1",
                                 "--ttl",
                                 "2s",
                                 "--state-dir",
                                 (dir_ / h).string(),
                                 "--gateway",
                                 std::to_string(gateways_[h]),
                                 "--gateway-admin",
                                 "0",
                                 "--control",
                                 control,
                                 "--control",
                                 standby},
        dir_ / h);
  }

  void start_server(const std::string& name) {
    servers_[name] = std::make_unique<ChildProcess>(std::vector<std::string>{
        testing::bin_dir() + "/squadron", "-f", (dir_ / "squadron.yaml").string(), "server",
        "--name", name, "--listen", fmt::format("127.0.0.1:{}", ports_[name])});
  }
  std::string token() {
    std::ifstream in(dir_ / ".squadron" / "token");
    std::string t;
    std::getline(in, t);  // one line: the token
    return t;
  }
  std::optional<testing::RawResponse> get(const std::string& server, const std::string& target) {
    return testing::fetch(ports_[server], "GET", target,
                          "Authorization: Bearer " + token() + "\r\n");
  }
  // The server that answers the API itself (200), if one does.
  std::optional<std::string> leader() {
    for (const auto& [name, port] : ports_) {
      if (!servers_[name]) continue;
      const auto r = get(name, "/api/v1/instances");
      if (r && r->status == 200 && !r->header("X-Squadron-Answered-By")) return name;
    }
    return std::nullopt;
  }
  // The leading server once it reports `count` ready instances (within 20 s), if it does.
  std::optional<std::string> leader_with_ready(int count) {
    std::optional<std::string> lead;
    SyncEtcd::eventually(
        [&] {
          lead = leader();
          return lead && ready(*lead) == count;
        },
        20s);
    return lead && ready(*lead) == count ? lead : std::nullopt;
  }
  std::vector<Seen> instances(const std::string& server) {
    std::vector<Seen> out;
    const auto r = get(server, "/api/v1/instances");
    if (!r || r->status != 200) return out;
    const auto body = boost::json::parse(r->body);
    for (const auto& v : body.as_array()) {
      const auto& o = v.as_object();
      Seen s;
      s.id = std::string(o.at("id").as_string());
      s.state = std::string(o.at("state").as_string());
      if (const auto* n = o.if_contains("node")) s.node = std::string(n->as_string());
      s.pid = static_cast<int>(o.at("pid").as_int64());
      out.push_back(s);
    }
    return out;
  }
  int ready(const std::string& server) {
    int n = 0;
    for (const auto& s : instances(server)) n += s.state == "ready" ? 1 : 0;
    return n;
  }
  std::map<std::string, int> pids(const std::string& server) {
    std::map<std::string, int> out;
    for (const auto& s : instances(server)) out[s.id] = s.pid;
    return out;
  }
  std::string logs() {
    std::string out;
    for (auto& [n, p] : servers_)
      if (p) out += "--- " + n + "\n" + p->output_now();
    for (auto& [n, p] : agents_) {
      out += "--- " + n + "\n" + p->output_now();
      std::ifstream gateway(dir_ / n / "logs" / ("gateway-" + n + ".log"));
      out += "--- its gateway\n" + std::string(std::istreambuf_iterator<char>(gateway), {});
    }
    return out;
  }

  testing::EtcdCluster etcd_{1};
  SyncEtcd sync_{etcd_};
  std::filesystem::path dir_;
  std::map<std::string, std::unique_ptr<testing::AgentProcess>> agents_;
  std::map<std::string, std::unique_ptr<ChildProcess>> servers_;
  std::map<std::string, std::uint16_t> ports_;
  std::map<std::string, std::uint16_t> gateways_;  // each host's gateway
};

TEST_F(ServerTest, OneLeadsTheFleetOverTheHostsAndTheOtherPointsAtIt) {
  const auto lead = leader_with_ready(4);
  ASSERT_TRUE(lead) << logs();
  std::map<std::string, int> per_host;
  for (const auto& s : instances(*lead)) ++per_host[s.node];
  EXPECT_EQ(per_host, (std::map<std::string, int>{{"h1", 2}, {"h2", 2}}));
  const std::string standby = *lead == "s1" ? "s2" : "s1";
  // The standby answers as the leader does, by asking it.
  const auto r = get(standby, "/api/v1/instances");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Squadron-Answered-By"), std::optional<std::string>(*lead));
  EXPECT_EQ(r->body, get(*lead, "/api/v1/instances")->body);
  // The CLI finds the leader through etcd (cluster.etcd), and `ps` says where each instance runs.
  ChildProcess ps(
      {testing::bin_dir() + "/squadron", "-f", (dir_ / "squadron.yaml").string(), "ps"});
  ASSERT_EQ(ps.wait_exit(10s), std::optional<int>(0)) << ps.output();
  EXPECT_NE(ps.output().find("HOST"), std::string::npos) << ps.output();
  EXPECT_NE(ps.output().find(" h1 "), std::string::npos) << ps.output();
  EXPECT_NE(ps.output().find(" h2 "), std::string::npos) << ps.output();
  ChildProcess ps_json(
      {testing::bin_dir() + "/squadron", "-f", (dir_ / "squadron.yaml").string(), "ps", "--json"});
  ASSERT_EQ(ps_json.wait_exit(10s), std::optional<int>(0)) << ps_json.output();
  const auto listed = boost::json::parse(ps_json.output());
  ASSERT_EQ(listed.as_array().size(), 4u);
  for (const auto& i : listed.as_array()) {
    const auto host = i.as_object().at("host").as_string();
    EXPECT_TRUE(host == "h1" || host == "h2") << host;
  }
  // Every instance's SQUADRON_HELLO_URL names the service's port on its host's gateway (here one
  // loopback for both hosts: the first gateway holds it).
  const auto ports =
      control::cluster_service_ports(*control::load_manifest(dir_ / "squadron.yaml").manifest);
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_TRUE(SyncEtcd::eventually(
      [&] {
        const auto r = testing::fetch(ports[0].second, "GET", "/hello");
        return r && r->status == 200 && r->body == "Hello World!";
      },
      5s));
  // Its token is checked by the leader, as if asked directly.
  const auto unauthorized = testing::fetch(ports_[standby], "GET", "/api/v1/events");
  ASSERT_TRUE(unauthorized.has_value());
  EXPECT_EQ(unauthorized->status, 401);
}

TEST_F(ServerTest, EveryHostsGatewayAnswersEveryRouteAndKeepsDoingSoWhenTheLeaderDies) {
  const auto lead = leader_with_ready(4);
  ASSERT_TRUE(lead) << logs();
  for (const auto* h : {"h1", "h2"}) {
    ASSERT_TRUE(SyncEtcd::eventually([&] { return answers(h); }, 10s)) << h << ": " << [&] {
      const auto r = testing::fetch(gateways_[h], "GET", "/hello");
      return r ? std::to_string(r->status) + " " + r->body : std::string("no answer");
    }() << "\n" << logs();
  }
  // The leader SIGKILLed: each gateway keeps routing from its last copy, then follows the
  // standby; not one GET fails meanwhile.
  servers_[*lead]->signal(SIGKILL);
  servers_[*lead]->wait_exit(5s);
  servers_[*lead].reset();
  int failed = 0, total = 0;
  const auto until = Clock::now() + 4s;
  while (Clock::now() < until) {
    for (const auto* h : {"h1", "h2"}) {
      ++total;
      if (!answers(h)) ++failed;
    }
  }
  EXPECT_EQ(failed, 0) << "of " << total;
  EXPECT_GT(total, 100);
}

TEST_F(ServerTest, AnAgentRestartedKeepsItsInstancesAndNoGetFails) {
  const auto lead = leader_with_ready(4);
  ASSERT_TRUE(lead) << logs();
  for (const auto* h : {"h1", "h2"})
    ASSERT_TRUE(SyncEtcd::eventually([&] { return answers(h); }, 10s)) << h << logs();
  const auto before = pids(*lead);
  // h1's agent SIGTERMed and started again while both hosts' gateways are asked all along (h1's
  // gateway too: it is one of the instances the agent leaves running and adopts).
  agents_["h1"]->signal(SIGTERM);
  int failed = 0, total = 0;
  bool restarted = false;
  const auto start = Clock::now();
  while (Clock::now() < start + 3s) {
    if (!restarted && Clock::now() > start + 500ms) {
      ASSERT_EQ(agents_["h1"]->wait_exit(5s), std::optional<int>(0)) << logs();
      start_agent("h1");
      restarted = true;
    }
    for (const auto* h : {"h1", "h2"}) {
      ++total;
      if (!answers(h)) ++failed;
    }
  }
  EXPECT_EQ(failed, 0) << "of " << total;
  EXPECT_GT(total, 100);
  ASSERT_TRUE(SyncEtcd::eventually(
      [&] { return agents_["h1"]->output_now().find("kept the lease") != std::string::npos; }, 5s))
      << logs();
  EXPECT_EQ(pids(*lead), before) << "no instance restarted";
}

TEST_F(ServerTest, TheHostsViewShowsAHostLostAndItsInstancesPlacedAgain) {
  const auto lead = leader_with_ready(4);
  ASSERT_TRUE(lead) << logs();
  auto hosts = [&] {
    std::map<std::string, boost::json::object> out;
    const auto r = get(*lead, "/api/v1/hosts");
    if (!r || r->status != 200) return out;
    const auto v = boost::json::parse(r->body);
    for (const auto& h : v.as_array()) out[std::string(h.at("name").as_string())] = h.as_object();
    return out;
  };
  auto now = hosts();
  ASSERT_EQ(now.size(), 2u);
  for (const auto* h : {"h1", "h2"}) {
    EXPECT_EQ(now[h].at("state").as_string(), "up");
    EXPECT_EQ(now[h].at("instances").as_int64(), 2) << h;
    EXPECT_EQ(now[h].at("address").as_string(), "127.0.0.1");
    EXPECT_GT(now[h].at("cores").as_int64(), 0);
  }
  agents_["h2"]->kill_host();
  ASSERT_TRUE(SyncEtcd::eventually(
      [&] {
        now = hosts();
        return now.count("h2") != 0 && now["h2"].at("state").as_string() == "lost" &&
               now["h1"].at("instances").as_int64() == 4;
      },
      10s))
      << logs();
  EXPECT_TRUE(now["h2"].contains("lost_at_ms"));
  EXPECT_EQ(now["h2"].at("instances").as_int64(), 0);
  // The fleet's summary carries them too (the dashboard's hosts view).
  const auto fleet = get(*lead, "/api/v1/fleet");
  ASSERT_TRUE(fleet.has_value());
  EXPECT_EQ(boost::json::parse(fleet->body).at("hosts").as_array().size(), 2u);
  // Back: up again (empty: placement moves nothing that runs).
  start_agent("h2");
  EXPECT_TRUE(SyncEtcd::eventually(
      [&] {
        now = hosts();
        return now.count("h2") != 0 && now["h2"].at("state").as_string() == "up";
      },
      10s));
}

TEST_F(ServerTest, SigkillOfTheLeaderLetsTheStandbyLeadWithinFiveSecondsRestartingNothing) {
  const auto lead = leader_with_ready(4);
  ASSERT_TRUE(lead) << logs();
  // A scale given to this leader outlives it (the desired state is in etcd).
  const auto scaled =
      testing::fetch(ports_[*lead], "POST", "/api/v1/services/hello/scale",
                     "Authorization: Bearer " + token() + "\r\nContent-Type: application/json\r\n",
                     R"({"replicas":5})");
  ASSERT_TRUE(scaled && scaled->status / 100 == 2) << (scaled ? scaled->body : "no answer");
  ASSERT_TRUE(SyncEtcd::eventually([&] { return ready(*lead) == 5; }, 10s)) << logs();
  const auto before = pids(*lead);
  const std::string standby = *lead == "s1" ? "s2" : "s1";
  servers_[*lead]->signal(SIGKILL);
  servers_[*lead]->wait_exit(5s);
  servers_[*lead].reset();
  const auto killed = Clock::now();
  ASSERT_TRUE(
      SyncEtcd::eventually([&] { return leader() == standby && pids(standby).size() == 5; }, 10s))
      << logs();
  EXPECT_LT(Clock::now() - killed, 5s);
  EXPECT_EQ(pids(standby), before);  // the same instances, the same processes
  std::this_thread::sleep_for(1s);   // and the new leader changes nothing
  EXPECT_EQ(pids(standby), before);
}

TEST_F(ServerTest, SigtermOfAServerLeavesTheInstancesRunning) {
  const auto lead = leader_with_ready(4);
  ASSERT_TRUE(lead) << logs();
  const auto before = pids(*lead);
  servers_[*lead]->signal(SIGTERM);
  EXPECT_EQ(servers_[*lead]->wait_exit(10s), std::optional<int>(0)) << logs();
  servers_[*lead].reset();
  const std::string standby = *lead == "s1" ? "s2" : "s1";
  // It resigned: the standby leads at once, not after the TTL.
  ASSERT_TRUE(SyncEtcd::eventually([&] { return pids(standby) == before; }, 3s)) << logs();
  for (const auto& [id, pid] : before) EXPECT_EQ(kill(pid, 0), 0) << id;
}

}  // namespace
}  // namespace squadron::cluster
