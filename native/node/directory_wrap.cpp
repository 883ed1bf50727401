#include "node/directory_wrap.hpp"

#include <initializer_list>
#include <set>
#include <utility>
#include <vector>

#include "core/directory_inspect.hpp"
#include "core/redis_conn.hpp"
#include "node/async_task.hpp"
#include "node/errors.hpp"

namespace liner_node {
namespace {

bool given(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && !info[i].IsUndefined(); }

// string_arg, or "" when the argument is not given.
std::string optional_string_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return given(info, i) ? string_arg(info, i, what) : std::string();
}

// A channel's last acknowledged number, or null when none can be read.
Napi::Value last_acked(Napi::Env env, const liner::AckCounter& ack) {
  return ack.existed && !ack.unreadable ? Napi::Value(Napi::Number::New(env, double(ack.number))) : env.Null();
}

std::vector<int32_t> keys_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsArray()) throw_invalid(info.Env(), "connection keys must be an array");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int32_t> keys;
  for (uint32_t j = 0; j < a.Length(); ++j) {
    Napi::Value v = a.Get(j);
    if (!v.IsNumber()) throw_invalid(info.Env(), "a connection key must be a number");
    keys.push_back(v.As<Napi::Number>().Int32Value());
  }
  return keys;
}

Napi::Value number_or_null(Napi::Env env, bool has, double value) {
  return has ? Napi::Value(Napi::Number::New(env, value)) : env.Null();
}

// [row(items[0]), row(items[1]), …]: how every answer of the directory reaches JS.
template <class Item, class Row>
Napi::Array array_of(Napi::Env env, const std::vector<Item>& items, Row row) {
  Napi::Array out = Napi::Array::New(env, items.size());
  for (size_t i = 0; i < items.size(); ++i) out.Set(uint32_t(i), row(items[i]));
  return out;
}

// One fixed-length row, [a, b, …].
Napi::Array tuple(Napi::Env env, std::initializer_list<Napi::Value> values) {
  Napi::Array row = Napi::Array::New(env, values.size());
  uint32_t i = 0;
  for (const Napi::Value& v : values) row.Set(i++, v);
  return row;
}

// Runs `work` on the pool with the store to itself; `result` (JS thread) makes the value.
template <class Work>
Napi::Promise run(const Napi::Object& owner, const std::shared_ptr<SharedStore>& shared, const char* name, Work work,
                  AsyncTask::Result result = nullptr) {
  return AsyncTask::start(
      owner, name,
      [shared, work] {
        std::lock_guard<std::mutex> lock(shared->mu);
        return work(*shared->store);
      },
      std::move(result));
}

const std::pair<const char*, liner::StoreRecord> kRecords[] = {
    {"topicAddresses", liner::StoreRecord::topic_addresses},
    {"topicKey", liner::StoreRecord::topic_key},
    {"channelName", liner::StoreRecord::channel_name},
    {"channelSender", liner::StoreRecord::channel_sender},
    {"channelAck", liner::StoreRecord::channel_ack},
    {"channelQueue", liner::StoreRecord::channel_queue},
    {"senderListeners", liner::StoreRecord::sender_listeners},
    {"senderListenerNames", liner::StoreRecord::sender_listener_names},
};

}  // namespace

Napi::Function DirectoryWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeDirectory",
                     {
                         InstanceMethod<&DirectoryWrap::ping>("ping"),
                         InstanceMethod<&DirectoryWrap::topics>("topics"),
                         InstanceMethod<&DirectoryWrap::channels>("channels"),
                         InstanceMethod<&DirectoryWrap::sample>("sample"),
                         InstanceMethod<&DirectoryWrap::sender_topics>("senderTopics"),
                         InstanceMethod<&DirectoryWrap::unnamed_queues>("unnamedQueues"),
                         InstanceMethod<&DirectoryWrap::stored_count>("storedCount"),
                         InstanceMethod<&DirectoryWrap::forget_peer>("forgetPeer"),
                         InstanceMethod<&DirectoryWrap::record_name>("recordName"),
                         InstanceMethod<&DirectoryWrap::server>("server"),
                     });
}

DirectoryWrap::DirectoryWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DirectoryWrap>(info) {
  url_ = string_arg(info, 0, "the store URL");
  liner::Status s = liner::open_store(url_, &shared_->store);
  if (!s) throw status_error(info.Env(), s);
}

// "host:port" of the Redis server the URL leads to now (under Sentinel: the master), "" for
// other stores. A connection of its own, so it does not take the store's turn.
Napi::Value DirectoryWrap::server(const Napi::CallbackInfo&) {
  auto where = std::make_shared<std::string>();
  std::string url = url_;
  return AsyncTask::start(
      Value(), "liner.directory.server", [url, where] { return liner::redis_server_of(url, where.get()); },
      [where](Napi::Env env, const liner::Status&) -> Napi::Value { return Napi::String::New(env, *where); });
}

Napi::Value DirectoryWrap::ping(const Napi::CallbackInfo&) {
  return run(Value(), shared_, "liner.directory.ping", [](liner::Store& store) { return store.ping(); });
}

