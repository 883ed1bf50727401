"""A subscriber gets what is sent to the topic while subscribed; after unsubscribe it leaves the
topic's directory, senders learn it and sends to the topic are refused (nobody serves it)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _support import Inbox, liner, log, scenario, wait_until  # noqa: E402


def main(mesh):
    reader = mesh.client("reader")
    newsroom = mesh.client("newsroom")
    news = mesh.name("news")
    inbox = Inbox()
    assert reader.subscribe(news)  # before run: registered when it starts
    assert reader.run(inbox) and newsroom.run(Inbox())
    assert newsroom.send_all(news, b"bulletin 1")
    inbox.wait_count(1)
    assert inbox.items[0] == (news, mesh.name("newsroom"), b"bulletin 1"), inbox.items

    assert reader.unsubscribe(news)
    with mesh.redis() as r:
        assert r.cmd("HLEN", f"lnr_topic:{news}:addr") == 0

    def refused():
        ok = newsroom.send_to(news, b"after")
        return not ok and newsroom.last_error_code() == liner.ERR_NO_ADDR
    wait_until(refused, 5.0, "sends to the topic to be refused")
    assert len(inbox.items) == 1, inbox.items
    log("subscribed: delivered; unsubscribed: refused, nothing delivered")


if __name__ == "__main__":
    raise SystemExit(scenario(main))
