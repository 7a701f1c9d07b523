#include "squadron/control/apply.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "squadron/control/fleet.hpp"

namespace squadron::control {

bool ApplyPlan::changes() const {
  return std::any_of(steps.begin(), steps.end(),
                     [](const ApplyStep& s) { return s.action != "unchanged"; });
}

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
  if (a.resources != b.resources) definition.push_back("resources");
  if (a.user != b.user) definition.push_back("user");
  if (a.stop_signal != b.stop_signal) definition.push_back("stop_signal");
  if (a.secrets != b.secrets) definition.push_back("secrets");
  if (a.routes != b.routes) policy.push_back("routes");
  if (a.proxy != b.proxy) policy.push_back("proxy");
  if (a.tcp != b.tcp) policy.push_back(b.tcp ? "protocol: tcp" : "protocol: http");
  if (a.autoscale != b.autoscale) policy.push_back("autoscale");
  if (a.deploy != b.deploy) policy.push_back("deploy");
  if (a.replicas != b.replicas)
    policy.push_back(fmt::format("replicas {} -> {}", a.replicas, b.replicas));
}

bool needs_gateway(const Manifest& m) {
  return std::any_of(m.services.begin(), m.services.end(),
                     [](const ServiceSpec& s) {
                       return s.autoscale && s.autoscale->metric != ScaleMetric::kCpu;
                     }) ||
         runs_gateway(m);
}

std::variant<ApplyPlan, CommandError> plan_apply(
    const Manifest& now, const Manifest& next,
    const std::function<std::optional<RunningService>(std::string_view)>& running,
    const std::set<std::string, std::less<>>& builtin) {
  ApplyPlan plan;
  auto at_next_up = [&](std::string_view what, const std::string& was, const std::string& is) {
    if (was != is)
      plan.warnings.push_back(
          fmt::format("{} {} -> {}: the fleet's own settings take effect at "
                      "its next start (squadron down; squadron up)",
                      what, was, is));
  };
  at_next_up("name", now.name, next.name);
  at_next_up("control.listen", now.control_listen, next.control_listen);
  at_next_up("gateway.listen", now.gateway_listen, next.gateway_listen);
  at_next_up("gateway.trusted_proxies", fmt::format("[{}]", fmt::join(now.trusted_proxies, ", ")),
             fmt::format("[{}]", fmt::join(next.trusted_proxies, ", ")));
  at_next_up("control.expose", now.control_expose ? "true" : "false",
             next.control_expose ? "true" : "false");
  // (The certificates' files are reloaded when they change; which files, and redirect and hsts,
  // are the gateway's start arguments.)
  auto tls_of = [](const Manifest& m) -> std::string {
    if (!m.gateway_tls) return "none";
    std::vector<std::string> files;
    for (const auto& c : m.gateway_tls->certificates)
      files.push_back(c.cert.string() + "+" + c.key.string());
    if (m.gateway_tls->self_signed) files.emplace_back("self_signed");
    return fmt::format("{{ certificates: [{}], redirect: {}, hsts: {} }}", fmt::join(files, ", "),
                       m.gateway_tls->redirect.empty() ? "none" : m.gateway_tls->redirect,
                       m.gateway_tls->hsts);
  };
  at_next_up("gateway.tls", tls_of(now), tls_of(next));
  if (needs_gateway(next) && builtin.count("gateway") == 0)
    plan.warnings.push_back(
        "routes, protocol: tcp (and autoscaling on concurrency or rps) need the gateway, which "
        "starts with the "
        "fleet: they take effect at its next start (squadron down; squadron up)");

  for (const auto& spec : next.services) {
    ApplyStep step{spec.name, "unchanged", "", 1};
    const ServiceSpec* current = now.find(spec.name);
    const auto state = running(spec.name);
    if (current == nullptr || !state) {
      step.action = "add";
      step.detail = fmt::format("{} replica{}", spec.replicas, spec.replicas == 1 ? "" : "s");
      plan.steps.push_back(std::move(step));
      continue;
    }
    const auto& revisions = *state->revisions;
    const auto& run = revisions[state->current];
    std::vector<std::string> definition;
    std::vector<std::string> policy;
    describe_changes(*current, spec, definition, policy);  // the running revision's spec
    step.revision = run.number;
    if (definition_hash(spec) != run.hash) {
      // Variables a `deploy --env` set (the running value is neither the file's nor what the
      // manifest said when the fleet last read it): the file's version drops them. Say so.
      const ServiceSpec* base = nullptr;
      for (const auto& rev : revisions) {
        if (rev.hash == state->base) base = &rev.spec;
      }
      for (const auto& [key, value] : current->env) {
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
            spec.name, key, run.number, file == spec.env.end() ? "does not set" : "sets",
            file == spec.env.end() ? "drops it" : "changes its value"));
      }
      if (state->restarting)
        return CommandError{409, fmt::format("{} is being restarted; apply once the restart is "
                                             "done (nothing was changed)",
                                             spec.name)};
      step.action = "deploy";
      step.revision = revisions.back().number + 1;
      definition.insert(definition.end(), policy.begin(), policy.end());
      step.detail = fmt::format("{}", fmt::join(definition, ", "));
    } else if (!policy.empty()) {
      step.action = "update";
      step.detail = fmt::format("{}", fmt::join(policy, ", "));
    }
    plan.steps.push_back(std::move(step));
  }
  for (const auto& s : now.services) {
    if (builtin.count(s.name) != 0 || next.find(s.name) != nullptr) continue;
    const auto state = running(s.name);
    const int number = state ? (*state->revisions)[state->current].number : 0;
    plan.steps.push_back({s.name, "remove", "not in the manifest any more", number});
  }
  return plan;
}

// Executes the plan: the fleet's services become the file's (in its order, Squadron's own
// last), each step applied; the desired state saved once.
std::variant<ApplyPlan, CommandError> Fleet::apply(Manifest next, const std::string& cause,
                                                   bool dry_run) {
  if (stopping_) return CommandError{409, "the fleet is stopping"};
  if (with_.apply != nullptr) with_.apply->prepare(next, dry_run);
  auto planned = plan_apply(
      manifest_, next,
      [this](std::string_view name) -> std::optional<RunningService> {
        auto it = services_.find(name);
        if (it == services_.end() || it->second.revisions.empty()) return std::nullopt;
        const auto& st = it->second;
        return RunningService{&st.revisions, st.current, st.base,
                              st.rollout && st.rollout->to_revision == 0};
      },
      builtin_);
  if (dry_run || std::holds_alternative<CommandError>(planned)) return planned;
  const auto& plan = std::get<ApplyPlan>(planned);
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
  if (with_.apply != nullptr) {
    std::vector<std::string> added;
    for (const auto& step : plan.steps) {
      if (step.action == "add") added.push_back(step.service);
    }
    with_.apply->applied(added);
  }
  return planned;
}

}  // namespace squadron::control
