#include "squadron/gateway/follower.hpp"

#include <algorithm>
#include <charconv>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

namespace squadron::gateway {

namespace asio = boost::asio;
using namespace std::chrono_literals;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

bool parse_control_url(std::string_view url, WatchTarget& out) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) return false;
  url.remove_prefix(kScheme.size());
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  const auto colon = url.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  unsigned port = 0;
  const auto digits = url.substr(colon + 1);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || p != digits.data() + digits.size() || port == 0 || port > 65535)
    return false;
  out.host = std::string(url.substr(0, colon));
  if (out.host == "localhost" || out.host == "0.0.0.0") out.host = "127.0.0.1";
  out.port = static_cast<std::uint16_t>(port);
  return true;
}

bool parse_control_urls(std::string_view urls, std::vector<WatchTarget>& out) {
  out.clear();
  while (true) {
    const auto comma = urls.find(',');
    WatchTarget t;
    if (!parse_control_url(urls.substr(0, comma), t)) return false;
    out.push_back(std::move(t));
    if (comma == std::string_view::npos) return true;
    urls.remove_prefix(comma + 1);
  }
}

Follower::Follower(asio::io_context::executor_type executor, Proxy& proxy, WatchTarget target,
                   std::function<void(const std::string&)> log)
    : Follower(executor, proxy, std::vector<WatchTarget>{std::move(target)}, std::move(log)) {}

Follower::Follower(asio::io_context::executor_type executor, Proxy& proxy,
                   std::vector<WatchTarget> targets, std::function<void(const std::string&)> log)
    : proxy_(proxy),
      targets_(std::move(targets)),
      log_(std::move(log)),
      pool_(executor, 1),
      pause_(executor) {
  if (targets_.empty()) targets_.emplace_back();
}

void Follower::stop() {
  stopping_ = true;
  pool_.cancel_all();
  pause_.cancel();
}

asio::awaitable<void> Follower::run() {
  std::uint64_t revision = 0;
  bool following = false;
  bool complained = false;
  std::size_t failed_in_a_row = 0;  // control APIs that did not answer since the last that did
  static constexpr std::pair<std::string_view, std::string_view> kFields[] = {
      {"User-Agent", "squadron-gateway"}};
  while (!stopping_) {
    const std::string target = "/api/v1/watch?since=" + std::to_string(revision) + "&timeout=25s";
    http::SimpleRequest request;
    request.target = target;
    request.fields = kFields;
    request.deadline = std::chrono::steady_clock::now() + 40s;
    request.connect_timeout = 2s;
    http::Response res;
    const WatchTarget& at = targets_[current_];
    const auto x = co_await pool_.send(at.host, at.port, request, res);
    if (stopping_) break;
    std::string problem;
    if (x.outcome != http::Outcome::kAnswered) {
      problem = x.error;
    } else if (res.status != 200) {
      problem = "it answered " + std::to_string(res.status) + " to the watch";
    } else {
      boost::system::error_code jec;
      const auto doc = boost::json::parse(res.body, jec);
      std::string error = jec ? jec.message() : std::string();
      auto table = jec ? nullptr : RouteTable::from_watch(doc, error, local_host_);
      if (!table) problem = "unreadable watch answer: " + error;
      if (table) {
        if (!following || complained) {
          log_("following the control plane at http://" + at.host + ":" + std::to_string(at.port));
          following = true;
          complained = false;
        }
        failed_in_a_row = 0;
        if (table->revision() != revision || revision == 0) {
          revision = table->revision();
          proxy_.publish(std::move(table));
        }
        continue;
      }
    }
    // The next control API at once; a second's pause once each was tried.
    failed_in_a_row = std::min(failed_in_a_row + 1, targets_.size());
    current_ = (current_ + 1) % targets_.size();
    if (failed_in_a_row < targets_.size()) continue;
    if (!complained) {
      log_("the control plane is unreachable (" + problem +
           "); serving from the last routes, retrying every second");
      complained = true;
    }
    pause_.expires_after(1s);
    co_await pause_.async_wait(kAwait);
  }
}

}  // namespace squadron::gateway
