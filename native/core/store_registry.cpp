// Which store a URL names, by its scheme (as nng picks a transport): the one place that knows
// every store. A store adds itself here with its opener; nothing else changes per store.
#include <cctype>
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
    {"unix://", open_redis_store},
    {"redis+unix://", open_redis_store},
    {"sqlite://", open_sqlite_store},  // before "sqlite:", which it starts with
    {"sqlite:", open_sqlite_store},
    {"postgres://", open_postgres_store},
    {"postgresql://", open_postgres_store},
};

std::string percent_encoded(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(char(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

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

std::string sqlite_store_url(const std::string& path) {
  // "sqlite:" + path, except that a path starting with "//" would read as "sqlite://" + a
  // relative path: "sqlite://" + "//x" keeps it whole.
  return (path.compare(0, 2, "//") == 0 ? "sqlite://" : "sqlite:") + path;
}

std::string postgres_store_url(const std::string& conninfo) {
  if (conninfo.compare(0, 11, "postgres://") == 0 || conninfo.compare(0, 13, "postgresql://") == 0) return conninfo;
  // libpq's "key=value key='quoted \\' value'" form, as query parameters of a URI libpq reads
  // the same way ("postgresql:///?host=...&dbname=..."), each value percent-encoded.
  std::string url = "postgresql:///?";
  size_t i = 0;
  bool first = true;
  auto space = [&] { while (i < conninfo.size() && std::isspace(static_cast<unsigned char>(conninfo[i]))) ++i; };
  for (space(); i < conninfo.size(); space()) {
    size_t eq = conninfo.find('=', i);
    if (eq == std::string::npos) return conninfo;  // not that form: the registry will say so
    std::string key = conninfo.substr(i, eq - i);
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    i = eq + 1;
    space();
    std::string value;
    if (i < conninfo.size() && conninfo[i] == '\'') {
      for (++i; i < conninfo.size() && conninfo[i] != '\''; ++i) {
        if (conninfo[i] == '\\' && i + 1 < conninfo.size()) ++i;
        value.push_back(conninfo[i]);
      }
      if (i == conninfo.size()) return conninfo;  // unterminated quote
      ++i;
    } else {
      while (i < conninfo.size() && !std::isspace(static_cast<unsigned char>(conninfo[i]))) value.push_back(conninfo[i++]);
    }
    url += (first ? "" : "&") + percent_encoded(key) + "=" + percent_encoded(value);
    first = false;
  }
  return first ? conninfo : url;
}

}  // namespace liner
