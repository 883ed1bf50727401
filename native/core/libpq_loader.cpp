// Loading libpq at run time (libpq_loader.hpp: why).
#include "core/libpq_loader.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

namespace liner {
namespace pq {
namespace {

#ifdef __APPLE__
constexpr char kDefaultName[] = "libpq.5.dylib";
#else
constexpr char kDefaultName[] = "libpq.so.5";
#endif

std::mutex g_mutex;
std::string g_name;  // set_library_name_for_test's, else the environment's, else kDefaultName
bool g_tried = false;
Status g_status;
Api g_api;

Status resolve(void* lib, const char* symbol, void** slot) {
  *slot = dlsym(lib, symbol);
  if (*slot) return Status();
  return Status(Err::store, std::string("PostgreSQL store: libpq has no ") + symbol + " (libpq 5 needed)");
}

Status load_once(const std::string& name) {
  // RTLD_LOCAL: libpq's symbols stay out of the global namespace of the host process (Node).
  void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return Status(Err::store, "PostgreSQL store: libpq is not installed (" + name +
                                  " not found); install it: apt-get install libpq5 / dnf install libpq / brew install libpq");
  // dlsym returns void*; each slot is a function pointer of the prototype libpq-fe.h declares.
  struct Symbol {
    const char* name;
    void** slot;
  };
  const Symbol symbols[] = {
      {"PQconnectdb", reinterpret_cast<void**>(&g_api.PQconnectdb)},
      {"PQstatus", reinterpret_cast<void**>(&g_api.PQstatus)},
      {"PQerrorMessage", reinterpret_cast<void**>(&g_api.PQerrorMessage)},
      {"PQfinish", reinterpret_cast<void**>(&g_api.PQfinish)},
      {"PQexec", reinterpret_cast<void**>(&g_api.PQexec)},
      {"PQexecParams", reinterpret_cast<void**>(&g_api.PQexecParams)},
      {"PQresultStatus", reinterpret_cast<void**>(&g_api.PQresultStatus)},
      {"PQresultErrorMessage", reinterpret_cast<void**>(&g_api.PQresultErrorMessage)},
      {"PQresultErrorField", reinterpret_cast<void**>(&g_api.PQresultErrorField)},
      {"PQntuples", reinterpret_cast<void**>(&g_api.PQntuples)},
      {"PQnfields", reinterpret_cast<void**>(&g_api.PQnfields)},
      {"PQgetvalue", reinterpret_cast<void**>(&g_api.PQgetvalue)},
      {"PQgetlength", reinterpret_cast<void**>(&g_api.PQgetlength)},
      {"PQgetisnull", reinterpret_cast<void**>(&g_api.PQgetisnull)},
      {"PQclear", reinterpret_cast<void**>(&g_api.PQclear)},
      {"PQsocket", reinterpret_cast<void**>(&g_api.PQsocket)},
      {"PQconsumeInput", reinterpret_cast<void**>(&g_api.PQconsumeInput)},
      {"PQnotifies", reinterpret_cast<void**>(&g_api.PQnotifies)},
      {"PQfreemem", reinterpret_cast<void**>(&g_api.PQfreemem)},
  };
  for (const auto& sym : symbols) {
    Status s = resolve(lib, sym.name, sym.slot);
    if (!s) {
      dlclose(lib);
      return s;
    }
  }
  return Status();  // the library stays loaded for the life of the process
}

}  // namespace

Status load(const Api** api) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_tried) {
    if (g_name.empty()) {
      const char* env = std::getenv("LINER_LIBPQ_NAME");
      g_name = env && *env ? env : kDefaultName;
    }
    g_status = load_once(g_name);
    g_tried = true;
  }
  *api = g_status ? &g_api : nullptr;
  return g_status;
}

void set_library_name_for_test(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_tried) g_name = name;
}

}  // namespace pq
}  // namespace liner
