#include "squadron/http/tls.hpp"

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>

#include "squadron/http/internal/tls_session.hpp"

namespace squadron::http {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Mozilla's "intermediate" profile (ssl-config.mozilla.org, version 5.7): TLS 1.2 and 1.3, AEAD
// ciphers with forward secrecy, the client's order of preference (they are all strong).
constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
constexpr const char* kCiphers13 =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:prime256v1:secp384r1";

// OpenSSL's reason for the last failure (its queue emptied).
std::string openssl_reason() {
  std::string reason;
  while (const unsigned long e = ERR_get_error()) {
    const char* r = ERR_reason_error_string(e);
    reason = r != nullptr ? r : "error " + std::to_string(e);
  }
  return reason.empty() ? "unknown error" : reason;
}

int ticket_keys_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int context_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Session tickets under the listener's rotating keys (RFC 5077's recommended construction:
// AES-256-CBC and HMAC-SHA256, as OpenSSL's own default keys use).
int ticket_key_callback(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                        EVP_MAC_CTX* mac, int encrypt) {
  auto* keys =
      static_cast<TicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_keys_index()));
  if (keys == nullptr) return -1;
  // Fetched once: EVP_aes_256_cbc() would be looked up in the provider's tables at every call
  // (OpenSSL 3's implicit fetch), which made each handshake's two tickets cost a quarter of it.
  static EVP_CIPHER* const cbc = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  if (cbc == nullptr) return -1;
  const auto now = SteadyClock::now();
  TicketKeys::Key key;
  bool fresh = true;
  if (encrypt != 0) {
    key = keys->current(now);
    std::memcpy(name, key.name.data(), key.name.size());
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cbc)) <= 0) return -1;
  } else if (!keys->find(name, now, key, fresh)) {
    return 0;  // an unknown or expired key: a full handshake
  }
  char digest[] = "sha256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  const int ok = encrypt != 0 ? EVP_EncryptInit_ex(cipher, cbc, nullptr, key.aes.data(), iv)
                              : EVP_DecryptInit_ex(cipher, cbc, nullptr, key.aes.data(), iv);
  if (ok != 1) return -1;
  // 2: the client gets a new ticket. Always under TLS 1.3, whose clients use a ticket once
  // (RFC 8446 §C.4): without one, every other connection of theirs would be a full handshake
  // (as nginx does); under TLS 1.2 when an older key decrypted it.
  return fresh && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
}

int alpn_callback(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                  const unsigned char* in, unsigned int inlen, void* arg) {
  const auto* wire = static_cast<const std::string*>(arg);
  (void)ssl;
  unsigned char* selected = nullptr;
  // The first of the server's protocols the client offers.
  if (SSL_select_next_proto(&selected, outlen, reinterpret_cast<const unsigned char*>(wire->data()),
                            static_cast<unsigned int>(wire->size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // no protocol in common: go on without ALPN (HTTP/1.1)
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int no_passphrase(char*, int, int, void*) { return 0; }  // never prompts on a terminal

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::vector<std::string> names_of(X509* x509) {
  std::vector<std::string> names;
  auto* alt =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x509, NID_subject_alt_name, nullptr, nullptr));
  if (alt != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(alt); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(alt, i);
      if (n->type != GEN_DNS) continue;
      const ASN1_STRING* s = n->d.dNSName;
      names.push_back(
          lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                 static_cast<std::size_t>(ASN1_STRING_length(s)))));
    }
    GENERAL_NAMES_free(alt);
  }
  if (names.empty()) {
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x509), NID_commonName, cn, sizeof cn) > 0)
      names.push_back(lower(cn));
  }
  return names;
}

}  // namespace

// The certificate for the name the client asked for (SNI), before the handshake goes on.
int select_certificate(SSL* ssl, int* alert, void* arg) {
  (void)alert;
  const auto* self = static_cast<const TlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr || self->contexts_.size() == 1) return SSL_TLSEXT_ERR_OK;
  const std::size_t i = self->pick(name);
  if (i != 0 && SSL_set_SSL_CTX(ssl, self->contexts_[i]) == nullptr)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  return SSL_TLSEXT_ERR_OK;
}

TicketKeys::Key TicketKeys::current(SteadyClock::time_point now) {
  std::lock_guard lock(mutex_);
  if (keys_.empty() || now - keys_.front().made >= lifetime_) rotate(now);
  return keys_.front();
}

bool TicketKeys::find(const unsigned char* name, SteadyClock::time_point now, Key& key,
                      bool& fresh) {
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (std::memcmp(keys_[i].name.data(), name, keys_[i].name.size()) != 0) continue;
    if (now - keys_[i].made >= 2 * lifetime_) return false;
    key = keys_[i];
    fresh = i == 0 && now - keys_[i].made < lifetime_;
    return true;
  }
  return false;
}

