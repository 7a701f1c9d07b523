#include "server.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unistd.h>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>

#include "squadron/cluster/cluster_runner.hpp"
#include "squadron/cluster/election.hpp"
#include "squadron/cluster/etcd_client.hpp"
#include "squadron/cluster/keys.hpp"
#include "squadron/control/api.hpp"
#include "squadron/control/desired_store.hpp"
#include "squadron/control/fleet.hpp"
#include "squadron/control/manifest.hpp"
#include "squadron/control/state.hpp"
#include "squadron/core/address.hpp"
#include "squadron/core/clock.hpp"
#include "squadron/gateway/follower.hpp"
#include "squadron/http/client.hpp"
#include "squadron/http/server.hpp"
#include "squadron/registry/memory_registry.hpp"

namespace squadron::apps {
namespace {

// The cluster's hosts as the API shows them (GET /api/v1/hosts, the dashboard's hosts view).
boost::json::array hosts_json(const std::vector<cluster::ClusterRunner::Host>& hosts) {
  boost::json::array out;
  for (const auto& h : hosts) {
    boost::json::object labels;
    for (const auto& [k, v] : h.info.labels) labels[k] = v;
    boost::json::object o{{"name", h.info.name},
                          {"address", h.info.address},
                          {"labels", std::move(labels)},
                          {"cores", h.info.cores},
                          {"memory_bytes", h.info.memory_bytes},
                          {"state", h.up ? "up" : "lost"},
                          {"instances", h.instances},
                          {"memory_requested_bytes", h.memory_requested}};
    if (!h.up) {
      o["lost_at_ms"] =
          std::chrono::duration_cast<std::chrono::milliseconds>(h.lost_at.time_since_epoch())
              .count();
    }
    out.push_back(std::move(o));
  }
  return out;
}
using namespace std::chrono_literals;

int fail(const std::string& what) {
  std::fprintf(stderr, "squadron server: %s\n", what.c_str());
  return 2;
}

// The server's control API: the fleet's own when this server leads, else a pointer to the
// leader.
class ServerRuntime final : public http::Handler {
 public:
  ServerRuntime(const control::Manifest& m, const ServerOptions& o, http::ServerConfig config,
                cluster::EtcdOptions etcd_options, std::string url, std::string token)
      : manifest_(with_service_urls(m)),
        service_ports_(control::cluster_service_ports(m)),
        name_(o.name),
        token_(std::move(token)),
        server_(std::move(config), *this),
        reg_(server_.main_context().get_executor()),
        etcd_(server_.main_context().get_executor(), std::move(etcd_options)),
        election_(server_.main_context(), etcd_,
                  {.fleet = m.name,
                   .name = o.name,
                   .url = std::move(url),
                   .ttl = m.cluster->ttl,
                   .log = [this](const std::string& l) { say(l); }},
                  [this](bool leading) { on_leading(leading); }),
        runner_(server_.main_context(), etcd_, election_, runner_options(m)),
        signals_(server_.main_context(), SIGINT, SIGTERM) {
    runner_.on_synced = [this] { start_fleet(); };
  }

  http::Server& server() { return server_; }
  bool relaunch() const { return relaunch_; }

  void start() {
    signals_.async_wait([this](boost::system::error_code ec, int signo) {
      if (ec) return;
      say(fmt::format("{}: stopping (the instances keep running on their hosts)",
                      strsignal(signo)));
      stop();
    });
    election_.start();
  }

  bool handle(http::Request& req, http::Response& res, std::size_t worker) override {
    if (api_) return api_->handle(req, res, worker);
    const auto& leader = election_.leader();
    if (leader && leader->name != name()) return false;  // forwarded: handle_async
    res = http::Response::problem(
        503, "no server leads the fleet yet (a leader is elected within the cluster's ttl)");
    res.set_header("Retry-After", "1");
    return true;
  }
  boost::asio::awaitable<void> handle_async(http::Request& req, http::Response& res,
                                            std::size_t worker) override {
    if (api_) {
      co_await api_->handle_async(req, res, worker);
    } else {
      co_await forward(req, res, worker);
    }
  }
  void on_rejected(int status, std::size_t worker) noexcept override {
    if (api_) api_->on_rejected(status, worker);
  }

