// The rules for what a client registers in the store, owned here for every face (C, Python,
// TypeScript, the CLI): they call these and pass the error on as it is.
#pragma once
#include <string>

#include "core/status.hpp"

namespace liner {

// A client's unique name ("name") or a topic it owns or subscribes to ("topic"). Names go
// into store keys as they are (lnr_topic:{topic}:addr, lnr_sender:{U}:{S}:listener, ...):
// a ':' would make those keys ambiguous to the scans liner and liner_broker peers run over
// them, and a '\' would escape the glob patterns of those scans. Err::invalid_arg otherwise.
// Emptiness is checked by the callers, with liner_broker's messages.
Status check_name(const char* what, const std::string& name);

// An address to register instead of the bound one: a literal "ip:port" / "[v6]:port" in the
// canonical form format_address() writes, since peers connect to it as given and compare it
// with what they registered. No name lookup: it answers at once. "" is valid (none).
Status check_advertise_address(const std::string& addr);

}  // namespace liner
