#include "etcd.hpp"

#include <csignal>
#include <cstdlib>
#include <thread>

#include <boost/json.hpp>

#include "raw_client.hpp"

namespace squadron::testing {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {
constexpr const char* kEtcd = "/usr/bin/etcd";

// POST /v3/maintenance/status to the member: its own id and its leader's, or nullopt.
std::optional<std::pair<std::string, std::string>> status(std::uint16_t port) {
  const auto r =
      fetch(port, "POST", "/v3/maintenance/status", "Content-Type: application/json\r\n", "{}");
  if (!r || r->status != 200) return std::nullopt;
  boost::system::error_code ec;
  const auto v = boost::json::parse(r->body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  const auto* leader = o.if_contains("leader");
  const auto* header = o.if_contains("header");
  if (leader == nullptr || header == nullptr || !leader->is_string() || !header->is_object())
    return std::nullopt;
  const auto* id = header->get_object().if_contains("member_id");
  if (id == nullptr || !id->is_string()) return std::nullopt;
  return std::pair{std::string(id->get_string()), std::string(leader->get_string())};
}
}  // namespace

EtcdCluster::EtcdCluster(int members) {
  if (!fs::exists(kEtcd)) {
    why_ = "etcd is not installed (scripts/bootstrap installs etcd-server)";
    return;
  }
  char tmpl[] = "/tmp/squadron-etcd-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    why_ = "no temporary folder";
    return;
  }
  dir_ = tmpl;
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = "m" + std::to_string(i);
    m.client_port = free_port();
    do m.peer_port = free_port();
    while (m.peer_port == m.client_port);
    initial_cluster_ +=
        (i ? "," : "") + m.name + "=http://127.0.0.1:" + std::to_string(m.peer_port);
    members_.push_back(std::move(m));
  }
  for (int i = 0; i < members; ++i)
    members_[i].process = std::make_unique<ChildProcess>(argv(i, true));
  const auto until = std::chrono::steady_clock::now() + 20s;
  for (int i = 0; i < members; ++i) {
    while (!answers(i, 200ms)) {
      if (std::chrono::steady_clock::now() > until || !members_[i].process->running()) {
        why_ = "etcd member " + members_[i].name + " did not start: " +
               members_[i].process->output_now().substr(
                   members_[i].process->output_now().size() > 2000
                       ? members_[i].process->output_now().size() - 2000
                       : 0);
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
  }
  if (!leader(10s)) why_ = "the etcd cluster elected no leader within 10 s";
}

EtcdCluster::~EtcdCluster() {
  for (auto& m : members_) m.process.reset();
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

std::vector<std::string> EtcdCluster::argv(int i, bool initial) const {
  const auto& m = members_[i];
  const std::string client = "http://127.0.0.1:" + std::to_string(m.client_port);
  const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
  return {kEtcd,
          "--name",
          m.name,
          "--data-dir",
          (dir_ / m.name).string(),
          "--listen-client-urls",
          client,
          "--advertise-client-urls",
          client,
          "--listen-peer-urls",
          peer,
          "--initial-advertise-peer-urls",
          peer,
          "--initial-cluster",
          initial_cluster_,
          "--initial-cluster-state",
          initial ? "new" : "existing",
          "--initial-cluster-token",
          dir_.filename().string(),
          "--heartbeat-interval",
          "50",
          "--election-timeout",
          "500",
          "--log-level",
          "warn",
          "--logger",
          "zap"};
}

std::string EtcdCluster::endpoint(int i) const {
  return "127.0.0.1:" + std::to_string(members_[i].client_port);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(endpoint(i));
  return out;
}

bool EtcdCluster::answers(int i, std::chrono::milliseconds) const {
  const auto s = status(members_[i].client_port);
  return s.has_value() && s->second != "0";
}

void EtcdCluster::kill(int i) {
  if (!members_[i].process) return;
  members_[i].process->signal(SIGKILL);
  members_[i].process->wait_exit(10s);
  members_[i].process.reset();
}

void EtcdCluster::start(int i) {
  if (members_[i].process) return;
  members_[i].process = std::make_unique<ChildProcess>(argv(i, false));
}

std::optional<int> EtcdCluster::leader(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (true) {
    for (int i = 0; i < size(); ++i) {
      if (!members_[i].process) continue;
      const auto s = status(members_[i].client_port);
      if (s && s->first == s->second) return i;
    }
    if (std::chrono::steady_clock::now() > until) return std::nullopt;
    std::this_thread::sleep_for(50ms);
  }
}

}  // namespace squadron::testing
