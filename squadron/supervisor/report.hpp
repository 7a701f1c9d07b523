// The supervisor's view of an instance in the registry's terms: what the fleet publishes on one
// machine, and what a cluster host's agent reports to etcd.
//
//   registry.upsert(to_registry(status));
//
// Thread safety: a plain function.
#pragma once

#include "squadron/registry/instance.hpp"
#include "squadron/supervisor/supervisor.hpp"

namespace squadron::supervisor {

// Every field the status has; without a `host`, the registry's default (127.0.0.1).
registry::Instance to_registry(const InstanceStatus& st);

}  // namespace squadron::supervisor
