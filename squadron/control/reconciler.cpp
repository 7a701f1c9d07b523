// The reconcile loop: level-triggered passes (after every change and every `resync`) that bring
// each service's instances to its desired count, retiring the surplus through a drain.
#include <algorithm>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "squadron/control/fleet.hpp"
#include "squadron/core/duration.hpp"

namespace squadron::control {

namespace sv = squadron::supervisor;
namespace json = boost::json;

std::vector<std::string> choose_surplus(std::vector<sv::InstanceStatus> members,
                                        std::size_t count) {
  std::stable_sort(members.begin(), members.end(), [](const auto& a, const auto& b) {
    const bool ra = a.state == sv::InstanceState::kReady;
    const bool rb = b.state == sv::InstanceState::kReady;
    if (ra != rb) return !ra;  // unready first
    return registry::instance_number(a.id) > registry::instance_number(b.id);
  });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < count && i < members.size(); ++i) out.push_back(members[i].id);
  return out;
}

void Fleet::schedule_resync() {
  resync_timer_.expires_after(options_.resync);
  resync_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive || stopping_) return;
    reconcile();
    schedule_resync();
  });
}

void Fleet::kick() {
  if (kicked_ || stopping_) return;
  kicked_ = true;
  boost::asio::post(io_, [this, alive = alive_] {
    if (!*alive) return;
    kicked_ = false;
    reconcile();
  });
}

void Fleet::retire(const std::string& id) {
  if (!retiring_.insert(id).second) return;
  if (with_.drain == nullptr || options_.drain.count() == 0) {
    sup_.stop(id, options_.drain);
    return;
  }
  // Draining until the gateway is done with it, at most the service's stop grace.
  auto bound = options_.drain;
  std::string service;
  for (const auto& st : sup_.snapshot()) {
    if (st.id != id) continue;
    service = st.service;
    if (const auto* spec = manifest_.find(st.service)) bound = std::max(bound, spec->stop_grace);
  }
  const auto since = std::chrono::steady_clock::now();
  sup_.stop(id, bound);  // draining: out of the ready set, so the registry's revision moves on
  with_.drain->when_idle(
      id, reg_.revision(), since + bound,
      [this, alive = alive_, id, service, since, bound](bool idle) {
        if (!*alive) return;
        if (!idle) {
          event(service, id,
                fmt::format("drain: requests still in flight after {}; stopping it anyway",
                            core::format_duration(bound)));
        }
        sup_.stop(id);  // ends the drain now (nothing if it is gone already)
      });
}

void Fleet::reconcile() {
  if (stopping_) return;
  for (const auto& spec : manifest_.services) reconcile_service(spec, services_[spec.name]);
}

void Fleet::reconcile_service(const ServiceSpec& spec, ServiceState& state) {
  std::vector<sv::InstanceStatus> members;
  for (auto& st : sup_.snapshot()) {
    if (st.service == spec.name && retiring_.count(st.id) == 0) members.push_back(std::move(st));
  }
  if (state.rollout) {
    if (step_rollout(spec, state, members)) return;
    // The rollout ended in this step and may have retired an instance: count again.
    std::erase_if(members, [&](const auto& m) { return retiring_.count(m.id) != 0; });
  }
  const int have = static_cast<int>(members.size());
  if (have < state.desired) {
    if (holds_fixed_port(spec)) return;  // its successor starts once it is gone (on_remove)
    if (have == 0 && !spec.depends_on.empty()) {  // its first start waits for its dependencies
      if (auto why = unmet_dependency(spec)) {
        if (state.waiting != *why) {
          state.waiting = *why;
          event(spec.name, "", *why);
        }
        return;
      }
      state.waiting.clear();
    }
    for (int i = have; i < state.desired; ++i) add(spec);
  } else if (have > state.desired) {
    for (const auto& id : choose_surplus(members, static_cast<std::size_t>(have - state.desired)))
      retire(id);
  }
}

std::optional<std::string> Fleet::unmet_dependency(const ServiceSpec& spec) const {
  const auto all = sup_.snapshot();
  for (const auto& d : spec.depends_on) {
    bool started = false, ready = false, completed = false;
    std::string failed;
    for (const auto& st : all) {
      if (st.service != d.service) continue;
      switch (st.state) {
        case sv::InstanceState::kReady:
          ready = true;
          [[fallthrough]];
        case sv::InstanceState::kStarting:
        case sv::InstanceState::kDraining:
          started = true;
          break;
        case sv::InstanceState::kStopped:
          if (st.last_exit == "exit 0") completed = started = ready = true;
          break;
        case sv::InstanceState::kFailed:
          failed = st.last_exit;
          break;
        default:
          break;
      }
    }
    const bool met = d.condition == Condition::kStarted ? started
                     : d.condition == Condition::kReady ? ready
                                                        : completed;
    if (met) continue;
    if (!failed.empty() && !started)
      return fmt::format("blocked: {} failed ({}); it needs {} {}", d.service, failed, d.service,
                         to_string(d.condition));
    return fmt::format("waiting for {} to be {}", d.service, to_string(d.condition));
  }
  return std::nullopt;
}

bool Fleet::holds_fixed_port(const ServiceSpec& spec) const {
  if (!spec.port) return false;
  const auto all = sup_.snapshot();
  return std::any_of(all.begin(), all.end(),
                     [&](const sv::InstanceStatus& st) { return st.service == spec.name; });
}

void Fleet::on_change(const sv::InstanceStatus& st) {
  reg_.upsert(to_registry(st));
  auto& last = last_state_[st.id];
  if (last != st.state || (st.state == sv::InstanceState::kStarting && st.pid > 0)) {
    std::string what =
        fmt::format("{} (pid {}, port {})", sv::to_string(st.state), st.pid, st.port);
    if (st.state == sv::InstanceState::kBackoff || st.state == sv::InstanceState::kFailed ||
        st.state == sv::InstanceState::kStopped ||
        (st.state == sv::InstanceState::kStarting && st.restarts > 0))
      what += " after " + st.last_exit;
    event(st.service, st.id, std::move(what));
  }
  last = st.state;
  kick();
}

void Fleet::on_remove(const std::string& id) {
  reg_.erase(id);
  retiring_.erase(id);
  last_state_.erase(id);  // its "stopped" event came with its last state change
  kick();
}

}  // namespace squadron::control
