// nghttp2's callbacks and options for one kind of session (the server's, the upstream client's),
// made once and shared: nghttp2 copies them into each session. Every session opens its windows
// only as its bodies are taken (no automatic WINDOW_UPDATE): a slow reader holds its peer back
// instead of the process buffering for it.
#pragma once

#include <nghttp2/nghttp2.h>
#include <string_view>

#include "squadron/http/request.hpp"

namespace squadron::http::internal {

// Fields that mean something to one HTTP/1.1 connection only: never sent in HTTP/2 (RFC 9113
// §8.2.2; the peer would reset the stream). The server's answers and the upstream client's
// requests both leave them out.
inline bool connection_specific(std::string_view name) noexcept {
  return iequals(name, "connection") || iequals(name, "keep-alive") ||
         iequals(name, "proxy-connection") || iequals(name, "transfer-encoding") ||
         iequals(name, "upgrade");
}

// A field as nghttp2 takes it (it copies both strings when the frame is submitted). A request id
// is sent never indexed (RFC 7541 §6.2.3): a value new with every message would take a place in
// the HPACK table each time (an allocation, a copy, an eviction) and push out the fields that do
// repeat (content-type, date...), which then go out in full again: 12 % of the instructions of
// a request through the gateway (callgrind, bench/h2_ir.sh).
inline nghttp2_nv field_nv(std::string_view name, std::string_view value) noexcept {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          static_cast<uint8_t>(iequals(name, "x-request-id") ? NGHTTP2_NV_FLAG_NO_INDEX
                                                             : NGHTTP2_NV_FLAG_NONE)};
}

struct Nghttp2Setup {
  explicit Nghttp2Setup(void (*install)(nghttp2_session_callbacks*)) {
    nghttp2_session_callbacks_new(&callbacks);
    install(callbacks);
    nghttp2_option_new(&option);
    nghttp2_option_set_no_auto_window_update(option, 1);
  }
  ~Nghttp2Setup() {
    nghttp2_session_callbacks_del(callbacks);
    nghttp2_option_del(option);
  }
  Nghttp2Setup(const Nghttp2Setup&) = delete;
  Nghttp2Setup& operator=(const Nghttp2Setup&) = delete;
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_option* option = nullptr;
};

}  // namespace squadron::http::internal
