#include "squadron/cluster/agent.hpp"

#include <algorithm>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "squadron/core/spawn.hpp"
#include "squadron/supervisor/report.hpp"
#include "squadron/supervisor/spec_json.hpp"

namespace squadron::cluster {
namespace asio = boost::asio;
namespace json = boost::json;
namespace sv = squadron::supervisor;
using namespace std::chrono_literals;

std::string assignment_text(const Assignment& a) {
  json::object o;
  o["spec"] = sv::to_json(a.spec);
  o["stop"] = a.stop;
  o["drain_ms"] = a.drain.count();
  return json::serialize(o);
}

std::optional<Assignment> parse_assignment(std::string_view text, std::string& error) {
  boost::system::error_code ec;
  const auto v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    error = "an assignment must be a JSON object";
    return std::nullopt;
  }
  const auto& o = v.get_object();
  const auto* spec = o.if_contains("spec");
  if (spec == nullptr) {
    error = "an assignment without a spec";
    return std::nullopt;
  }
  auto parsed = sv::spec_from_json(*spec, error);
  if (!parsed) {
    error = "spec." + error;
    return std::nullopt;
  }
  Assignment a;
  a.spec = std::move(*parsed);
  if (const auto* stop = o.if_contains("stop")) {
    if (!stop->is_bool()) {
      error = "stop: expected true or false";
      return std::nullopt;
    }
    a.stop = stop->get_bool();
  }
  if (const auto* drain = o.if_contains("drain_ms")) {
    if (!drain->is_int64() || drain->get_int64() < 0) {
      error = "drain_ms: expected a number of milliseconds";
      return std::nullopt;
    }
    a.drain = std::chrono::milliseconds(drain->get_int64());
  }
  return a;
}

Agent::Agent(asio::io_context& io, EtcdClient& etcd, sv::Runner& runner, AgentOptions options)
    : io_(io),
      etcd_(etcd),
      runner_(runner),
      options_(std::move(options)),
      keys_(options_.fleet),
      pauses_(io) {
  options_.ttl = std::max(options_.ttl, std::chrono::seconds(2));
}

Agent::~Agent() = default;

void Agent::say(const std::string& what) const {
  if (options_.log) options_.log(what);
}

void Agent::start() {
  for (auto spec : options_.local) {
    local_.insert(spec.id);
    say(fmt::format("starting {} (the host's own)", spec.id));
    runner_.add(spec);
  }
  core::spawn(io_, keep_lease(), "the host's lease");
  core::spawn(io_, follow_assignments(), "the host's assignments");
}

asio::awaitable<void> Agent::keep_lease() {
  const auto period = std::max<std::chrono::milliseconds>(options_.ttl / 3, 200ms);
  std::string last_problem;
  auto problem = [&](const std::string& p) {
    if (p != last_problem) say(p);  // once per kind of failure, not every try
    last_problem = p;
  };
  while (!stopped_) {
    if (lease_ == 0 && options_.resume_lease != 0) {
      // An earlier agent's lease: kept if etcd still has it (its keys, the instances', with it).
      const auto old = std::exchange(options_.resume_lease, 0);
      auto renewed = co_await etcd_.keep_alive(old);
      if (stopped_) break;
      if (!renewed.has_error()) {
        auto put = co_await etcd_.put(keys_.host(options_.host.name),
                                      json::serialize(to_json(options_.host)), old);
        if (stopped_) break;
        if (!put.has_error()) {
          lease_ = old;
          say(fmt::format("host {} ({}) kept the lease {} of the agent before", options_.host.name,
                          options_.host.address, lease_));
          report_everything();
          if (options_.changed) options_.changed();
          continue;
        }
      }
      say("the lease of the agent before is gone (" +
          (renewed.has_error() ? renewed.error().message : std::string("lost")) +
          "): registering anew");
    }
    if (lease_ == 0) {
      auto granted = co_await etcd_.grant(options_.ttl);
      if (stopped_) break;
      if (granted.has_error()) {
        problem("cannot register host " + options_.host.name + ": " + granted.error().message);
        co_await pauses_.pause(options_.retry);
        continue;
      }
      const auto text = json::serialize(to_json(options_.host));
      auto put = co_await etcd_.put(keys_.host(options_.host.name), text, granted->id);
      if (stopped_) break;
      if (put.has_error()) {
        problem("cannot register host " + options_.host.name + ": " + put.error().message);
        co_await pauses_.pause(options_.retry);
        continue;
      }
      lease_ = granted->id;
      last_problem.clear();
      say(fmt::format("host {} ({}) registered, lease {} of {} s", options_.host.name,
                      options_.host.address, lease_, options_.ttl.count()));
      report_everything();
      if (options_.changed) options_.changed();
    }
    co_await pauses_.pause(period);
    if (stopped_) break;
    auto renewed = co_await etcd_.keep_alive(lease_);
    if (stopped_) break;
    if (!renewed.has_error()) {
      if (!last_problem.empty()) say("etcd answers again; the lease held");
      last_problem.clear();
      continue;
    }
    if (renewed.error().code == EtcdErrc::kLeaseNotFound) {
      say("the host's lease lapsed (etcd was out of reach past its TTL): registering again");
      lease_ = 0;
      reported_.clear();  // its keys went with it
      continue;
    }
    problem("cannot renew the host's lease: " + renewed.error().message +
            " (the instances keep running)");
  }
}

