"""many_to_many - several publishers, several subscribers.

Three publishers each fan out (send_all) to a topic that three subscribers serve as their
source topic (replicas). Every subscriber gets every message of every publisher, and the
callback's `from_` says which publisher sent it.

    python3 examples/python/many_to_many.py [redis_url]

Exits 0 when each subscriber got each publisher's messages exactly once, in order.
"""
import example

PUBLISHERS = 3
SUBSCRIBERS = 3
MESSAGES = 10  # per publisher
TOPIC = "many_to_many.subscribers"
PUBLISHER_TOPICS = ["many_to_many.publisher%d" % (p + 1) for p in range(PUBLISHERS)]
SUBSCRIBER_NAMES = ["many_to_many.subscriber%d" % (i + 1) for i in range(SUBSCRIBERS)]


def main():
    liner = example.load()
    url = example.redis_url()
    print("many_to_many: %d publishers fan out to %d subscribers (redis %s)"
          % (PUBLISHERS, SUBSCRIBERS, url))

    got = {(s, p): [] for s in SUBSCRIBER_NAMES for p in PUBLISHER_TOPICS}
    bad = []
    counter = example.Counter()

    def receiver_of(name):
        def on_receive(to, from_, data):
            if to == TOPIC and (name, from_) in got:
                got[(name, from_)].append(data)
            else:
                bad.append((name, to, from_, data))
            counter.add(name)
        return on_receive

    # All subscribers are created (and the topic's stale addresses cleared) before any runs:
    # clear_addresses_of_topic removes every replica's address.
    subscribers = [example.client(name, TOPIC, url) for name in SUBSCRIBER_NAMES]
    publishers = [example.client(topic, topic, url) for topic in PUBLISHER_TOPICS]
    try:
        for s in subscribers:
            example.run(s, receiver_of(s.unique_name()))
        for p in publishers:
            example.run(p, example.ignore)

        # Interleave the publishers, as independent processes would.
        for i in range(1, MESSAGES + 1):
            for p, topic in zip(publishers, PUBLISHER_TOPICS):
                example.send(p, TOPIC, "%s message %d" % (topic, i), all_=True)

        ok = counter.wait(SUBSCRIBERS * PUBLISHERS * MESSAGES)
    finally:
        for c in publishers + subscribers:  # senders first: receivers still read their last frames
            c.close()

    for name in SUBSCRIBER_NAMES:
        line = []
        for topic in PUBLISHER_TOPICS:
            expected = [b"%s message %d" % (topic.encode(), i) for i in range(1, MESSAGES + 1)]
            line.append("%s: %2d" % (topic.rsplit(".", 1)[1], len(got[(name, topic)])))
            ok = ok and got[(name, topic)] == expected
        print("  %-26s %s" % (name, ", ".join(line)))
    ok = ok and not bad
    return example.finish("many_to_many", ok, "every publisher's messages at every subscriber, once, in order")


if __name__ == "__main__":
    raise SystemExit(main())
