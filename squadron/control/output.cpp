#include "squadron/control/output.hpp"

#include <fmt/format.h>

namespace squadron::control {

std::shared_ptr<OutputSubscription> OutputFeed::subscribe(std::string filter, bool closed) {
  auto f = std::make_shared<OutputSubscription>(io_);
  f->filter = std::move(filter);
  f->wake.expires_at(boost::asio::steady_timer::time_point::max());
  f->closed = closed;
  followers_.push_back(f);
  return f;
}

void OutputFeed::close_all() {
  for (auto& w : followers_) {
    if (auto f = w.lock()) {
      f->closed = true;
      f->wake.cancel();
    }
  }
}

void OutputFeed::publish(const supervisor::InstanceStatus& st, std::string_view line) {
  if (followers_.empty()) return;
  std::erase_if(followers_, [](const auto& w) { return w.expired(); });
  auto drop = [](OutputSubscription& f) {
    f.overflow_detail = fmt::format("{:.1f} MiB", static_cast<double>(f.bytes) / (1 << 20));
    std::deque<std::string>().swap(f.lines);  // the memory goes now, not when the reader does
    f.bytes = 0;
    f.overflowed = true;
    f.closed = true;
    f.wake.cancel();
  };
  std::size_t total = 0;
  OutputSubscription* largest = nullptr;
  for (auto& w : followers_) {
    auto f = w.lock();
    if (f->closed) continue;
    if (f->filter.empty() || f->filter == st.service || f->filter == st.id) {
      f->lines.push_back(fmt::format("{} | {}", st.id, line));
      f->bytes += f->lines.back().size() + 1;
      if (f->bytes > kMaxFollowerBytes) {
        drop(*f);
        continue;
      }
      f->wake.cancel();
    }
    total += f->bytes;
    if (largest == nullptr || f->bytes > largest->bytes) largest = f.get();
  }
  if (total > kMaxFollowersBytes && largest != nullptr) drop(*largest);
}

}  // namespace squadron::control