asio::awaitable<void> Agent::follow_assignments() {
  const std::string prefix = keys_.assignments_of(options_.host.name);
  std::string last_problem;
  while (!stopped_) {
    auto now = co_await etcd_.get_prefix(prefix);
    if (stopped_) break;
    if (now.has_error()) {
      if (now.error().message != last_problem)
        say("cannot read the host's assignments: " + now.error().message);
      last_problem = now.error().message;
      co_await pauses_.pause(options_.retry);
      continue;
    }
    last_problem.clear();
    assignments_.clear();
    for (const auto& kv : now->kvs) apply(kv.key, &kv.value);
    reconcile();
    auto end = co_await etcd_.watch(
        prefix, prefix_end(prefix), now->header.revision + 1, [this](const WatchAnswer& w) {
          for (const auto& e : w.events) {
            apply(e.kv.key, e.type == WatchEvent::Type::kPut ? &e.kv.value : nullptr);
          }
          reconcile();
          return true;
        });
    if (stopped_ || (end.has_error() && end.error().code == EtcdErrc::kCanceled)) break;
    if (end.has_error() && end.error().code != EtcdErrc::kCompacted) {
      say("lost the watch of the host's assignments: " + end.error().message);
      co_await pauses_.pause(options_.retry);
    }
  }
}

void Agent::apply(const std::string& key, const std::string* value) {
  const std::string id(Keys::leaf(key));
  if (value == nullptr) {
    assignments_.erase(id);
    return;
  }
  std::string error;
  auto a = parse_assignment(*value, error);
  if (!a) {
    say(fmt::format("ignoring assignment {}: {}", key, error));
    return;
  }
  a->spec.id = id;
  assignments_[id] = std::move(*a);
}

void Agent::reconcile() {
  if (stopped_) return;
  std::set<std::string> running;
  for (const auto& st : runner_.snapshot()) running.insert(st.id);
  for (const auto& [id, a] : assignments_) {
    if (a.stop || running.count(id) != 0 || finished_.count(id) != 0) continue;
    say(fmt::format("starting {} ({} revision {})", id, a.spec.service, a.spec.revision));
    runner_.add(a.spec);
  }
  for (const auto& id : running) {
    if (local_.count(id) != 0) continue;
    const auto it = assignments_.find(id);
    if ((it != assignments_.end() && !it->second.stop) || stopping_.count(id) != 0) continue;
    const auto drain = it != assignments_.end() ? it->second.drain : 0ms;
    say(fmt::format("stopping {}{}", id, it == assignments_.end() ? " (no longer assigned)" : ""));
    stopping_.insert(id);
    runner_.stop(id, drain);
  }
  // Keys of instances neither assigned nor running: a finished task the leader let go, or one
  // that ran before this agent.
  for (auto it = finished_.begin(); it != finished_.end();) {
    if (assignments_.count(*it) == 0) {
      report(*it, std::nullopt);
      it = finished_.erase(it);
    } else {
      ++it;
    }
  }
}

void Agent::on_change(const sv::InstanceStatus& status) {
  if (options_.changed) options_.changed();
  if (local_.count(status.id) != 0) return;
  registry::Instance i = sv::to_registry(status);
  i.host = options_.host.address;
  i.node = options_.host.name;
  last_[status.id] = i;
  report(status.id, std::move(i));
}

void Agent::on_remove(const std::string& id) {
  if (options_.changed) options_.changed();
  if (local_.count(id) != 0) return;
  if (stopping_.erase(id) != 0 || assignments_.count(id) == 0) {
    last_.erase(id);
    report(id, std::nullopt);
  } else {
    // It ended by itself (a task that is done, a restart policy that gave up): its last report
    // stays for the leader to read, and it is not started again.
    finished_.insert(id);
  }
  reconcile();
}

void Agent::report(const std::string& id, std::optional<registry::Instance> instance) {
  pending_[id] = std::move(instance);
  if (!writing_ && lease_ != 0 && !stopped_) {
    writing_ = true;
    core::spawn(io_, write_reports(), "the host's reports");
  }
}

void Agent::report_everything() {
  for (const auto& [id, i] : last_) pending_[id] = i;
  if (!pending_.empty() && !writing_) {
    writing_ = true;
    core::spawn(io_, write_reports(), "the host's reports");
  }
}

asio::awaitable<void> Agent::write_reports() {
  while (!stopped_ && lease_ != 0 && !pending_.empty()) {
    auto it = pending_.begin();
    const std::string id = it->first;
    const std::optional<registry::Instance> value = std::move(it->second);
    pending_.erase(it);
    const std::string key = keys_.instance(options_.host.name, id);
    EtcdError failure;
    bool failed = false;
    if (value) {
      auto r = co_await etcd_.put(
          key, json::serialize(registry::to_json(*value, std::chrono::system_clock::now())),
          lease_);
      if (r.has_error()) {
        failed = true;
        failure = r.error();
      } else {
        reported_.insert(id);
      }
    } else {
      auto r = co_await etcd_.remove(key);
      if (r.has_error()) {
        failed = true;
        failure = r.error();
      } else {
        reported_.erase(id);
      }
    }
    if (stopped_) break;
    if (failed) {
      pending_.try_emplace(id, value);                      // unless a newer report came meanwhile
      if (failure.code == EtcdErrc::kLeaseNotFound) break;  // the lease loop registers again
      say("cannot report " + id + ": " + failure.message);
      co_await pauses_.pause(options_.retry);
    }
  }
  writing_ = false;
}

asio::awaitable<void> Agent::revoke_then_stop() {
  const auto lease = std::exchange(lease_, 0);
  auto r = co_await etcd_.revoke(lease);
  if (r.has_error()) say("could not revoke the host's lease: " + r.error().message);
  etcd_.stop();
}

void Agent::stop(bool leave) {
  if (stopped_) return;
  stopped_ = true;
  pauses_.cancel_all();
  if (leave && lease_ != 0) {
    // The host leaves at once: its key and its instances' go with the lease.
    core::spawn(io_, revoke_then_stop(), "the host's departure");
    return;
  }
  etcd_.stop();
}

}  // namespace squadron::cluster
