// Routes liner's Redis commands over a Redis Cluster (redis+cluster:// URLs). RedisConn hands
// every call to one of these when its endpoint is a cluster, so RedisStore does not know which
// topology it talks to.
//
// What it keeps true:
// - Every command liner sends touches at most one key (redis_store.hpp), so a command goes to
//   the primary that owns its key's slot (CRC16 of the key, or of its {hash tag}, mod 16384) and
//   no command ever spans two nodes. A command without a key (PING, PUBLISH) goes to any primary:
//   classic pub/sub is cluster-wide, a PUBLISH on one node reaches subscribers on every node.
// - The slot table is a cache: it is read (CLUSTER SLOTS) from any known node at the first
//   connect, after a MOVED, and after a node is lost (a replica may have been promoted). MOVED
//   and ASK are followed, at most kMaxRedirects times per command; ASK asks that node only
//   (ASKING first) and leaves the table alone.
// - A command whose connection was lost may or may not have run. It is sent again only on the
//   first failure of a connection that worked before and was closed by the server (as RedisConn
//   does alone), or when the refreshed table names another owner for its slot; otherwise the
//   caller gets the error, as on a standalone Redis, and retries as it does there.
// - A pipeline is split by node; each node's share is one round trip and the replies come back
//   in the caller's order. Commands answered MOVED/ASK (not run) are sent again one by one.
// - SCAN runs on every primary, and the names are merged.
// - Directory notifications: one subscription on one primary; when that node is lost the
//   subscription is reported lost and the next subscribe() picks a primary from a fresh table.
// Not thread-safe, like RedisConn: each of a client's threads owns its own.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/redis_conn.hpp"

namespace liner {

class RedisCluster {
 public:
  RedisCluster(RedisEndpoint seeds, int timeout_ms);

  // Reads the slot table from a seed: an error if none answers or the seed is not a cluster node.
  Status connect();
  Status command(const RedisArgs& args, RedisReply* reply);
  Status pipeline(const std::vector<RedisArgs>& commands, std::vector<RedisReply>* replies);
  Status subscribe(const std::string& channel);
  Status poll_messages(int timeout_ms, std::vector<std::string>* payloads);
  Status scan(const std::string& pattern, std::vector<std::string>* names);
  void close();

  // The last call failed because no node could be reached (not an error reply).
  bool lost() const { return lost_; }

  // The Redis Cluster key slot: CRC16-XMODEM of the key (or of its first non-empty {hash tag})
  // modulo 16384, as the Redis Cluster specification defines it.
  static uint16_t crc16(std::string_view data);
  static uint16_t key_slot(std::string_view key);
  // The key a command touches, or false for a command without one (routed anywhere).
  static bool key_of(const RedisArgs& args, std::string_view* key);

 private:
  static constexpr int kSlots = 16384;
  static constexpr int kMaxRedirects = 5;

  std::string name_of(const RedisNode& n) const { return n.host + ":" + std::to_string(n.port); }
  RedisConn* node(const std::string& name);
  // Re-reads the slot table from any known primary, then the seeds.
  Status refresh();
  Status refresh_from(const std::string& name);
  // The primary that owns `key`'s slot, or any primary for a command without a key.
  Status target_for(const RedisArgs& args, std::string* name);
  std::vector<std::string> primaries() const;
  Status run_one(const RedisArgs& args, std::string target, RedisReply* reply);

  RedisEndpoint seeds_;
  int timeout_ms_;
  std::vector<std::string> slot_owner_;           // slot -> "host:port"; empty: no table yet
  std::map<std::string, RedisNode> known_;         // every primary named by a table
  std::map<std::string, std::unique_ptr<RedisConn>> conns_;
  std::unique_ptr<RedisConn> sub_;
  std::string sub_node_;
  std::chrono::steady_clock::time_point last_refresh_{};
  bool lost_ = false;
};

}  // namespace liner
