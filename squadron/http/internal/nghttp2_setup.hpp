// nghttp2's callbacks and options for one kind of session (the server's, the upstream client's),
// made once and shared: nghttp2 copies them into each session. Every session opens its windows
// only as its bodies are taken (no automatic WINDOW_UPDATE): a slow reader holds its peer back
// instead of the process buffering for it.
#pragma once

#include <nghttp2/nghttp2.h>

namespace squadron::http::internal {

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
