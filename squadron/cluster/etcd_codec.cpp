#include "squadron/cluster/etcd_codec.hpp"

#include <arpa/inet.h>
#include <charconv>
#include <limits>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdexcept>

#include <boost/json.hpp>
#include <boost/throw_exception.hpp>
#include <fmt/format.h>

#include "squadron/core/address.hpp"

namespace squadron::cluster {
namespace json = boost::json;

std::optional<EtcdMember> parse_member(std::string_view text, std::string& error) {
  std::string_view rest = text;
  if (rest.starts_with("https://")) {
    error =
        fmt::format("etcd member {}: https is not supported yet; give its http:// address", text);
    return std::nullopt;
  }
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  if (rest.ends_with('/')) rest.remove_suffix(1);
  EtcdMember m;
  if (!core::split_host_port(rest, m.host, m.port)) {
    error =
        fmt::format("etcd member '{}' is not an address and port (such as 10.0.0.1:2379)", text);
    return std::nullopt;
  }
  if (m.host == "localhost") m.host = "127.0.0.1";
  unsigned char address[sizeof(in6_addr)];
  if (inet_pton(AF_INET, m.host.c_str(), address) != 1 &&
      inet_pton(AF_INET6, m.host.c_str(), address) != 1) {
    error = fmt::format("etcd member '{}': name the member by its address (such as 10.0.0.1:2379)",
                        text);
    return std::nullopt;
  }
  return m;
}

std::string to_string(const EtcdMember& m) {
  return m.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", m.host, m.port)
                                               : fmt::format("{}:{}", m.host, m.port);
}

std::string_view to_string(EtcdErrc e) noexcept {
  switch (e) {
    case EtcdErrc::kUnavailable:
      return "etcd unavailable";
    case EtcdErrc::kRejected:
      return "etcd refused the request";
    case EtcdErrc::kLeaseNotFound:
      return "lease not found";
    case EtcdErrc::kCompacted:
      return "revision compacted";
    case EtcdErrc::kMalformed:
      return "malformed answer from etcd";
    case EtcdErrc::kCanceled:
      return "canceled";
  }
  return "etcd error";
}

void throw_exception_from_error(const EtcdError& e, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error(e.message), loc);
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  if (bytes.empty()) return out;
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  if (text.empty()) return std::string{};
  // EVP_DecodeBlock skips leading and trailing blanks and tolerates a few other liberties;
  // etcd writes canonical base64, so anything else is refused here first.
  std::size_t pad = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (c == '=') {
      if (i + 2 < text.size()) return std::nullopt;  // '=' only in the last two places
      ++pad;
    } else if (pad > 0 || !(alnum || c == '+' || c == '/')) {
      return std::nullopt;
    }
  }
  if (text.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) < pad) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - pad);  // EVP_DecodeBlock counts the padding as zeros
  if (base64_encode(out) != text) return std::nullopt;  // non-zero bits in the last character
  return out;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

