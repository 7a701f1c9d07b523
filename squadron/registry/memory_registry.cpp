#include "squadron/registry/memory_registry.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "squadron/core/scope_exit.hpp"

namespace squadron::registry {

namespace json = boost::json;
using std::chrono::system_clock;

MemoryRegistry::MemoryRegistry(boost::asio::any_io_executor executor, std::size_t max_events)
    : executor_(std::move(executor)), max_events_(std::max<std::size_t>(1, max_events)) {}

MemoryRegistry::~MemoryRegistry() = default;

void MemoryRegistry::bump() {
  ++revision_;
  for (auto* t : *waiters_) t->cancel();
}

void MemoryRegistry::close() {
  closed_ = true;
  for (auto* t : *waiters_) t->cancel();
}

void MemoryRegistry::upsert(const Instance& i) {
  auto [it, inserted] = instances_.try_emplace(i.id, i);
  if (!inserted) {
    if (it->second == i) return;
    it->second = i;
  }
  bump();
}

void MemoryRegistry::erase(const std::string& id) {
  if (instances_.erase(id) != 0) bump();
}

const Event& MemoryRegistry::record(std::string service, std::string instance,
                                    std::string message) {
  bump();
  events_.push_back({revision_, system_clock::now(), std::move(service), std::move(instance),
                     std::move(message)});
  while (events_.size() > max_events_) events_.pop_front();
  return events_.back();
}

std::vector<Instance> MemoryRegistry::instances() const {
  std::vector<Instance> out;
  out.reserve(instances_.size());
  for (const auto& [id, i] : instances_) out.push_back(i);
  std::sort(out.begin(), out.end(), [](const Instance& a, const Instance& b) {
    if (a.service != b.service) return a.service < b.service;
    return instance_number(a.id) < instance_number(b.id);
  });
  return out;
}

std::optional<Instance> MemoryRegistry::find(const std::string& id) const {
  auto it = instances_.find(id);
  if (it == instances_.end()) return std::nullopt;
  return it->second;
}

std::vector<Event> MemoryRegistry::events_since(std::uint64_t since) const {
  std::vector<Event> out;
  for (const auto& e : events_) {
    if (e.revision > since) out.push_back(e);
  }
  return out;
}

boost::asio::awaitable<std::uint64_t> MemoryRegistry::wait_newer(
    std::uint64_t since, std::chrono::milliseconds timeout) {
  if (revision_ > since || timeout.count() <= 0 || closed_) co_return revision_;
  boost::asio::steady_timer timer(executor_, timeout);
  // Unlisted however the coroutine ends, also when its frame is destroyed without resuming
  // (a server stopping mid-watch).
  core::ScopeExit listed(
      [list = waiters_, it = waiters_->insert(waiters_->end(), &timer)] { list->erase(it); });
  co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return revision_;
}

}  // namespace squadron::registry
