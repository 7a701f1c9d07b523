// The registry: every instance of the fleet with its address, state and revision, plus a
// bounded log of events, all under one revision counter that a watch follows. The reconciler,
// the control API and the autoscaler reach it through this interface; MemoryRegistry
// (memory_registry.hpp) is today's, in the fleet's process; the cluster issue adds one kept in
// etcd without touching them. What the gateway follows is the watch contract (watch.hpp).
//
//   MemoryRegistry reg{io.get_executor()};
//   Registry& r = reg;
//   r.upsert(instance);                                // revision() grows on every change
//   auto rev = co_await r.wait_newer(since, 30s);      // long-poll: at once if already newer
//
// Thread safety: all calls on the implementation's executor's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "squadron/registry/instance.hpp"

namespace squadron::registry {

class Registry {
 public:
  virtual ~Registry() = default;

  // Adds or replaces the instance with `i.id`; a change bumps the revision and wakes watchers.
  virtual void upsert(const Instance& i) = 0;
  virtual void erase(const std::string& id) = 0;
  // Records an event (the oldest beyond the implementation's bound are dropped); bumps the
  // revision. The reference stays valid until the next call.
  virtual const Event& record(std::string service, std::string instance, std::string message) = 0;

  virtual std::uint64_t revision() const noexcept = 0;
  // Sorted by service, then by the instance's number.
  virtual std::vector<Instance> instances() const = 0;
  virtual std::optional<Instance> find(const std::string& id) const = 0;
  // Events with a revision greater than `since`, oldest first.
  virtual std::vector<Event> events_since(std::uint64_t since) const = 0;

  // Completes when revision() > since (at once if it already is) or after `timeout`; returns
  // revision(). A watcher whose coroutine is destroyed while waiting may outlive the registry.
  virtual boost::asio::awaitable<std::uint64_t> wait_newer(std::uint64_t since,
                                                           std::chrono::milliseconds timeout) = 0;
  // Wakes every watcher now and makes later waits return at once (the fleet is going away).
  virtual void close() = 0;
  virtual bool closed() const noexcept = 0;
};

}  // namespace squadron::registry