namespace {

std::string int_text(std::int64_t v) { return std::to_string(v); }

void set_key(json::object& o, std::string_view name, std::string_view bytes) {
  if (!bytes.empty()) o[name] = base64_encode(bytes);
}

std::string text_of(const json::object& o) { return json::serialize(o); }

json::object range_object(std::string_view key, std::string_view range_end, std::int64_t revision,
                          std::int64_t limit) {
  json::object o;
  o["key"] = base64_encode(key);
  set_key(o, "range_end", range_end);
  if (revision > 0) o["revision"] = int_text(revision);
  if (limit > 0) o["limit"] = int_text(limit);
  return o;
}

json::object put_object(std::string_view key, std::string_view value, std::int64_t lease) {
  json::object o;
  o["key"] = base64_encode(key);
  o["value"] = base64_encode(value);
  if (lease != 0) o["lease"] = int_text(lease);
  return o;
}

json::object delete_object(std::string_view key, std::string_view range_end) {
  json::object o;
  o["key"] = base64_encode(key);
  set_key(o, "range_end", range_end);
  return o;
}

json::array operations(std::span<const Operation> ops) {
  json::array a;
  for (const auto& op : ops) {
    json::object o;
    switch (op.kind) {
      case Operation::Kind::kRange:
        o["request_range"] = range_object(op.key, op.range_end, 0, 0);
        break;
      case Operation::Kind::kPut:
        o["request_put"] = put_object(op.key, op.value, op.lease);
        break;
      case Operation::Kind::kDelete:
        o["request_delete_range"] = delete_object(op.key, op.range_end);
        break;
    }
    a.push_back(std::move(o));
  }
  return a;
}

// --- reading ---

// A proto3 JSON int64: a decimal string (as etcd writes it) or a number; absent means 0.
bool read_int(const json::object& o, std::string_view name, std::int64_t& out) {
  const auto* v = o.if_contains(name);
  if (v == nullptr) {
    out = 0;
    return true;
  }
  if (v->is_int64()) {
    out = v->get_int64();
    return true;
  }
  if (v->is_uint64()) {
    if (v->get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return false;
    out = static_cast<std::int64_t>(v->get_uint64());
    return true;
  }
  if (!v->is_string()) return false;
  const auto& s = v->get_string();
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size() && !s.empty();
}

bool read_uint(const json::object& o, std::string_view name, std::uint64_t& out) {
  const auto* v = o.if_contains(name);
  if (v == nullptr) {
    out = 0;
    return true;
  }
  if (v->is_uint64() || (v->is_int64() && v->get_int64() >= 0)) {
    out = v->is_uint64() ? v->get_uint64() : static_cast<std::uint64_t>(v->get_int64());
    return true;
  }
  if (!v->is_string()) return false;
  const auto& s = v->get_string();
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size() && !s.empty();
}

bool read_bool(const json::object& o, std::string_view name, bool& out) {
  const auto* v = o.if_contains(name);
  out = false;
  if (v == nullptr) return true;
  if (!v->is_bool()) return false;
  out = v->get_bool();
  return true;
}

bool read_bytes(const json::object& o, std::string_view name, std::string& out) {
  const auto* v = o.if_contains(name);
  out.clear();
  if (v == nullptr) return true;
  if (!v->is_string()) return false;
  auto decoded = base64_decode(v->get_string());
  if (!decoded) return false;
  out = std::move(*decoded);
  return true;
}

bool read_string(const json::object& o, std::string_view name, std::string& out) {
  const auto* v = o.if_contains(name);
  out.clear();
  if (v == nullptr) return true;
  if (!v->is_string()) return false;
  out = std::string(v->get_string());
  return true;
}

const json::object* object_at(const json::object& o, std::string_view name, bool& ok) {
  const auto* v = o.if_contains(name);
  if (v == nullptr) return nullptr;
  if (!v->is_object()) {
    ok = false;
    return nullptr;
  }
  return &v->get_object();
}

bool read_header(const json::object& o, Header& h) {
  bool ok = true;
  const auto* header = object_at(o, "header", ok);
  if (!ok) return false;
  h = {};
  if (header == nullptr) return true;
  return read_int(*header, "revision", h.revision) &&
         read_uint(*header, "member_id", h.member_id) &&
         read_uint(*header, "raft_term", h.raft_term);
}

bool read_kv(const json::object& o, KeyValue& kv) {
  return read_bytes(o, "key", kv.key) && read_bytes(o, "value", kv.value) &&
         read_int(o, "create_revision", kv.create_revision) &&
         read_int(o, "mod_revision", kv.mod_revision) && read_int(o, "version", kv.version) &&
         read_int(o, "lease", kv.lease);
}

bool read_kvs(const json::object& o, std::string_view name, std::vector<KeyValue>& out) {
  out.clear();
  const auto* v = o.if_contains(name);
  if (v == nullptr) return true;
  if (!v->is_array()) return false;
  for (const auto& item : v->get_array()) {
    if (!item.is_object()) return false;
    KeyValue kv;
    if (!read_kv(item.get_object(), kv)) return false;
    out.push_back(std::move(kv));
  }
  return true;
}

EtcdError malformed(std::string_view what) {
  return {EtcdErrc::kMalformed, "malformed answer from etcd: " + std::string(what), 0};
}

// The answer as a JSON object, or its {"error":..} as an EtcdError.
EtcdResult<json::object> answer_object(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec) return malformed("not JSON (" + ec.message() + ")");
  if (!v.is_object()) return malformed("not a JSON object");
  auto& o = v.get_object();
  if (const auto* err = o.if_contains("error")) {
    std::int64_t code = 0;
    std::string message;
    if (!read_int(o, "code", code)) code = 0;
    if (!read_string(o, "message", message) || message.empty())
      message = err->is_string() ? std::string(err->get_string()) : "an error without a message";
    const bool lease = code == 5 && message.find("lease not found") != std::string::npos;
    return EtcdError{lease ? EtcdErrc::kLeaseNotFound : EtcdErrc::kRejected, "etcd: " + message,
                     static_cast<int>(code)};
  }
  return std::move(o);
}

// A stream's line: {"result":{..}}, or an error.
EtcdResult<json::object> result_object(std::string_view text) {
  auto o = answer_object(text);
  if (o.has_error()) return o.error();
  const auto* r = o->if_contains("result");
  if (r == nullptr || !r->is_object()) return malformed("a stream's line without a result");
  return r->get_object();
}

}  // namespace

