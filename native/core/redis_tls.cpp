#include "core/redis_tls.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <hiredis/hiredis_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace liner {
namespace {

// OpenSSL's most specific reason for the last failure, and clears its error queue (errors are
// kept per thread: one left behind would be blamed on the next call).
std::string openssl_reason() {
  unsigned long e = ERR_peek_last_error();
  const char* reason = e ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  return reason ? reason : "unknown reason";
}

Status tls_error(const std::string& what) { return Status(Err::store, "redis TLS: " + what); }

// A file named in the URL that cannot be read: OpenSSL's reason would be "system lib".
Status unreadable(const std::string& file, const char* param) {
  if (access(file.c_str(), R_OK) == 0) return Status();
  return tls_error("cannot read the " + std::string(param) + " file '" + file + "': " + std::strerror(errno));
}

// The system's trust store. OpenSSL's compiled-in default is the build machine's directory
// (/usr/lib/ssl on Debian), which other distributions do not have, and liner's OpenSSL is linked
// in, so the prebuilt binaries look where each distribution keeps its CA bundle (the list Go's
// crypto/x509 uses), after OpenSSL's own variables, which always win.
bool load_system_trust_store(SSL_CTX* ctx) {
  if (std::getenv("SSL_CERT_FILE") || std::getenv("SSL_CERT_DIR")) return SSL_CTX_set_default_verify_paths(ctx) == 1;
  for (const char* bundle : {"/etc/ssl/certs/ca-certificates.crt",  // Debian, Ubuntu, Arch, Alpine
                             "/etc/pki/tls/certs/ca-bundle.crt",    // Fedora, RHEL, Amazon Linux
                             "/etc/ssl/ca-bundle.pem",              // openSUSE
                             "/etc/pki/tls/cacert.pem",             // OpenELEC
                             "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  // CentOS, RHEL 7
                             "/etc/ssl/cert.pem"}) {                // Alpine, macOS
    if (access(bundle, R_OK) == 0) return SSL_CTX_load_verify_locations(ctx, bundle, nullptr) == 1;
  }
  return SSL_CTX_set_default_verify_paths(ctx) == 1;
}

bool is_ip_address(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

Status RedisTlsContext::create(const RedisTls& settings, std::shared_ptr<RedisTlsContext>* out) {
  std::shared_ptr<RedisTlsContext> tls(new RedisTlsContext(settings));
  tls->ctx_ = SSL_CTX_new(TLS_client_method());
  if (!tls->ctx_) return tls_error("cannot create a context: " + openssl_reason());
  SSL_CTX_set_min_proto_version(tls->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(tls->ctx_, SSL_VERIFY_PEER, nullptr);
  for (auto [file, param] : {std::pair{&settings.ca_file, "ca="}, {&settings.cert_file, "cert="},
                             {&settings.key_file, "key="}}) {
    if (file->empty()) continue;
    Status s = unreadable(*file, param);
    if (!s) return s;
  }
  if (!settings.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(tls->ctx_, settings.ca_file.c_str(), nullptr) != 1)
      return tls_error("cannot load the CA file '" + settings.ca_file + "' (ca=): " + openssl_reason());
  } else if (!load_system_trust_store(tls->ctx_)) {
    return tls_error("cannot load the system's trust store: " + openssl_reason());
  }
  if (!settings.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(tls->ctx_, settings.cert_file.c_str()) != 1)
      return tls_error("cannot load the client certificate '" + settings.cert_file + "' (cert=): " + openssl_reason());
    if (SSL_CTX_use_PrivateKey_file(tls->ctx_, settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      return tls_error("cannot use the private key '" + settings.key_file + "' (key=) with the certificate '" +
                       settings.cert_file + "' (cert=): " + openssl_reason());
    if (SSL_CTX_check_private_key(tls->ctx_) != 1)
      return tls_error("the key '" + settings.key_file + "' does not match the certificate '" + settings.cert_file +
                       "': " + openssl_reason());
  }
  *out = std::move(tls);
  return Status();
}

RedisTlsContext::~RedisTlsContext() {
  if (ctx_) SSL_CTX_free(ctx_);
}

Status RedisTlsContext::start(redisContext* c, const std::string& host, const std::string& where) const {
  const std::string& name = settings_.sni.empty() ? host : settings_.sni;
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) return tls_error("cannot start a session: " + openssl_reason());
  bool named = true;
  if (is_ip_address(name)) {
    named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
  } else {
    named = SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 && SSL_set1_host(ssl, name.c_str()) == 1;
  }
  if (!named) {
    SSL_free(ssl);
    return tls_error("cannot verify the name '" + name + "': " + openssl_reason());
  }
  if (redisInitiateSSL(c, ssl) == REDIS_OK) return Status();  // hiredis owns `ssl` now
  long verdict = SSL_get_verify_result(ssl);
  std::string why = verdict != X509_V_OK
                        ? "the certificate of " + where + " was not accepted (" +
                              X509_verify_cert_error_string(verdict) + ", verified as '" + name + "')"
                        : "handshake with " + where + " failed: " + std::string(c->errstr);
  ERR_clear_error();
  SSL_free(ssl);
  return tls_error(why);
}

}  // namespace liner
