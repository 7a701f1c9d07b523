// The etcd client of the cluster: etcd 3.4's documented v3 JSON API over Squadron's own HTTP/1.1
// client (http::ConnectionPool), to any member of a list. A request goes to the member that
// answered last; one that is down, refuses or does not answer within the request timeout makes
// the request go to the next, until every member was tried: then kUnavailable, with each
// member's failure and what to do. Nothing waits longer than its timeout.
//
//   EtcdClient etcd{io.get_executor(), {.members = {{"127.0.0.1", 2379}}}};
//   auto lease = co_await etcd.grant(10s);                       // EtcdResult<LeaseAnswer>
//   co_await etcd.put("/squadron/hosts/h1", info, lease->id);
//   co_await etcd.watch("/squadron/", prefix_end("/squadron/"), rev + 1, on_events);
//
// Writes are sent again to the next member when the first did not answer: every write Squadron
// makes is a put of a whole value, a delete or a compare-and-swap transaction, which a repeat
// cannot make wrong.
//
// Thread safety: one client per io_context thread (it uses that thread's connection pools).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "squadron/cluster/etcd_codec.hpp"

namespace squadron::cluster {

struct EtcdOptions {
  std::vector<EtcdMember> members;                  // at least one
  std::chrono::milliseconds request_timeout{2000};  // per member tried
  std::chrono::milliseconds connect_timeout{500};   // per member tried
  // A watch that has had no line for this long is made again from where it was (nothing is lost;
  // a member cut off without a reset is noticed). Default 30 s.
  std::chrono::milliseconds watch_idle{30000};
};

// Called with each batch of a watch's events, in revision order; returns whether to go on (false
// ends the watch: watch() returns success).
using WatchHandler = std::function<bool(const WatchAnswer&)>;

class EtcdClient final {
 public:
  EtcdClient(boost::asio::io_context::executor_type executor, EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  boost::asio::awaitable<EtcdResult<RangeAnswer>> get(std::string_view key);
  // Every key that starts with `prefix`, at `revision` (0: the newest).
  boost::asio::awaitable<EtcdResult<RangeAnswer>> get_prefix(std::string_view prefix,
                                                             std::int64_t revision = 0);
  boost::asio::awaitable<EtcdResult<Header>> put(std::string_view key, std::string_view value,
                                                 std::int64_t lease = 0);
  boost::asio::awaitable<EtcdResult<DeleteAnswer>> remove(std::string_view key);
  boost::asio::awaitable<EtcdResult<DeleteAnswer>> remove_prefix(std::string_view prefix);
  boost::asio::awaitable<EtcdResult<TxnAnswer>> txn(std::vector<Compare> compare,
                                                    std::vector<Operation> success,
                                                    std::vector<Operation> failure);

  boost::asio::awaitable<EtcdResult<LeaseAnswer>> grant(std::chrono::seconds ttl);
  // One renewal; kLeaseNotFound once the lease is gone (its keys with it).
  boost::asio::awaitable<EtcdResult<LeaseAnswer>> keep_alive(std::int64_t lease);
  boost::asio::awaitable<EtcdResult<Header>> revoke(std::int64_t lease);

  // Follows [key, range_end) from `start_revision`, calling `handler` for each batch of events,
  // until the handler returns false (returns success), stop() (returns kCanceled), the start
  // revision is compacted (kCompacted: read the state anew and watch from its revision + 1), or no
  // member can be reached within request_timeout (kUnavailable). A cut stream is made again, on the
  // next member if need be, from the revision after the last event handled: no event is lost or
  // repeated. Watches ask for a member with a leader (a member cut off from its cluster ends them,
  // and the watch moves on).
  boost::asio::awaitable<EtcdResult<void>> watch(std::string key, std::string range_end,
                                                 std::int64_t start_revision, WatchHandler handler);
  // Ends every watch and request in progress (each returns kCanceled), and every later one at
  // once: for an owner that is going away.
  void stop();

  // The member requests go to first (the last that answered).
  const EtcdMember& current_member() const noexcept;
  // Requests answered, and requests sent to another member after one failed, since the start.
  std::uint64_t requests() const noexcept;
  std::uint64_t failovers() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace squadron::cluster
