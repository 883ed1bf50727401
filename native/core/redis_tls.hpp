// TLS to Redis (rediss:// URLs): the OpenSSL context built from a URL's TLS settings, and the
// handshake on one hiredis connection.
//
// Invariants
// - The server is always verified: its chain against the CA file (or the system's trust store),
//   and its name (the `sni` setting, else the host connected to, as a DNS name or an IP address)
//   against the certificate. A failure closes the connection with an error that says which;
//   nothing is ever sent in clear instead.
// - TLS 1.2 is the oldest version offered.
#pragma once
#include <hiredis/hiredis.h>

#include <memory>
#include <string>

#include "core/redis_url.hpp"
#include "core/status.hpp"

struct ssl_ctx_st;

namespace liner {

class RedisTlsContext {
 public:
  // Loads the CA, certificate and key files now: a file that is missing, unreadable or not what
  // it should be is an Err::store error naming the file and OpenSSL's reason.
  static Status create(const RedisTls& settings, std::shared_ptr<RedisTlsContext>* out);
  ~RedisTlsContext();
  RedisTlsContext(const RedisTlsContext&) = delete;
  RedisTlsContext& operator=(const RedisTlsContext&) = delete;

  // Handshakes on `c` (connected, blocking, with its timeouts set) with the server at `host`
  // (`where` names it in errors). On success hiredis owns the TLS session.
  Status start(redisContext* c, const std::string& host, const std::string& where) const;

 private:
  explicit RedisTlsContext(RedisTls settings) : settings_(std::move(settings)) {}
  RedisTls settings_;
  ssl_ctx_st* ctx_ = nullptr;
};

}  // namespace liner