// [topic, key | null, [address, unique name][]][]: every topic, or `only` if the store has it.
Napi::Value DirectoryWrap::topics(const Napi::CallbackInfo& info) {
  std::string only = optional_string_arg(info, 0, "topic");
  bool one = given(info, 0);
  auto found = std::make_shared<std::vector<liner::TopicView>>();
  return run(
      Value(), shared_, "liner.directory.topics",
      [one, only, found](liner::Store& store) {
        return one ? liner::inspect_topic(store, only, found.get()) : liner::inspect_topics(store, found.get());
      },
      [found](Napi::Env env, const liner::Status&) -> Napi::Value {
        return array_of(env, *found, [env](const liner::TopicView& t) {
          Napi::Array addresses = array_of(env, t.addresses, [env](const auto& a) {
            return tuple(env, {Napi::String::New(env, a.addr), Napi::String::New(env, a.unique_name)});
          });
          return tuple(env, {Napi::String::New(env, t.topic), number_or_null(env, t.has_key, t.key), addresses});
        });
      });
}

// [ck, sender, sender topic, listener, stored sender topic | null, last acked | null, queue
// length, topic key of the oldest queued frame | null][], by connection key.
Napi::Value DirectoryWrap::channels(const Napi::CallbackInfo& info) {
  std::string sender = optional_string_arg(info, 0, "sender");
  auto found = std::make_shared<std::vector<liner::ChannelView>>();
  return run(
      Value(), shared_, "liner.directory.channels",
      [sender, found](liner::Store& store) { return liner::inspect_channels(store, sender, found.get()); },
      [found](Napi::Env env, const liner::Status&) -> Napi::Value {
        return array_of(env, *found, [env](const liner::ChannelView& c) {
          return tuple(env, {Napi::Number::New(env, c.name.key), Napi::String::New(env, c.name.sender_unique),
                             Napi::String::New(env, c.name.sender_topic), Napi::String::New(env, c.name.listener_unique),
                             c.state.has_sender_topic ? Napi::Value(Napi::String::New(env, c.state.sender_topic)) : env.Null(),
                             last_acked(env, c.state.ack), Napi::Number::New(env, double(c.state.queue_length)),
                             number_or_null(env, c.has_queued_topic_key, c.queued_topic_key)});
        });
      });
}

// [queue length, last acked | null][] of the given connection keys, in their order.
Napi::Value DirectoryWrap::sample(const Napi::CallbackInfo& info) {
  std::vector<int32_t> keys = keys_arg(info, 0);
  auto found = std::make_shared<std::vector<liner::ChannelState>>();
  return run(
      Value(), shared_, "liner.directory.sample",
      [keys, found](liner::Store& store) { return store.read_channels(keys, false, found.get()); },
      [found](Napi::Env env, const liner::Status&) -> Napi::Value {
        return array_of(env, *found, [env](const liner::ChannelState& c) {
          return tuple(env, {Napi::Number::New(env, double(c.queue_length)), last_acked(env, c.ack)});
        });
      });
}

Napi::Value DirectoryWrap::sender_topics(const Napi::CallbackInfo& info) {
  std::string sender = string_arg(info, 0, "sender");
  auto found = std::make_shared<std::vector<std::string>>();
  return run(
      Value(), shared_, "liner.directory.senderTopics",
      [sender, found](liner::Store& store) { return store.source_topics_of_sender(sender, found.get()); },
      [found](Napi::Env env, const liner::Status&) -> Napi::Value {
        return array_of(env, *found, [env](const std::string& topic) { return Napi::String::New(env, topic); });
      });
}

// [ck, queue length][] of the non-empty offline queues whose ck is not in `known`.
Napi::Value DirectoryWrap::unnamed_queues(const Napi::CallbackInfo& info) {
  std::vector<int32_t> given = keys_arg(info, 0);
  std::set<int32_t> known(given.begin(), given.end());
  auto found = std::make_shared<std::vector<std::pair<int32_t, uint64_t>>>();
  return run(
      Value(), shared_, "liner.directory.unnamedQueues",
      [known, found](liner::Store& store) { return liner::unnamed_queues(store, known, found.get()); },
      [found](Napi::Env env, const liner::Status&) -> Napi::Value {
        return array_of(env, *found, [env](const std::pair<int32_t, uint64_t>& q) {
          return tuple(env, {Napi::Number::New(env, q.first), Napi::Number::New(env, double(q.second))});
        });
      });
}

Napi::Value DirectoryWrap::stored_count(const Napi::CallbackInfo& info) {
  std::string name = string_arg(info, 0, "name"), topic = string_arg(info, 1, "topic");
  auto count = std::make_shared<uint64_t>(0);
  return run(
      Value(), shared_, "liner.directory.storedCount",
      [name, topic, count](liner::Store& store) { return liner::stored_message_count(store, name, topic, count.get()); },
      [count](Napi::Env env, const liner::Status&) -> Napi::Value { return Napi::Number::New(env, double(*count)); });
}

Napi::Value DirectoryWrap::forget_peer(const Napi::CallbackInfo& info) {
  std::string name = string_arg(info, 0, "name"), topic = string_arg(info, 1, "topic");
  return run(Value(), shared_, "liner.directory.forgetPeer",
             [name, topic](liner::Store& store) { return liner::forget_peer(store, name, topic); });
}

// recordName(kind, ...parts): what the store calls that record (Redis: the key name).
Napi::Value DirectoryWrap::record_name(const Napi::CallbackInfo& info) {
  std::string kind = string_arg(info, 0, "record kind");
  std::string parts[3];
  for (size_t i = 0; i < 3; ++i) parts[i] = optional_string_arg(info, i + 1, "record name part");
  for (const auto& r : kRecords)
    if (kind == r.first)
      return Napi::String::New(info.Env(), shared_->store->record_name(r.second, parts[0], parts[1], parts[2]));
  throw_invalid(info.Env(), "unknown record kind '" + kind + "'");
}

}  // namespace liner_node