  // A standby answers every API call as the leader does, by asking it (as Nomad's servers
  // forward to theirs): the CLI, the dashboard and the hosts' gateways may use any server. A
  // streamed answer (logs and events followed, the watch's long polls) is passed on as it comes.
  boost::asio::awaitable<void> forward(http::Request& req, http::Response& res,
                                       std::size_t worker) {
    const auto leader = election_.leader();
    gateway::WatchTarget at;
    if (!leader || !gateway::parse_control_url(leader->url, at)) {
      res = http::Response::problem(503, "no server leads the fleet yet");
      res.set_header("Retry-After", "1");
      co_return;
    }
    std::vector<std::pair<std::string_view, std::string_view>> fields;
    for (const auto& h : req.headers()) {
      if (boost::iequals(h.name, "host") || boost::iequals(h.name, "connection") ||
          boost::iequals(h.name, "content-length") || boost::iequals(h.name, "transfer-encoding"))
        continue;
      fields.emplace_back(h.name, h.value);
    }
    fields.emplace_back("X-Squadron-Forwarded-By", name_);
    http::SimpleRequest forwarded;
    forwarded.method = req.method_name();
    forwarded.target = req.target();
    forwarded.fields = fields;
    forwarded.body = req.body();
    forwarded.deadline = std::chrono::steady_clock::now() + 90s;  // a watch's long poll is 30 s
    forwarded.stream_above = 64 * 1024;
    forwarded.body_idle_timeout = 5min;
    http::Response answer;
    auto& pool = http::ConnectionPool::of(server_.context(worker));
    const auto x = co_await pool.send(at.host, at.port, forwarded, answer);
    if (x.outcome != http::Outcome::kAnswered) {
      res = http::Response::problem(
          502, fmt::format("this server stands by, and the leader {} at {} did not answer: {}",
                           leader->name, leader->url, x.error));
      co_return;
    }
    res = std::move(answer);
    std::erase_if(res.headers, [](const auto& h) { return boost::iequals(h.first, "date"); });
    res.set_header("X-Squadron-Answered-By", leader->name);
  }

 private:
  static cluster::ClusterRunnerOptions runner_options(const control::Manifest& m) {
    cluster::ClusterRunnerOptions o;
    o.fleet = m.name;
    for (const auto& s : m.services) {
      if (s.placement_hosts.empty() && s.placement_labels.empty()) continue;
      o.rules[s.name] = {s.placement_hosts, s.placement_labels};
    }
    return o;
  }
  const std::string& name() const { return name_; }
  void say(const std::string& line) const {
    std::fprintf(stderr, "squadron server %s: %s\n", name_.c_str(), line.c_str());
  }

  void on_leading(bool leading) {
    if (leading) {
      runner_.start();  // the fleet starts once the cluster's state is read (on_synced)
      return;
    }
    if (stopping_) return;  // it resigned on the way out
    // The term is over: whatever this server decided may be stale. Start afresh as a standby.
    say("no longer leading: starting again as a standby");
    relaunch_ = true;
    stop();
  }

  void start_fleet() {
    if (!election_.leading() || fleet_) return;
    // Past every revision an earlier leader's registry gave (each term's fence is a newer etcd
    // revision): a gateway's watch carried over from the last term is never ahead.
    reg_.start_after(static_cast<std::uint64_t>(election_.fence()) << 32);
    control::FleetOptions options;
    // The desired state as the last leader left it (read with the rest of the cluster's state).
    const std::string root = election_.keys().root();
    store_ = std::make_unique<control::EtcdDesiredStore>(
        root, runner_.stored(control::EtcdDesiredStore::scale_key(root)),
        runner_.stored(control::EtcdDesiredStore::revisions_key(root)),
        [this](std::string key, std::string value) {
          runner_.write_fenced(std::move(key), std::move(value));
        });
    fleet_ = std::make_unique<control::Fleet>(
        server_.main_context(), runner_, reg_, clock_, manifest_, options,
        control::FleetCollaborators{store_.get(), nullptr, nullptr, nullptr});
    // Every host's gateway listens on each service's port (its SQUADRON_<NAME>_URL): named in
    // the watch, so that a request there reaches the service from any host.
    for (const auto& [service, port] : service_ports_) fleet_->set_discovery_port(service, port);
    // The registry holds what runs before anyone can ask: a gateway's watch carried over from
    // the last term is answered at once (start_after), and must not see an empty fleet.
    runner_.tell_observer();
    api_ = std::make_unique<control::ControlApi>(*fleet_, reg_, token_, [this] { stop(); });
    api_->hosts = [this] { return hosts_json(runner_.hosts()); };
    fleet_->start();
    say(fmt::format("running fleet {} over {} host(s)", manifest_.name, runner_.hosts().size()));
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    boost::system::error_code ec;
    signals_.cancel(ec);
    if (fleet_) fleet_->detach();  // the instances stay as they run: the next leader's
    runner_.stop();
    reg_.close();
    election_.stop([this] {
      etcd_.stop();
      server_.stop(1s);
    });
  }

