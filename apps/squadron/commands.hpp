// The CLI commands that talk to a running fleet through its control API: ps, scale, restart,
// logs, down, and the wait for readiness that `up -d`, `scale` and `restart` share.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "client.hpp"
#include "squadron/control/kubernetes.hpp"
#include "squadron/control/manifest.hpp"

namespace squadron::apps {

// Waits until each of `services` (all of the fleet's when empty) runs exactly its desired
// number of instances, all ready, with no restart in progress. Prints progress ("3/5 ready")
// to stderr. Returns 0; or 1 after saying which instances failed and why (an instance that
// exited, with its last lines of output) or, after `timeout`, which are not ready.
int wait_ready(const ControlClient& client, const std::vector<std::string>& services,
               std::chrono::milliseconds timeout);

// Prints the fleet's services and where each instance answers.
void print_endpoints(const control::Manifest& m, const ControlClient& client);

int ps(const control::Manifest& m, bool as_json);
int scale(const control::Manifest& m, const std::vector<std::string>& assignments, bool wait,
          std::chrono::milliseconds timeout);
int restart(const control::Manifest& m, const std::vector<std::string>& services, bool wait,
            std::chrono::milliseconds timeout);
// Rolls `service` to a new revision with `env` changes (NAME=VALUE; NAME= removes) and/or a
// new `command`; waits for the rollout and says whether it ran or was rolled back (exit 1).
int deploy(const control::Manifest& m, const std::string& service,
           const std::vector<std::string>& env, const std::string& command, bool wait,
           std::chrono::milliseconds timeout);
// Brings the running fleet to the manifest `m` (as edited since `up`): prints what changes per
// service (deploy, update, add, remove), rolls and waits like deploy; `dry_run` only prints.
int apply(const control::Manifest& m, bool dry_run, bool wait, std::chrono::milliseconds timeout);
// Returns `service` to the revision before the current one.
int rollback(const control::Manifest& m, const std::string& service, bool wait,
             std::chrono::milliseconds timeout);
// Lists `service`'s revisions.
int history(const control::Manifest& m, const std::string& service);
int logs(const control::Manifest& m, const std::string& service, bool follow, int tail);
// The fleet's recent events (state changes, commands, every autoscaling decision with its
// inputs and rule), one a line; of one service when named; `follow` keeps printing new ones.
int events(const control::Manifest& m, const std::string& service, bool follow);
int down(const control::Manifest& m, std::chrono::milliseconds timeout);
// `export kubernetes`: the YAML to `output` ("-": stdout; a file is replaced whole, 0600 when it
// holds secret values), warnings on stderr. Exit 2 on an error (nothing written).
int export_kubernetes(const control::Manifest& m, const control::ExportOptions& options,
                      const std::string& output);

}  // namespace squadron::apps
