// TLS termination with OpenSSL 3: a listener's certificates (chosen by SNI), the Mozilla
// "intermediate" profile, session tickets under rotating keys, ALPN, and reloads that keep the
// connections already open (each holds the context it began with).
//
//   auto tls = TlsListener::make({.certificates = {{"site.pem", "site.key"}}}, error);
//   server.listen_also("0.0.0.0", 443, nullptr, tls);     // connections on it speak TLS
//   tls->reload(error);                                    // SIGHUP: new files, old ones kept on
//   error
//
// The server drives each connection's `SSL` through memory: bytes read from the socket are handed
// to OpenSSL, and what it writes is collected and sent by the server's own writes
// (tls_session.hpp), so a TLS connection waits between requests as a plain one does, with no buffer
// of its own.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace squadron::http {

struct TlsCertificate {
  std::filesystem::path cert;  // PEM: the certificate, then its chain
  std::filesystem::path key;   // PEM: its private key
};

struct TlsConfig {
  // The first one answers clients that send no server name, or one no certificate names.
  std::vector<TlsCertificate> certificates;
  // Protocols offered by ALPN, in the server's order of preference: HTTP/2 first (the server
  // speaks it unless ServerConfig::http2.enabled is false; then leave it out here too).
  std::vector<std::string> alpn = {"h2", "http/1.1"};
  // A session ticket key encrypts new tickets this long, then only decrypts for as long again;
  // the session lifetime (a ticket's) is the same.
  std::chrono::seconds ticket_key_lifetime = std::chrono::hours(1);
  // Strict-Transport-Security on every answer over TLS: max-age in seconds; 0: not sent.
  std::chrono::seconds hsts{0};
};

// The keys that encrypt session tickets: a new one every `lifetime`, the previous ones kept to
// decrypt tickets until they expire. Shared by every context of a listener (a reload keeps them,
// so resumption survives it). Thread-safe; time is given, so tests drive it.
class TicketKeys final {
 public:
  struct Key {
    std::array<unsigned char, 16> name{};
    std::array<unsigned char, 32> aes{};
    std::array<unsigned char, 32> hmac{};
    std::chrono::steady_clock::time_point made;
  };
  explicit TicketKeys(std::chrono::seconds lifetime) : lifetime_(lifetime) {}
  // The key that encrypts at `now` (a new one when the last is older than the lifetime).
  Key current(std::chrono::steady_clock::time_point now);
  // The key named `name` (16 bytes) if it still decrypts at `now` (until twice its lifetime
  // after it was made): `fresh` says whether it is the current one (else the client gets a new
  // ticket).
  bool find(const unsigned char* name, std::chrono::steady_clock::time_point now, Key& key,
            bool& fresh);
  std::size_t size() const;

 private:
  void rotate(std::chrono::steady_clock::time_point now);  // mutex_ held
  mutable std::mutex mutex_;
  std::chrono::seconds lifetime_;
  std::vector<Key> keys_;  // newest first
};

// One loaded configuration: an SSL_CTX per certificate, with the names each covers.
class TlsContext final {
 public:
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  // Loads every certificate and key, checks each key matches its certificate. Null with
  // `error` naming the file and what is wrong.
  static std::shared_ptr<TlsContext> load(const TlsConfig& config, std::shared_ptr<TicketKeys> keys,
                                          std::string& error);
  // A new server-side SSL on the default certificate (SNI switches it during the handshake).
  // Null only when OpenSSL has no memory.
  SSL* new_ssl() const;
  // The DNS names (and wildcards) each certificate covers, in order.
  const std::vector<std::vector<std::string>>& names() const noexcept { return names_; }
  // The certificate whose names cover `server_name` (exact first, then a wildcard of one
  // label), else the first: its index.
  std::size_t pick(std::string_view server_name) const;
  // The Strict-Transport-Security value its answers carry; empty: none.
  const std::string& hsts() const noexcept { return hsts_; }

 private:
  TlsContext() = default;
  friend int select_certificate(SSL* ssl, int* alert, void* arg);
  std::vector<SSL_CTX*> contexts_;
  std::vector<std::vector<std::string>> names_;
  std::string alpn_wire_;  // ALPN's wire form of config.alpn
  std::string hsts_;
  std::shared_ptr<TicketKeys> keys_;
};

// Checks `config` as a manifest does at validate time: "" when every certificate loads and
// matches its key, else what is wrong, naming the file.
std::string check_tls(const TlsConfig& config);

// A self-signed certificate for local use (Caddy's `tls internal`, without its CA): an ECDSA
// P-256 key and a certificate for `names` (DNS names or IP addresses; the first is its common
// name), valid `days`, written to cert.cert and cert.key (the key readable by its owner only)
// unless both exist and load already. "" when done, else what failed. Clients trust it by its
// own file (curl --cacert), or not at all.
std::string ensure_self_signed(const TlsCertificate& cert, const std::vector<std::string>& names,
                               int days = 365);

// A TLS listener: its current context, replaced by reload() (which keeps the current one when
// the new files do not load). Shared by the accepting thread and the connections' threads.
class TlsListener final {
 public:
  static std::shared_ptr<TlsListener> make(TlsConfig config, std::string& error);
  // Loads the files again: true if they load (new connections get them), else `error` and the
  // connections go on with the last good ones.
  bool reload(std::string& error);
  // Whether any file changed (size, modification time or inode) since the last load.
  bool files_changed() const;
  std::shared_ptr<const TlsContext> current() const;
  const TlsConfig& config() const noexcept { return config_; }

 private:
  struct Stamp {
    std::uintmax_t size = 0;
    std::int64_t mtime = 0;
    std::uint64_t inode = 0;
    bool operator==(const Stamp&) const = default;
  };
  static std::vector<Stamp> stamps(const TlsConfig& config);
  TlsConfig config_;
  std::shared_ptr<TicketKeys> keys_;
  mutable std::mutex mutex_;
  std::shared_ptr<const TlsContext> current_;
  std::vector<Stamp> stamps_;
};

// The names of the DNS subjectAltNames (else the common name) in PEM file `cert`: for tests and
// messages.
std::vector<std::string> certificate_names(const std::filesystem::path& cert, std::string& error);

}  // namespace squadron::http