std::size_t TicketKeys::size() const {
  std::lock_guard lock(mutex_);
  return keys_.size();
}

void TicketKeys::rotate(SteadyClock::time_point now) {
  Key key;
  key.made = now;
  if (RAND_bytes(key.name.data(), static_cast<int>(key.name.size())) != 1 ||
      RAND_bytes(key.aes.data(), static_cast<int>(key.aes.size())) != 1 ||
      RAND_bytes(key.hmac.data(), static_cast<int>(key.hmac.size())) != 1)
    return;  // no randomness: the current key stays (OpenSSL's RNG does not fail once seeded)
  keys_.insert(keys_.begin(), key);
  // A key decrypts until twice its lifetime after it was made.
  std::erase_if(keys_, [&](const Key& k) { return now - k.made >= 2 * lifetime_; });
}

TlsContext::~TlsContext() {
  for (SSL_CTX* c : contexts_) SSL_CTX_free(c);
}

std::shared_ptr<TlsContext> TlsContext::load(const TlsConfig& config,
                                             std::shared_ptr<TicketKeys> keys, std::string& error) {
  if (config.certificates.empty()) {
    error = "no certificate";
    return nullptr;
  }
  std::shared_ptr<TlsContext> self(new TlsContext());
  self->keys_ = std::move(keys);
  if (config.hsts.count() > 0) self->hsts_ = "max-age=" + std::to_string(config.hsts.count());
  for (const auto& p : config.alpn) {
    if (p.empty() || p.size() > 255) {
      error = "an ALPN protocol name is 1-255 bytes";
      return nullptr;
    }
    self->alpn_wire_ += static_cast<char>(p.size());
    self->alpn_wire_ += p;
  }
  ERR_clear_error();
  for (const auto& [cert, key] : config.certificates) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) {
      error = "OpenSSL: " + openssl_reason();
      return nullptr;
    }
    self->contexts_.push_back(ctx);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    // Idle connections give their record buffers back (OpenSSL keeps ~34 KiB per SSL otherwise).
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    // Resumption by tickets alone (stateless, so nothing per session is kept here).
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_timeout(ctx, static_cast<long>(config.ticket_key_lifetime.count()));
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (SSL_CTX_set_cipher_list(ctx, kCiphers12) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, kCiphers13) != 1 ||
        SSL_CTX_set1_groups_list(ctx, kGroups) != 1 || SSL_CTX_set_dh_auto(ctx, 1) != 1) {
      error = "OpenSSL lacks the intermediate profile: " + openssl_reason();
      return nullptr;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
      error = cert.string() + ": not a PEM certificate (" + openssl_reason() + ")";
      return nullptr;
    }
    const bool key_loads = SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) == 1;
    const bool mismatch =
        !key_loads && ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    if (!key_loads && !mismatch) {
      error =
          key.string() + ": not a PEM private key without a passphrase (" + openssl_reason() + ")";
      return nullptr;
    }
    if (mismatch || SSL_CTX_check_private_key(ctx) != 1) {
      ERR_clear_error();
      error = key.string() + ": is not the key of the certificate in " + cert.string();
      return nullptr;
    }
    self->names_.push_back(names_of(SSL_CTX_get0_certificate(ctx)));
    SSL_CTX_set_ex_data(ctx, ticket_keys_index(), self->keys_.get());
    SSL_CTX_set_ex_data(ctx, context_index(), self.get());
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_callback);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_callback, &self->alpn_wire_);
  }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"  // OpenSSL's macro
  SSL_CTX_set_tlsext_servername_callback(self->contexts_.front(), select_certificate);
#pragma GCC diagnostic pop
  SSL_CTX_set_tlsext_servername_arg(self->contexts_.front(), self.get());
  return self;
}

SSL* TlsContext::new_ssl() const { return SSL_new(contexts_.front()); }

std::size_t TlsContext::pick(std::string_view server_name) const {
  const std::string name = lower(server_name);
  for (std::size_t i = 0; i < names_.size(); ++i) {
    if (std::find(names_[i].begin(), names_[i].end(), name) != names_[i].end()) return i;
  }
  const auto dot = name.find('.');
  if (dot != std::string::npos && dot > 0) {
    const std::string wildcard = "*" + name.substr(dot);
    for (std::size_t i = 0; i < names_.size(); ++i) {
      if (std::find(names_[i].begin(), names_[i].end(), wildcard) != names_[i].end()) return i;
    }
  }
  return 0;
}

std::string check_tls(const TlsConfig& config) {
  std::string error;
  if (!TlsContext::load(config, std::make_shared<TicketKeys>(config.ticket_key_lifetime), error))
    return error;
  return {};
}

