#include "squadron/gateway/balancer.hpp"

#include <algorithm>

namespace squadron::gateway {

std::uint64_t Balancer::next() {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::optional<std::size_t> Balancer::pick(const std::vector<Endpoint>& ready,
                                          std::span<const std::string_view> tried) {
  if (tried.empty()) {  // the first attempt: no list to build
    const std::size_t n = ready.size();
    if (n <= 1) return n == 0 ? std::nullopt : std::optional<std::size_t>(0);
    const std::size_t a = next() % n;
    std::size_t b = next() % (n - 1);
    if (b >= a) ++b;
    return in_flight(ready[b].id) < in_flight(ready[a].id) ? b : a;
  }
  // A retry: the candidates are the ready endpoints not tried yet.
  std::vector<std::size_t> open;
  open.reserve(ready.size());
  for (std::size_t i = 0; i < ready.size(); ++i) {
    if (std::find(tried.begin(), tried.end(), ready[i].id) == tried.end()) open.push_back(i);
  }
  const std::size_t n = open.size();
  if (n == 0) return std::nullopt;
  if (n == 1) return open[0];
  const std::size_t a = next() % n;
  std::size_t b = next() % (n - 1);
  if (b >= a) ++b;  // two distinct draws, each uniform
  const std::size_t ia = open[a];
  const std::size_t ib = open[b];
  return in_flight(ready[ib].id) < in_flight(ready[ia].id) ? ib : ia;
}

}  // namespace squadron::gateway
