// Runs each autoscaled service's Autoscaler once a second: observes the service (the gateway's
// traffic from Traffic, or its instances' CPU from /proc), applies the decision to the Fleet,
// and records every change — and every switch into panic, stabilizing or hold — as an event
// with its inputs, the formula's result and the rule that fired.
//
//   AutoscaleLoop scaling{io, fleet, registry, &traffic};
//   scaling.start();
//
// Thread safety: the io_context's thread (the fleet's).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/fwd.hpp>

#include "squadron/control/autoscaler.hpp"
#include "squadron/control/fleet.hpp"
#include "squadron/control/traffic.hpp"
#include "squadron/registry/registry.hpp"

namespace squadron::control {

class AutoscaleLoop final {
 public:
  // `traffic` may be nullptr (no gateway): then only cpu-scaled services have metrics.
  AutoscaleLoop(boost::asio::io_context& io, Fleet& fleet, registry::Registry& reg,
                const Traffic* traffic);
  ~AutoscaleLoop();

  // Evaluates every second: right after each traffic sample when a gateway is sampled (call
  // evaluate() from Traffic::on_sample), else — or when samples stop — on its own timer.
  void start();
  void stop();
  // Follows the fleet's services after an apply: an entry for each newly autoscaled service,
  // a fresh one (new windows) for a changed `autoscale:`, none for a service that left or is
  // no longer autoscaled; the timer runs while there is any.
  void sync();
  // One pass over the autoscaled services.
  void evaluate(std::chrono::steady_clock::time_point now);

  // A request waits at the gateway for `service`, scaled to zero: start one instance now,
  // without waiting for the next evaluation. False when the service does not scale to zero.
  bool wake(std::string_view service);

  // A person scaled `service` to `replicas`: the autoscaler keeps that count for its
  // scale_down_delay unless demand needs more (Autoscaler::hold). Nothing if not autoscaled.
  void hold(std::string_view service, int replicas);
  // {"min","max","metric","target","rule","reason","value","panicking"} of the service's last
  // evaluation; nullopt when it is not autoscaled.
  std::optional<boost::json::object> state_json(std::string_view service) const;

 private:
  struct Entry {
    explicit Entry(AutoscaleSpec spec) : scaler(spec) {}
    Autoscaler scaler;
    ScaleDecision last;
    double value = 0;
    bool evaluated = false;
    // CPU: the ticks of each instance's process at the last look.
    std::map<int, std::uint64_t> ticks;
    std::chrono::steady_clock::time_point ticks_at{};
  };
  ScaleObservation observe(const ServiceSpec& spec, Entry& e,
                           std::chrono::steady_clock::time_point now);
  void schedule();

  boost::asio::io_context& io_;
  Fleet& fleet_;
  registry::Registry& reg_;
  const Traffic* traffic_;
  boost::asio::steady_timer timer_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool stopped_ = false;
  bool started_ = false;  // the timer runs
  std::chrono::steady_clock::time_point last_pass_{};
};

}  // namespace squadron::control
