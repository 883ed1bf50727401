"""A sender SIGKILLed in the middle of a stream on an SQLite file, and restarted with the same
identity (the Redis form is test_sender_killed.py):

- the kill leaves no lock behind and the file whole (PRAGMA integrity_check), whatever
  transaction the dead process was in: the restarted sender and the listener go on writing it;
- what the killed sender had stored is delivered, the first life as a gap-free prefix (a crash
  loses only a tail that existed in its RAM), the second life all of it, in order, none dropped
  as a duplicate; its numbering continues above what the listener acknowledged; the offline
  queue ends empty.
"""
import sqlite3
import time

from faultkit import count_lines, free_port, read_records, report, wait_until


def read_one(path, sql, *args):
    with sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5) as db:
        row = db.execute(sql, args).fetchone()
    return row[0] if row else None


def test_sender_killed_mid_stream_on_sqlite(peers, tmp_path):
    path = str(tmp_path / "mesh.db")
    url = "sqlite:" + path
    out = str(tmp_path / "listener.log")
    listener = peers("listen", "sk_listener", "sk_topic", url, "--out", out, "--work-us", 20)
    listener.expect("READY")
    first = peers("send", "sk_sender", "sk_sender_topic", url, "--to", "sk_topic", "--count", 50_000,
                  "--tag", "a")
    first.expect("READY")
    assert wait_until(lambda: count_lines(out) >= 10_000, 30)
    first.kill()
    killed_at = time.monotonic()
    accepted = max([int(s) for s in first.lines_starting("SENT")] + [0])

    second = peers("send", "sk_sender", "sk_sender_topic", url, "--to", "sk_topic", "--count", 5_000,
                   "--tag", "b")
    second.expect("READY")
    restarted_after = time.monotonic() - killed_at
    assert second.expect("DONE", timeout=30) == "5000"
    wait_until(lambda: len([r for r in read_records(out) if r.tag == "b"]) >= 5_000, 20)
    ck = read_one(path, "SELECT connection_key FROM conn_key_map WHERE composite = ?",
                  "sk_sender:sk_sender_topic:sk_listener")
    assert ck is not None
    # The listener's ack flush, then the sender's removal of what it acknowledged.
    wait_until(lambda: read_one(path, "SELECT COUNT(*) FROM conn_messages WHERE connection_key = ?", ck) == 0, 10)
    records = read_records(out)
    a = [r.seq for r in records if r.tag == "a"]
    b = [r.seq for r in records if r.tag == "b"]
    final_ack = int(read_one(path, "SELECT v FROM conn_mess_number WHERE connection_key = ?", ck))
    report("sqlite_sender_killed", accepted_before_kill_at_least=accepted, delivered_of_first_life=len(a),
           restarted_after_s=round(restarted_after, 2), second_life_delivered=len(b), final_ack=final_ack)

    assert a == list(range(1, len(a) + 1)), "first life not a gap-free prefix"
    assert b == list(range(1, 5_001)), "second life: %d of 5000 delivered, first missing %s" % (
        len(b), sorted(set(range(1, 5_001)) - set(b))[:5])
    assert final_ack >= len(a) + 5_000
    assert read_one(path, "SELECT COUNT(*) FROM conn_messages WHERE connection_key = ?", ck) == 0
    assert read_one(path, "PRAGMA integrity_check") == "ok"


def test_sender_killed_while_spilling_to_sqlite(peers, tmp_path):
    """The listener dies (SIGKILL), so the sender spills every message to the file; the sender is
    killed in the middle of that. The listener back at its address and a restarted sender then
    get every stored message through, and the file stays whole."""
    path = str(tmp_path / "mesh.db")
    url = "sqlite:" + path
    out1, out2 = str(tmp_path / "listener1.log"), str(tmp_path / "listener2.log")
    addr = "127.0.0.1:%d" % free_port()
    listener = peers("listen", "sp_listener", "sp_topic", url, "--out", out1, "--addr", addr)
    listener.expect("READY")
    first = peers("send", "sp_sender", "sp_sender_topic", url, "--to", "sp_topic", "--count", 200_000,
                  "--rate", 20_000, "--tag", "a")
    first.expect("READY")
    assert wait_until(lambda: count_lines(out1) >= 2_000, 30)
    listener.kill()
    composite = "sp_sender:sp_sender_topic:sp_listener"

    def stored():
        ck = read_one(path, "SELECT connection_key FROM conn_key_map WHERE composite = ?", composite)
        return read_one(path, "SELECT COUNT(*) FROM conn_messages WHERE connection_key = ?", ck) or 0

    assert wait_until(lambda: stored() >= 5_000, 30), "the sender did not spill to the file"
    first.kill()  # while it spills: 20,000 messages a second go to the file
    stored_at_kill = stored()
    assert read_one(path, "PRAGMA integrity_check") == "ok"

    listener = peers("listen", "sp_listener", "sp_topic", url, "--out", out2, "--addr", addr)
    listener.expect("READY")
    second = peers("send", "sp_sender", "sp_sender_topic", url, "--to", "sp_topic", "--count", 1_000,
                   "--tag", "b")
    second.expect("READY")
    assert second.expect("DONE", timeout=30) == "1000"
    wait_until(lambda: len([r for r in read_records(out2) if r.tag == "b"]) >= 1_000, 30)
    wait_until(lambda: stored() == 0, 10)
    a = {r.seq for r in read_records(out1) + read_records(out2) if r.tag == "a"}
    b = [r.seq for r in read_records(out2) if r.tag == "b"]
    report("sqlite_sender_killed_while_spilling", stored_at_kill=stored_at_kill, first_life_delivered=len(a),
           second_life_delivered=len(b))
    # Everything the first life stored arrived: what it delivered is a gap-free prefix covering
    # the direct deliveries and every stored row.
    assert a == set(range(1, len(a) + 1)), "first life: a hole in what arrived"
    assert len(a) >= stored_at_kill
    assert b == list(range(1, 1_001))
    assert stored() == 0
    assert read_one(path, "PRAGMA integrity_check") == "ok"
