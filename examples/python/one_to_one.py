"""one_to_one - one sender, one receiver.

The sender addresses the receiver by its topic with send_to(). The receive callback gets `to`
(the receiver's topic), `from_` (the sender's topic) and the payload bytes, in sending order.

    python3 examples/python/one_to_one.py [redis_url]

Exits 0 when the receiver got every message once, in order.
"""
import example

MESSAGES = 10
SENDER, RECEIVER = "one_to_one.sender", "one_to_one.receiver"


def main():
    liner = example.load()
    url = example.redis_url()
    print("one_to_one: one sender, one receiver (redis %s, liner %s)" % (url, liner.version()))

    got = []
    counter = example.Counter()

    def on_receive(to, from_, data):
        got.append((to, from_, data))  # one delivery thread per client: no lock needed
        counter.add(from_)

    receiver = example.client(RECEIVER, RECEIVER, url)
    sender = example.client(SENDER, SENDER, url)
    with receiver, sender:
        example.run(receiver, on_receive)
        example.run(sender, example.ignore)

        for i in range(1, MESSAGES + 1):
            example.send(sender, RECEIVER, "message %d" % i)

        ok = counter.wait(MESSAGES)
    expected = [(RECEIVER, SENDER, b"message %d" % i) for i in range(1, MESSAGES + 1)]
    ok = ok and got == expected
    print("  receiver got %d of %d messages%s" % (len(got), MESSAGES, ", in order" if ok else ""))
    return example.finish("one_to_one", ok, "every message once, in order")


if __name__ == "__main__":
    raise SystemExit(main())
