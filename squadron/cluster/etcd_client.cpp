#include "squadron/cluster/etcd_client.hpp"

#include <array>
#include <utility>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>

#include "squadron/core/address.hpp"
#include "squadron/http/client.hpp"

namespace squadron::cluster {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 1> kJson{
    {{"Content-Type", "application/json"}}};
// A watch that needs a member with a leader: a member cut off from the others ends it
// (etcd's WithRequireLeader, as gRPC metadata through the JSON gateway).
constexpr std::array<std::pair<std::string_view, std::string_view>, 2> kWatchFields{
    {{"Content-Type", "application/json"}, {"Grpc-Metadata-hasleader", "true"}}};

// An answer of a member that another member may answer better: no leader, a timeout inside
// etcd, or bytes that are not the API's.
bool try_another(const EtcdError& e) {
  return e.code == EtcdErrc::kMalformed ||
         (e.code == EtcdErrc::kRejected && (e.grpc_code == 14 || e.grpc_code == 4));
}

EtcdError canceled() { return {EtcdErrc::kCanceled, "canceled: the etcd client is stopping", 0}; }

}  // namespace

struct EtcdClient::Impl {
  Impl(asio::io_context::executor_type ex, EtcdOptions o)
      : options(std::move(o)), pool(std::move(ex)) {}

  EtcdOptions options;
  http::ConnectionPool pool;
  std::size_t current = 0;
  bool stopped = false;
  std::uint64_t requests = 0;
  std::uint64_t failovers = 0;

  http::SimpleRequest request(std::string_view path, std::string_view body) const {
    http::SimpleRequest r;
    r.method = "POST";
    r.target = path;
    r.fields = kJson;
    r.body = body;
    r.deadline = Clock::now() + options.request_timeout;
    r.connect_timeout = options.connect_timeout;
    return r;
  }

  // The answer's text from one member: the whole body, or with `first_line` the first line of a
  // stream (a keepalive's, which the gateway never ends: the connection is closed after it).
  // nullopt with `why` set when the member gave none.
  asio::awaitable<std::optional<std::string>> ask(const EtcdMember& m, std::string_view path,
                                                  std::string_view body, bool first_line,
                                                  std::string& why) {
    http::SimpleRequest r = request(path, body);
    if (first_line) {
      r.stream_above = 1;
      r.body_idle_timeout = options.request_timeout;
    }
    http::Response res;
    const auto x = co_await pool.send(m.host, m.port, r, res);
    if (x.outcome != http::Outcome::kAnswered) {
      why = x.error.empty() ? "no answer" : x.error;
      co_return std::nullopt;
    }
    if (!res.stream) co_return std::move(res.body);
    std::string text;
    const auto until = Clock::now() + options.request_timeout;
    while (Clock::now() < until) {
      auto piece = co_await res.stream();
      if (piece.failed() || piece.end) {
        if (!text.empty()) co_return text;
        why = piece.failed() ? piece.error : "the answer ended empty";
        co_return std::nullopt;
      }
      text += piece.data;
      if (const auto nl = text.find('\n'); nl != std::string::npos) {
        text.resize(nl);
        co_return text;
      }
    }
    why = "no whole line in time";
    co_return std::nullopt;
  }

  // `path` with `body` to the current member, then each other until one answers; `parse` reads
  // the answer into an EtcdResult<T>.
  template <class T, class Parse>
  asio::awaitable<EtcdResult<T>> call(std::string_view path, std::string body, Parse parse,
                                      bool first_line = false) {
    std::string failures;
    const std::size_t n = options.members.size();
    for (std::size_t tried = 0; tried < n; ++tried) {
      if (stopped) co_return canceled();
      const std::size_t index = (current + tried) % n;
      const EtcdMember& m = options.members[index];
      std::string why;
      auto text = co_await ask(m, path, body, first_line, why);
      if (stopped) co_return canceled();
      if (text) {
        EtcdResult<T> r = parse(*text);
        if (!r.has_error() || !try_another(r.error())) {
          if (index != current) ++failovers;
          current = index;
          ++requests;
          co_return r;
        }
        why = r.error().message;
      }
      failures += fmt::format("{}{}: {}", failures.empty() ? "" : "; ", to_string(m), why);
    }
    co_return EtcdError{
        EtcdErrc::kUnavailable,
        fmt::format("no etcd member answered {} ({}): start etcd, or fix the members' addresses "
                    "(cluster.etcd in the manifest, or --etcd)",
                    path, failures),
        0};
  }
};

EtcdClient::EtcdClient(asio::io_context::executor_type executor, EtcdOptions options)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(options))) {}

EtcdClient::~EtcdClient() = default;

asio::awaitable<EtcdResult<RangeAnswer>> EtcdClient::get(std::string_view key) {
  co_return co_await impl_->call<RangeAnswer>("/v3/kv/range", range_body(key), parse_range_answer);
}

asio::awaitable<EtcdResult<RangeAnswer>> EtcdClient::get_prefix(std::string_view prefix,
                                                                std::int64_t revision) {
  co_return co_await impl_->call<RangeAnswer>(
      "/v3/kv/range", range_body(prefix, prefix_end(prefix), revision), parse_range_answer);
}

asio::awaitable<EtcdResult<Header>> EtcdClient::put(std::string_view key, std::string_view value,
                                                    std::int64_t lease) {
  co_return co_await impl_->call<Header>("/v3/kv/put", put_body(key, value, lease),
                                         parse_header_answer);
}

asio::awaitable<EtcdResult<DeleteAnswer>> EtcdClient::remove(std::string_view key) {
  co_return co_await impl_->call<DeleteAnswer>("/v3/kv/deleterange", delete_body(key),
                                               parse_delete_answer);
}

