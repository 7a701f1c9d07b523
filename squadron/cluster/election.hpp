// Which of a fleet's servers leads: the one whose key keys.hpp's leader holds, under a lease the
// leader keeps alive (etcd's own recipe: a create-if-absent transaction, as its concurrency
// package's Election). The others watch the key and campaign the moment it is deleted (a leader
// that resigned, or whose lease lapsed). A leader that cannot renew its lease within the TTL
// steps down before etcd could let another lead; its writes meanwhile are fenced by
// fence() (the revision at which it took the key: a write that compares it fails once another
// leads).
//
//   Election e{io, etcd, {.fleet = "shop", .name = "s1", .url = "http://10.0.0.5:9900"},
//              [&](bool leading) { leading ? fleet.start() : fleet.pause(); }};
//   e.start();
//
// Thread safety: all calls on the io_context's thread. Destroy it after stop() and once the
// io_context has run out of work.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "squadron/cluster/etcd_client.hpp"
#include "squadron/cluster/keys.hpp"
#include "squadron/cluster/pauses.hpp"

namespace squadron::cluster {

struct ElectionOptions {
  std::string fleet;
  std::string name;             // this server's
  std::string url;              // where its control API answers (what the others forward to)
  std::chrono::seconds ttl{5};  // the leader's lease (minimum 2 s)
  std::chrono::milliseconds retry{500};  // after a failed etcd request
  std::function<void(const std::string&)> log;
};

struct LeaderInfo {
  std::string name;
  std::string url;
  friend bool operator==(const LeaderInfo&, const LeaderInfo&) = default;
};

class Election final {
 public:
  // `on_change(true)` when this server starts leading, `on_change(false)` when it stops.
  Election(boost::asio::io_context& io, EtcdClient& etcd, ElectionOptions options,
           std::function<void(bool leading)> on_change);
  ~Election();
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  void start();
  // Stops campaigning; a leader resigns first (its key deleted, its lease revoked), so that a
  // standby leads at once rather than after the TTL. `done` runs after that (the owner then stops
  // the EtcdClient, which ends the standby's watch).
  void stop(std::function<void()> done);

  bool leading() const noexcept { return leading_; }
  // Who leads, as last seen (this server when leading); nullopt when nobody is known to.
  const std::optional<LeaderInfo>& leader() const noexcept { return leader_; }
  // The leader key's create revision while leading (0 otherwise): compare it to fence a write.
  std::int64_t fence() const noexcept { return fence_; }
  const Keys& keys() const noexcept { return keys_; }

 private:
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> lead();
  boost::asio::awaitable<void> follow(std::int64_t from_revision);
  boost::asio::awaitable<void> resign(std::function<void()> done);
  void set_leading(bool leading);
  void say(const std::string& what) const;

  boost::asio::io_context& io_;
  EtcdClient& etcd_;
  ElectionOptions options_;
  std::function<void(bool)> on_change_;
  Keys keys_;
  bool stopped_ = false;
  bool leading_ = false;
  std::int64_t lease_ = 0;
  std::int64_t fence_ = 0;
  std::optional<LeaderInfo> leader_;
  Pauses pauses_;  // cancelled by stop()
};

std::string leader_text(const LeaderInfo& l);
std::optional<LeaderInfo> parse_leader(std::string_view text);

}  // namespace squadron::cluster
