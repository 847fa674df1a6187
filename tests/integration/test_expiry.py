"""Expiry: active reclamation without access (DBSIZE drops on its own), millisecond
precision of PX / PXAT / EXAT, expired keys never returned even before they are
reclaimed, and many short-lived keys all reclaimed.  DBSIZE is used to observe the
keyspace because it touches no key.
"""

import time

import pytest

from crabtest import NativeConn, RespConn, encode, parse, wait_for


@pytest.fixture
def c(crab):
    with RespConn(crab.resp_port, server=crab) as conn:
        yield conn


def dbsize(conn):
    return parse(conn.call("DBSIZE"))[0]


def test_active_expiry_500ms(c):
    assert c.call("SET", "short", "v", "PX", "500") == b"+OK\r\n"
    assert c.call("SET", "keep", "v") == b"+OK\r\n"
    assert dbsize(c) == 2
    t0 = time.monotonic()
    assert wait_for(lambda: dbsize(c) == 1, timeout=2.0, interval=0.02), \
        "a key with a 500 ms TTL was still counted after 2 s without being touched"
    assert time.monotonic() - t0 >= 0.4, "key reclaimed before its TTL"
    assert c.call("GET", "keep") == b"$1\r\nv\r\n"


def test_px_precision(c):
    t0 = time.monotonic()
    assert c.call("SET", "p", "v", "PX", "600") == b"+OK\r\n"
    assert c.call("GET", "p") == b"$1\r\nv\r\n"
    pttl = parse(c.call("PTTL", "p"))[0]
    assert 0 < pttl <= 600
    while time.monotonic() - t0 < 0.3:
        assert c.call("GET", "p") == b"$1\r\nv\r\n", "expired before 600 ms"
        time.sleep(0.02)
    time.sleep(max(0.0, 0.63 - (time.monotonic() - t0)))
    assert c.call("GET", "p") == b"$-1\r\n", "still there 30 ms after its PX 600"
    assert c.call("TTL", "p") == b":-2\r\n"


