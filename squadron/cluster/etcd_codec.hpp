// etcd's v3 API as its JSON gateway speaks it (etcd 3.4: POST /v3/kv/range, /v3/kv/put,
// /v3/kv/deleterange, /v3/kv/txn, /v3/lease/{grant,keepalive,revoke}, /v3/watch): the request
// bodies and the answers, as plain values. Keys and values travel base64, 64-bit numbers as
// decimal strings, fields equal to their default are left out (proto3's JSON mapping). No Asio
// here: the fuzzer links just this; EtcdClient (etcd_client.hpp) sends what it builds.
//
//   std::string body = put_body("/squadron/hosts/h1", value, lease);
//   auto r = parse_header_answer(answer_text);     // r.has_error(): r.error().message says why
//   auto w = parse_watch_line(line);               // one line of a watch's stream
//
// Thread safety: plain functions and values.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

namespace squadron::cluster {

// What went wrong talking to etcd.
enum class EtcdErrc {
  kUnavailable = 1,  // no member answered (refused, timed out, cut off)
  kRejected,         // a member answered with an error (its gRPC code and message kept)
  kLeaseNotFound,    // the lease expired or was revoked (gRPC NOT_FOUND on a lease)
  kCompacted,        // a watch's start revision was compacted away: read the state anew
  kMalformed,        // an answer that is not what the API documents
  kCanceled,         // the caller stopped it
};
std::string_view to_string(EtcdErrc e) noexcept;

struct EtcdError {
  EtcdErrc code = EtcdErrc::kUnavailable;
  std::string message;  // for people: what failed, where, and what to do when it is known
  int grpc_code = 0;    // kRejected: etcd's gRPC status code (e.g. 9 failed precondition)
};

// EtcdResult's value() on an error throws std::runtime_error with the message; callers test
// has_error() instead (no exception crosses a component's API).
[[noreturn]] void throw_exception_from_error(const EtcdError& e, const boost::source_location& loc);

template <class T>
using EtcdResult = boost::system::result<T, EtcdError>;

struct EtcdMember {
  std::string host;  // an address literal
  std::uint16_t port = 2379;
  friend bool operator==(const EtcdMember&, const EtcdMember&) = default;
};

// "http://10.0.0.1:2379", "10.0.0.1:2379", "[::1]:2379" or "localhost:2379" (the only name taken:
// cluster members are named by address). nullopt with `error` saying why.
std::optional<EtcdMember> parse_member(std::string_view text, std::string& error);
std::string to_string(const EtcdMember& m);

// RFC 4648 base64 (with padding), by OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock.
std::string base64_encode(std::string_view bytes);
// nullopt when `text` is not canonical base64.
std::optional<std::string> base64_decode(std::string_view text);

// The smallest key greater than every key that starts with `prefix` (etcd's range_end for a
// prefix); "\0" (the whole keyspace) for an empty prefix or one of 0xff bytes only.
std::string prefix_end(std::string_view prefix);

struct Header {
  std::int64_t revision = 0;  // the store's revision when the member answered
  std::uint64_t member_id = 0;
  std::uint64_t raft_term = 0;
};

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;  // 0: the key does not exist (in a delete event)
  std::int64_t lease = 0;

  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

// --- requests (JSON bodies) ---

// range: `key` alone, or [key, range_end); at `revision` (0: the newest); `limit` 0: all.
std::string range_body(std::string_view key, std::string_view range_end = {},
                       std::int64_t revision = 0, std::int64_t limit = 0);
std::string put_body(std::string_view key, std::string_view value, std::int64_t lease = 0);
std::string delete_body(std::string_view key, std::string_view range_end = {});

// A transaction: if every comparison holds, the success operations run, else the failure ones,
// all at one revision.
struct Compare {
  enum class Target { kVersion, kCreate, kMod, kValue, kLease };
  enum class Result { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  Target target = Target::kVersion;
  Result result = Result::kEqual;
  std::int64_t number = 0;  // for kVersion, kCreate, kMod, kLease
  std::string value;        // for kValue
};
struct Operation {
  enum class Kind { kRange, kPut, kDelete };
  Kind kind = Kind::kRange;
  std::string key;
  std::string range_end;   // range and delete: [key, range_end) when not empty
  std::string value;       // put
  std::int64_t lease = 0;  // put
};
std::string txn_body(std::span<const Compare> compare, std::span<const Operation> success,
                     std::span<const Operation> failure);

std::string lease_grant_body(std::int64_t ttl_seconds);
std::string lease_id_body(std::int64_t id);  // keepalive, revoke, timetolive

// Watch [key, range_end) from `start_revision` (0: from now); `prev_kv`: deletions carry the
// deleted value.
std::string watch_body(std::string_view key, std::string_view range_end,
                       std::int64_t start_revision, bool prev_kv = false);

// --- answers ---

// Any answer whose only interest is its header (put, delete, revoke); an {"error":..} body
// (gRPC's JSON error: code, message) is a kRejected or kLeaseNotFound error.
EtcdResult<Header> parse_header_answer(std::string_view text);

struct RangeAnswer {
  Header header;
  std::vector<KeyValue> kvs;
  std::int64_t count = 0;
  bool more = false;
};
EtcdResult<RangeAnswer> parse_range_answer(std::string_view text);

struct DeleteAnswer {
  Header header;
  std::int64_t deleted = 0;
};
EtcdResult<DeleteAnswer> parse_delete_answer(std::string_view text);

struct TxnAnswer {
  Header header;
  bool succeeded = false;
  // Each operation's answer of the branch that ran, in order; a range's keys in `kvs`, empty for
  // puts and deletes.
  std::vector<std::vector<KeyValue>> responses;
};
EtcdResult<TxnAnswer> parse_txn_answer(std::string_view text);

struct LeaseAnswer {
  Header header;
  std::int64_t id = 0;
  std::int64_t ttl = 0;  // seconds; the keepalive of a lease that is gone says 0: kLeaseNotFound
};
// A grant's answer, or one line of a keepalive's stream ({"result":{..}}).
EtcdResult<LeaseAnswer> parse_lease_answer(std::string_view text);

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;                   // a delete's: the key and its mod_revision (the deletion's)
  std::optional<KeyValue> prev;  // with prev_kv
};
struct WatchAnswer {
  Header header;
  bool created = false;
  bool canceled = false;
  std::string cancel_reason;
  std::int64_t compact_revision = 0;  // > 0: the start revision is gone (kCompacted)
  std::vector<WatchEvent> events;
};
// One line of a watch's stream ({"result":{..}} or {"error":..}).
EtcdResult<WatchAnswer> parse_watch_line(std::string_view text);

}  // namespace squadron::cluster