std::string range_body(std::string_view key, std::string_view range_end, std::int64_t revision,
                       std::int64_t limit) {
  return text_of(range_object(key, range_end, revision, limit));
}

std::string put_body(std::string_view key, std::string_view value, std::int64_t lease) {
  return text_of(put_object(key, value, lease));
}

std::string delete_body(std::string_view key, std::string_view range_end) {
  return text_of(delete_object(key, range_end));
}

std::string txn_body(std::span<const Compare> compare, std::span<const Operation> success,
                     std::span<const Operation> failure) {
  json::array cmp;
  for (const auto& c : compare) {
    json::object o;
    o["key"] = base64_encode(c.key);
    static constexpr std::string_view kResult[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
    o["result"] = kResult[static_cast<int>(c.result)];
    switch (c.target) {
      case Compare::Target::kVersion:
        o["target"] = "VERSION";
        o["version"] = int_text(c.number);
        break;
      case Compare::Target::kCreate:
        o["target"] = "CREATE";
        o["create_revision"] = int_text(c.number);
        break;
      case Compare::Target::kMod:
        o["target"] = "MOD";
        o["mod_revision"] = int_text(c.number);
        break;
      case Compare::Target::kValue:
        o["target"] = "VALUE";
        o["value"] = base64_encode(c.value);
        break;
      case Compare::Target::kLease:
        o["target"] = "LEASE";
        o["lease"] = int_text(c.number);
        break;
    }
    cmp.push_back(std::move(o));
  }
  json::object o;
  o["compare"] = std::move(cmp);
  o["success"] = operations(success);
  o["failure"] = operations(failure);
  return text_of(o);
}

std::string lease_grant_body(std::int64_t ttl_seconds) {
  json::object o;
  o["TTL"] = int_text(ttl_seconds);
  return text_of(o);
}

std::string lease_id_body(std::int64_t id) {
  json::object o;
  o["ID"] = int_text(id);
  return text_of(o);
}

std::string watch_body(std::string_view key, std::string_view range_end,
                       std::int64_t start_revision, bool prev_kv) {
  json::object create;
  create["key"] = base64_encode(key);
  set_key(create, "range_end", range_end);
  if (start_revision > 0) create["start_revision"] = int_text(start_revision);
  if (prev_kv) create["prev_kv"] = true;
  json::object o;
  o["create_request"] = std::move(create);
  return text_of(o);
}

EtcdResult<Header> parse_header_answer(std::string_view text) {
  auto o = answer_object(text);
  if (o.has_error()) return o.error();
  Header h;
  if (!read_header(*o, h)) return malformed("a bad header");
  return h;
}

EtcdResult<RangeAnswer> parse_range_answer(std::string_view text) {
  auto o = answer_object(text);
  if (o.has_error()) return o.error();
  RangeAnswer r;
  if (!read_header(*o, r.header) || !read_kvs(*o, "kvs", r.kvs) ||
      !read_int(*o, "count", r.count) || !read_bool(*o, "more", r.more))
    return malformed("a bad range answer");
  return r;
}

EtcdResult<DeleteAnswer> parse_delete_answer(std::string_view text) {
  auto o = answer_object(text);
  if (o.has_error()) return o.error();
  DeleteAnswer r;
  if (!read_header(*o, r.header) || !read_int(*o, "deleted", r.deleted))
    return malformed("a bad delete answer");
  return r;
}

EtcdResult<TxnAnswer> parse_txn_answer(std::string_view text) {
  auto o = answer_object(text);
  if (o.has_error()) return o.error();
  TxnAnswer r;
  if (!read_header(*o, r.header) || !read_bool(*o, "succeeded", r.succeeded))
    return malformed("a bad transaction answer");
  if (const auto* responses = o->if_contains("responses")) {
    if (!responses->is_array()) return malformed("a transaction's responses are not a list");
    for (const auto& item : responses->get_array()) {
      if (!item.is_object()) return malformed("a transaction's response is not an object");
      std::vector<KeyValue> kvs;
      bool ok = true;
      if (const auto* range = object_at(item.get_object(), "response_range", ok);
          range != nullptr) {
        if (!read_kvs(*range, "kvs", kvs)) return malformed("a bad range in a transaction");
      }
      if (!ok) return malformed("a bad range in a transaction");
      r.responses.push_back(std::move(kvs));
    }
  }
  return r;
}

EtcdResult<LeaseAnswer> parse_lease_answer(std::string_view text) {
  auto o = answer_object(text);
  if (o.has_error()) return o.error();
  const json::object* body = &*o;
  if (const auto* result = o->if_contains("result")) {
    if (!result->is_object()) return malformed("a lease answer's result is not an object");
    body = &result->get_object();
  }
  LeaseAnswer r;
  if (!read_header(*body, r.header) || !read_int(*body, "ID", r.id) ||
      !read_int(*body, "TTL", r.ttl))
    return malformed("a bad lease answer");
  if (r.ttl <= 0) {
    return EtcdError{EtcdErrc::kLeaseNotFound,
                     "etcd: lease " + std::to_string(r.id) + " is gone (expired or revoked)", 5};
  }
  return r;
}

EtcdResult<WatchAnswer> parse_watch_line(std::string_view text) {
  auto o = result_object(text);
  if (o.has_error()) return o.error();
  WatchAnswer w;
  if (!read_header(*o, w.header) || !read_bool(*o, "created", w.created) ||
      !read_bool(*o, "canceled", w.canceled) ||
      !read_string(*o, "cancel_reason", w.cancel_reason) ||
      !read_int(*o, "compact_revision", w.compact_revision))
    return malformed("a bad watch answer");
  if (const auto* events = o->if_contains("events")) {
    if (!events->is_array()) return malformed("a watch's events are not a list");
    for (const auto& item : events->get_array()) {
      if (!item.is_object()) return malformed("a watch event is not an object");
      const auto& e = item.get_object();
      WatchEvent event;
      std::string type;
      if (!read_string(e, "type", type)) return malformed("a watch event's type");
      if (type.empty() || type == "PUT") {
        event.type = WatchEvent::Type::kPut;
      } else if (type == "DELETE") {
        event.type = WatchEvent::Type::kDelete;
      } else {
        return malformed("a watch event of type " + type);
      }
      bool ok = true;
      const auto* kv = object_at(e, "kv", ok);
      if (!ok || kv == nullptr || !read_kv(*kv, event.kv)) return malformed("a watch event's kv");
      if (const auto* prev = object_at(e, "prev_kv", ok); prev != nullptr) {
        KeyValue p;
        if (!read_kv(*prev, p)) return malformed("a watch event's prev_kv");
        event.prev = std::move(p);
      }
      if (!ok) return malformed("a watch event's prev_kv");
      w.events.push_back(std::move(event));
    }
  }
  return w;
}

}  // namespace squadron::cluster
