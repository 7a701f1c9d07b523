#include "squadron/cluster/cluster_runner.hpp"

#include <algorithm>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "squadron/core/spawn.hpp"
#include "squadron/registry/instance.hpp"

namespace squadron::cluster {
namespace asio = boost::asio;
namespace json = boost::json;
namespace sv = squadron::supervisor;
using namespace std::chrono_literals;

ClusterRunner::ClusterRunner(asio::io_context& io, EtcdClient& etcd, const Election& election,
                             ClusterRunnerOptions options)
    : io_(io),
      etcd_(etcd),
      election_(election),
      options_(std::move(options)),
      keys_(options_.fleet),
      pauses_(io) {}

ClusterRunner::~ClusterRunner() = default;

void ClusterRunner::say(const std::string& what) const {
  if (options_.log) options_.log(what);
}

void ClusterRunner::start() { core::spawn(io_, follow(), "the cluster's state"); }

void ClusterRunner::stop() {
  stopped_ = true;
  pauses_.cancel_all();
}

asio::awaitable<void> ClusterRunner::follow() {
  const std::string root = keys_.root();
  std::string last_problem;
  while (!stopped_) {
    auto now = co_await etcd_.get_prefix(root);
    if (stopped_) break;
    if (now.has_error()) {
      if (now.error().message != last_problem)
        say("cannot read the cluster: " + now.error().message);
      last_problem = now.error().message;
      co_await pauses_.pause(options_.retry);
      continue;
    }
    last_problem.clear();
    load(now->kvs);
    if (!synced_) {
      synced_ = true;
      if (on_synced) on_synced();
    }
    auto end = co_await etcd_.watch(
        root, prefix_end(root), now->header.revision + 1, [this](const WatchAnswer& w) {
          for (const auto& e : w.events) {
            on_key(e.kv.key, e.type == WatchEvent::Type::kPut ? &e.kv.value : nullptr);
          }
          return !stopped_;
        });
    if (stopped_ || (end.has_error() && end.error().code == EtcdErrc::kCanceled)) break;
    if (end.has_error() && end.error().code != EtcdErrc::kCompacted) {
      say("lost the watch of the cluster: " + end.error().message);
      co_await pauses_.pause(options_.retry);
    }
  }
}

// A full read: what it holds is applied as changes, and what it lacks as deletions, so that a read
// after a lost watch converges like the watch would have.
void ClusterRunner::load(const std::vector<KeyValue>& kvs) {
  std::set<std::string> hosts, assigned, reported;
  const std::string root = keys_.root();
  // Hosts first, then assignments, then reports: an instance finds its host and its assignment.
  for (const std::string kind : {"hosts/", "assignments/", "instances/"}) {
    for (const auto& kv : kvs) {
      if (kv.key.compare(0, root.size() + kind.size(), root + kind) != 0) continue;
      on_key(kv.key, &kv.value);
      const std::string rest = kv.key.substr(root.size() + kind.size());
      (kind == "hosts/" ? hosts : kind == "assignments/" ? assigned : reported).insert(rest);
    }
  }
  others_.clear();
  for (const auto& kv : kvs) {
    const std::string_view rest =
        std::string_view(kv.key).substr(std::min(kv.key.size(), root.size()));
    if (kv.key.compare(0, root.size(), root) == 0 && !rest.starts_with("hosts/") &&
        !rest.starts_with("assignments/") && !rest.starts_with("instances/"))
      others_[kv.key] = kv.value;
  }
  std::vector<std::string> gone_hosts;
  for (const auto& [name, info] : hosts_)
    if (hosts.count(name) == 0) gone_hosts.push_back(name);
  for (const auto& name : gone_hosts) on_host(name, nullptr);
  std::vector<std::pair<std::string, std::string>> gone_reports, gone_assignments;
  for (const auto& [id, e] : entries_) {
    if (e.host.empty()) continue;
    if (e.reported && reported.count(e.host + "/" + id) == 0) gone_reports.emplace_back(e.host, id);
    if (e.written && assigned.count(e.host + "/" + id) == 0)
      gone_assignments.emplace_back(e.host, id);
  }
  for (const auto& [host, id] : gone_reports) on_report(host, id, nullptr);
  for (const auto& [host, id] : gone_assignments) on_assignment(host, id, nullptr);
}

void ClusterRunner::on_key(const std::string& key, const std::string* value) {
  const std::string& root = keys_.root();
  if (key.compare(0, root.size(), root) != 0) return;
  const std::string_view rest = std::string_view(key).substr(root.size());
  auto two = [](std::string_view path, std::string& a, std::string& b) {
    const auto slash = path.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == path.size()) return false;
    a = std::string(path.substr(0, slash));
    b = std::string(path.substr(slash + 1));
    return b.find('/') == std::string::npos;
  };
  std::string host, id;
  if (rest.starts_with("hosts/")) {
    const auto name = rest.substr(6);
    if (!name.empty() && name.find('/') == std::string_view::npos)
      on_host(std::string(name), value);
  } else if (rest.starts_with("assignments/") && two(rest.substr(12), host, id)) {
    on_assignment(host, id, value);
  } else if (rest.starts_with("instances/") && two(rest.substr(10), host, id)) {
    on_report(host, id, value);
  } else if (value != nullptr) {
    others_[key] = *value;
  } else {
    others_.erase(key);
  }
}

