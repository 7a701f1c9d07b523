#include "squadron/cluster/host.hpp"

#include <fstream>
#include <sched.h>
#include <sstream>
#include <unistd.h>

#include <boost/json.hpp>

#include "squadron/cluster/keys.hpp"

namespace squadron::cluster {
namespace json = boost::json;

bool valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

HostInfo this_host(std::string name, std::string address) {
  HostInfo h;
  h.name = std::move(name);
  h.address = std::move(address);
  cpu_set_t set;
  CPU_ZERO(&set);
  h.cores = sched_getaffinity(0, sizeof set, &set) == 0
                ? static_cast<unsigned>(CPU_COUNT(&set))
                : static_cast<unsigned>(sysconf(_SC_NPROCESSORS_ONLN));
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemTotal:") {
      h.memory_bytes = kib * 1024;
      break;
    }
  }
  h.agent_pid = static_cast<int>(getpid());
  h.started_at = std::chrono::system_clock::now();
  return h;
}

json::object to_json(const HostInfo& h) {
  json::object o;
  o["name"] = h.name;
  o["address"] = h.address;
  json::object labels;
  for (const auto& [k, v] : h.labels) labels[k] = v;
  o["labels"] = std::move(labels);
  o["cores"] = h.cores;
  o["memory_bytes"] = h.memory_bytes;
  o["agent_pid"] = h.agent_pid;
  o["started_at_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(h.started_at.time_since_epoch())
          .count();
  o["gateway_port"] = h.gateway_port;
  return o;
}

std::optional<HostInfo> host_from_json(const json::value& v) {
  const auto* o = v.if_object();
  if (o == nullptr) return std::nullopt;
  HostInfo h;
  const auto* name = o->if_contains("name");
  const auto* address = o->if_contains("address");
  if (name == nullptr || !name->is_string() || address == nullptr || !address->is_string())
    return std::nullopt;
  h.name = std::string(name->get_string());
  h.address = std::string(address->get_string());
  if (const auto* labels = o->if_contains("labels")) {
    if (!labels->is_object()) return std::nullopt;
    for (const auto& [k, val] : labels->get_object()) {
      if (!val.is_string()) return std::nullopt;
      h.labels[std::string(k)] = std::string(val.get_string());
    }
  }
  auto number = [&](std::string_view key, std::uint64_t max, std::uint64_t& out) {
    const auto* x = o->if_contains(key);
    if (x == nullptr) return true;
    if (x->is_uint64()) {
      out = x->get_uint64();
    } else if (x->is_int64() && x->get_int64() >= 0) {
      out = static_cast<std::uint64_t>(x->get_int64());
    } else {
      return false;
    }
    return out <= max;
  };
  std::uint64_t cores = 0, pid = 0, started = 0, gateway = 0;
  if (!number("cores", 1u << 20, cores) || !number("memory_bytes", UINT64_MAX, h.memory_bytes) ||
      !number("agent_pid", INT32_MAX, pid) ||
      !number("started_at_ms", 9'000'000'000'000, started) ||
      !number("gateway_port", 65535, gateway))
    return std::nullopt;
  h.cores = static_cast<unsigned>(cores);
  h.agent_pid = static_cast<int>(pid);
  h.started_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(started));
  h.gateway_port = static_cast<std::uint16_t>(gateway);
  return h;
}

}  // namespace squadron::cluster
