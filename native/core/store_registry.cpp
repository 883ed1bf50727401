// Which store a URL names, by its scheme (as nng picks a transport): the one place that knows
// every store. A store adds itself here with its opener; nothing else changes per store.
#include <cstring>

#include "core/postgres_store.hpp"
#include "core/redis_store.hpp"
#include "core/redis_url.hpp"
#include "core/sqlite_store.hpp"
#include "core/store.hpp"

namespace liner {

namespace {

using Opener = Status (*)(const std::string& url, std::unique_ptr<Store>* out);

struct StoreScheme {
  const char* prefix;  // what the URL starts with, scheme and separator
  Opener open;
};

const StoreScheme kSchemes[] = {
    {"redis://", open_redis_store},
    {"rediss://", open_redis_store},
    {"redis+sentinel://", open_redis_store},
    {"rediss+sentinel://", open_redis_store},
    {"redis+cluster://", open_redis_store},
    {"rediss+cluster://", open_redis_store},
    {"unix://", open_redis_store},
    {"redis+unix://", open_redis_store},
    {"sqlite://", open_sqlite_store},  // before "sqlite:", which it starts with
    {"sqlite:", open_sqlite_store},
    {"postgres://", open_postgres_store},
    {"postgresql://", open_postgres_store},
};

std::string known_schemes() {
  std::string out;
  for (const auto& scheme : kSchemes) {
    if (!out.empty()) out += ", ";
    out += scheme.prefix;
  }
  return out;
}

}  // namespace

Status open_store(const std::string& url, std::unique_ptr<Store>* out) {
  for (const auto& scheme : kSchemes)
    if (url.compare(0, std::strlen(scheme.prefix), scheme.prefix) == 0) return scheme.open(url, out);
  // redact_redis_url hides the password of any URL, whichever its scheme.
  return Status(Err::invalid_arg, "no store serves the URL '" + redact_redis_url(url) + "': store URLs start with " +
                                      known_schemes());
}

Status check_store_url(const std::string& url) {
  std::unique_ptr<Store> unused;  // openers do no I/O: this only checks the URL's form
  return open_store(url, &unused);
}

}  // namespace liner
