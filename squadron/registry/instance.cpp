#include "squadron/registry/instance.hpp"

#include <algorithm>
#include <charconv>

#include <boost/json.hpp>

namespace squadron::registry {

namespace json = boost::json;
using std::chrono::system_clock;

namespace {

constexpr std::string_view kStates[] = {"starting", "ready",  "draining", "stopping",
                                        "backoff",  "failed", "stopped"};

long long to_unix_ms(system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

bool running(State s) {
  return s == State::kStarting || s == State::kReady || s == State::kDraining ||
         s == State::kStopping;
}

}  // namespace

long instance_number(std::string_view id) noexcept {
  const auto dash = id.rfind('-');
  long n = 0;
  if (dash != std::string_view::npos)
    std::from_chars(id.data() + dash + 1, id.data() + id.size(), n);
  return n;
}

std::string_view to_string(State s) noexcept { return kStates[static_cast<int>(s)]; }

std::optional<State> parse_state(std::string_view s) noexcept {
  for (std::size_t i = 0; i < std::size(kStates); ++i) {
    if (kStates[i] == s) return static_cast<State>(i);
  }
  return std::nullopt;
}

json::object to_json(const Instance& i, system_clock::time_point now) {
  json::object o;
  o["service"] = i.service;
  o["id"] = i.id;
  o["pid"] = i.pid;
  o["host"] = i.host;
  o["port"] = i.port;
  o["address"] = i.host + ":" + std::to_string(i.port);
  o["state"] = to_string(i.state);
  o["revision"] = i.revision;
  o["restarts"] = i.restarts;
  o["started_at_ms"] = to_unix_ms(i.started_at);
  const bool up = running(i.state) && i.started_at.time_since_epoch().count() != 0;
  o["uptime_s"] =
      up ? std::max<long long>(
               0, std::chrono::duration_cast<std::chrono::seconds>(now - i.started_at).count())
         : 0;
  o["last_exit"] = i.last_exit;
  o["oom_kills"] = i.oom_kills;
  if (!i.node.empty()) o["node"] = i.node;
  return o;
}

std::optional<Instance> instance_from_json(const json::value& v) {
  const auto* o = v.if_object();
  if (o == nullptr) return std::nullopt;
  auto str = [&](std::string_view k) -> const json::string* {
    const auto* x = o->if_contains(k);
    return x != nullptr ? x->if_string() : nullptr;
  };
  auto num = [&](std::string_view k) -> std::optional<std::int64_t> {
    const auto* x = o->if_contains(k);
    if (x == nullptr) return std::nullopt;
    if (x->is_int64()) return x->get_int64();
    if (x->is_uint64() && x->get_uint64() <= INT64_MAX)
      return static_cast<std::int64_t>(x->get_uint64());
    return std::nullopt;
  };
  const auto *service = str("service"), *id = str("id"), *state = str("state"), *host = str("host");
  const auto port = num("port");
  if (service == nullptr || id == nullptr || state == nullptr || host == nullptr || !port ||
      *port < 0 || *port > 65535)
    return std::nullopt;
  const auto s = parse_state(*state);
  if (!s) return std::nullopt;
  Instance i;
  i.service = *service;
  i.id = *id;
  i.host = *host;
  i.port = static_cast<std::uint16_t>(*port);
  i.state = *s;
  i.pid = static_cast<int>(num("pid").value_or(-1));
  i.restarts = static_cast<int>(num("restarts").value_or(0));
  i.oom_kills =
      static_cast<int>(std::clamp<std::int64_t>(num("oom_kills").value_or(0), 0, INT32_MAX));
  if (const auto* r = str("revision")) i.revision = *r;
  if (const auto* e = str("last_exit")) i.last_exit = *e;
  if (const auto* n = str("node")) i.node = *n;
  // Beyond year 2255 a time point in nanoseconds overflows: refuse rather than wrap.
  const auto started = num("started_at_ms").value_or(0);
  if (started < 0 || started > 9'000'000'000'000) return std::nullopt;
  i.started_at = system_clock::time_point(std::chrono::milliseconds(started));
  return i;
}

json::object to_json(const Event& e) {
  json::object o;
  o["revision"] = e.revision;
  o["at_ms"] = to_unix_ms(e.at);
  o["service"] = e.service;
  o["instance"] = e.instance;
  o["message"] = e.message;
  return o;
}

}  // namespace squadron::registry
