// Core failures as JS errors. The addon only attaches the core's numeric code (`lnrCode`, the
// LNR_ERR_* value of include/liner.h); src/errors.ts owns the stable string codes and turns
// every such error into a LinerError, so the mapping lives in one place.
#pragma once
#include <napi.h>

#include "core/status.hpp"

namespace liner_node {

Napi::Error status_error(Napi::Env env, const liner::Status& status);

// Throws (as a JS exception) an INVALID_ARGUMENT error about `what`.
[[noreturn]] void throw_invalid(Napi::Env env, const std::string& what);

// Argument `i` as UTF-8 text; INVALID_ARGUMENT "<what> must be a string" when it is not one.
std::string string_arg(const Napi::CallbackInfo& info, size_t i, const char* what);

}  // namespace liner_node