void ClusterRunner::on_host(const std::string& name, const std::string* value) {
  if (value == nullptr) {
    if (hosts_.count(name) != 0) lose_host(name);
    return;
  }
  boost::system::error_code ec;
  const auto v = json::parse(*value, ec);
  auto info = ec ? std::nullopt : host_from_json(v);
  if (!info) {
    say("ignoring host " + name + ": its record is not a host's");
    return;
  }
  const bool joined = hosts_.count(name) == 0;
  hosts_[name] = *info;
  lost_.erase(name);
  if (joined) {
    say(fmt::format("host {} ({}) is up: {} cores, {} MiB", name, info->address, info->cores,
                    info->memory_bytes >> 20));
    if (synced_ && options_.event) options_.event("", "", "host " + name + " joined");
    place_waiting();
  }
}

void ClusterRunner::lose_host(const std::string& name) {
  if (auto it = hosts_.find(name); it != hosts_.end())
    lost_[name] = {it->second, std::chrono::system_clock::now()};
  hosts_.erase(name);
  std::vector<std::string> ids;
  for (const auto& [id, e] : entries_)
    if (e.host == name) ids.push_back(id);
  const std::string why = fmt::format("host {} lost (its lease lapsed)", name);
  say(fmt::format("{}: {} instance(s) to place again", why, ids.size()));
  if (options_.event) {
    options_.event("", "", fmt::format("{}; its {} instance(s) are placed again", why, ids.size()));
  }
  for (const auto& id : ids) forget(id, why);
}

void ClusterRunner::on_assignment(const std::string& host, const std::string& id,
                                  const std::string* value) {
  auto it = entries_.find(id);
  if (value == nullptr) {
    if (it != entries_.end() && it->second.written && it->second.host == host)
      forget(id, "its assignment was deleted");
    return;
  }
  if (it != entries_.end()) return;  // this server's own write, seen again
  // An assignment another leader wrote: this server takes it over.
  std::string error;
  auto a = parse_assignment(*value, error);
  if (!a) {
    say(fmt::format("ignoring assignment {}/{}: {}", host, id, error));
    return;
  }
  Entry e;
  e.host = host;
  e.assignment = std::move(*a);
  e.assignment.spec.id = id;
  e.written = true;
  e.status.service = e.assignment.spec.service;
  e.status.id = id;
  e.status.revision = e.assignment.spec.revision;
  e.status.state = e.assignment.stop ? sv::InstanceState::kStopping : sv::InstanceState::kStarting;
  e.status.node = host;
  if (const auto h = hosts_.find(host); h != hosts_.end()) e.status.host = h->second.address;
  long& n = next_number_[e.status.service];
  n = std::max(n, registry::instance_number(id));
  last_host_[e.status.service] = host;
  const auto& [pos, inserted] = entries_.emplace(id, std::move(e));
  if (inserted) changed(pos->second);
}

void ClusterRunner::on_report(const std::string& host, const std::string& id,
                              const std::string* value) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.host != host) return;  // not (or no longer) assigned here
  Entry& e = it->second;
  if (value == nullptr) {
    if (!e.reported) return;
    forget(id, e.assignment.stop ? "stopped" : "its agent no longer reports it");
    return;
  }
  boost::system::error_code ec;
  const auto v = json::parse(*value, ec);
  const auto i = ec ? std::nullopt : registry::instance_from_json(v);
  if (!i) {
    say("ignoring the report of " + id + ": not an instance's");
    return;
  }
  e.reported = true;
  e.status.pid = i->pid;
  e.status.port = i->port;
  e.status.state = static_cast<sv::InstanceState>(static_cast<int>(i->state));
  e.status.restarts = i->restarts;
  e.status.revision = i->revision.empty() ? e.status.revision : i->revision;
  e.status.started_at = i->started_at;
  e.status.last_exit = i->last_exit;
  e.status.oom_kills = i->oom_kills;
  e.status.host = i->host;
  e.status.node = host;
  changed(e);
}

