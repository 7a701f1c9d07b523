// A service's revisions: what its instances run (the definition), as a number and a short hash,
// and their history as `.squadron/revisions.json` keeps it across restarts of the fleet.
//
//   Revision r{2, definition_hash(spec), spec, now, "deploy: COLOR=blue", false};
//   std::string text = revisions_json(histories);           // to save
//   auto back = parse_revisions(text, manifest.services, warning);
//
// Thread safety: plain functions on values.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "squadron/control/manifest.hpp"

namespace squadron::control {

struct Revision {
  int number = 0;
  std::string hash;  // definition_hash(spec)
  ServiceSpec spec;
  std::chrono::system_clock::time_point at;
  std::string cause;
  bool failed = false;  // its rollout failed and was rolled back
};

struct ServiceHistory {
  std::vector<Revision> revisions;  // oldest first, never empty
  std::size_t current = 0;          // the one the service runs (or rolls out)
  // The hash of the manifest's definition when the fleet last took it (start or apply): a
  // manifest that still has it was not edited since.
  std::string base;
};
using Histories = std::map<std::string, ServiceHistory, std::less<>>;

// SQUADRON_<NAME>_URL and the like: Squadron's own variables, given anew at each start, not
// part of a definition.
bool is_squadrons_variable(std::string_view env_name) noexcept;

// What the instances of a service run, as 8 hex digits: command, env (but Squadron's own),
// cwd, port, probes, stop grace, restart policy. A change here needs new instances; routes,
// proxy policy, replicas, autoscaling and the deploy policy do not. Stable across runs.
std::string definition_hash(const ServiceSpec& s);

// {"revision", "hash", "at_ms", "cause", "failed"}: a revision as the API and the file show it.
boost::json::object revision_json(const Revision& r);

// The file's text: {"version": 1, "services": {name: {"base", "current" (a revision number),
// "revisions": [{"revision", "hash", "at_ms", "cause", "failed", "definition"}]}}}.
std::string revisions_json(const Histories& histories);

// The histories in `text` of the services in `services`: each revision's spec is the service's
// (its routes, policies and Squadron's variables) with the saved definition. A service whose
// entry is missing is left out; one whose entry is unreadable too, and `warning` names it (as it
// does a text that is not such a file). Never throws.
Histories parse_revisions(std::string_view text, const std::vector<ServiceSpec>& services,
                          std::string& warning);

}  // namespace squadron::control
