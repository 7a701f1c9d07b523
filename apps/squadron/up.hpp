// `squadron up` (foreground): runs the fleet of a validated manifest until SIGINT/SIGTERM.
#pragma once

#include "squadron/control/manifest.hpp"

namespace squadron::apps {

// Returns the process exit code (0 after a clean stop).
int up(const control::Manifest& manifest);

}  // namespace squadron::apps
