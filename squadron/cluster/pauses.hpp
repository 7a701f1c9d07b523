// The waits of a component's loops (a retry after a failed etcd request, the next renewal of a
// lease), all ended at once when the component stops, so that its io_context runs out of work
// without waiting out a retry.
//
//   Pauses pauses{io};
//   co_await pauses.pause(500ms);      // in a loop
//   pauses.cancel_all();               // from stop(): every pause returns now
//
// Thread safety: all calls on the io_context's thread.
#pragma once

#include <chrono>
#include <set>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace squadron::cluster {

class Pauses final {
 public:
  explicit Pauses(boost::asio::io_context& io) : io_(io) {}
  Pauses(const Pauses&) = delete;
  Pauses& operator=(const Pauses&) = delete;

  // Returns after `d`, or at once when cancel_all() comes first.
  boost::asio::awaitable<void> pause(std::chrono::milliseconds d);
  void cancel_all();

 private:
  boost::asio::io_context& io_;
  std::set<boost::asio::steady_timer*> timers_;
};

}  // namespace squadron::cluster
