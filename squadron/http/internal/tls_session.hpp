// One TLS connection's OpenSSL state, driven through memory: the server hands it the bytes it
// read from the socket (`feed`), takes plaintext out (`read`), puts plaintext in (`write`) and
// sends what OpenSSL wrote (`output`). So the connection's socket is read and written as a plain
// one's, in one send per batch of answers, and an idle connection holds only its `SSL` (whose
// record buffers OpenSSL frees while idle: SSL_MODE_RELEASE_BUFFERS).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "squadron/http/tls.hpp"

typedef struct bio_st BIO;

namespace squadron::http::internal {

class TlsSession final {
 public:
  // The BIO that the sessions of one thread share (it reaches the session it serves through its
  // data, set before each call into OpenSSL): one per connection would cost ~200 bytes each (a
  // BIO and its lock). One reference, for the thread's owner; null without memory.
  static BIO* new_shared_bio();
  static void free_bio(BIO* bio);
  // A session on `shared` (new_shared_bio(), of the calling thread). Null when OpenSSL has no
  // memory.
  static std::unique_ptr<TlsSession> make(std::shared_ptr<const TlsContext> context, BIO* shared);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Bytes read from the socket, for OpenSSL to take; they must stay valid until taken
  // (`wants_input()` true again).
  void feed(std::string_view cipher) noexcept { in_ = cipher; }
  bool wants_input() const noexcept { return in_.empty(); }
  // Plaintext into `buffer`: > 0 bytes; 0 when OpenSSL needs more input (and perhaps has
  // `output()` to send first, during a handshake); -1 when the peer closed (close_notify) or
  // the connection failed (a bad handshake: `failure()` says why).
  long read(char* buffer, std::size_t size);
  // Encrypts `plain` into output(); false when the connection failed.
  bool write(std::string_view plain);
  // What OpenSSL wrote, to send; the caller clears it once sent.
  std::string& output() noexcept { return out_; }
  // Input not yet taken, or plaintext OpenSSL holds: read() before waiting on the socket.
  bool pending() const noexcept;
  // Adds a close_notify to output() (after a finished handshake).
  void close_notify();
  bool sent_close_notify() const noexcept;
  // Gives back what a burst grew (output capacity, OpenSSL's record buffers) when the connection
  // goes idle, and has OpenSSL free its record buffers after each record again.
  void idle() noexcept;
  // Keeps OpenSSL's record buffers from record to record (a busy HTTP/2 connection: freeing and
  // making 2 x 17 KiB for every read and write cost two mallocs each) until idle().
  void busy() noexcept;
  bool handshake_done() const noexcept;
  std::string_view alpn() const noexcept;
  std::string_view failure() const noexcept { return failure_; }
  const std::string& hsts() const noexcept { return context_->hsts(); }

 private:
  TlsSession() = default;
  void bind() noexcept;  // points the shared BIO at this session
  friend struct TlsBio;
  SSL* ssl_ = nullptr;
  std::shared_ptr<const TlsContext> context_;  // its callbacks' argument while the SSL lives
  std::string_view in_;
  std::string out_;
  const char* failure_ = "";
};

}  // namespace squadron::http::internal
