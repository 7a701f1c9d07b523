#include "squadron/control/autoscaler.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace squadron::control {

std::string_view metric_name(ScaleMetric m) noexcept {
  switch (m) {
    case ScaleMetric::kConcurrency:
      return "concurrency";
    case ScaleMetric::kRps:
      return "rps";
    case ScaleMetric::kCpu:
      return "cpu";
  }
  return "?";
}

int Autoscaler::clamp(int n) const noexcept {
  return std::clamp(n, std::max(1, spec_.min), std::max(1, spec_.max));
}

int Autoscaler::recommend(double total) const {
  const double n = std::ceil(std::max(0.0, total) / spec_.target - 1e-9);
  return clamp(static_cast<int>(std::min(n, 1e6)));
}

ScaleDecision Autoscaler::evaluate(const ScaleObservation& o) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  if (!seen_ || o.requests < requests_) {  // first look, or the gateway's counts restarted
    seen_ = true;
    requests_ = o.requests;
    last_request_ = o.now;
  } else if (o.requests > requests_) {
    requests_ = o.requests;
    last_request_ = o.now;
  }
  const int current = o.current;
  ScaleDecision d;
  d.desired = current;
  auto finish = [&](std::string rule, std::string why) {
    d.rule = std::move(rule);
    d.changed_ = d.desired != current;
    d.explain = d.changed_
                    ? fmt::format("autoscale {} -> {}: {} ({})", current, d.desired, why, d.rule)
                    : fmt::format("autoscale stays at {}: {} ({})", current, why, d.rule);
    return d;
  };
  if (!o.observed) return finish("hold", "no metrics this second");

  const auto keep = std::max(spec_.scale_down_delay, spec_.panic_window);
  samples_.push_back({o.now, o.value, recommend(o.value)});
  while (!samples_.empty() && samples_.front().at < o.now - keep) samples_.pop_front();

  const std::string_view unit = spec_.metric == ScaleMetric::kCpu ? "%" : "";
  const std::string inputs = fmt::format(
      "{} {:.1f}{} over {} ready ({:.1f}{} each, target {}{}) -> ceil({:.1f}/{}) = {}",
      metric_name(spec_.metric), o.value, unit, o.ready, o.ready > 0 ? o.value / o.ready : o.value,
      unit, spec_.target, unit, o.value, spec_.target,
      static_cast<int>(std::ceil(std::max(0.0, o.value) / spec_.target - 1e-9)));

  if (o.rolling) return finish("rollout", inputs + "; no decision during a rollout");

  // Bounds first: a manifest edit may have moved them.
  if (current > spec_.max) {
    d.desired = spec_.max;
    return finish("max", inputs);
  }
  const auto idle_for = o.now - last_request_;
  if (spec_.min == 0 && idle_for >= spec_.scale_down_delay && o.value <= 0) {
    d.desired = 0;
    return finish("idle", fmt::format("no request for {} s",
                                      duration_cast<milliseconds>(idle_for).count() / 1000));
  }
  if (current == 0 && spec_.min == 0) {
    // At zero nothing flows, so the traffic says nothing new: the gateway wakes the service
    // when a request waits for it (AutoscaleLoop::wake).
    return finish("zero", "scaled to zero; the gateway wakes it when a request comes");
  }
  if (current < std::max(1, spec_.min)) {
    d.desired = std::max(clamp(current), recommend(o.value));
    return finish("min", inputs);
  }

  const int want = recommend(o.value);  // from the latest second: scale-ups are not delayed
  const double capacity = static_cast<double>(current) * spec_.target;
  if (o.value >= 2 * capacity) panic_until_ = o.now + spec_.panic_window;
  if (panicking(o.now)) {
    d.desired = std::max(current, want);
    return finish(
        "panic",
        inputs + fmt::format("; demand {:.1f}x what {} can carry in the last {} s",
                             o.value / capacity, current,
                             duration_cast<milliseconds>(spec_.panic_window).count() / 1000.0));
  }
  const double ratio = o.value / capacity;
  if (std::abs(ratio - 1.0) <= spec_.tolerance) {
    return finish("tolerance",
                  inputs + fmt::format("; within {:.0f} % of the target", spec_.tolerance * 100));
  }
  if (want > current) {
    d.desired = want;
    return finish("up", inputs);
  }
  // Down only to the highest recommendation of the whole delay window, once the window is
  // covered: a dip shorter than scale_down_delay changes nothing.
  int highest = 0;
  for (const auto& s : samples_) {
    if (s.at >= o.now - spec_.scale_down_delay) highest = std::max(highest, s.recommendation);
  }
  const bool covered =
      samples_.front().at <= o.now - spec_.scale_down_delay + std::chrono::seconds(1);
  if (highest < current && covered) {
    d.desired = highest;
    return finish(
        "down",
        inputs + fmt::format("; at most {} needed for the last {} s", highest,
                             duration_cast<milliseconds>(spec_.scale_down_delay).count() / 1000));
  }
  if (highest < current) {
    return finish(
        "stabilizing",
        inputs + fmt::format("; lower demand, waiting for {} s of it before scaling down",
                             duration_cast<milliseconds>(spec_.scale_down_delay).count() / 1000));
  }
  return finish("steady", inputs);
}

}  // namespace squadron::control
