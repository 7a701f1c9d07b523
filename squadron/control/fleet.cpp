#include "squadron/control/fleet.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "squadron/core/duration.hpp"

namespace squadron::control {

namespace sv = squadron::supervisor;
namespace json = boost::json;

namespace {

sv::InstanceSpec to_instance_spec(const ServiceSpec& s) {
  sv::InstanceSpec spec;
  spec.service = s.name;
  spec.launch.argv = s.command;
  spec.launch.cwd = s.cwd;
  spec.launch.env = s.env;
  spec.launch.inherit_fds = s.inherit_fds;
  spec.port = s.port;
  spec.ready = {s.ready.path, s.ready.interval, s.ready.timeout, s.ready.threshold, s.ready.port};
  if (s.live)
    spec.live = sv::ProbeSpec{s.live->path, s.live->interval, s.live->timeout, s.live->threshold,
                              s.live->port};
  spec.stop_grace = s.stop_grace;
  spec.restart = s.restart == RestartPolicy::kAlways      ? sv::Restart::kAlways
                 : s.restart == RestartPolicy::kOnFailure ? sv::Restart::kOnFailure
                                                          : sv::Restart::kNever;
  return spec;
}

constexpr std::size_t kMaxRevisions = 50;  // history kept per service

// What differs between two definitions of a service, in words: {"command", "env COLOR, SIZE"}.
// Those that need new instances (a new revision) go to `definition`, the rest to `policy`.
void describe_changes(const ServiceSpec& a, const ServiceSpec& b,
                      std::vector<std::string>& definition, std::vector<std::string>& policy) {
  if (a.command != b.command) definition.push_back("command");
  if (a.env != b.env) {
    std::set<std::string> keys;
    for (const auto& [k, v] : a.env) {
      auto it = b.env.find(k);
      if (it == b.env.end() || it->second != v) keys.insert(k);
    }
    for (const auto& [k, v] : b.env) {
      if (a.env.count(k) == 0) keys.insert(k);
    }
    definition.push_back(fmt::format("env {}", fmt::join(keys, ", ")));
  }
  if (a.cwd != b.cwd) definition.push_back("cwd");
  if (a.port != b.port) definition.push_back("port");
  if (a.ready != b.ready) definition.push_back("ready");
  if (a.live != b.live) definition.push_back("live");
  if (a.stop_grace != b.stop_grace) definition.push_back("stop_grace");
  if (a.restart != b.restart) definition.push_back("restart");
  if (a.routes != b.routes) policy.push_back("routes");
  if (a.proxy != b.proxy) policy.push_back("proxy");
  if (a.autoscale != b.autoscale) policy.push_back("autoscale");
  if (a.deploy != b.deploy) policy.push_back("deploy");
  if (a.replicas != b.replicas)
    policy.push_back(fmt::format("replicas {} -> {}", a.replicas, b.replicas));
}

bool needs_gateway(const Manifest& m) {
  return std::any_of(m.services.begin(), m.services.end(), [](const ServiceSpec& s) {
    return !s.routes.empty() || (s.autoscale && s.autoscale->metric != ScaleMetric::kCpu);
  });
}

}  // namespace

registry::Instance to_registry(const sv::InstanceStatus& st) {
  registry::Instance i;
  i.service = st.service;
  i.id = st.id;
  i.pid = st.pid;
  i.port = st.port;
  i.state = static_cast<registry::State>(static_cast<int>(st.state));
  i.revision = st.revision;
  i.restarts = st.restarts;
  i.started_at = st.started_at;
  i.last_exit = st.last_exit;
  return i;
}
static_assert(static_cast<int>(sv::InstanceState::kStopped) ==
              static_cast<int>(registry::State::kStopped));

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

Fleet::Fleet(boost::asio::io_context& io, sv::Supervisor& sup, registry::Registry& reg,
             const core::Clock& clock, Manifest manifest, FleetOptions options)
    : io_(io),
      sup_(sup),
      reg_(reg),
      clock_(clock),
      manifest_(std::move(manifest)),
      options_(std::move(options)),
      resync_timer_(io) {
  for (const auto& s : manifest_.services) {
    auto& state = services_[s.name];
    // An autoscaled service starts within its bounds; the autoscaler takes it from there.
    state.desired =
        s.autoscale ? std::clamp(s.replicas, s.autoscale->min, s.autoscale->max) : s.replicas;
    state.revisions.push_back(
        {1, definition_hash(s), s, std::chrono::system_clock::now(), "the manifest", false});
    state.base = state.revisions.back().hash;
  }
  sup_.on_change = [this](const sv::InstanceStatus& st) { on_change(st); };
  sup_.on_remove = [this](const std::string& id) { on_remove(id); };
  sup_.on_output = [this](const sv::InstanceStatus& st, std::string_view line) {
    on_line(st, line);
  };
}

Fleet::~Fleet() {
  *alive_ = false;
  sup_.on_change = nullptr;
  sup_.on_remove = nullptr;
  sup_.on_output = nullptr;
  for (auto& w : followers_) {
    if (auto f = w.lock()) {
      f->closed = true;
      f->wake.cancel();
    }
  }
}

void Fleet::add_service(ServiceSpec spec) {
  builtin_.insert(spec.name);
  auto& state = services_[spec.name];
  state.desired = spec.replicas;
  state.revisions.push_back(
      {1, definition_hash(spec), spec, std::chrono::system_clock::now(), "squadron", false});
  manifest_.services.push_back(std::move(spec));
}

void Fleet::start() {
  if (!options_.state_file.empty()) {
    std::string warning;
    const auto saved = load_desired(options_.state_file, warning);
    if (!warning.empty()) {
      const auto kept = keep_corrupt(options_.state_file);
      event("", "",
            "state: " + warning +
                (kept.empty() ? "" : fmt::format(" (the file as it was: {})", kept.string())));
    }
    for (const auto& spec : manifest_.services) {
      auto it = saved.find(spec.name);
      if (it == saved.end() || spec.autoscale) continue;  // the autoscaler decides those
      if (it->second.manifest_replicas != spec.replicas) {
        event(spec.name, "",
              fmt::format("replicas {} from the manifest (it changed since `scale` set {})",
                          spec.replicas, it->second.replicas));
        continue;
      }
      if (it->second.replicas != spec.replicas) {
        services_[spec.name].desired = it->second.replicas;
        event(spec.name, "",
              fmt::format("replicas {} as last scaled (the manifest says {})", it->second.replicas,
                          spec.replicas));
      }
    }
  }
  restore_revisions();
  reconcile();
  schedule_resync();
}

void Fleet::restore_revisions() {
  if (options_.revisions_file.empty()) return;
  std::ifstream in(options_.revisions_file);
  if (!in) return;  // the first start: the manifest is revision 1
  std::stringstream text;
  text << in.rdbuf();
  std::vector<ServiceSpec> mine;
  for (const auto& spec : manifest_.services) {
    if (builtin_.count(spec.name) == 0) mine.push_back(spec);
  }
  std::string warning;
  auto saved = parse_revisions(text.str(), mine, warning);
  if (!warning.empty()) {
    const auto kept = keep_corrupt(options_.revisions_file);
    event("", "",
          fmt::format("state: {}: {}; those services start from the manifest{}",
                      options_.revisions_file.string(), warning,
                      kept.empty() ? "" : fmt::format(" (the file as it was: {})", kept.string())));
  }
  for (auto& spec : manifest_.services) {
    auto it = saved.find(spec.name);
    if (it == saved.end()) continue;
    ServiceHistory& h = it->second;
    auto& state = services_[spec.name];
    const std::string manifest_hash = state.revisions[state.current].hash;
    if (h.base != manifest_hash) {
      // Edited in the manifest since: the file wins, as a new revision after the saved ones.
      h.revisions.push_back({h.revisions.back().number + 1, manifest_hash, spec,
                             std::chrono::system_clock::now(), "the manifest (edited)", false});
      h.current = h.revisions.size() - 1;
      event(spec.name, "",
            fmt::format("revision {}: the manifest changed since the fleet last ran",
                        h.revisions.back().number));
    } else if (h.revisions.size() > 1) {
      event(spec.name, "",
            fmt::format("revision {} as it last ran ({} in the history)",
                        h.revisions[h.current].number, h.revisions.size()));
    }
    state.revisions = std::move(h.revisions);
    state.current = h.current;
    state.base = manifest_hash;
    spec = state.revisions[state.current].spec;
  }
  persist_revisions();
}

void Fleet::persist_revisions() {
  if (options_.revisions_file.empty()) return;
  Histories all;
  for (const auto& spec : manifest_.services) {
    auto it = services_.find(spec.name);
    // Squadron's own services are made anew at each start; a service an apply is adding has
    // no revision yet (the apply saves again once it has).
    if (builtin_.count(spec.name) != 0 || it == services_.end() || it->second.revisions.empty())
      continue;
    all[spec.name] = {it->second.revisions, it->second.current, it->second.base};
  }
  if (auto ec = write_file_atomic(options_.revisions_file, revisions_json(all)))
    event("", "", "cannot save " + options_.revisions_file.string() + ": " + ec.message());
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

int Fleet::desired(std::string_view service) const {
  auto it = services_.find(service);
  return it == services_.end() ? 0 : it->second.desired;
}

bool Fleet::rolling(std::string_view service) const {
  auto it = services_.find(service);
  return it != services_.end() && it->second.rollout.has_value();
}

int Fleet::total_desired() const {
  int n = 0;
  for (const auto& [name, s] : services_) n += s.desired;
  return n;
}

std::optional<CommandError> Fleet::scale(std::string_view service, int replicas) {
  const auto* spec = manifest_.find(service);
  if (spec == nullptr) {
    std::string names;
    for (const auto& s : manifest_.services) names += (names.empty() ? "" : ", ") + s.name;
    return CommandError{404, fmt::format("no service \"{}\" in fleet \"{}\" (services: {})",
                                         service, manifest_.name, names)};
  }
  if (stopping_) return CommandError{409, "the fleet is stopping"};
  if (builtin_.count(spec->name) != 0)
    return CommandError{409, fmt::format("{} is Squadron's own and runs once per fleet; it is "
                                         "not scaled",
                                         spec->name)};
  if (replicas < 0 || replicas > options_.max_replicas)
    return CommandError{400, fmt::format("replicas must be 0..{}", options_.max_replicas)};
  if (spec->port && replicas > 1)
    return CommandError{409, fmt::format("{} listens on the fixed port {}: it can run one replica "
                                         "at most (use port: auto to scale it)",
                                         spec->name, *spec->port)};
  auto& state = services_[spec->name];
  // During a deploy the new count applies once the rollout is done (to the new revision).
  if (state.rollout && state.rollout->to_revision == 0)
    return CommandError{409, fmt::format("{} is being restarted; scale it once the restart is "
                                         "done",
                                         spec->name)};
  if (state.desired != replicas) {
    event(spec->name, "", fmt::format("scale {} -> {}", state.desired, replicas));
    state.desired = replicas;
    persist();
  }
  kick();
  return std::nullopt;
}

void Fleet::autoscale(std::string_view service, int replicas, const std::string& reason) {
  const auto* spec = manifest_.find(service);
  if (spec == nullptr || stopping_ || replicas < 0 || replicas > options_.max_replicas) return;
  auto& state = services_[spec->name];
  if (state.rollout || state.desired == replicas) return;
  event(spec->name, "", reason);
  state.desired = replicas;
  kick();
}

void Fleet::note(std::string_view service, const std::string& message) {
  event(std::string(service), "", message);
}

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

void Fleet::down(std::function<void()> done) {
  if (!stopping_) event("", "", fmt::format("down: stopping {} instances", sup_.snapshot().size()));
  stopping_ = true;
  resync_timer_.cancel();
  for (auto& [name, s] : services_) s.rollout.reset();
  sup_.stop_all([this, done = std::move(done)] {
    // No more output will come: followed logs end (their last lines are already queued).
    for (auto& w : followers_) {
      if (auto f = w.lock()) {
        f->closed = true;
        f->wake.cancel();
      }
    }
    if (done) done();
  });
}

void Fleet::persist() {
  if (options_.state_file.empty()) return;
  DesiredScale d;
  for (const auto& spec : manifest_.services) {
    const int want = desired(spec.name);
    if (want != spec.replicas) d[spec.name] = {want, spec.replicas};
  }
  if (auto ec = save_desired(options_.state_file, d))
    event("", "", "cannot save " + options_.state_file.string() + ": " + ec.message());
}

std::string Fleet::add(const ServiceSpec& spec) {
  auto instance = to_instance_spec(spec);
  if (auto it = services_.find(spec.name);
      it != services_.end() && it->second.current < it->second.revisions.size())
    instance.revision = std::to_string(it->second.revisions[it->second.current].number);
  return sup_.add(std::move(instance));
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

bool Fleet::ApplyPlan::changes() const {
  return std::any_of(steps.begin(), steps.end(),
                     [](const ApplyStep& s) { return s.action != "unchanged"; });
}

std::variant<Fleet::ApplyPlan, CommandError> Fleet::apply(Manifest next, const std::string& cause,
                                                          bool dry_run) {
  if (stopping_) return CommandError{409, "the fleet is stopping"};
  if (prepare) prepare(next, dry_run);
  ApplyPlan plan;
  auto at_next_up = [&](std::string_view what, const std::string& was, const std::string& is) {
    if (was != is)
      plan.warnings.push_back(
          fmt::format("{} {} -> {}: the fleet's own settings take effect at "
                      "its next start (squadron down; squadron up)",
                      what, was, is));
  };
  at_next_up("name", manifest_.name, next.name);
  at_next_up("control.listen", manifest_.control_listen, next.control_listen);
  at_next_up("gateway.listen", manifest_.gateway_listen, next.gateway_listen);
  at_next_up("gateway.trusted_proxies",
             fmt::format("[{}]", fmt::join(manifest_.trusted_proxies, ", ")),
             fmt::format("[{}]", fmt::join(next.trusted_proxies, ", ")));
  at_next_up("control.expose", manifest_.control_expose ? "true" : "false",
             next.control_expose ? "true" : "false");
  if (needs_gateway(next) && builtin_.count("gateway") == 0)
    plan.warnings.push_back(
        "routes (and autoscaling on concurrency or rps) need the gateway, which starts with the "
        "fleet: they take effect at its next start (squadron down; squadron up)");

  for (const auto& spec : next.services) {
    ApplyStep step{spec.name, "unchanged", "", 1};
    const ServiceSpec* now = manifest_.find(spec.name);
    if (now == nullptr) {
      step.action = "add";
      step.detail = fmt::format("{} replica{}", spec.replicas, spec.replicas == 1 ? "" : "s");
      plan.steps.push_back(std::move(step));
      continue;
    }
    const auto& state = services_[spec.name];
    const auto& running = state.revisions[state.current];
    std::vector<std::string> definition;
    std::vector<std::string> policy;
    describe_changes(*now, spec, definition, policy);  // *now is the running revision's spec
    step.revision = running.number;
    if (definition_hash(spec) != running.hash) {
      // Variables a `deploy --env` set (the running value is neither the file's nor what the
      // manifest said when the fleet last read it): the file's version drops them. Say so.
      const ServiceSpec* base = nullptr;
      for (const auto& rev : state.revisions) {
        if (rev.hash == state.base) base = &rev.spec;
      }
      for (const auto& [key, value] : now->env) {
        if (is_squadrons_variable(key)) continue;
        const auto file = spec.env.find(key);
        if (file != spec.env.end() && file->second == value) continue;
        if (base != nullptr) {
          const auto was = base->env.find(key);
          if (was != base->env.end() && was->second == value) continue;  // the manifest's own
        }
        plan.warnings.push_back(fmt::format(
            "{}: {} was set by a deploy (revision {}); the manifest {} it, so this apply {} "
            "(put it in the manifest to keep it)",
            spec.name, key, running.number, file == spec.env.end() ? "does not set" : "sets",
            file == spec.env.end() ? "drops it" : "changes its value"));
      }
      if (state.rollout && state.rollout->to_revision == 0)
        return CommandError{409, fmt::format("{} is being restarted; apply once the restart is "
                                             "done (nothing was changed)",
                                             spec.name)};
      step.action = "deploy";
      step.revision = state.revisions.back().number + 1;
      definition.insert(definition.end(), policy.begin(), policy.end());
      step.detail = fmt::format("{}", fmt::join(definition, ", "));
    } else if (!policy.empty()) {
      step.action = "update";
      step.detail = fmt::format("{}", fmt::join(policy, ", "));
    }
    plan.steps.push_back(std::move(step));
  }
  for (const auto& s : manifest_.services) {
    if (builtin_.count(s.name) != 0 || next.find(s.name) != nullptr) continue;
    plan.steps.push_back({s.name, "remove", "not in the manifest any more", revision(s.name)});
  }
  if (dry_run) return plan;

  // The new list of services, in the file's order (Squadron's own last). Services that stay
  // keep their current definition until deploy() switches it.
  std::vector<ServiceSpec> services;
  for (const auto& spec : next.services) {
    const ServiceSpec* now = manifest_.find(spec.name);
    services.push_back(now != nullptr ? *now : spec);
  }
  std::vector<std::string> removed;
  for (auto& s : manifest_.services) {
    if (builtin_.count(s.name) != 0) {
      services.push_back(std::move(s));
    } else if (next.find(s.name) == nullptr) {
      removed.push_back(s.name);
    }
  }
  manifest_.services = std::move(services);

  for (const auto& step : plan.steps) {
    const ServiceSpec* spec = next.find(step.service);
    if (step.action == "remove") {
      event(step.service, "", fmt::format("apply: removed ({}): stopping its instances", cause));
      for (const auto& st : sup_.snapshot()) {
        if (st.service == step.service) retire(st.id);
      }
      services_.erase(step.service);
      continue;
    }
    auto& state = services_[step.service];
    if (step.action == "add") {
      state = ServiceState{};
      state.desired = spec->autoscale
                          ? std::clamp(spec->replicas, spec->autoscale->min, spec->autoscale->max)
                          : spec->replicas;
      state.revisions.push_back(
          {1, definition_hash(*spec), *spec, std::chrono::system_clock::now(), cause, false});
      event(step.service, "", fmt::format("apply: added ({}), {}", cause, step.detail));
      continue;
    }
    if (step.action == "unchanged") continue;
    // The desired count: the file's replicas when they changed (an autoscaled service keeps
    // its count within the new bounds).
    const ServiceSpec* now = manifest_.find(step.service);
    int desired = state.desired;
    if (spec->autoscale) {
      desired = std::clamp(desired, spec->autoscale->min, spec->autoscale->max);
    } else if (spec->replicas != now->replicas || now->autoscale) {
      desired = spec->replicas;
    }
    if (desired != state.desired) {
      event(step.service, "", fmt::format("apply: scale {} -> {}", state.desired, desired));
      state.desired = desired;
    }
    if (step.action == "update") {
      event(step.service, "", fmt::format("apply: {} ({})", step.detail, cause));
      for (auto& s : manifest_.services) {
        if (s.name == step.service) s = *spec;
      }
      state.revisions[state.current].spec = *spec;
    } else {  // deploy
      deploy(step.service, *spec, fmt::format("{}: {}", cause, step.detail));
    }
  }
  for (const auto& spec : next.services) services_[spec.name].base = definition_hash(spec);
  persist();
  persist_revisions();
  // Instances of removed services stop; the gateway's watchers see the new routes.
  if (!removed.empty() || plan.changes()) kick();
  if (applied) {
    std::vector<std::string> added;
    for (const auto& step : plan.steps) {
      if (step.action == "add") added.push_back(step.service);
    }
    applied(added);
  }
  return plan;
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

void Fleet::retire(const std::string& id) {
  if (!retiring_.insert(id).second) return;
  if (!when_idle || options_.drain.count() == 0) {
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
  when_idle(id, reg_.revision(), since + bound,
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
    for (int i = have; i < state.desired; ++i) add(spec);
  } else if (have > state.desired) {
    for (const auto& id : choose_surplus(members, static_cast<std::size_t>(have - state.desired)))
      retire(id);
  }
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
    if (s->state == sv::InstanceState::kReady) {
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

void Fleet::on_line(const sv::InstanceStatus& st, std::string_view line) {
  if (on_output) on_output(st, line);
  if (followers_.empty()) return;
  std::erase_if(followers_, [](const auto& w) { return w.expired(); });
  auto drop = [](OutputSubscription& f) {
    f.overflow_detail = fmt::format("{:.1f} MiB", static_cast<double>(f.bytes) / (1 << 20));
    std::deque<std::string>().swap(f.lines);  // the memory goes now, not when the reader does
    f.bytes = 0;
    f.overflowed = true;
    f.closed = true;
    f.wake.cancel();
  };
  std::size_t total = 0;
  OutputSubscription* largest = nullptr;
  for (auto& w : followers_) {
    auto f = w.lock();
    if (f->closed) continue;
    if (f->filter.empty() || f->filter == st.service || f->filter == st.id) {
      f->lines.push_back(fmt::format("{} | {}", st.id, line));
      f->bytes += f->lines.back().size() + 1;
      if (f->bytes > kMaxFollowerBytes) {
        drop(*f);
        continue;
      }
      f->wake.cancel();
    }
    total += f->bytes;
    if (largest == nullptr || f->bytes > largest->bytes) largest = f.get();
  }
  if (total > kMaxFollowersBytes && largest != nullptr) drop(*largest);
}

std::shared_ptr<OutputSubscription> Fleet::subscribe(std::string filter) {
  auto f = std::make_shared<OutputSubscription>(io_);
  f->filter = std::move(filter);
  f->wake.expires_at(boost::asio::steady_timer::time_point::max());
  f->closed = stopping_ && sup_.snapshot().empty();
  followers_.push_back(f);
  return f;
}

std::vector<std::string> Fleet::logs(const std::string& id, std::size_t lines) const {
  return sup_.logs(id, lines);
}

void Fleet::event(const std::string& service, const std::string& instance, std::string message) {
  const auto& e = reg_.record(service, instance, std::move(message));
  if (on_event) on_event(e);
}

json::object Fleet::service_json(const ServiceSpec& spec) const {
  int ready = 0;
  int instances = 0;
  for (const auto& i : reg_.instances()) {
    if (i.service != spec.name) continue;
    ++instances;
    ready += i.state == registry::State::kReady;
  }
  json::array routes;
  for (const auto& r : spec.routes) routes.push_back(json::string(r.prefix));
  json::object o;
  o["name"] = spec.name;
  o["desired"] = desired(spec.name);
  o["manifest_replicas"] = spec.replicas;
  o["ready"] = ready;
  o["instances"] = instances;
  o["port"] = spec.port ? json::value(*spec.port) : json::value("auto");
  o["routes"] = std::move(routes);
  o["restarting"] = rolling(spec.name);
  o["revision"] = revision(spec.name);
  if (auto it = services_.find(spec.name);
      it != services_.end() && it->second.rollout && it->second.rollout->to_revision != 0)
    o["rolling_out"] = it->second.rollout->to_revision;
  return o;
}

}  // namespace squadron::control