void ClusterRunner::forget(const std::string& id, const std::string& why) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  const Entry e = std::move(it->second);
  entries_.erase(it);
  if (e.written) enqueue(keys_.assignment(e.host, id), std::nullopt);
  say(fmt::format("{} ({}) is gone: {}", id, e.host.empty() ? "not placed" : e.host, why));
  if (observer_ != nullptr) observer_->on_remove(id);
  check_all_stopped();
}

bool ClusterRunner::try_place(Entry& e, const std::string& prefer) {
  const auto& spec = e.assignment.spec;
  PlacementRequest r;
  r.service = spec.service;
  r.memory_bytes = spec.resources.memory_bytes.value_or(0);
  r.fixed_port = spec.port;
  if (const auto rule = options_.rules.find(spec.service); rule != options_.rules.end())
    r.rule = rule->second;
  r.prefer = prefer;
  std::string why;
  const auto host = place(r, views(), placed(), why);
  if (!host) {
    if (e.status.last_exit != "waiting for a host: " + why) {
      say(fmt::format("{} waits: {}", spec.id, why));
      if (options_.event) options_.event(spec.service, spec.id, "waiting for a host: " + why);
    }
    e.status.last_exit = "waiting for a host: " + why;
    return false;
  }
  e.host = *host;
  e.status.host = hosts_[*host].address;
  e.status.node = *host;
  e.status.last_exit.clear();
  last_host_[spec.service] = *host;
  e.written = true;
  enqueue(keys_.assignment(*host, spec.id), assignment_text(e.assignment));
  say(fmt::format("{} placed on {}", spec.id, *host));
  return true;
}

void ClusterRunner::place_waiting() {
  for (auto& [id, e] : entries_) {
    if (!e.host.empty() || e.assignment.stop) continue;
    if (try_place(e, "")) changed(e);
  }
}

std::string ClusterRunner::add(const sv::InstanceSpec& spec) {
  Entry e;
  e.assignment.spec = spec;
  if (e.assignment.spec.id.empty()) {
    e.assignment.spec.id = spec.service + "-" + std::to_string(++next_number_[spec.service]);
  }
  const std::string id = e.assignment.spec.id;
  e.status.service = spec.service;
  e.status.id = id;
  e.status.revision = spec.revision;
  e.status.port = spec.port.value_or(0);
  e.status.state = sv::InstanceState::kStarting;
  // A service with a fixed port hands it over on its host: its successor stays there.
  const auto last = last_host_.find(spec.service);
  try_place(e, spec.port && last != last_host_.end() ? last->second : std::string());
  const auto& [pos, inserted] = entries_.insert_or_assign(id, std::move(e));
  changed(pos->second);
  return id;
}

void ClusterRunner::stop(const std::string& id, std::chrono::milliseconds drain) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.assignment.stop) return;
  Entry& e = it->second;
  e.assignment.stop = true;
  e.assignment.drain = drain;
  if (!e.written) {
    // Never placed: nothing runs. Removed after this call returns, as the Supervisor would.
    asio::post(io_, [this, id] { forget(id, "stopped before a host could take it"); });
    return;
  }
  enqueue(keys_.assignment(e.host, id), assignment_text(e.assignment));
  e.status.state = drain.count() > 0 ? sv::InstanceState::kDraining : sv::InstanceState::kStopping;
  changed(e);
}

void ClusterRunner::stop_all(std::function<void()> done) {
  all_stopped_ = std::move(done);
  std::vector<std::string> ids;
  for (const auto& [id, e] : entries_) ids.push_back(id);
  for (const auto& id : ids) stop(id, 0ms);
  asio::post(io_, [this] { check_all_stopped(); });
}

void ClusterRunner::check_all_stopped() {
  if (all_stopped_ && entries_.empty()) std::exchange(all_stopped_, nullptr)();
}

std::string ClusterRunner::stored(const std::string& key) const {
  const auto it = others_.find(key);
  return it == others_.end() ? std::string() : it->second;
}