  // `m` with SQUADRON_<NAME>_URL, _HOST, _PORT, _ADDR naming each service on the host's own
  // gateway (control::cluster_service_ports).
  static control::Manifest with_service_urls(control::Manifest m) {
    control::add_service_urls(m, control::cluster_service_ports(m));
    return m;
  }

  control::Manifest manifest_;
  std::vector<std::pair<std::string, std::uint16_t>> service_ports_;
  std::string name_;
  std::string token_;
  http::Server server_;
  registry::MemoryRegistry reg_;
  core::SystemClock clock_;
  cluster::EtcdClient etcd_;
  cluster::Election election_;
  cluster::ClusterRunner runner_;
  std::unique_ptr<control::EtcdDesiredStore> store_;
  std::unique_ptr<control::Fleet> fleet_;
  std::unique_ptr<control::ControlApi> api_;
  boost::asio::signal_set signals_;
  bool stopping_ = false;
  bool relaunch_ = false;
};

}  // namespace

int run_server(const ServerOptions& o, int argc, char** argv) {
  auto loaded = control::load_manifest(o.file);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return 2;
  }
  control::Manifest m = std::move(*loaded.manifest);
  if (!o.etcd.empty()) {
    if (!m.cluster) m.cluster.emplace();
    m.cluster->etcd = o.etcd;
  }
  if (!m.cluster) {
    return fail(
        fmt::format("{} has no cluster: key: give it cluster: {{ etcd: [ADDRESS:PORT] }} "
                    "(or --etcd), or run it on one machine with `squadron up`",
                    o.file));
  }
  if (!cluster::valid_name(o.name))
    return fail("--name '" + o.name + "': this server's name, a-z, 0-9 and '-' (such as s1)");
  cluster::EtcdOptions etcd_options;
  for (const auto& text : m.cluster->etcd) {
    std::string error;
    auto member = cluster::parse_member(text, error);
    if (!member) return fail(error);
    etcd_options.members.push_back(*member);
  }
  const std::string listen = o.listen.empty() ? m.control_listen : o.listen;
  std::string host;
  std::uint16_t port = 0;
  if (!core::split_host_port(listen, host, port))
    return fail("--listen '" + listen + "': expected HOST:PORT (such as 10.0.0.5:9900)");
  const control::StateDir dir(m.dir());
  std::error_code ec;
  const auto token = control::load_or_create_token(dir.token(), ec);
  if (!token) return fail(fmt::format("cannot write {}: {}", dir.token().string(), ec.message()));

  http::ServerConfig config;
  config.host = host == "localhost" ? "127.0.0.1" : host;
  config.port = port;
  config.threads = 1;
  config.idle_timeout = 5min;
  config.io_timeout = 60s;
  const std::string url = o.advertise.empty() ? fmt::format("http://{}", listen) : o.advertise;
  auto rt = std::make_unique<ServerRuntime>(m, o, config, etcd_options, url, *token);
  if (auto lec = rt->server().listen())
    return fail(fmt::format("--listen {}: {}", listen, lec.message()));
  std::fprintf(stderr, "squadron server %s: control API on %s, fleet %s, etcd %s\n", o.name.c_str(),
               url.c_str(), m.name.c_str(),
               cluster::to_string(etcd_options.members.front()).c_str());
  rt->start();
  rt->server().run();
  const bool relaunch = rt->relaunch();
  rt.reset();
  if (relaunch) {
    ::execv("/proc/self/exe", argv);
    std::fprintf(stderr, "squadron server: cannot start again: %s\n", std::strerror(errno));
    return 1;
  }
  (void)argc;
  return 0;
}

}  // namespace squadron::apps
