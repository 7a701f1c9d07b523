// Rollouts: restarts, deploys of a new revision, rollbacks (by hand, or by themselves when a
// successor fails), stepped within the service's `deploy:` limits as Kubernetes' RollingUpdate.
#include <algorithm>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "squadron/control/fleet.hpp"
#include "squadron/core/duration.hpp"

namespace squadron::control {

namespace sv = squadron::supervisor;
namespace json = boost::json;

namespace {
constexpr std::size_t kMaxRevisions = 50;  // history kept per service
}  // namespace

std::optional<CommandError> Fleet::restart(std::string_view service) {
  const auto* spec = manifest_.find(service);
  if (spec == nullptr) return CommandError{404, fmt::format("no service \"{}\"", service)};
  if (stopping_) return CommandError{409, "the fleet is stopping"};
  auto& state = services_[spec->name];
  if (state.rollout)
    return CommandError{409, fmt::format("{} is already being restarted", spec->name)};
  Rollout r;
  for (const auto& st : sup_.snapshot()) {
    if (st.service == spec->name && retiring_.count(st.id) == 0) r.old_ids.insert(st.id);
  }
  event(spec->name, "",
        fmt::format("restart: replacing {} instance{}, each once a successor is ready",
                    r.old_ids.size(), r.old_ids.size() == 1 ? "" : "s"));
  state.rollout = std::move(r);
  kick();
  return std::nullopt;
}

int Fleet::revision(std::string_view service) const {
  auto it = services_.find(service);
  if (it == services_.end() || it->second.current >= it->second.revisions.size()) return 0;
  return it->second.revisions[it->second.current].number;
}

void Fleet::switch_to(ServiceState& state, std::size_t index, int from_revision,
                      bool rolling_back) {
  state.current = index;
  const Revision& rev = state.revisions[index];
  ServiceSpec* spec = nullptr;
  for (auto& s : manifest_.services) {
    if (s.name == rev.spec.name) spec = &s;
  }
  if (spec == nullptr) return;
  *spec = rev.spec;
  // Every instance not of this revision is replaced, one at a time. A rollout in progress is
  // superseded: its successor, not of this revision, is an old instance like the others.
  Rollout r;
  r.to_revision = rev.number;
  r.from_revision = from_revision;
  r.rolling_back = rolling_back;
  const std::string wanted = std::to_string(rev.number);
  for (const auto& st : sup_.snapshot()) {
    if (st.service == spec->name && retiring_.count(st.id) == 0 && st.revision != wanted)
      r.old_ids.insert(st.id);
  }
  if (r.old_ids.empty()) {
    state.rollout.reset();
    event(spec->name, "", fmt::format("revision {} runs everywhere", rev.number));
  } else {
    state.rollout = std::move(r);
  }
  persist_revisions();
  kick();
}

std::variant<int, CommandError> Fleet::deploy(std::string_view service, ServiceSpec spec,
                                              std::string cause) {
  const auto* current = manifest_.find(service);
  if (current == nullptr) return CommandError{404, fmt::format("no service \"{}\"", service)};
  if (stopping_) return CommandError{409, "the fleet is stopping"};
  auto& state = services_[current->name];
  if (state.rollout && state.rollout->to_revision == 0)
    return CommandError{
        409, fmt::format("{} is being restarted; deploy once the restart is done", current->name)};
  spec.name = current->name;
  const auto hash = definition_hash(spec);
  Revision& running = state.revisions[state.current];
  if (hash == running.hash) {
    // Nothing the instances run changed: routes, policies and counts apply as they are.
    for (auto& s : manifest_.services) {
      if (s.name == spec.name) s = spec;
    }
    running.spec = spec;
    return running.number;
  }
  const int from = running.number;
  Revision next{state.revisions.back().number + 1,
                hash,
                spec,
                std::chrono::system_clock::now(),
                std::move(cause),
                false};
  event(spec.name, "",
        fmt::format("deploy: revision {} ({}) replaces revision {}: {}", next.number, next.hash,
                    from, next.cause));
  state.revisions.push_back(std::move(next));
  if (state.revisions.size() > kMaxRevisions) {
    state.revisions.erase(state.revisions.begin());
  }
  switch_to(state, state.revisions.size() - 1, from, false);
  return state.revisions.back().number;
}

std::variant<int, CommandError> Fleet::rollback(std::string_view service) {
  const auto* current = manifest_.find(service);
  if (current == nullptr) return CommandError{404, fmt::format("no service \"{}\"", service)};
  if (stopping_) return CommandError{409, "the fleet is stopping"};
  auto& state = services_[current->name];
  if (state.rollout && state.rollout->to_revision == 0)
    return CommandError{409, fmt::format("{} is being restarted", current->name)};
  std::size_t index = state.current;
  while (index > 0) {
    --index;
    if (!state.revisions[index].failed) break;
  }
  if (index == state.current || state.revisions[index].failed) {
    return CommandError{409, fmt::format("{} has no earlier revision to return to (see `squadron "
                                         "history {}`)",
                                         current->name, current->name)};
  }
  const int from = state.revisions[state.current].number;
  event(current->name, "",
        fmt::format("rollback: revision {} -> revision {}", from, state.revisions[index].number));
  switch_to(state, index, from, true);
  return state.revisions[index].number;
}

json::array Fleet::history(std::string_view service) const {
  json::array out;
  auto it = services_.find(service);
  if (it == services_.end()) return out;
  for (std::size_t i = 0; i < it->second.revisions.size(); ++i) {
    auto o = revision_json(it->second.revisions[i]);
    o["current"] = i == it->second.current;
    out.push_back(std::move(o));
  }
  return out;
}

// Returns true while the rollout decides this service's instances. Each pass: successors that
// became ready count as replacements, one that failed fails the rollout; then old instances are
// retired (unready ones at once, ready ones while no more than max_unavailable below the desired
// count would be ready) and successors started (while no more than max_surge above it would
// run), as Kubernetes' RollingUpdate does.
bool Fleet::step_rollout(const ServiceSpec& spec, ServiceState& state,
                         const std::vector<sv::InstanceStatus>& members) {
  auto& r = *state.rollout;
  const std::string what = r.to_revision == 0 ? "restart"
                           : r.rolling_back ? fmt::format("rollback to revision {}", r.to_revision)
                                            : fmt::format("deploy of revision {}", r.to_revision);
  auto member = [&](const std::string& id) -> const sv::InstanceStatus* {
    for (const auto& m : members) {
      if (m.id == id) return &m;
    }
    return nullptr;
  };
  // A successor failed: a restart stops (the old instances keep serving); a deploy rolls back
  // by itself to the revision that ran before.
  auto failed = [&](const std::string& id, const std::string& why) {
    for (const auto& [surge, since] : r.surges) retire(surge);
    if (r.to_revision == 0 || r.rolling_back) {
      event(spec.name, id,
            fmt::format("{} stopped: {}; the instances that run keep serving", what, why));
      state.rollout.reset();
      return false;
    }
    std::size_t back = state.revisions.size();
    for (std::size_t i = 0; i < state.revisions.size(); ++i) {
      if (state.revisions[i].number == r.from_revision) back = i;
    }
    state.revisions[state.current].failed = true;
    if (back == state.revisions.size()) {
      event(spec.name, id, fmt::format("{} stopped: {}", what, why));
      state.rollout.reset();
      persist_revisions();
      return false;
    }
    event(spec.name, id,
          fmt::format("{} failed: {}; rolling back to revision {}", what, why, r.from_revision));
    const int from = r.to_revision;
    switch_to(state, back, from, true);  // replaces `state.rollout`
    return true;
  };
  const auto timeout = spec.deploy.ready_timeout;
  for (auto it = r.surges.begin(); it != r.surges.end();) {
    const auto& [id, since] = *it;
    const auto* s = member(id);
    if (s == nullptr) return failed(id, fmt::format("{} went away", id));
    // A task's successor has done its work when it exits 0 (it may do so before it is seen
    // ready).
    if (s->state == sv::InstanceState::kReady ||
        (spec.task && s->state == sv::InstanceState::kStopped && s->last_exit == "exit 0")) {
      ++r.replaced;
      it = r.surges.erase(it);
      continue;
    }
    const std::string last =
        s->last_exit.empty() ? std::string(sv::to_string(s->state)) : s->last_exit;
    if (r.to_revision != 0 &&
        (s->state == sv::InstanceState::kBackoff || s->state == sv::InstanceState::kFailed ||
         s->state == sv::InstanceState::kStopped)) {
      return failed(id, fmt::format("{} exited before it was ready ({})", id, last));
    }
    if (clock_.now() - since >= timeout) {
      return failed(id, fmt::format("{} was not ready within {} ({})", id,
                                    core::format_duration(timeout), last));
    }
    ++it;
  }
  // Old instances that went away meanwhile (scaled down, or a crash loop) need no successor.
  std::erase_if(r.old_ids, [&](const std::string& id) { return member(id) == nullptr; });

  const int desired = state.desired;
  // A fixed port holds one process: the old one goes before its successor can listen.
  const int surge = spec.port ? 0 : spec.deploy.surge(desired);
  const int unavailable =
      spec.port ? 1 : std::max(spec.deploy.unavailable(desired), surge == 0 ? 1 : 0);
  int ready = 0;
  std::vector<const sv::InstanceStatus*> old;  // unready first, then oldest
  for (const auto& m : members) {
    if (m.state == sv::InstanceState::kReady) ++ready;
    if (r.old_ids.count(m.id) != 0) old.push_back(&m);
  }
  std::sort(old.begin(), old.end(), [](const auto* a, const auto* b) {
    const bool ra = a->state == sv::InstanceState::kReady;
    const bool rb = b->state == sv::InstanceState::kReady;
    if (ra != rb) return !ra;
    return registry::instance_number(a->id) < registry::instance_number(b->id);
  });
  const int total = static_cast<int>(members.size());
  int fresh = total - static_cast<int>(old.size());  // successors, ready or starting
  int remaining = static_cast<int>(old.size());
  for (const auto* o : old) {
    const bool is_ready = o->state == sv::InstanceState::kReady;
    // Keep at least desired - unavailable ready, and as many old as still need a successor
    // beyond what max_surge lets start.
    if (is_ready && ready - 1 < desired - unavailable) break;
    event(spec.name, o->id,
          fmt::format("{}: {} ready, {} wanted; retiring {}{}", what, ready, desired, o->id,
                      is_ready ? "" : " (not ready)"));
    retire(o->id);
    r.old_ids.erase(o->id);
    if (is_ready) --ready;
    --remaining;
  }
  // A fixed port is handed over, never shared: the successor starts once the old process (its
  // whole group) has exited, so it binds at the first try and its probe reaches only itself.
  const bool handing_over = holds_fixed_port(spec);
  while (!handing_over && fresh < desired && fresh + remaining < desired + surge) {
    const auto id = add(spec);
    r.surges.emplace(id, clock_.now());
    ++fresh;
  }
  // Done once every old instance is gone and the successors are ready, not before.
  if (r.old_ids.empty() && r.surges.empty() && fresh >= desired) {
    event(spec.name, "",
          fmt::format("{} done: {} instance{} replaced", what, r.replaced,
                      r.replaced == 1 ? "" : "s"));
    state.rollout.reset();
    return false;
  }
  return true;
}

}  // namespace squadron::control
