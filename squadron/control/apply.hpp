// The apply diff (`squadron apply`): what it takes to bring a running fleet to a manifest parsed
// anew, as a plan — per service deploy (its definition changed: a new revision), update (routes,
// proxy, autoscale, deploy policy or replicas, in place), add, remove or unchanged — with the
// warnings a user should read first. Pure: the fleet executes the plan (Fleet::apply).
//
//   auto plan = plan_apply(running_manifest, next, running_of, builtin);
//   for (const auto& step : std::get<ApplyPlan>(plan).steps) print(step.action, step.detail);
//
// Thread safety: plain functions on values.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "squadron/control/manifest.hpp"
#include "squadron/control/revisions.hpp"

namespace squadron::control {

// Why a command was refused: an HTTP status (404, 409, 400) and what to do.
struct CommandError {
  int status;
  std::string detail;
};

struct ApplyStep {
  std::string service;
  std::string action;  // "deploy", "update", "add", "remove", "unchanged"
  std::string detail;  // what changed: "env COLOR, command", "routes, replicas 2 -> 4"
  int revision = 0;    // the revision it runs (or will) after the apply
};

struct ApplyPlan {
  std::vector<ApplyStep> steps;  // in the new manifest's order, then the removed ones
  std::vector<std::string> warnings;
  bool changes() const;
};

// A service that runs, as the plan needs it.
struct RunningService {
  const std::vector<Revision>* revisions = nullptr;  // oldest first, never empty
  std::size_t current = 0;                           // the one it runs (or rolls out)
  std::string base;         // the hash of the manifest's definition when the fleet last took it
  bool restarting = false;  // a restart (not a deploy) is under way: a new revision must wait
};

// The plan from `now` (the running fleet's manifest, whose specs are the running revisions') to
// `next`. `running(name)`: that service's state (nullopt: it does not run). `builtin`: services
// that are Squadron's own (never removed by an apply). Refused (409) while a service whose
// definition changed is being restarted.
std::variant<ApplyPlan, CommandError> plan_apply(
    const Manifest& now, const Manifest& next,
    const std::function<std::optional<RunningService>(std::string_view)>& running,
    const std::set<std::string, std::less<>>& builtin);

// What differs between two definitions of a service, in words: {"command", "env COLOR, SIZE"}.
// Those that need new instances (a new revision) go to `definition`, the rest to `policy`.
void describe_changes(const ServiceSpec& a, const ServiceSpec& b,
                      std::vector<std::string>& definition, std::vector<std::string>& policy);

// Whether `m` needs the gateway: routes, or autoscaling on what only the gateway measures.
bool needs_gateway(const Manifest& m);

}  // namespace squadron::control
