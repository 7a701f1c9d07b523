#include "squadron/control/autoscale_loop.hpp"

#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>

#include <boost/json.hpp>

namespace squadron::control {

namespace json = boost::json;
using std::chrono::steady_clock;

namespace {

// utime + stime of a process in clock ticks (0 if it is gone).
std::uint64_t cpu_ticks(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  // The command name may hold spaces: fields count from after its closing parenthesis.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return utime + stime;
}

}  // namespace

AutoscaleLoop::AutoscaleLoop(boost::asio::io_context& io, Fleet& fleet, registry::Registry& reg,
                             const Traffic* traffic)
    : io_(io), fleet_(fleet), reg_(reg), traffic_(traffic), timer_(io) {
  for (const auto& s : fleet_.manifest().services) {
    if (s.autoscale) entries_.emplace(s.name, Entry(*s.autoscale));
  }
}

AutoscaleLoop::~AutoscaleLoop() { *alive_ = false; }

void AutoscaleLoop::start() {
  if (entries_.empty()) return;
  stopped_ = false;
  started_ = true;
  schedule();
}

void AutoscaleLoop::sync() {
  std::set<std::string, std::less<>> keep;
  for (const auto& s : fleet_.manifest().services) {
    if (!s.autoscale) continue;
    keep.insert(s.name);
    auto it = entries_.find(s.name);
    if (it != entries_.end() && it->second.scaler.spec() == *s.autoscale) continue;
    if (it != entries_.end()) entries_.erase(it);
    entries_.emplace(s.name, Entry(*s.autoscale));
  }
  std::erase_if(entries_, [&](const auto& e) { return keep.count(e.first) == 0; });
  if (!entries_.empty() && !started_ && !stopped_) start();
}

void AutoscaleLoop::stop() {
  stopped_ = true;
  timer_.cancel();
}

void AutoscaleLoop::schedule() {
  timer_.expires_after(std::chrono::milliseconds(500));
  timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive || stopped_ || fleet_.stopping()) return;
    // Traffic samples drive the passes; this timer covers a second without one.
    const auto now = steady_clock::now();
    if (now - last_pass_ >= std::chrono::milliseconds(1500)) evaluate(now);
    schedule();
  });
}

ScaleObservation AutoscaleLoop::observe(const ServiceSpec& spec, Entry& e,
                                        steady_clock::time_point now) {
  ScaleObservation o;
  o.now = now;
  o.current = fleet_.desired(spec.name);
  o.rolling = fleet_.rolling(spec.name);
  std::map<int, std::uint64_t> ticks;
  for (const auto& i : reg_.instances()) {
    if (i.service != spec.name || i.state != registry::State::kReady) continue;
    ++o.ready;
    if (e.scaler.spec().metric == ScaleMetric::kCpu && i.pid > 0) ticks[i.pid] = cpu_ticks(i.pid);
  }
  // The gateway's counts: requests for idleness, and the metric unless it is CPU.
  const TrafficSample* sample = nullptr;
  if (traffic_ != nullptr) {
    if (const auto* h = traffic_->history(spec.name); h != nullptr && !h->empty()) {
      const auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
      if (wall - h->back().at_ms <= 2500) sample = &h->back();  // fresh: from the last 2.5 s
    }
  }
  if (sample != nullptr) o.requests = sample->requests;
  switch (e.scaler.spec().metric) {
    case ScaleMetric::kConcurrency:
      o.observed = sample != nullptr;
      o.value = sample != nullptr ? sample->concurrency : 0;
      break;
    case ScaleMetric::kRps:
      o.observed = sample != nullptr;
      o.value = sample != nullptr ? sample->rps : 0;
      break;
    case ScaleMetric::kCpu: {
      // Percent of one core, summed over the ready instances, since the last look.
      const double seconds = std::chrono::duration<double>(now - e.ticks_at).count();
      const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
      double percent = 0;
      for (const auto& [pid, t] : ticks) {
        auto it = e.ticks.find(pid);
        if (it != e.ticks.end() && t >= it->second && seconds > 0)
          percent += static_cast<double>(t - it->second) / hz / seconds * 100.0;
      }
      o.observed = e.ticks_at != steady_clock::time_point{};
      o.value = percent;
      // CPU alone says nothing about requests: count any as "seen" while instances work.
      if (sample == nullptr) o.requests = static_cast<std::uint64_t>(percent * 1000);
      e.ticks = std::move(ticks);
      e.ticks_at = now;
      break;
    }
  }
  return o;
}

void AutoscaleLoop::evaluate(steady_clock::time_point now) {
  last_pass_ = now;
  for (const auto& spec : fleet_.manifest().services) {
    auto it = entries_.find(spec.name);
    if (it == entries_.end()) continue;
    Entry& e = it->second;
    const auto o = observe(spec, e, now);
    auto d = e.scaler.evaluate(o);
    e.value = o.value;
    const bool switched = !e.evaluated || d.rule != e.last.rule;
    e.evaluated = true;
    if (d.changed()) {
      fleet_.autoscale(spec.name, d.desired, d.explain);
    } else if (switched && (d.rule == "panic" || d.rule == "stabilizing" || d.rule == "hold")) {
      fleet_.note(spec.name, d.explain);
    }
    e.last = std::move(d);
  }
}

bool AutoscaleLoop::wake(std::string_view service) {
  auto it = entries_.find(service);
  if (it == entries_.end() || it->second.scaler.spec().min != 0) return false;
  it->second.scaler.touch(steady_clock::now());
  if (fleet_.desired(service) == 0) {
    fleet_.autoscale(service, 1, "autoscale 0 -> 1: a request waits at the gateway (wake)");
  }
  return true;
}

void AutoscaleLoop::hold(std::string_view service, int replicas) {
  auto it = entries_.find(service);
  if (it != entries_.end()) it->second.scaler.hold(replicas, steady_clock::now());
}

std::optional<json::object> AutoscaleLoop::state_json(std::string_view service) const {
  auto it = entries_.find(service);
  if (it == entries_.end()) return std::nullopt;
  const Entry& e = it->second;
  const auto& s = e.scaler.spec();
  return json::object{{"min", s.min},
                      {"max", s.max},
                      {"metric", metric_name(s.metric)},
                      {"target", s.target},
                      {"value", std::round(e.value * 100) / 100},
                      {"rule", e.last.rule},
                      {"reason", e.last.explain},
                      {"panicking", e.scaler.panicking(steady_clock::now())}};
}

}  // namespace squadron::control
