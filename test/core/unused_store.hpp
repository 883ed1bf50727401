// A Store whose every operation fails as "not used by this test": a fake store for a unit
// test derives from it and overrides only the operations that unit calls, so a new Store
// operation is added here once, not to every fake.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/store.hpp"

namespace testing_support {

class UnusedStore : public liner::Store {
 public:
  using Status = liner::Status;
  using Kind = liner::DirectoryEvent::Kind;

  Status ping() override { return Status(); }
  Status register_address(const std::string&, const std::string&, const std::string&, Kind) override { return unused(); }
  Status unregister_address(const std::string&, const std::string&, Kind) override { return unused(); }
  Status addresses_of_topic(const std::string&, std::vector<liner::TopicAddress>*) override { return unused(); }
  Status delete_topic_addresses(const std::string&) override { return unused(); }
  Status renew_registration(const liner::Registration&, bool*) override { return unused(); }
  Status sweep_lapsed(const std::string&, std::vector<liner::TopicAddress>*) override { return unused(); }
  Status restore_registration(const liner::Registration&, size_t*) override { return unused(); }
  Status topic_key(const std::string&, int32_t*) override { return unused(); }
  Status connection_key(const std::string&, const std::string&, const std::string&, bool, int32_t*,
                        bool*) override {
    return unused();
  }
  Status set_sender_topic(int32_t, const std::string&) override { return unused(); }
  Status sender_topic(int32_t, std::string*, bool*) override { return unused(); }
  Status read_ack(int32_t, bool, liner::AckCounter*) override { return unused(); }
  Status set_last_mess_number(int32_t, uint64_t) override { return unused(); }
  Status save_listener_for_sender(const std::string&, const std::string&, const std::string&,
                                  const std::string&, const std::string&) override {
    return unused();
  }
  Status listeners_of_sender(const std::string&, const std::string&,
                             std::vector<liner::RememberedListener>*) override {
    return unused();
  }
  Status unsubscribed_from_topic(const std::string&, std::vector<std::string>*) override { return unused(); }
  Status connection_keys_of_sender(const std::string&, const std::string&,
                                   std::vector<std::pair<std::string, int32_t>>*) override {
    return unused();
  }
  Status delete_listeners_of_sender(const std::string&, const std::string&) override { return unused(); }
  Status push_messages(int32_t, const std::vector<const std::string*>&, const liner::NumberRanges&) override {
    return unused();
  }
  Status handover_marks(int32_t, liner::NumberRanges*) override { return unused(); }
  Status remove_messages(int32_t, const std::vector<std::string>&, uint64_t*) override { return unused(); }
  Status queue_length(int32_t, uint64_t*) override { return unused(); }
  Status read_messages_after(int32_t, uint64_t, uint64_t, std::vector<liner::QueuedFrame>*) override { return unused(); }
  Status drop_messages_through(int32_t, uint64_t, bool*) override { return unused(); }
  Status last_stored_message(int32_t, std::string*, bool*) override { return unused(); }
  Status clear_channel(int32_t) override { return unused(); }
  Status report_refused(int32_t, uint64_t, const std::string&) override { return unused(); }
  Status wait_directory_events(int, std::vector<liner::DirectoryEvent>*) override { return unused(); }

 protected:
  static Status unused() { return Status(liner::Err::internal_topic, "not used by this test"); }
};

}  // namespace testing_support
