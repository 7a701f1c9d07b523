#include "squadron/gateway/upstream_request.hpp"

#include <algorithm>
#include <cstdio>

#include "squadron/http/outbound.hpp"

namespace squadron::gateway {

namespace {

constexpr std::size_t kInlineBody = 16 * 1024;  // small bodies travel in the head's send

// Request fields written by the gateway itself rather than copied.
bool rewritten_field(std::string_view name) {
  return http::iequals(name, "x-request-id") || http::iequals(name, "x-forwarded-proto") ||
         http::iequals(name, "x-forwarded-host") || http::iequals(name, "grpc-timeout");
}

// Whether a `Connection` field of `req` names `name`: a hop-by-hop field of the client's, not
// passed on (RFC 9110 §7.6.1).
bool named_in_connection(const http::Request& req, std::string_view name) {
  const auto& fields = req.headers();
  return std::any_of(fields.begin(), fields.end(), [&](const auto& h) {
    return http::iequals(h.name, "connection") && http::has_token(h.value, name);
  });
}

bool idempotent(http::Method m) {
  using M = http::Method;
  return m == M::kGet || m == M::kHead || m == M::kOptions || m == M::kPut || m == M::kDelete;
}

// The end-to-end fields, then X-Forwarded-For: the peer's address, after what a trusted proxy
// said (all its XFF fields, in order); from anyone else a client's own XFF is a lie it may tell.
void copy_fields(const http::Request& req, bool trusted_peer, bool upgrade,
                 http::RequestHead& head) {
  std::string forwarded_for;
  const bool has_connection = req.header("connection").has_value();  // usually absent (1.1)
  for (const auto& h : req.headers()) {
    if (http::hop_by_hop_field(h.name) || (has_connection && named_in_connection(req, h.name)))
      continue;
    if (http::iequals(h.name, "x-forwarded-for")) {
      if (trusted_peer && !h.value.empty()) forwarded_for.append(h.value).append(", ");
      continue;
    }
    if (!rewritten_field(h.name)) head.field(h.name, h.value);
  }
  forwarded_for.append(req.remote_address());
  head.field("X-Forwarded-For", forwarded_for)
      .field("X-Forwarded-Proto", req.secure() ? "https" : "http");
  if (auto host = req.header("host")) head.field("X-Forwarded-Host", *host);
  head.field("X-Request-Id", req.request_id());
  if (upgrade) {  // the one hop-by-hop request the gateway passes on
    head.field("Connection", "Upgrade").field("Upgrade", req.header("upgrade").value_or(""));
  }
}

}  // namespace

bool is_grpc(const http::Request& req) {
  const auto type = req.header("content-type");
  // application/grpc, application/grpc+proto...; gRPC-Web is another protocol (no trailers).
  return type && type->size() >= 16 && http::iequals(type->substr(0, 16), "application/grpc") &&
         (type->size() == 16 || (*type)[16] == '+' || (*type)[16] == ';');
}

bool wants_upgrade(const http::Request& req) {
  const auto upgrade = req.header("upgrade");
  return upgrade && !upgrade->empty() && named_in_connection(req, "upgrade") &&
         req.body().empty() && req.body_reader() == nullptr &&
         !req.header("transfer-encoding").has_value() &&
         req.header("content-length").value_or("0") == "0";
}

bool dropped_response_field(std::string_view name) {
  switch (name.size()) {  // by length first: most answer fields fail at once
    case 2:
      return http::iequals(name, "te");
    case 4:
      return http::iequals(name, "date");
    case 7:
      return http::iequals(name, "trailer") || http::iequals(name, "upgrade");
    case 12:
      return http::iequals(name, "x-request-id");
    case 16:
      return http::iequals(name, "proxy-connection");
    default:
      return false;
  }
}

void ensure_request_id(http::Request& req, core::SplitMix64& rng) {
  if (!req.request_id().empty()) return;
  if (auto id = req.header("x-request-id"); id && !id->empty() && id->size() <= 200) {
    req.set_request_id(*id);
    return;
  }
  char made[16];
  std::uint64_t z = rng();
  for (int i = 15; i >= 0; --i, z >>= 4)
    made[static_cast<std::size_t>(i)] = "0123456789abcdef"[z & 15];
  req.set_request_id(std::string_view(made, sizeof made));
}

void UpstreamRequest::build(http::Request& req, const RouteMatch& match, bool trusted_peer,
                            std::chrono::milliseconds timeout,
                            std::chrono::steady_clock::time_point started_at) {
  head_.reserve(512 + req.target().size() + std::min(req.body().size(), kInlineBody));
  const auto [lead, rest] = match.upstream_target_parts(req.target());
  http::RequestHead head(head_, req.method_name(), lead, rest);
  upgrade = wants_upgrade(req);
  grpc = is_grpc(req);
  copy_fields(req, trusted_peer, upgrade, head);
  head.deadline(timeout);
  const bool grpc_deadline = grpc && req.header("grpc-timeout").has_value();
  if (grpc) {
    // The time left, not the client's figure (the gateway's own wait is part of it); and the
    // trailers gRPC ends with (TE is hop-by-hop: said again on this hop).
    if (grpc_deadline) {
      char left[24];
      const int n = std::snprintf(
          left, sizeof left, "%lldm",
          static_cast<long long>(std::min<std::int64_t>(timeout.count(), 99'999'999)));
      head.field("grpc-timeout", std::string_view(left, static_cast<std::size_t>(n)));
    }
    head.field("TE", "trailers");
  }
  // A streamed body (large or chunked) goes on as it arrives, framed as it came; one of
  // unknown length from an HTTP/2 client (no Content-Length: a gRPC call's) goes chunked.
  http::BodyReader* const streamed = req.body_reader();
  const bool chunked = streamed != nullptr && (req.header("transfer-encoding").has_value() ||
                                               !req.header("content-length").has_value());
  if (chunked) {
    head.end_chunked();
  } else if (streamed != nullptr) {
    head.end_with_declared_length(req.header("content-length").value_or("0"));
  } else {
    head.end_with_body(req.body().size());
  }
  inline_body_ = req.body().size() <= kInlineBody;
  if (inline_body_) head_.append(req.body());
  body_ = inline_body_ ? std::string_view() : req.body();

  const Policy& policy = match.service->policy;
  options.deadline = started_at + timeout;
  options.connect_timeout = policy.connect_timeout;
  // The route timeout bounds the answer's head; a streamed body may take as long as it goes on
  // arriving (an 8 s download is no timeout), each piece within the route timeout of the last.
  options.body_idle_timeout = policy.timeout;
  options.head = req.method() == http::Method::kHead;
  options.drop_header = &dropped_response_field;
  options.body = streamed;
  options.chunked_body = chunked;
  options.stream_above = 64 * 1024;  // larger answers flow through as they arrive
  // An HTTP/2 client's body may go on arriving after the answer began (a gRPC call streaming
  // both ways); a reset of its stream resets the upstream's.
  options.duplex = streamed != nullptr && req.http2();
  options.client = &req;
  // A streamed body cannot be sent twice: such a request is retried only when it got nowhere.
  // A gRPC call is retried only when its upstream did not process it (Attempts::after).
  replayable = idempotent(req.method()) && streamed == nullptr && !grpc;
  if (grpc) {
    // A call's messages may be minutes apart: its grpc-timeout bounds it, else nothing does but
    // the route timeout on its answer's head.
    options.body_idle_timeout =
        grpc_deadline ? std::chrono::milliseconds(0) : registry::bounds::kMaxDuration;
  }
}

}  // namespace squadron::gateway
