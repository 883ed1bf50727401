#include "node/errors.hpp"

namespace liner_node {

Napi::Error status_error(Napi::Env env, const liner::Status& status) {
  Napi::Error error = Napi::Error::New(env, status.message);
  error.Set("lnrCode", Napi::Number::New(env, int(status.code)));
  return error;
}

void throw_invalid(Napi::Env env, const std::string& what) {
  throw status_error(env, liner::Status(liner::Err::invalid_arg, what));
}

std::string string_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) throw_invalid(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

}  // namespace liner_node
