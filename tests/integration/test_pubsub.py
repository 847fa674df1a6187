"""Pub/Sub, keyspace notifications and OBJECT FREQ with Debian's python3-redis, and the
server-side properties a byte comparison cannot show: subscribers spread over several
worker threads get every message in order, a subscriber that never reads is cut off by
the pub/sub output limit while its publisher goes on, and OBJECT FREQ follows accesses.

(python3-redis 4.3 has no RESP3 client; RESP3 pushes are compared byte for byte with
redis-server in test_diff_redis.py.)
"""

import socket
import threading
import time

import pytest
import redis

import crabtest
from crabtest import RespConn, encode, parse


def client(port):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)


def next_message(p, timeout=5.0):
    """The next non-None get_message() within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = p.get_message(timeout=0.2)
        if m is not None:
            return m
    raise AssertionError("no message within %.1fs" % timeout)


def test_pubsub_get_message_and_patterns(crab):
    r = client(crab.resp_port)
    p = r.pubsub()
    p.subscribe("news", "chat")
    assert next_message(p) == {"type": "subscribe", "pattern": None, "channel": b"news",
                               "data": 1}
    assert next_message(p)["data"] == 2
    p.psubscribe("news.*")
    assert next_message(p) == {"type": "psubscribe", "pattern": None, "channel": b"news.*",
                               "data": 3}
    pub = client(crab.resp_port)
    assert pub.publish("news", "hello") == 1
    assert pub.publish("news.tech", b"\x00bin") == 1
    assert pub.publish("nobody", "x") == 0
    assert next_message(p) == {"type": "message", "pattern": None, "channel": b"news",
                               "data": b"hello"}
    assert next_message(p) == {"type": "pmessage", "pattern": b"news.*",
                               "channel": b"news.tech", "data": b"\x00bin"}
    assert pub.pubsub_numsub("news", "chat", "none") == [(b"news", 1), (b"chat", 1),
                                                          (b"none", 0)]
    assert pub.pubsub_numpat() == 1
    assert sorted(pub.pubsub_channels()) == [b"chat", b"news"]
    assert pub.pubsub_channels("n*") == [b"news"]
    p.unsubscribe("news")
    assert next_message(p) == {"type": "unsubscribe", "pattern": None, "channel": b"news",
                               "data": 2}
    assert pub.publish("news", "gone") == 0
    p.punsubscribe()
    assert next_message(p)["type"] == "punsubscribe"
    p.close()
    # the connection closed: its subscriptions went with it
    deadline = time.monotonic() + 5
    while pub.pubsub_numsub("chat") != [(b"chat", 0)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pub.pubsub_numsub("chat") == [(b"chat", 0)]
    info = pub.info("stats")
    assert info["pubsub_channels"] == 0 and info["pubsub_patterns"] == 0
    assert info["pubsub_messages_delivered"] >= 2


def test_client_list_shows_subscriptions(crab):
    r = client(crab.resp_port)
    p = r.pubsub()
    p.subscribe("a", "b")
    p.psubscribe("c*")
    for _ in range(3):
        next_message(p)
    lines = [l for l in r.client_list() if l["sub"] != "0" or l["psub"] != "0"]
    assert len(lines) == 1
    assert (lines[0]["sub"], lines[0]["psub"], lines[0]["flags"]) == ("2", "1", "P")
    p.close()


def test_keyspace_notifications_expired_and_written(crab):
    r = client(crab.resp_port)
    r.config_set("notify-keyspace-events", "KEA")
    try:
        assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "AKE"}
        p = r.pubsub()
        p.psubscribe("__keyevent@0__:*")
        next_message(p)
        r.set("session:1", "x", px=100)
        assert next_message(p) == {"type": "pmessage", "pattern": b"__keyevent@0__:*",
                                   "channel": b"__keyevent@0__:set", "data": b"session:1"}
        assert next_message(p)["channel"] == b"__keyevent@0__:expire"
        # no client touches the key: the active expiry cycle reclaims it and says so
        m = next_message(p, timeout=10)
        assert (m["channel"], m["data"]) == (b"__keyevent@0__:expired", b"session:1")
        r.delete("nokey")          # nothing deleted: no event
        r.append("k", "v")
        assert next_message(p)["channel"] == b"__keyevent@0__:append"
        p.close()
    finally:
        r.config_set("notify-keyspace-events", "")
    with pytest.raises(redis.ResponseError, match="Invalid event class character"):
        r.config_set("notify-keyspace-events", "KEQ")


def test_keyspace_notifications_evicted(make_crab):
    srv = make_crab(extra_args=["--max-memory", "2mb", "--notify-keyspace-events", "Ee"])
    r = client(srv.resp_port)
    assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "eE"}
    p = r.pubsub()
    p.subscribe("__keyevent@0__:evicted")
    next_message(p)
    pipe = r.pipeline(transaction=False)
    for i in range(4000):
        pipe.set("key:%d" % i, "v" * 1000)
    pipe.execute()
    m = next_message(p, timeout=10)
    assert m["channel"] == b"__keyevent@0__:evicted" and m["data"].startswith(b"key:")
    assert r.info("stats")["evicted_keys"] > 0
    p.close()


def test_slow_subscriber_is_cut_off_publisher_goes_on(make_crab):
    srv = make_crab(extra_args=["--pubsub.output_buffer_limit", "1mb",
                                "--pubsub.output_buffer_soft_limit", "0"])
    # a subscriber that never reads, with a small receive buffer
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", srv.resp_port))
    s.sendall(encode(b"SUBSCRIBE", b"firehose"))
    pub = RespConn(srv.resp_port, server=srv)
    deadline = time.monotonic() + 10
    while parse(pub.call(b"PUBSUB", b"NUMSUB", b"firehose"))[0][1] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    payload = b"x" * 4096
    t0 = time.monotonic()
    receivers = []
    for _ in range(50):   # 50 x 40 x 4 KB = 8 MB, eight times the limit
        replies = pub.pipeline([[b"PUBLISH", b"firehose", payload]] * 40)
        receivers += [parse(x)[0] for x in replies]
    elapsed = time.monotonic() - t0
    assert len(receivers) == 2000
    # at first it counted, then it was cut off and nobody was left
    assert receivers[0] == 1 and receivers[-1] == 0
    info = parse(pub.call(b"INFO", b"stats"))[0].decode()
    assert "pubsub_clients_dropped:1\r\n" in info
    assert parse(pub.call(b"PUBSUB", b"NUMSUB", b"firehose"))[0] == [b"firehose", 0]
    crabtest.SUMMARY.append("slow subscriber: 2000 PUBLISH x 4 KB in %.2fs (%.0f/s), "
                            "subscriber cut off" % (elapsed, 2000 / elapsed))
    # the server serves others as before
    assert pub.call(b"SET", b"k", b"v") == b"+OK\r\n"
    s.close()
    pub.close()


def test_subscribers_on_several_threads_get_everything_in_order(make_crab):
    srv = make_crab(threads=4)
    nsubs, npubs, nmsg = 24, 4, 300
    subs = []
    for _ in range(nsubs):
        c = RespConn(srv.resp_port, server=srv, timeout=20)
        assert parse(c.call(b"SUBSCRIBE", b"bcast"))[0] == [b"subscribe", b"bcast", 1]
        subs.append(c)
    probe = RespConn(srv.resp_port, server=srv)
    assert parse(probe.call(b"PUBSUB", b"NUMSUB", b"bcast"))[0] == [b"bcast", nsubs]
    errors = []

    def publisher(k):
        try:
            with RespConn(srv.resp_port, server=srv) as p:
                for i in range(0, nmsg, 50):
                    cmds = [[b"PUBLISH", b"bcast", b"%d:%d" % (k, j)]
                            for j in range(i, min(i + 50, nmsg))]
                    for raw in p.pipeline(cmds):
                        if parse(raw)[0] != nsubs:
                            errors.append(raw)
        except Exception as e:   # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=publisher, args=(k,)) for k in range(npubs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for c in subs:
        seen = {k: [] for k in range(npubs)}
        for _ in range(npubs * nmsg):
            v = parse(c.read_reply())[0]
            assert v[:2] == [b"message", b"bcast"]
            k, j = v[2].split(b":")
            seen[int(k)].append(int(j))
        # every message once, each publisher's in its order
        assert all(seen[k] == list(range(nmsg)) for k in range(npubs))
        c.close()
    probe.close()


def test_object_freq_follows_accesses(crab):
    r = client(crab.resp_port)
    r.set("hot", "1")
    r.set("cold", "1")
    before = r.object("freq", "hot")
    for _ in range(12):
        r.get("hot")
    assert r.object("freq", "hot") > before
    assert r.object("freq", "cold") <= r.object("freq", "hot")
    # OBJECT looks without touching: reading FREQ does not raise it
    f = r.object("freq", "cold")
    for _ in range(5):
        r.object("freq", "cold")
    assert r.object("freq", "cold") == f
    assert r.object("encoding", "hot") == b"int"
    assert r.memory_usage("hot") > 0
    stats = r.memory_stats()
    assert stats["keys.count"] == 2 and stats["total.allocated"] > 0
