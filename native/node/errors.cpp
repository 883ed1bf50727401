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

}  // namespace liner_node