void ClusterRunner::write_fenced(std::string key, std::string value) {
  if (value.empty()) {
    enqueue(std::move(key), std::nullopt);
  } else {
    enqueue(std::move(key), std::move(value));
  }
}

void ClusterRunner::set_observer(sv::InstanceObserver* observer) {
  observer_ = observer;
  if (observer == nullptr) return;
  asio::post(io_, [this, observer] {
    if (observer_ != observer) return;
    for (const auto& [id, e] : entries_) observer->on_change(e.status);
  });
}

void ClusterRunner::tell_observer() {
  if (observer_ == nullptr) return;
  for (const auto& [id, e] : entries_) observer_->on_change(e.status);
}

std::vector<sv::InstanceStatus> ClusterRunner::snapshot() const {
  std::vector<sv::InstanceStatus> out;
  out.reserve(entries_.size());
  for (const auto& [id, e] : entries_) out.push_back(e.status);
  return out;
}

std::vector<std::string> ClusterRunner::logs(const std::string& id, std::size_t) const {
  const auto it = entries_.find(id);
  if (it == entries_.end()) return {};
  return {
      fmt::format("squadron: {} runs on host {}: its output is in that host's agent state "
                  "folder (logs/{}.log)",
                  id, it->second.host.empty() ? "(none yet)" : it->second.host, id)};
}

std::vector<ClusterRunner::Host> ClusterRunner::hosts() const {
  std::map<std::string, Host> by_name;
  for (const auto& [name, info] : hosts_) by_name[name] = Host{info, true, {}, 0, 0};
  for (const auto& [id, e] : entries_) {  // one pass over the instances, not one per host
    auto it = by_name.find(e.host);
    if (it == by_name.end()) continue;
    ++it->second.instances;
    it->second.memory_requested += e.assignment.spec.resources.memory_bytes.value_or(0);
  }
  for (const auto& [name, lost] : lost_) by_name[name] = Host{lost.first, false, lost.second, 0, 0};
  std::vector<Host> out;
  for (auto& [name, h] : by_name) out.push_back(std::move(h));
  return out;
}

std::vector<HostView> ClusterRunner::views() const {
  std::vector<HostView> out;
  for (const auto& [name, info] : hosts_)
    out.push_back({name, info.labels, info.memory_bytes, true});
  return out;
}

std::vector<Placed> ClusterRunner::placed() const {
  std::vector<Placed> out;
  for (const auto& [id, e] : entries_) {
    if (e.host.empty()) continue;
    const auto& spec = e.assignment.spec;
    out.push_back({e.host, spec.service, spec.resources.memory_bytes.value_or(0), spec.port});
  }
  return out;
}

void ClusterRunner::changed(const Entry& e) {
  if (observer_ != nullptr) observer_->on_change(e.status);
}

// Writes go out one at a time, the newest value of each key winning, each fenced by the
// election: once another server leads, this one writes nothing more.
void ClusterRunner::enqueue(std::string key, std::optional<std::string> value) {
  pending_[std::move(key)] = std::move(value);
  if (!writing_ && !stopped_) {
    writing_ = true;
    core::spawn(io_, write_all(), "the cluster's assignments");
  }
}

asio::awaitable<void> ClusterRunner::write_all() {
  while (!stopped_ && !pending_.empty()) {
    auto it = pending_.begin();
    const std::string key = it->first;
    const std::optional<std::string> value = std::move(it->second);
    pending_.erase(it);
    if (election_.fence() == 0) {
      say("not leading: the write of " + key + " is dropped");
      continue;
    }
    Compare leading;
    leading.key = keys_.leader();
    leading.target = Compare::Target::kCreate;
    leading.number = election_.fence();
    Operation op;
    op.key = key;
    if (value) {
      op.kind = Operation::Kind::kPut;
      op.value = *value;
    } else {
      op.kind = Operation::Kind::kDelete;
    }
    std::vector<Compare> compare{leading};
    std::vector<Operation> success{op};
    auto r = co_await etcd_.txn(std::move(compare), std::move(success), {});
    if (stopped_) break;
    if (r.has_error()) {
      say("cannot write " + key + ": " + r.error().message);
      pending_.try_emplace(key, value);  // unless a newer value came meanwhile
      co_await pauses_.pause(options_.retry);
    } else if (!r->succeeded) {
      say("not leading any more: the write of " + key + " is dropped");
    }
  }
  writing_ = false;
}

}  // namespace squadron::cluster
