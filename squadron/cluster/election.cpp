#include "squadron/cluster/election.hpp"

#include <algorithm>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "squadron/core/spawn.hpp"

namespace squadron::cluster {
namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

std::string leader_text(const LeaderInfo& l) {
  return json::serialize(json::object{{"name", l.name}, {"url", l.url}});
}

std::optional<LeaderInfo> parse_leader(std::string_view text) {
  boost::system::error_code ec;
  const auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto* name = v.get_object().if_contains("name");
  const auto* url = v.get_object().if_contains("url");
  if (name == nullptr || !name->is_string() || url == nullptr || !url->is_string())
    return std::nullopt;
  return LeaderInfo{std::string(name->get_string()), std::string(url->get_string())};
}

Election::Election(asio::io_context& io, EtcdClient& etcd, ElectionOptions options,
                   std::function<void(bool)> on_change)
    : io_(io),
      etcd_(etcd),
      options_(std::move(options)),
      on_change_(std::move(on_change)),
      keys_(options_.fleet),
      pauses_(io) {
  options_.ttl = std::max(options_.ttl, std::chrono::seconds(2));
}

Election::~Election() = default;

void Election::say(const std::string& what) const {
  if (options_.log) options_.log(what);
}

void Election::set_leading(bool leading) {
  if (leading == leading_) return;
  leading_ = leading;
  if (!leading) fence_ = 0;
  if (on_change_) on_change_(leading);
}

void Election::start() { core::spawn(io_, run(), "the leader election"); }

asio::awaitable<void> Election::run() {
  const LeaderInfo me{options_.name, options_.url};
  std::string last_problem;
  auto problem = [&](const std::string& p) {
    if (p != last_problem) say(p);
    last_problem = p;
  };
  while (!stopped_) {
    if (lease_ == 0) {
      auto granted = co_await etcd_.grant(options_.ttl);
      if (stopped_) break;
      if (granted.has_error()) {
        problem("cannot campaign for leader: " + granted.error().message);
        co_await pauses_.pause(options_.retry);
        continue;
      }
      lease_ = granted->id;
    }
    Compare absent;
    absent.key = keys_.leader();
    absent.target = Compare::Target::kCreate;
    absent.number = 0;
    Operation claim;
    claim.kind = Operation::Kind::kPut;
    claim.key = keys_.leader();
    claim.value = leader_text(me);
    claim.lease = lease_;
    Operation read;
    read.key = keys_.leader();
    // (Built before the co_await: GCC 12 cannot keep an initializer list across a suspension.)
    std::vector<Compare> compare{absent};
    std::vector<Operation> success{claim}, failure{read};
    auto r = co_await etcd_.txn(std::move(compare), std::move(success), std::move(failure));
    if (stopped_) break;
    if (r.has_error()) {
      if (r.error().code == EtcdErrc::kLeaseNotFound) lease_ = 0;
      problem("cannot campaign for leader: " + r.error().message);
      co_await pauses_.pause(options_.retry);
      continue;
    }
    last_problem.clear();
    if (r->succeeded) {
      fence_ = r->header.revision;
      leader_ = me;
      say(fmt::format("leading the fleet (lease {}, fence {})", lease_, fence_));
      set_leading(true);
      co_await lead();
      continue;
    }
    // Another leads. This lease is not needed while following: it lapses by itself.
    lease_ = 0;
    std::optional<LeaderInfo> seen;
    if (!r->responses.empty() && !r->responses[0].empty())
      seen = parse_leader(r->responses[0][0].value);
    if (seen != leader_ && seen) say(fmt::format("{} leads ({})", seen->name, seen->url));
    leader_ = seen;
    co_await follow(r->header.revision + 1);
  }
}

asio::awaitable<void> Election::lead() {
  const auto period = std::max<std::chrono::milliseconds>(options_.ttl / 3, 200ms);
  auto renewed_at = std::chrono::steady_clock::now();
  while (!stopped_ && leading_) {
    co_await pauses_.pause(period);
    if (stopped_ || !leading_) break;
    auto r = co_await etcd_.keep_alive(lease_);
    if (stopped_ || !leading_) break;
    if (!r.has_error()) {
      renewed_at = std::chrono::steady_clock::now();
      continue;
    }
    if (r.error().code == EtcdErrc::kLeaseNotFound) {
      say("stepping down: the leader's lease lapsed");
    } else if (std::chrono::steady_clock::now() - renewed_at >= options_.ttl - period) {
      // etcd may let the lease lapse any moment now and another lead: step down first.
      say("stepping down: the leader's lease could not be renewed (" + r.error().message + ")");
    } else {
      continue;
    }
    lease_ = 0;
    leader_.reset();
    set_leading(false);
  }
}

asio::awaitable<void> Election::follow(std::int64_t from_revision) {
  auto end = co_await etcd_.watch(keys_.leader(), {}, from_revision, [this](const WatchAnswer& w) {
    for (const auto& e : w.events) {
      if (e.type == WatchEvent::Type::kDelete) {
        leader_.reset();
        return false;  // campaign
      }
      auto seen = parse_leader(e.kv.value);
      if (seen && seen != leader_) say(fmt::format("{} leads ({})", seen->name, seen->url));
      leader_ = seen;
    }
    return true;
  });
  if (!end.has_error() || stopped_) co_return;
  if (end.error().code == EtcdErrc::kUnavailable) {
    say("cannot follow the leader key: " + end.error().message);
    co_await pauses_.pause(options_.retry);
  }
}

asio::awaitable<void> Election::resign(std::function<void()> done) {
  const std::int64_t fence = fence_;
  const std::int64_t lease = std::exchange(lease_, 0);
  if (leading_ && fence != 0) {
    Compare mine;
    mine.key = keys_.leader();
    mine.target = Compare::Target::kCreate;
    mine.number = fence;
    Operation drop;
    drop.kind = Operation::Kind::kDelete;
    drop.key = keys_.leader();
    std::vector<Compare> compare{mine};
    std::vector<Operation> success{drop};
    auto r = co_await etcd_.txn(std::move(compare), std::move(success), {});
    if (r.has_error()) say("could not resign: " + r.error().message);
  }
  if (lease != 0) co_await etcd_.revoke(lease);
  leader_.reset();
  set_leading(false);
  if (done) done();
}

void Election::stop(std::function<void()> done) {
  if (stopped_) return;
  stopped_ = true;
  pauses_.cancel_all();
  core::spawn(io_, resign(std::move(done)), "the leader's resignation");
}

}  // namespace squadron::cluster