std::string ensure_self_signed(const TlsCertificate& cert, const std::vector<std::string>& names,
                               int days) {
  std::error_code exists_ec;
  if (std::filesystem::exists(cert.cert, exists_ec) &&
      std::filesystem::exists(cert.key, exists_ec) && check_tls({.certificates = {cert}}).empty())
    return "";
  if (names.empty()) return "a certificate needs a name";
  std::error_code ec;
  std::filesystem::create_directories(cert.cert.parent_path(), ec);
  std::filesystem::create_directories(cert.key.parent_path(), ec);
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509* x = X509_new();
  const auto done = [&] {
    X509_free(x);
    EVP_PKEY_free(key);
  };
  if (key == nullptr || x == nullptr) {
    done();
    return "OpenSSL could not make a key";
  }
  X509_set_version(x, X509_VERSION_3);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), static_cast<long>(days) * 24 * 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(names[0].c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  std::string san;
  for (const auto& n : names) {
    boost::system::error_code addr_ec;
    boost::asio::ip::make_address(n, addr_ec);
    san += (san.empty() ? "" : ",") + std::string(addr_ec ? "DNS:" : "IP:") + n;
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  bool ok = true;
  // As `openssl req -x509` makes one: its own issuer, so a client may take it as a trust anchor.
  for (const auto& [nid, value] :
       {std::pair{NID_subject_alt_name, san},
        std::pair{NID_basic_constraints, std::string("critical,CA:TRUE")},
        std::pair{NID_key_usage, std::string("critical,digitalSignature,keyCertSign")},
        std::pair{NID_ext_key_usage, std::string("serverAuth")},
        std::pair{NID_subject_key_identifier, std::string("hash")}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    ok = ok && ext != nullptr && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
  }
  ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
  if (!ok) {
    done();
    return "OpenSSL could not make the certificate";
  }
  // The key first, readable by its owner only (a new file: never one another user made).
  const std::string key_tmp = cert.key.string() + ".tmp";
  ::unlink(key_tmp.c_str());
  const int fd = ::open(key_tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  FILE* kf = fd >= 0 ? ::fdopen(fd, "w") : nullptr;
  if (kf == nullptr) {
    if (fd >= 0) ::close(fd);
    done();
    return key_tmp + ": " + std::strerror(errno);
  }
  ok = PEM_write_PrivateKey(kf, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  ok = std::fclose(kf) == 0 && ok;
  const std::string cert_tmp = cert.cert.string() + ".tmp";
  FILE* cf = std::fopen(cert_tmp.c_str(), "w");
  ok = ok && cf != nullptr && PEM_write_X509(cf, x) == 1;
  if (cf != nullptr) ok = std::fclose(cf) == 0 && ok;
  done();
  if (!ok || std::rename(key_tmp.c_str(), cert.key.c_str()) != 0 ||
      std::rename(cert_tmp.c_str(), cert.cert.c_str()) != 0) {
    ::unlink(key_tmp.c_str());
    ::unlink(cert_tmp.c_str());
    return cert.cert.string() + ": could not be written";
  }
  return "";
}

std::shared_ptr<TlsListener> TlsListener::make(TlsConfig config, std::string& error) {
  auto self = std::make_shared<TlsListener>();
  self->config_ = std::move(config);
  self->keys_ = std::make_shared<TicketKeys>(self->config_.ticket_key_lifetime);
  if (!self->reload(error)) return nullptr;
  return self;
}

bool TlsListener::reload(std::string& error) {
  auto stamps_now = stamps(config_);
  auto next = TlsContext::load(config_, keys_, error);
  std::lock_guard lock(mutex_);
  stamps_ = std::move(stamps_now);  // a bad file is not tried again until it changes
  if (!next) return false;
  current_ = std::move(next);
  return true;
}

bool TlsListener::files_changed() const {
  const auto now = stamps(config_);
  std::lock_guard lock(mutex_);
  return now != stamps_;
}

std::shared_ptr<const TlsContext> TlsListener::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

std::vector<TlsListener::Stamp> TlsListener::stamps(const TlsConfig& config) {
  std::vector<Stamp> out;
  for (const auto& c : config.certificates) {
    for (const auto* p : {&c.cert, &c.key}) {
      struct stat st {};
      Stamp s;
      if (::stat(p->c_str(), &st) == 0) {
        s.size = static_cast<std::uintmax_t>(st.st_size);
        s.mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
        s.inode = st.st_ino;
      }
      out.push_back(s);
    }
  }
  return out;
}

std::vector<std::string> certificate_names(const std::filesystem::path& cert, std::string& error) {
  FILE* f = std::fopen(cert.c_str(), "r");
  if (f == nullptr) {
    error = cert.string() + ": " + std::strerror(errno);
    return {};
  }
  X509* x509 = PEM_read_X509(f, nullptr, no_passphrase, nullptr);
  std::fclose(f);
  if (x509 == nullptr) {
    error = cert.string() + ": not a PEM certificate (" + openssl_reason() + ")";
    return {};
  }
  auto names = names_of(x509);
  X509_free(x509);
  return names;
}

}  // namespace squadron::http

// ---- internal::TlsSession ----

namespace squadron::http::internal {

// The memory BIO of a TlsSession: reads take from its `in_`, writes append to its `out_`.
struct TlsBio {
  static BIO_METHOD* method() {
    static BIO_METHOD* const m = [] {
      BIO_METHOD* b = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "squadron");
      BIO_meth_set_write_ex(b, write);
      BIO_meth_set_read_ex(b, read);
      BIO_meth_set_ctrl(b, ctrl);
      BIO_meth_set_create(b, [](BIO* bio) {
        BIO_set_init(bio, 1);
        return 1;
      });
      return b;
    }();
    return m;
  }
  static int write(BIO* bio, const char* data, std::size_t size, std::size_t* written) {
    auto* s = static_cast<TlsSession*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    s->out_.append(data, size);
    *written = size;
    return 1;
  }
  static int read(BIO* bio, char* data, std::size_t size, std::size_t* got) {
    auto* s = static_cast<TlsSession*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (s->in_.empty()) {
      BIO_set_retry_read(bio);
      *got = 0;
      return 0;
    }
    const std::size_t n = std::min(size, s->in_.size());
    std::memcpy(data, s->in_.data(), n);
    s->in_.remove_prefix(n);
    *got = n;
    return 1;
  }
  static long ctrl(BIO* bio, int cmd, long, void*) {
    auto* s = static_cast<TlsSession*>(BIO_get_data(bio));
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_PENDING:
        return static_cast<long>(s->in_.size());
      case BIO_CTRL_WPENDING:
        return 0;
      default:
        return 0;
    }
  }
};

BIO* TlsSession::new_shared_bio() { return BIO_new(TlsBio::method()); }

void TlsSession::free_bio(BIO* bio) { BIO_free(bio); }

void TlsSession::bind() noexcept { BIO_set_data(SSL_get_rbio(ssl_), this); }

std::unique_ptr<TlsSession> TlsSession::make(std::shared_ptr<const TlsContext> context,
                                             BIO* shared) {
  if (shared == nullptr) return nullptr;
  std::unique_ptr<TlsSession> s(new TlsSession());
  s->ssl_ = context->new_ssl();
  if (s->ssl_ == nullptr || BIO_up_ref(shared) != 1) return nullptr;
  s->context_ = std::move(context);
  SSL_set_bio(s->ssl_, shared, shared);  // one BIO both ways: the SSL takes the one reference
  SSL_set_accept_state(s->ssl_);
  return s;
}

TlsSession::~TlsSession() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

long TlsSession::read(char* buffer, std::size_t size) {
  std::size_t got = 0;
  bind();
  ERR_clear_error();
  if (SSL_read_ex(ssl_, buffer, size, &got) == 1) return static_cast<long>(got);
  switch (SSL_get_error(ssl_, 0)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:  // (the BIO never refuses a write)
      return 0;
    case SSL_ERROR_ZERO_RETURN:
      failure_ = "the client closed the TLS session";
      return -1;
    default:
      failure_ =
          SSL_is_init_finished(ssl_) ? "a TLS record did not decrypt" : "the TLS handshake failed";
      ERR_clear_error();
      return -1;
  }
}

bool TlsSession::write(std::string_view plain) {
  bind();
  ERR_clear_error();
  while (!plain.empty()) {
    std::size_t n = 0;
    if (SSL_write_ex(ssl_, plain.data(), plain.size(), &n) != 1) {
      failure_ = "TLS write failed";
      ERR_clear_error();
      return false;
    }
    plain.remove_prefix(n);
  }
  return true;
}

bool TlsSession::pending() const noexcept { return !in_.empty() || SSL_has_pending(ssl_) == 1; }

void TlsSession::close_notify() {
  if (SSL_is_init_finished(ssl_) == 1) {
    bind();
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }
}

void TlsSession::idle() noexcept {
  if (out_.capacity() > 0 && out_.empty()) std::string().swap(out_);
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  SSL_free_buffers(ssl_);  // (refused while it holds data)
}

void TlsSession::busy() noexcept { SSL_clear_mode(ssl_, SSL_MODE_RELEASE_BUFFERS); }

bool TlsSession::sent_close_notify() const noexcept {
  return (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0;
}

bool TlsSession::handshake_done() const noexcept { return SSL_is_init_finished(ssl_) == 1; }

std::string_view TlsSession::alpn() const noexcept {
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl_, &p, &n);
  return {reinterpret_cast<const char*>(p), n};
}

}  // namespace squadron::http::internal
