#include "squadron/cluster/pauses.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace squadron::cluster {

boost::asio::awaitable<void> Pauses::pause(std::chrono::milliseconds d) {
  boost::asio::steady_timer t(io_, d);
  timers_.insert(&t);
  co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  timers_.erase(&t);
}

void Pauses::cancel_all() {
  for (auto* t : timers_) t->cancel();
}

}  // namespace squadron::cluster
