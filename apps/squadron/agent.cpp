#include "agent.hpp"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sys/stat.h>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>

#include "squadron/cluster/agent.hpp"
#include "squadron/cluster/agent_state.hpp"
#include "squadron/cluster/etcd_client.hpp"
#include "squadron/cluster/host.hpp"
#include "squadron/cluster/keys.hpp"
#include "squadron/control/manifest.hpp"
#include "squadron/core/clock.hpp"
#include "squadron/core/duration.hpp"
#include "squadron/supervisor/cgroups.hpp"
#include "squadron/supervisor/supervisor.hpp"

namespace squadron::apps {
namespace fs = std::filesystem;
namespace sv = squadron::supervisor;

namespace {

int usage_error(const std::string& what) {
  std::fprintf(stderr, "squadron agent: %s\n", what.c_str());
  return 2;
}

// A folder of the host's own: `wanted`, or under /var/lib/squadron, or a new temporary one.
fs::path state_dir(const AgentCliOptions& o) {
  std::error_code ec;
  if (!o.state_dir.empty()) {
    fs::create_directories(o.state_dir, ec);
    return ec ? fs::path{} : fs::path(o.state_dir);
  }
  const fs::path dir = fs::path("/var/lib/squadron") / o.fleet / o.name;
  fs::create_directories(dir, ec);
  if (!ec) return dir;
  std::string tmpl = (fs::temp_directory_path() / "squadron-agent-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) != nullptr) return tmpl;
  return {};
}

}  // namespace

int run_agent(const AgentCliOptions& o) {
  cluster::EtcdOptions etcd_options;
  for (const auto& text : o.etcd) {
    std::string error;
    auto m = cluster::parse_member(text, error);
    if (!m) return usage_error(error);
    etcd_options.members.push_back(*m);
  }
  if (etcd_options.members.empty())
    return usage_error("--etcd: give the etcd members' addresses (such as 10.0.0.1:2379)");
  if (!cluster::valid_name(o.fleet))
    return usage_error("--fleet '" + o.fleet + "': the fleet's name (its manifest's name:)");
  if (!cluster::valid_name(o.name))
    return usage_error("--name '" + o.name +
                       "': this host's name, 1-63 of a-z, 0-9 and '-' (such as h1 or web-3)");
  boost::system::error_code aec;
  boost::asio::ip::make_address(o.address, aec);
  if (aec)
    return usage_error("--address '" + o.address +
                       "': the address other hosts reach this one at (such as 10.0.0.7)");
  const auto ttl = core::parse_duration(o.ttl);
  if (!ttl || *ttl < std::chrono::seconds(2) || *ttl > std::chrono::minutes(10))
    return usage_error("--ttl '" + o.ttl + "': a duration from 2s to 10m (such as 5s)");

  cluster::HostInfo host = cluster::this_host(o.name, o.address);
  for (const auto& label : o.labels) {
    const auto eq = label.find('=');
    if (eq == std::string::npos || eq == 0)
      return usage_error("--label '" + label + "': expected KEY=VALUE (such as zone=a)");
    host.labels[label.substr(0, eq)] = label.substr(eq + 1);
  }
  const fs::path dir = state_dir(o);
  if (dir.empty()) return usage_error("cannot make a state folder; give one with --state-dir");
  const fs::path state_file = dir / "agent.json";
  auto say = [&](const std::string& line) {
    std::fprintf(stderr, "squadron agent %s: %s\n", o.name.c_str(), line.c_str());
  };

  // What the agent before this one left running (agent_state.hpp): adopted, not restarted.
  std::string problem;
  const auto saved = cluster::load_agent_state(state_file, problem);
  if (!problem.empty()) say("adopting nothing: " + problem);
  std::vector<sv::Supervisor::Held> adoptable;
  std::set<std::string> keep;
  if (saved) {
    for (const auto& h : saved->instances) {
      if (sv::process_start_ticks(h.status.pid) == h.start_ticks) {
        adoptable.push_back(h);
        keep.insert(h.spec.id);
      } else {
        say(fmt::format("{} (pid {}) ended while no agent ran", h.spec.id, h.status.pid));
      }
    }
  }

  // Instances outlive the agent (no guardian, no PDEATHSIG): a restarted agent adopts them.
  boost::asio::io_context io;
  sv::PosixLauncher launcher;
  core::SystemClock clock;
  sv::Supervisor sup(io, launcher, clock);
  std::string why;
  // One name per fleet, host and state folder: for the cgroups and the secrets' folder.
  const std::string own = sv::fleet_cgroup_name(o.fleet + "-" + o.name, dir);
  auto cgroups = sv::Cgroups::create(sv::detect_cgroups(), own, &why, keep);
  if (cgroups) {
    sup.set_isolation(cgroups->get());
  } else {
    say("no cgroups (" + why + "): instances run without limits");
  }
  // Secrets on a memory file system (/run) when this user may write there, never beside logs;
  // what no adopted instance uses is what a crashed agent left.
  std::error_code ec;
  fs::path secrets = fs::path("/run/squadron") / own;
  fs::create_directories(secrets.parent_path(), ec);
  ::chmod(secrets.parent_path().c_str(), 0711);
  if (::mkdir(secrets.c_str(), 0711) != 0 && errno != EEXIST) {
    secrets = dir / "secrets";
    fs::create_directories(secrets, ec);
    ::chmod(secrets.c_str(), 0711);
  }
  const fs::path fifos = dir / "out";
  for (const auto& [folder, suffix] : {std::pair{secrets, ""}, std::pair{fifos, ".out"}}) {
    for (const auto& e : fs::directory_iterator(folder, ec)) {
      const std::string name = e.path().filename().string();
      const std::string id = name.substr(0, name.size() - std::string_view(suffix).size());
      if (keep.count(id) == 0) fs::remove_all(e.path(), ec);
    }
  }
  sup.set_secrets_dir(secrets);
  sup.log_to(dir / "logs");
  sup.set_detachable(fifos);
  // Instances listen on the host's address, where other hosts' gateways reach them.
  sup.set_instance_address(boost::asio::ip::make_address(o.address));

  etcd_options.request_timeout = std::chrono::milliseconds(1500);
  cluster::EtcdClient etcd(io.get_executor(), etcd_options);
  cluster::AgentOptions agent_options;
  agent_options.fleet = o.fleet;
  agent_options.host = host;
  agent_options.ttl = std::chrono::duration_cast<std::chrono::seconds>(*ttl);
  agent_options.log = say;
  agent_options.resume_lease = saved ? saved->lease : 0;
  // The state is saved after every change (coalesced), so that even an agent that is SIGKILLed
  // leaves what the next one adopts.
  cluster::Agent* running_agent = nullptr;
  bool save_posted = false;
  bool leaving = false;  // SIGINT: nothing is left to adopt
  auto save = [&] {
    if (leaving) return;
    std::string error;
    const cluster::AgentState state{running_agent != nullptr ? running_agent->lease() : 0,
                                    sup.held()};
    if (!cluster::save_agent_state(state_file, state, error)) say(error);
  };
  agent_options.changed = [&] {
    if (std::exchange(save_posted, true)) return;
    boost::asio::post(io, [&] {
      save_posted = false;
      save();
    });
  };
  if (o.gateway_port != 0) {
    if (o.control.empty())
      return usage_error("--gateway: name the servers it follows with --control URL");
    // The host's front door: Squadron's gateway, following the servers (any of them answers),
    // routing to ready instances on every host.
    std::string urls;
    for (const auto& url : o.control) urls += (urls.empty() ? "" : ",") + url;
    sv::InstanceSpec gw;
    gw.service = "gateway";
    gw.id = "gateway-" + o.name;
    gw.launch.argv = {fs::read_symlink("/proc/self/exe", ec).string(),
                      "gateway",
                      "--control",
                      urls,
                      "--host",
                      o.address,
                      "--port",
                      std::to_string(o.gateway_port),
                      "--threads",
                      "1"};
    // Every service's loopback port (control::cluster_service_ports): SQUADRON_<NAME>_URL names
    // this gateway wherever an instance runs; a port no service has answers 404.
    for (std::uint16_t k = 0; k < control::kClusterServicePorts; ++k) {
      gw.launch.argv.push_back("--spare");
      gw.launch.argv.push_back(std::to_string(control::kClusterServicePortBase + k));
    }
    // Its admin endpoints (/metrics, /upstreams: the revision it routes by) on the host's own
    // loopback (default 40999, just below the service ports).
    gw.launch.argv.push_back("--admin");
    gw.launch.argv.push_back(std::to_string(o.gateway_admin));
    gw.port = static_cast<std::uint16_t>(o.gateway_port);
    gw.stop_grace = std::chrono::seconds(5);
    gw.ready.none = true;  // it listens on --address, which a probe of 127.0.0.1 would miss
    agent_options.local.push_back(std::move(gw));
  }
  cluster::Agent agent(io, etcd, sup, agent_options);
  running_agent = &agent;
  sup.set_observer(&agent);
  for (const auto& h : adoptable) {
    if (sup.adopt(h)) {
      say(fmt::format("adopted {} (pid {}, port {}, {})", h.spec.id, h.status.pid, h.status.port,
                      sv::to_string(h.status.state)));
    } else {
      say(fmt::format("{} (pid {}) ended before it could be adopted", h.spec.id, h.status.pid));
    }
  }

  // SIGTERM (a restart, systemd's stop): the agent goes, its instances and its lease stay for
  // the next agent to adopt within the TTL. SIGINT (Ctrl-C): the host leaves, instances stop.
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](boost::system::error_code e, int signo) {
    if (e) return;
    if (signo == SIGTERM) {
      say("SIGTERM: going, leaving the instances running and the lease held for the next agent "
          "(Ctrl-C, SIGINT, stops them)");
      agent.stop(/*leave=*/false);
      save();
      sup.detach();
      if (cgroups) (*cgroups)->leave();
      io.stop();
      return;
    }
    say("SIGINT: leaving (instances stop)");
    leaving = true;
    agent.stop(/*leave=*/true);
    sup.stop_all([&] {
      std::error_code rec;
      fs::remove(state_file, rec);
    });
  });
  std::fprintf(stderr, "squadron agent %s (%s, %u cores, %llu MiB) for fleet %s, etcd %s\n",
               o.name.c_str(), o.address.c_str(), host.cores,
               static_cast<unsigned long long>(host.memory_bytes >> 20), o.fleet.c_str(),
               cluster::to_string(etcd_options.members.front()).c_str());
  agent.start();
  io.run();
  sup.set_observer(nullptr);
  return 0;
}

}  // namespace squadron::apps
