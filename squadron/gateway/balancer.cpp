#include "squadron/gateway/balancer.hpp"

#include <algorithm>

namespace squadron::gateway {

std::uint64_t Balancer::next() {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

bool Balancer::ejected(const std::string& id, TimePoint now) const {
  if (now >= ejections_end_) return false;
  auto it = health_.find(id);
  return it != health_.end() && it->second.until > now;
}

std::size_t Balancer::choose(const Service& service, const std::vector<std::size_t>& open) {
  const std::size_t n = open.size();
  switch (service.policy.balance) {
    case Balance::kRoundRobin:
      return open[round_robin_++ % n];
    case Balance::kRandom:
      return open[next() % n];
    case Balance::kLeastRequest:
      break;
  }
  if (n == 1) return open[0];
  const std::size_t a = next() % n;
  std::size_t b = next() % (n - 1);
  if (b >= a) ++b;  // two distinct draws, each uniform
  return in_flight(service.ready[open[b]].id) < in_flight(service.ready[open[a]].id) ? open[b]
                                                                                     : open[a];
}

std::optional<std::size_t> Balancer::pick(const Service& service,
                                          std::span<const std::string_view> tried, TimePoint now) {
  const auto& ready = service.ready;
  if (ready.empty()) return std::nullopt;
  if (tried.empty() && now >= ejections_end_ && service.policy.balance == Balance::kLeastRequest) {
    // The common case, with nothing to filter: no list to build.
    const std::size_t n = ready.size();
    if (n == 1) return 0;
    const std::size_t a = next() % n;
    std::size_t b = next() % (n - 1);
    if (b >= a) ++b;
    return in_flight(ready[b].id) < in_flight(ready[a].id) ? b : a;
  }
  std::vector<std::size_t> open;
  std::vector<std::size_t> only_ejected;
  open.reserve(ready.size());
  for (std::size_t i = 0; i < ready.size(); ++i) {
    if (std::find(tried.begin(), tried.end(), ready[i].id) != tried.end()) continue;
    (ejected(ready[i].id, now) ? only_ejected : open).push_back(i);
  }
  if (open.empty()) open.swap(only_ejected);  // better an ejected instance than none
  if (open.empty()) return std::nullopt;
  return choose(service, open);
}

bool Balancer::record(const Service& service, const Endpoint& e, bool ok, TimePoint now) {
  if (ok) {
    auto it = health_.find(e.id);
    if (it != health_.end()) it->second.failures = 0;
    return false;
  }
  auto& h = health_[e.id];
  if (h.until > now) return false;  // already ejected
  if (++h.failures < service.policy.eject_after) return false;
  // Never the last: some other instance of the service must stay in rotation.
  const bool another = std::any_of(service.ready.begin(), service.ready.end(), [&](const auto& o) {
    return o.id != e.id && !ejected(o.id, now);
  });
  if (!another) return false;
  ++h.times_ejected;
  h.failures = 0;
  h.until = now + service.policy.eject_time * h.times_ejected;
  ejections_end_ = std::max(ejections_end_, h.until);
  ++ejections_;
  return true;
}

}  // namespace squadron::gateway