asio::awaitable<EtcdResult<DeleteAnswer>> EtcdClient::remove_prefix(std::string_view prefix) {
  co_return co_await impl_->call<DeleteAnswer>(
      "/v3/kv/deleterange", delete_body(prefix, prefix_end(prefix)), parse_delete_answer);
}

asio::awaitable<EtcdResult<TxnAnswer>> EtcdClient::txn(std::vector<Compare> compare,
                                                       std::vector<Operation> success,
                                                       std::vector<Operation> failure) {
  co_return co_await impl_->call<TxnAnswer>("/v3/kv/txn", txn_body(compare, success, failure),
                                            parse_txn_answer);
}

asio::awaitable<EtcdResult<LeaseAnswer>> EtcdClient::grant(std::chrono::seconds ttl) {
  co_return co_await impl_->call<LeaseAnswer>("/v3/lease/grant", lease_grant_body(ttl.count()),
                                              parse_lease_answer);
}

asio::awaitable<EtcdResult<LeaseAnswer>> EtcdClient::keep_alive(std::int64_t lease) {
  co_return co_await impl_->call<LeaseAnswer>("/v3/lease/keepalive", lease_id_body(lease),
                                              parse_lease_answer, /*first_line=*/true);
}

asio::awaitable<EtcdResult<Header>> EtcdClient::revoke(std::int64_t lease) {
  co_return co_await impl_->call<Header>("/v3/lease/revoke", lease_id_body(lease),
                                         parse_header_answer);
}

asio::awaitable<EtcdResult<void>> EtcdClient::watch(std::string key, std::string range_end,
                                                    std::int64_t start_revision,
                                                    WatchHandler handler) {
  Impl& p = *impl_;
  std::int64_t next = start_revision;
  const std::size_t n = p.options.members.size();
  std::size_t failed_in_a_row = 0;  // members that gave nothing since the last that did
  std::string failures;
  while (true) {
    if (p.stopped) co_return canceled();
    const std::size_t index = p.current;
    const EtcdMember& m = p.options.members[index];
    http::SimpleRequest r = p.request("/v3/watch", {});
    const std::string body = watch_body(key, range_end, next);
    r.body = body;
    r.fields = kWatchFields;
    r.stream_above = 1;
    r.body_idle_timeout = p.options.watch_idle;
    http::Response res;
    const auto opened = Clock::now();
    const auto x = co_await p.pool.send(m.host, m.port, r, res);
    if (p.stopped) co_return canceled();
    // The member kept the watch: it delivered events, or held it open a while before the stream
    // ended (an idle watch made again). One that ends it at once, or cancels it, is a failure.
    bool heard = false;
    bool delivered = false;
    std::string why;
    if (x.outcome != http::Outcome::kAnswered) {
      why = x.error.empty() ? "no answer" : x.error;
    } else if (!res.stream) {
      const auto e = parse_watch_line(res.body);
      why = e.has_error() ? e.error().message : fmt::format("HTTP {} without a stream", res.status);
    } else {
      std::string buffer;
      bool more = true;
      while (more) {
        auto piece = co_await res.stream();
        if (p.stopped) co_return canceled();
        if (piece.failed() || piece.end) {
          why = piece.failed() ? piece.error : "the member ended the watch";
          break;
        }
        buffer += piece.data;
        std::size_t start = 0;
        for (std::size_t nl; more && (nl = buffer.find('\n', start)) != std::string::npos;
             start = nl + 1) {
          const std::string_view line(buffer.data() + start, nl - start);
          if (line.empty()) continue;
          auto w = parse_watch_line(line);
          if (w.has_error()) {
            why = w.error().message;
            more = false;
            break;
          }
          if (w->compact_revision > 0) {
            co_return EtcdError{EtcdErrc::kCompacted,
                                fmt::format("watch of {} from revision {}: compacted up to {}; "
                                            "read the state anew",
                                            key, next, w->compact_revision),
                                0};
          }
          if (w->canceled) {
            why = "the member ended the watch: " +
                  (w->cancel_reason.empty() ? std::string("no reason given") : w->cancel_reason);
            heard = false;
            more = false;
            break;
          }
          heard = true;
          if (!w->events.empty()) {
            delivered = true;
            next = w->events.back().kv.mod_revision + 1;
            const bool go_on = handler(*w);
            if (p.stopped) co_return canceled();
            if (!go_on) co_return EtcdResult<void>{};
          }
        }
        buffer.erase(0, start);
      }
    }
    if (heard && (delivered || Clock::now() - opened >= std::chrono::seconds(1))) {
      failed_in_a_row = 0;
      failures.clear();
      continue;  // the same member again, from `next`
    }
    failures += fmt::format("{}{}: {}", failures.empty() ? "" : "; ", to_string(m), why);
    if (++failed_in_a_row >= n) {
      co_return EtcdError{EtcdErrc::kUnavailable,
                          fmt::format("no etcd member keeps a watch of {} ({}): start etcd, or fix "
                                      "the members' addresses",
                                      key, failures),
                          0};
    }
    p.current = (index + 1) % n;
    ++p.failovers;
  }
}

void EtcdClient::stop() {
  impl_->stopped = true;
  impl_->pool.cancel_all();
}

const EtcdMember& EtcdClient::current_member() const noexcept {
  return impl_->options.members[impl_->current];
}
std::uint64_t EtcdClient::requests() const noexcept { return impl_->requests; }
std::uint64_t EtcdClient::failovers() const noexcept { return impl_->failovers; }

}  // namespace squadron::cluster
