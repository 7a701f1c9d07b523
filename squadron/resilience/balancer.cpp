#include "squadron/resilience/balancer.hpp"

#include <algorithm>

namespace squadron::resilience {

bool Balancer::ejected(const std::string& id, TimePoint now) const {
  if (now >= ejections_end_) return false;
  auto it = health_.find(id);
  return it != health_.end() && it->second.until > now;
}

namespace {

// Slow start: an instance's share grows with its age over the window, from 10 %.
double weight(const Pool& s, const Endpoint& e, std::int64_t wall_ms) {
  if (wall_ms >= s.young_until_ms || s.slow_start.count() <= 0) return 1.0;
  const double age = static_cast<double>(wall_ms - e.started_at_ms);
  return std::clamp(age / static_cast<double>(s.slow_start.count()), 0.1, 1.0);
}

}  // namespace

std::size_t Balancer::choose(const Pool& service, const std::vector<std::size_t>& open,
                             std::int64_t wall_ms) {
  const std::size_t n = open.size();
  switch (service.balance) {
    case Balance::kRoundRobin:
    case Balance::kRandom: {
      // Slow start here too: a young instance drawn keeps its turn with its weight's
      // probability, else the turn passes on (a few tries, then whoever is drawn).
      std::size_t i = 0;
      for (int tries = 0; tries < 4; ++tries) {
        i = service.balance == Balance::kRoundRobin ? open[round_robin_++ % n] : open[next() % n];
        const double w = weight(service, service.ready[i], wall_ms);
        if (w >= 1.0 || static_cast<double>(next() % 1'000'000) < w * 1'000'000) break;
      }
      return i;
    }
    case Balance::kLeastRequest:
      break;
  }
  if (n == 1) return open[0];
  const std::size_t a = next() % n;
  std::size_t b = next() % (n - 1);
  if (b >= a) ++b;  // two distinct draws, each uniform
  const auto& ea = service.ready[open[a]];
  const auto& eb = service.ready[open[b]];
  std::size_t win = in_flight(eb.id) < in_flight(ea.id) ? b : a;
  // Slow start: a young winner keeps the request only with its weight's probability; else the
  // other draw takes it. Young instances of the same age still share evenly.
  const double w = weight(service, service.ready[open[win]], wall_ms);
  if (w < 1.0 && static_cast<double>(next() % 1'000'000) >= w * 1'000'000) win = win == a ? b : a;
  return open[win];
}

std::optional<std::size_t> Balancer::pick(const Pool& service,
                                          std::span<const std::string_view> tried, TimePoint now,
                                          std::int64_t wall_ms) {
  const std::size_t local = service.local;
  if (local == 0 || local >= service.ready.size()) return pick_any(service, tried, now, wall_ms);
  // This host's instances, or the others': one side by the local share, then the other side if
  // the first has none healthy left to try (an ejected local one is no reason to stay).
  const bool stay = service.local_share >= 1.0 ||
                    static_cast<double>(next() % 1'000'000) < service.local_share * 1e6;
  Pool first = service, second = service;
  first.local = second.local = 0;
  first.ready = stay ? service.ready.first(local) : service.ready.subspan(local);
  second.ready = stay ? service.ready.subspan(local) : service.ready.first(local);
  const std::size_t first_at = stay ? 0 : local, second_at = stay ? local : 0;
  const auto a = pick_any(first, tried, now, wall_ms);
  if (a && !ejected(first.ready[*a].id, now)) return first_at + *a;
  const auto b = pick_any(second, tried, now, wall_ms);
  if (b && (!a || !ejected(second.ready[*b].id, now))) return second_at + *b;
  if (a) return first_at + *a;
  return std::nullopt;
}

std::optional<std::size_t> Balancer::pick_by_key(const Pool& service, std::uint64_t key,
                                                 std::span<const std::string_view> tried,
                                                 TimePoint now) const {
  std::optional<std::size_t> best;
  std::uint64_t best_weight = 0;
  for (std::size_t i = 0; i < service.ready.size(); ++i) {
    const std::string& id = service.ready[i].id;
    if (std::find(tried.begin(), tried.end(), id) != tried.end() || ejected(id, now)) continue;
    const std::uint64_t weight = core::mix64(key ^ core::fnv1a64(id));
    if (!best || weight > best_weight) {
      best = i;
      best_weight = weight;
    }
  }
  return best;
}

std::optional<std::size_t> Balancer::pick_any(const Pool& service,
                                              std::span<const std::string_view> tried,
                                              TimePoint now, std::int64_t wall_ms) {
  const auto& ready = service.ready;
  if (ready.empty()) return std::nullopt;
  if (service.young_until_ms != 0 && wall_ms == 0) {
    wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  }
  const bool young = wall_ms < service.young_until_ms;
  if (tried.empty() && !young && now >= ejections_end_ &&
      service.balance == Balance::kLeastRequest) {
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
  return choose(service, open, wall_ms);
}

bool Balancer::record(const Pool& service, const Endpoint& e, bool ok, TimePoint now) {
  if (ok) {
    auto it = health_.find(e.id);
    if (it != health_.end()) it->second.failures = 0;
    return false;
  }
  auto& h = health_[e.id];
  if (h.until > now) return false;  // already ejected
  if (++h.failures < service.eject_after) return false;
  // Never the last: some other instance of the service must stay in rotation.
  const bool another = std::any_of(service.ready.begin(), service.ready.end(), [&](const auto& o) {
    return o.id != e.id && !ejected(o.id, now);
  });
  if (!another) return false;
  ++h.times_ejected;
  h.failures = 0;
  h.until = now + service.eject_time * h.times_ejected;
  ejections_end_ = std::max(ejections_end_, h.until);
  ++ejections_;
  return true;
}

std::vector<std::pair<std::string, int>> Balancer::busy() const {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& [id, n] : in_flight_) {
    if (n > 0) out.emplace_back(id, n);
  }
  return out;
}

}  // namespace squadron::resilience
