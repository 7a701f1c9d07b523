#include "squadron/cluster/placement.hpp"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>

namespace squadron::cluster {

std::optional<std::string> place(const PlacementRequest& request,
                                 const std::vector<HostView>& hosts,
                                 const std::vector<Placed>& placed, std::string& why) {
  why.clear();
  if (hosts.empty()) {
    why = "no host is up (start `squadron agent` on the hosts)";
    return std::nullopt;
  }
  const HostView* best = nullptr;
  std::tuple<int, int, int, std::string> best_key;
  for (const auto& h : hosts) {
    std::string out;
    if (!h.up) {
      out = "lost";
    } else if (!request.rule.hosts.empty() &&
               std::find(request.rule.hosts.begin(), request.rule.hosts.end(), h.name) ==
                   request.rule.hosts.end()) {
      out = "not in placement.hosts";
    } else {
      for (const auto& [k, v] : request.rule.labels) {
        const auto it = h.labels.find(k);
        if (it == h.labels.end() || it->second != v) {
          out = fmt::format("no label {}={}", k, v);
          break;
        }
      }
    }
    int same = 0, all = 0;
    std::uint64_t memory = 0;
    bool port_taken = false;
    for (const auto& p : placed) {
      if (p.host != h.name) continue;
      ++all;
      memory += p.memory_bytes;
      if (p.service == request.service) ++same;
      if (request.fixed_port && p.fixed_port == request.fixed_port) port_taken = true;
    }
    if (out.empty() && port_taken) out = fmt::format("port {} taken", *request.fixed_port);
    if (out.empty() && h.memory_bytes != 0 && memory + request.memory_bytes > h.memory_bytes) {
      out = fmt::format("{} MiB of {} MiB requested already", memory >> 20, h.memory_bytes >> 20);
    }
    if (!out.empty()) {
      why += fmt::format("{}{}: {}", why.empty() ? "" : "; ", h.name, out);
      continue;
    }
    const int preferred = !request.prefer.empty() && h.name == request.prefer ? 0 : 1;
    auto key = std::tuple{preferred, same, all, h.name};
    if (best == nullptr || key < best_key) {
      best = &h;
      best_key = std::move(key);
    }
  }
  if (best == nullptr) {
    why = "no host fits " + request.service + " (" + why + ")";
    return std::nullopt;
  }
  why.clear();
  return best->name;
}

}  // namespace squadron::cluster
