#include "squadron/supervisor/report.hpp"

namespace squadron::supervisor {

registry::Instance to_registry(const InstanceStatus& st) {
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
  i.oom_kills = st.oom_kills;
  if (!st.host.empty()) i.host = st.host;
  i.node = st.node;
  return i;
}
static_assert(static_cast<int>(InstanceState::kStopped) ==
              static_cast<int>(registry::State::kStopped));

}  // namespace squadron::supervisor
