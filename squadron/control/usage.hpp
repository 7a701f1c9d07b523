// What each instance uses — resident memory, CPU as a share of one core, the time its CPU limit
// held it back, its OOM kills — sampled from the Runner (its cgroup, or /proc) once a second,
// for the control API (`ps`, the dashboard) and the control plane's Prometheus /metrics.
//
//   UsageMonitor usage{io, supervisor};
//   usage.start();
//   if (const auto* u = usage.find("hello-1")) show(u->rss_bytes, u->cpu_percent);
//
// Thread safety: the fleet's io_context thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "squadron/supervisor/supervisor.hpp"

namespace squadron::control {

struct InstanceUsage {
  supervisor::Usage now;   // the last sample's counters
  double cpu_percent = 0;  // of one core, between the last two samples
  bool measured = false;   // cpu_percent comes from two samples
  std::chrono::steady_clock::time_point at{};
};

class UsageMonitor {
 public:
  UsageMonitor(boost::asio::io_context& io, const supervisor::Runner& runner);
  ~UsageMonitor();
  UsageMonitor(const UsageMonitor&) = delete;
  UsageMonitor& operator=(const UsageMonitor&) = delete;

  void start(std::chrono::milliseconds every = std::chrono::seconds(1));
  void stop();
  // One sample at `now` (the timer's; tests call it with their own times).
  void sample(std::chrono::steady_clock::time_point now);
  // The instance's last sample; nullptr before its first, or once it is gone.
  const InstanceUsage* find(const std::string& id) const;
  const std::map<std::string, InstanceUsage>& all() const { return by_id_; }

 private:
  void schedule();
  const supervisor::Runner& runner_;
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds every_{1000};
  std::map<std::string, InstanceUsage> by_id_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool stopped_ = true;
};

}  // namespace squadron::control