def test_pxat_precision(c):
    now_ms = int(time.time() * 1000)
    at = now_ms + 600
    assert c.call("SET", "pa", "v", "PXAT", str(at)) == b"+OK\r\n"
    assert c.call("PEXPIRETIME", "pa") == b":%d\r\n" % at
    assert parse(c.call("EXPIRETIME", "pa"))[0] in ((at + 500) // 1000, at // 1000)
    while time.time() * 1000 < at - 250:
        assert c.call("EXISTS", "pa") == b":1\r\n"
        time.sleep(0.02)
    while time.time() * 1000 < at + 30:
        time.sleep(0.01)
    assert c.call("EXISTS", "pa") == b":0\r\n", "alive 30 ms after its PXAT"


def test_pexpireat_and_pexpire_precision(c):
    c.call("SET", "a", "v")
    c.call("SET", "b", "v")
    at = int(time.time() * 1000) + 400
    assert c.call("PEXPIREAT", "a", str(at)) == b":1\r\n"
    assert c.call("PEXPIRE", "b", "400") == b":1\r\n"
    time.sleep(0.1)
    assert c.call("MGET", "a", "b") == b"*2\r\n$1\r\nv\r\n$1\r\nv\r\n"
    time.sleep(0.4)
    assert c.call("MGET", "a", "b") == b"*2\r\n$-1\r\n$-1\r\n"


def test_exat_second_precision(c):
    at = int(time.time()) + 2
    assert c.call("SET", "ea", "v", "EXAT", str(at)) == b"+OK\r\n"
    assert c.call("EXPIRETIME", "ea") == b":%d\r\n" % at
    assert c.call("PEXPIRETIME", "ea") == b":%d\r\n" % (at * 1000)
    while time.time() < at - 0.1:
        assert c.call("GET", "ea") == b"$1\r\nv\r\n"
        time.sleep(0.05)
    while time.time() < at + 0.05:
        time.sleep(0.01)
    assert c.call("GET", "ea") == b"$-1\r\n"


def test_past_times_delete_at_once(c):
    for cmd in (["SET", "x", "v", "PXAT", "1"], ["SET", "x", "v", "EXAT", "1"]):
        assert c.call(*cmd) == b"+OK\r\n"
        assert c.call("GET", "x") == b"$-1\r\n"
    c.call("SET", "y", "v")
    assert c.call("EXPIREAT", "y", "1") == b":1\r\n"
    assert c.call("EXISTS", "y") == b":0\r\n"
    c.call("SET", "y", "v")
    assert c.call("EXPIRE", "y", "-1") == b":1\r\n"
    assert c.call("EXISTS", "y") == b":0\r\n"
    c.call("SET", "y", "v")
    assert c.call("GETEX", "y", "PXAT", "1") == b"$1\r\nv\r\n"
    assert c.call("EXISTS", "y") == b":0\r\n"
    assert wait_for(lambda: dbsize(c) == 0, timeout=2.0)


def test_expired_never_returned(c):
    """Between expiry and reclamation a key must be invisible to every read."""
    assert c.call("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"+OK\r\n"
    try:
        n = 200
        c.pipeline([["SET", "gone:%d" % i, "v", "PX", "200"] for i in range(n)])
        c.call("SET", "stay", "v")
        time.sleep(0.3)
        assert parse(c.call("KEYS", "*"))[0] == [b"stay"]
        assert parse(c.call("MGET", *["gone:%d" % i for i in range(n)]))[0] == [None] * n
        cur, seen = b"0", set()
        while True:
            cur, ks = parse(c.call("SCAN", cur, "COUNT", "50"))[0]
            seen.update(ks)
            if cur == b"0":
                break
        assert seen == {b"stay"}
        assert c.call("EXISTS", "gone:1", "gone:2") == b":0\r\n"
        assert c.call("TTL", "gone:3") == b":-2\r\n"
        assert c.call("STRLEN", "gone:4") == b":0\r\n"
        assert c.call("APPEND", "gone:5", "new") == b":3\r\n"
        assert c.call("INCR", "gone:6") == b":1\r\n"
        assert c.call("SET", "gone:7", "w", "NX") == b"+OK\r\n"
        assert c.call("RENAME", "gone:8", "z") == b"-ERR no such key\r\n"
        assert c.call("COPY", "gone:9", "z") == b":0\r\n"
    finally:
        assert c.call("DEBUG", "SET-ACTIVE-EXPIRE", "1") == b"+OK\r\n"


def test_many_short_ttls_reclaimed(c):
    n = 20000
    for start in range(0, n, 2000):
        cmds = [encode("SET", "t:%d" % i, "x" * 32, "PX", str(200 + (i % 500)))
                for i in range(start, start + 2000)]
        c.send(b"".join(cmds))
        assert c.read_replies(2000) == [b"+OK\r\n"] * 2000
    c.pipeline([["SET", "p:%d" % i, "v"] for i in range(100)])
    assert dbsize(c) >= 100
    assert wait_for(lambda: dbsize(c) == 100, timeout=8.0, interval=0.1), \
        "short-TTL keys not all reclaimed: DBSIZE %d" % dbsize(c)
    info = parse(c.call("INFO", "keyspace"))[0].decode()
    assert "db0:keys=100,expires=0," in info, info
    stats = parse(c.call("INFO", "stats"))[0].decode()
    expired = [ln for ln in stats.split("\r\n") if ln.startswith("expired_keys:")]
    assert expired and int(expired[0].split(":")[1]) >= n, expired


def test_native_put_ttl_reclaimed(crab_only, crab, c):
    with NativeConn(crab.port, server=crab) as nat:
        for i in range(500):
            nat.send(b"PUT nt:%d v 1\r\n" % i)
        for i in range(500):
            assert nat.read_line() == b"OK"
        assert dbsize(c) == 500
        assert wait_for(lambda: dbsize(c) == 0, timeout=4.0, interval=0.1), dbsize(c)
        assert nat.cmd(b"GET nt:1") == b"NULL"


def test_overwrite_clears_ttl(c):
    c.call("SET", "o", "v", "PX", "300")
    c.call("SET", "o", "w")
    assert c.call("TTL", "o") == b":-1\r\n"
    c.call("SET", "k", "v", "PX", "300")
    c.call("SET", "k", "w", "KEEPTTL")
    time.sleep(0.4)
    assert c.call("GET", "o") == b"$1\r\nw\r\n"
    assert c.call("GET", "k") == b"$-1\r\n"
