#include "squadron/control/usage.hpp"

namespace squadron::control {

UsageMonitor::UsageMonitor(boost::asio::io_context& io, const supervisor::Runner& runner)
    : runner_(runner), timer_(io) {}

UsageMonitor::~UsageMonitor() { *alive_ = false; }

void UsageMonitor::start(std::chrono::milliseconds every) {
  every_ = every;
  stopped_ = false;
  sample(std::chrono::steady_clock::now());
  schedule();
}

void UsageMonitor::stop() {
  stopped_ = true;
  timer_.cancel();
}

void UsageMonitor::schedule() {
  timer_.expires_after(every_);
  timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive || stopped_) return;
    sample(std::chrono::steady_clock::now());
    schedule();
  });
}

void UsageMonitor::sample(std::chrono::steady_clock::time_point now) {
  std::map<std::string, InstanceUsage> next;
  for (auto& [id, u] : runner_.usage()) {
    InstanceUsage& n = next[id];
    n.now = u;
    n.at = now;
    const auto before = by_id_.find(id);
    if (before == by_id_.end()) continue;
    const auto& b = before->second;
    const double elapsed_usec = std::chrono::duration<double, std::micro>(now - b.at).count();
    // A restart without a cgroup starts its count again: no share for that interval.
    if (elapsed_usec > 0 && u.cpu_usec >= b.now.cpu_usec) {
      n.cpu_percent = static_cast<double>(u.cpu_usec - b.now.cpu_usec) / elapsed_usec * 100.0;
      n.measured = true;
    }
  }
  by_id_ = std::move(next);
}

const InstanceUsage* UsageMonitor::find(const std::string& id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

}  // namespace squadron::control
