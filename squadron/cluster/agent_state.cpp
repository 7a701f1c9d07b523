#include "squadron/cluster/agent_state.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <unistd.h>

#include <boost/json.hpp>

#include "squadron/registry/watch.hpp"
#include "squadron/supervisor/spec_json.hpp"

namespace squadron::cluster {
namespace json = boost::json;
namespace sv = squadron::supervisor;

namespace {

constexpr sv::InstanceState kStates[] = {sv::InstanceState::kStarting, sv::InstanceState::kReady,
                                         sv::InstanceState::kDraining, sv::InstanceState::kStopping,
                                         sv::InstanceState::kBackoff,  sv::InstanceState::kFailed,
                                         sv::InstanceState::kStopped};

}  // namespace

std::string agent_state_text(const AgentState& state) {
  json::array instances;
  for (const auto& h : state.instances) {
    json::object i;
    i["spec"] = sv::to_json(h.spec);
    i["pid"] = h.status.pid;
    i["port"] = h.status.port;
    i["state"] = std::string(sv::to_string(h.status.state));
    i["restarts"] = h.status.restarts;
    i["started_at_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                             h.status.started_at.time_since_epoch())
                             .count();
    i["start_ticks"] = h.start_ticks;
    instances.push_back(std::move(i));
  }
  json::object o;
  o["lease"] = state.lease;
  o["instances"] = std::move(instances);
  return json::serialize(o);
}

std::optional<AgentState> parse_agent_state(std::string_view text, std::string& error) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    error = "not a JSON object";
    return std::nullopt;
  }
  const auto& o = v.get_object();
  AgentState out;
  const auto lease = registry::bounded(o, "lease", 0, INT64_MAX);
  if (!lease) {
    error = "lease: expected a lease id";
    return std::nullopt;
  }
  out.lease = *lease;
  const auto* list = o.if_contains("instances");
  if (list == nullptr || !list->is_array()) {
    error = "instances: expected a list";
    return std::nullopt;
  }
  for (std::size_t n = 0; n < list->get_array().size(); ++n) {
    const auto& item = list->get_array()[n];
    const std::string where = "instances[" + std::to_string(n) + "]";
    if (!item.is_object()) {
      error = where + ": expected an object";
      return std::nullopt;
    }
    const auto& i = item.get_object();
    const auto* spec_value = i.if_contains("spec");
    if (spec_value == nullptr) {
      error = where + ".spec: missing";
      return std::nullopt;
    }
    std::string why;
    auto spec = sv::spec_from_json(*spec_value, why);
    if (!spec || spec->id.empty()) {
      error = where + ".spec" + (spec ? ".id: missing" : ": " + why);
      return std::nullopt;
    }
    const auto pid = registry::bounded(i, "pid", 1, INT32_MAX);
    const auto port = registry::bounded(i, "port", 0, 65535);
    const auto restarts = registry::bounded(i, "restarts", 0, INT32_MAX);
    // (Up to the year 2255: system_clock counts nanoseconds in 64 bits, up to 2262.)
    const auto started = registry::bounded(i, "started_at_ms", 0, 9000000000000);
    const auto ticks = registry::bounded(i, "start_ticks", 0, INT64_MAX);
    const auto* state = i.if_contains("state");
    std::optional<sv::InstanceState> st;
    if (state != nullptr && state->is_string()) {
      for (auto s : kStates) {
        if (sv::to_string(s) == state->get_string()) st = s;
      }
    }
    if (!pid || !port || !restarts || !started || !ticks || !st) {
      error = where + ": expected pid, port, state, restarts, started_at_ms and start_ticks";
      return std::nullopt;
    }
    sv::Supervisor::Held h;
    h.spec = std::move(*spec);
    h.status.service = h.spec.service;
    h.status.id = h.spec.id;
    h.status.revision = h.spec.revision;
    h.status.pid = static_cast<pid_t>(*pid);
    h.status.port = static_cast<std::uint16_t>(*port);
    h.status.state = *st;
    h.status.restarts = static_cast<int>(*restarts);
    h.status.started_at =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(*started));
    h.start_ticks = static_cast<unsigned long long>(*ticks);
    out.instances.push_back(std::move(h));
  }
  return out;
}

bool save_agent_state(const std::filesystem::path& file, const AgentState& state,
                      std::string& error) {
  const std::string text = agent_state_text(state);
  const std::filesystem::path tmp = file.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    error = "cannot write " + tmp.string() + ": " + std::strerror(errno);
    return false;
  }
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const bool closed = ::close(fd) == 0;
  if (!written || !closed || ::rename(tmp.c_str(), file.c_str()) != 0) {
    error = "cannot write " + file.string() + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::optional<AgentState> load_agent_state(const std::filesystem::path& file, std::string& error) {
  error.clear();
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    if (errno != ENOENT) error = "cannot read " + file.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto state = parse_agent_state(text, error);
  if (!state) error = file.string() + ": " + error;
  return state;
}

}  // namespace squadron::cluster
