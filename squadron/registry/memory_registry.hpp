// The registry kept in the fleet's own memory (registry.hpp's interface): what one machine's
// fleet uses, and what tests use.
//
//   MemoryRegistry reg{io.get_executor()};
//   reg.upsert(instance);
//
// Thread safety: all calls on the executor's thread.
#pragma once

#include <algorithm>
#include <deque>
#include <list>
#include <map>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "squadron/registry/registry.hpp"

namespace squadron::registry {

class MemoryRegistry final : public Registry {
 public:
  explicit MemoryRegistry(boost::asio::any_io_executor executor, std::size_t max_events = 1000);
  ~MemoryRegistry() override;
  MemoryRegistry(const MemoryRegistry&) = delete;
  MemoryRegistry& operator=(const MemoryRegistry&) = delete;

  void upsert(const Instance& i) override;
  void erase(const std::string& id) override;
  const Event& record(std::string service, std::string instance, std::string message) override;
  std::uint64_t revision() const noexcept override { return revision_; }
  std::vector<Instance> instances() const override;
  std::optional<Instance> find(const std::string& id) const override;
  std::vector<Event> events_since(std::uint64_t since) const override;
  boost::asio::awaitable<std::uint64_t> wait_newer(std::uint64_t since,
                                                   std::chrono::milliseconds timeout) override;
  void close() override;
  bool closed() const noexcept override { return closed_; }
  std::size_t watchers() const noexcept { return waiters_->size(); }
  // Revisions go on after `revision` (forward only; nothing is woken): a cluster's new leader
  // starts its registry past every revision the last leader's gave, so that a gateway's watch
  // `since` one of those is never ahead of it and answers at once.
  void start_after(std::uint64_t revision) noexcept { revision_ = std::max(revision_, revision); }

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
