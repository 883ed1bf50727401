// What a C API client received, for the tests of the C API: pass `&inbox` as the user data of
// lnr_run with capi_inbox_receive. Thread-safe (the client's delivery thread appends).
#pragma once
#include <mutex>
#include <string>
#include <vector>

#include "liner.h"

namespace testing_support {

struct CapiInbox {
  std::mutex mu;
  std::vector<std::string> got;  // payloads, in delivery order
  size_t size() {
    std::lock_guard<std::mutex> l(mu);
    return got.size();
  }
  std::vector<std::string> snapshot() {
    std::lock_guard<std::mutex> l(mu);
    return got;
  }
};

inline void capi_inbox_receive(const char*, const char*, const char* data, size_t size, lnr_uData ud) {
  auto* in = static_cast<CapiInbox*>(ud);
  std::lock_guard<std::mutex> l(in->mu);
  in->got.emplace_back(data, size);
}

}  // namespace testing_support
