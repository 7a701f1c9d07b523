// The registry: every instance of the fleet with its address, state and revision, plus a
// bounded log of events, all under one revision counter that a watch stream follows.
//
//   Registry reg{io.get_executor()};
//   reg.upsert(instance);                              // revision() grows on every change
//   auto rev = co_await reg.wait_newer(since, 30s);    // long-poll: at once if already newer
//   auto body = reg.snapshot_json();                   // {"revision": N, "instances": [...]}
//
// The JSON form of an instance is the wire contract of the control API's watch stream, which
// the gateway and SDK clients follow; instance_from_json() reads it back.
//
// Thread safety: all calls on the executor's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/fwd.hpp>

#include "squadron/registry/instance.hpp"

namespace squadron::registry {

class Registry final {
 public:
  explicit Registry(boost::asio::any_io_executor executor, std::size_t max_events = 1000);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Adds or replaces the instance with `i.id`; a change bumps the revision and wakes watchers.
  void upsert(const Instance& i);
  void erase(const std::string& id);
  // Records an event (the oldest beyond max_events are dropped); bumps the revision.
  const Event& record(std::string service, std::string instance, std::string message);

  std::uint64_t revision() const noexcept { return revision_; }
  // Sorted by service, then by the instance's number.
  std::vector<Instance> instances() const;
  std::optional<Instance> find(const std::string& id) const;
  // Events with a revision greater than `since`, oldest first.
  std::vector<Event> events_since(std::uint64_t since) const;

  // {"revision": N, "instances": [to_json(i)...]}
  boost::json::object snapshot_json(std::chrono::system_clock::time_point now) const;

  // Completes when revision() > since (at once if it already is) or after `timeout`; returns
  // revision(). A watcher whose coroutine is destroyed while waiting (a server stopping) may
  // outlive the registry.
  boost::asio::awaitable<std::uint64_t> wait_newer(std::uint64_t since,
                                                   std::chrono::milliseconds timeout);
  std::size_t watchers() const noexcept { return waiters_->size(); }
  // Wakes every watcher now and makes later waits return at once (the fleet is going away).
  void close();
  bool closed() const noexcept { return closed_; }

 private:
  void bump();

  boost::asio::any_io_executor executor_;
  std::size_t max_events_;
  std::uint64_t revision_ = 0;
  std::map<std::string, Instance> instances_;
  std::deque<Event> events_;
  // Shared with each waiting coroutine, which unlists itself even after the registry is gone.
  std::shared_ptr<std::list<boost::asio::steady_timer*>> waiters_ =
      std::make_shared<std::list<boost::asio::steady_timer*>>();
  bool closed_ = false;
};

}  // namespace squadron::registry
