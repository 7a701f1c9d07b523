// The fleet's output to its followers (`squadron logs -f`, the dashboard): every line of every
// instance, queued per follower and bounded — one that does not read is dropped with a last line
// saying so, and its memory is freed at once.
//
//   OutputFeed feed{io};
//   auto sub = feed.subscribe("hello");          // a service, an instance id, or "" for all
//   feed.publish(status, line);                  // from the runner's observer
//   feed.close_all();                            // the fleet is gone: every stream ends
//
// Thread safety: on the io_context's thread.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "squadron/supervisor/supervisor.hpp"

namespace squadron::control {

// Lines of instance output, queued for one follower; bounded in bytes.
struct OutputSubscription {
  explicit OutputSubscription(boost::asio::io_context& io) : wake(io) {}
  std::string filter;  // a service or an instance id; empty: all
  std::deque<std::string> lines;
  std::size_t bytes = 0;           // in `lines`, bounded (OutputFeed::kMaxFollowerBytes)
  bool overflowed = false;         // dropped for reading too slowly: say so, then end
  std::string overflow_detail;     // how much waited ("1.0 MiB")
  bool closed = false;             // the fleet is going away: end the stream
  boost::asio::steady_timer wake;  // cancelled when lines arrive or the feed closes
};

class OutputFeed final {
 public:
  // What one follower may have waiting for it, and all of them together: past either, the
  // follower (the one with the most, for the second) is dropped.
  static constexpr std::size_t kMaxFollowerBytes = std::size_t{1} << 20;
  static constexpr std::size_t kMaxFollowersBytes = std::size_t{16} << 20;

  explicit OutputFeed(boost::asio::io_context& io) : io_(io) {}
  ~OutputFeed() { close_all(); }

  // A new follower of `filter`'s lines; `closed` at once when nothing will come any more.
  std::shared_ptr<OutputSubscription> subscribe(std::string filter, bool closed);
  void publish(const supervisor::InstanceStatus& status, std::string_view line);
  // Ends every follower's stream (their last lines stay queued).
  void close_all();

 private:
  boost::asio::io_context& io_;
  std::vector<std::weak_ptr<OutputSubscription>> followers_;
};

}  // namespace squadron::control
