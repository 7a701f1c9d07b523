// `squadron up`: runs the fleet of a validated manifest — supervisor, control plane and control
// API in this process — in the foreground (output streamed, Ctrl-C stops everything) or, with
// `-d`, in a background process, returning once every instance is ready.
#pragma once

#include <chrono>

#include "squadron/control/manifest.hpp"

namespace squadron::apps {

struct UpOptions {
  bool detach = false;
  // Refuse to start when no cgroup can be made for the limits (default: warn, run without).
  bool require_limits = false;
  std::chrono::milliseconds timeout = std::chrono::seconds(60);  // -d: wait this long for ready
};

// Returns the process exit code: 0 after a clean stop (or, detached, once all are ready);
// 1 if the fleet cannot start or (detached) an instance failed.
int up(const control::Manifest& manifest, const UpOptions& options);

}  // namespace squadron::apps
