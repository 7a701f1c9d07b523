// The request head a client or a proxy sends upstream, and the answer a caller gives when the
// exchange failed: written once for the gateway and the SDK's squadron::Client.
//
//   std::string head;
//   http::RequestHead h(head, "POST", "/orders");
//   h.field("Host", "127.0.0.1:8080").deadline(std::chrono::milliseconds(900));
//   h.end_with_body(body.size());        // Content-Length (and 0 for an empty POST), then CRLF
//   auto res = http::failure_answer(x.outcome, "catalog", x.error, timeout);   // 502/503/504
//
// Thread safety: plain functions over the caller's strings.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "squadron/http/client.hpp"
#include "squadron/http/internal/chars.hpp"
#include "squadron/http/response.hpp"

namespace squadron::http {

// Appends a request head to `out`: the request line at construction, fields as added, and the
// body's framing (which ends the head) last. Names and values are the caller's to have checked.
class RequestHead final {
 public:
  RequestHead(std::string& out, std::string_view method, std::string_view target)
      : RequestHead(out, method, target.empty() ? std::string_view("/") : target, {}) {}
  // The target written in two parts, one after the other (a proxy's "/" before a stripped path).
  RequestHead(std::string& out, std::string_view method, std::string_view target_lead,
              std::string_view target_rest)
      : out_(out), method_(method) {
    out_.append(method).append(" ").append(target_lead).append(target_rest);
    out_.append(" HTTP/1.1\r\n");
  }
  // "Name: value\r\n".
  RequestHead& field(std::string_view name, std::string_view value) {
    internal::append_field_line(out_, name, value);
    return *this;
  }
  // X-Squadron-Timeout-Ms: the time the upstream has left to answer.
  RequestHead& deadline(std::chrono::milliseconds left);
  // A body of `length` bytes sent whole: Content-Length when there is a body, and also for an
  // empty POST, PUT or PATCH (RFC 9110 §8.6: a sender should say 0 there); ends the head.
  void end_with_body(std::size_t length);
  // A body sent as it arrives with the length it declared (the client's Content-Length value,
  // as the parser checked it); ends the head.
  void end_with_declared_length(std::string_view content_length);
  // A body sent chunked as it arrives; ends the head.
  void end_chunked();

 private:
  std::string& out_;
  std::string_view method_;
};

// Fields a client or proxy never copies into a request it sends on: hop-by-hop ones (RFC 9110
// §7.6.1: the connection's own, and Proxy-Authorization, spent on this hop), the framing and
// the deadline (RequestHead writes them) and Expect (100-continue is answered on this hop).
bool hop_by_hop_field(std::string_view name) noexcept;

// The answer to give when an exchange with `who` ended without a usable answer (precondition:
// outcome is not kAnswered): 504 when it timed out (`timeout` is the bound it had), 502 when it
// failed during the request or answered what cannot be passed on, 503 + Retry-After when it
// could not be reached; problem+json, `detail` saying why.
Response failure_answer(Outcome outcome, std::string_view who, std::string_view detail,
                        std::chrono::milliseconds timeout);

}  // namespace squadron::http
