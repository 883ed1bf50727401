// liner_broker's `receivers_json` (lnr_new_client_sqlite): the peers a client on an SQLite file
// of its own knows without a shared directory, as a JSON array of
// {"topic": "...", "addr": "host:port", "client_name": "..."}. Parsed as liner_broker's serde
// does: NULL, "", whitespace or "[]" is no entry; the three fields are required strings; other
// fields are ignored; anything else is an error, so a typo never starts a client that knows no one.
#pragma once
#include <string>
#include <vector>

#include "core/sqlite_store.hpp"
#include "core/status.hpp"

namespace liner {

// Err::invalid_arg naming the offset and what was expected when `json` is not such an array.
Status parse_receivers_json(const std::string& json, std::vector<SeedReceiver>* out);

// Writes `receivers` into the store at `store_url` for the client `unique_name` of `topic`, as
// liner_broker's seed_receivers does (seed_sqlite_receivers). Only an SQLite store takes them:
// any other is Err::invalid_arg.
Status seed_receivers(const std::string& store_url, const std::string& unique_name, const std::string& topic,
                      const std::string& localhost, const std::vector<SeedReceiver>& receivers);

}  // namespace liner
