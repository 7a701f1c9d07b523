// Test-only: EtcdClient's calls made blocking (each runs a private io_context to its end), and
// waiting for a condition on etcd's contents with a deadline.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "etcd.hpp"
#include "squadron/cluster/etcd_client.hpp"

namespace squadron::testing {

template <class T>
boost::asio::awaitable<void> store_result(boost::asio::awaitable<T> a, std::optional<T>* out) {
  *out = co_await std::move(a);
}

// Runs `a` on `io` to its end.
template <class T>
T run_to_end(boost::asio::io_context& io, boost::asio::awaitable<T> a) {
  std::optional<T> out;
  boost::asio::co_spawn(io, store_result(std::move(a), &out), boost::asio::detached);
  io.restart();
  io.run();
  return std::move(*out);
}

// Runs `io` in short slices until `done` holds or `timeout` passes; whether it held (for tests
// whose etcd clients, elections and fleets share one io_context).
inline bool run_io_until(boost::asio::io_context& io, const std::function<bool()>& done,
                         std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    io.restart();
    io.run_for(std::chrono::milliseconds(20));
  }
  return true;
}

class SyncEtcd final {
 public:
  explicit SyncEtcd(const EtcdCluster& etcd) : client_(io_.get_executor(), options(etcd)) {}

  // key -> value of every key under `prefix` (empty when etcd cannot be read).
  std::vector<std::pair<std::string, std::string>> list(const std::string& prefix) {
    auto r = run_to_end(io_, client_.get_prefix(prefix));
    std::vector<std::pair<std::string, std::string>> out;
    if (r.has_error()) return out;
    for (auto& kv : r->kvs) out.emplace_back(kv.key, kv.value);
    return out;
  }
  std::optional<std::string> get(const std::string& key) {
    auto r = run_to_end(io_, client_.get(key));
    if (r.has_error() || r->kvs.empty()) return std::nullopt;
    return r->kvs[0].value;
  }
  // The key with its revisions and lease, if it exists.
  std::optional<cluster::KeyValue> key(const std::string& key) {
    auto r = run_to_end(io_, client_.get(key));
    if (r.has_error() || r->kvs.empty()) return std::nullopt;
    return r->kvs[0];
  }
  bool put(const std::string& key, const std::string& value) {
    return !run_to_end(io_, client_.put(key, value)).has_error();
  }
  bool remove(const std::string& key) { return !run_to_end(io_, client_.remove(key)).has_error(); }

  // Polls `check` (every 50 ms) until it holds or `timeout` passes; whether it held.
  static bool eventually(const std::function<bool()>& check, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!check()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }

 private:
  static cluster::EtcdOptions options(const EtcdCluster& etcd) {
    cluster::EtcdOptions o;
    for (const auto& e : etcd.endpoints()) {
      std::string error;
      if (auto m = cluster::parse_member(e, error)) o.members.push_back(*m);
    }
    return o;
  }
  boost::asio::io_context io_;
  cluster::EtcdClient client_;
};

}  // namespace squadron::testing
