"""Persistence through the real server: WAL + snapshots, kill -9, restart.

- policy sync: every acknowledged write of several concurrent clients survives
  kill -9 (SET, INCR, APPEND, RENAME, DEL, EXPIRE/PERSIST, MSET, FLUSHALL);
- snapshots (BGSAVE, SAVE) plus the log after them give the same state;
- expired keys are not resurrected by a restart, and a TTL extended by a later
  command is kept;
- a torn tail (garbage after the last record) is dropped and logged; a damaged
  record in the middle stops start-up naming the file and offset, and
  --wal.skip_damaged_records true starts anyway, logging what was skipped.

Each test owns its WAL directory (pytest's tmp_path) and its server processes.
"""

import glob
import os
import threading
import time

import pytest
import redis

import crabtest
from crabtest import CrabServer, ServerError, start_with_retry

pytestmark = pytest.mark.skipif(crabtest.TARGET == "redis",
                                reason="CrabCache persistence; CRABTEST_TARGET=redis")


def wal_args(wal_dir, policy="sync", *extra):
    return ["--wal.enabled", "true", "--wal-dir", str(wal_dir),
            "--wal-sync-policy", policy, "--log-level", "info"] + list(extra)


def start(wal_dir, policy="sync", *extra):
    return start_with_retry(lambda: CrabServer(extra_args=wal_args(wal_dir, policy, *extra)))


def client(srv):
    return redis.Redis(host="127.0.0.1", port=srv.resp_port, socket_timeout=20)


def crash(srv):
    """kill -9, then make sure nothing but the kill went wrong."""
    srv.kill()
    srv.stopped = True
    rep = crabtest.sanitizer_report(srv.stderr())
    assert not rep, rep
    srv.stop(check=False)


def segments(wal_dir):
    return sorted(glob.glob(os.path.join(str(wal_dir), "wal-*.log")))


def snapshots(wal_dir):
    return sorted(glob.glob(os.path.join(str(wal_dir), "snap-*.snap")))


def test_kill9_sync_keeps_every_acknowledged_write(tmp_path):
    wal = tmp_path / "wal"
    srv = start(wal, "sync")
    acked = {}
    lock = threading.Lock()
    errors = []

    def worker(n):
        try:
            r = client(srv)
            for i in range(300):
                k = "c%d:k%d" % (n, i % 50)
                r.set(k, "v%d" % i)
                cnt = r.incr("c%d:counter" % n)
                r.append("c%d:log" % n, "%d," % i)
                with lock:
                    acked[k] = b"v%d" % i
                    acked["c%d:counter" % n] = str(cnt).encode()
            r.close()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    r = client(srv)
    r.set("src", "moved")
    assert r.rename("src", "dst") is True
    r.mset({"m1": "1", "m2": "2"})
    r.set("gone", "x")
    r.delete("gone")
    r.set("ttl", "t", px=600000)
    r.set("persisted", "p", px=600000)
    r.persist("persisted")
    logs = {n: r.get("c%d:log" % n) for n in range(4)}
    r.close()
    crash(srv)

    srv2 = start(wal, "sync")
    try:
        r = client(srv2)
        for k, v in acked.items():
            assert r.get(k) == v, k
        for n in range(4):
            assert r.get("c%d:log" % n) == logs[n]
            assert r.get("c%d:counter" % n) == b"300"
        assert r.get("src") is None
        assert r.get("dst") == b"moved"
        assert r.mget("m1", "m2") == [b"1", b"2"]
        assert r.get("gone") is None
        assert 0 < r.pttl("ttl") <= 600000
        assert r.ttl("persisted") == -1
        r.flushall()
        r.set("after-flush", "1")
        r.close()
        crash(srv2)
        srv3 = start(wal, "sync")
        r = client(srv3)
        assert r.dbsize() == 1
        assert r.get("after-flush") == b"1"
        r.close()
        srv3.stop()
    finally:
        srv2.stop(check=False)


def test_snapshot_plus_log(tmp_path):
    wal = tmp_path / "wal"
    srv = start(wal, "async")
    r = client(srv)
    for i in range(2000):
        r.set("k%d" % i, "a%d" % i)
    assert r.bgsave() is True
    deadline = time.monotonic() + 10
    while not snapshots(wal) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert snapshots(wal)
    for i in range(0, 2000, 2):
        r.set("k%d" % i, "b%d" % i)
    for i in range(1, 2000, 10):
        r.delete("k%d" % i)
    r.save()
    r.set("tail", "after-save")
    before = {k: r.get(k) for k in ("k0", "k1", "k2", "k3", "k1999", "tail")}
    count = r.dbsize()
    r.close()
    srv.stop()            # clean shutdown: the WAL is flushed and fsync'd

    srv2 = start(wal, "async")
    try:
        r = client(srv2)
        assert r.dbsize() == count
        assert {k: r.get(k) for k in before} == before
        r.close()
        assert "snapshot" in srv2.stderr()
    finally:
        srv2.stop()


def test_expired_keys_stay_dead(tmp_path):
    wal = tmp_path / "wal"
    srv = start(wal, "sync")
    r = client(srv)
    r.set("short", "1", px=300)
    r.set("old-then-short", "old")
    r.set("old-then-short", "new", px=300)
    r.set("extended", "e", px=300)
    r.pexpire("extended", 600000)
    r.set("kept", "k", px=300)
    r.persist("kept")
    r.close()
    crash(srv)
    time.sleep(0.6)
    srv2 = start(wal, "sync")
    try:
        r = client(srv2)
        assert r.get("short") is None
        assert r.get("old-then-short") is None
        assert r.get("extended") == b"e"
        assert r.pttl("extended") > 1000
        assert r.get("kept") == b"k"
        assert r.ttl("kept") == -1
        r.close()
    finally:
        srv2.stop()


def _fill_and_crash(wal, n=50):
    srv = start(wal, "sync")
    r = client(srv)
    for i in range(n):
        r.set("key%d" % i, "value%d" % i)
    r.close()
    crash(srv)


def test_torn_tail_is_dropped_and_logged(tmp_path):
    wal = tmp_path / "wal"
    _fill_and_crash(wal)
    seg = segments(wal)[-1]
    size = os.path.getsize(seg)
    with open(seg, "ab") as f:            # a write cut short: a partial record
        f.write(b"\x12\x34\x56\x78\x40\x00\x00\x00\x33\x00")
    srv = start(wal, "sync")
    try:
        r = client(srv)
        assert r.dbsize() == 50
        assert r.get("key49") == b"value49"
        r.close()
        assert "torn tail" in srv.stderr()
        assert os.path.getsize(seg) == size
    finally:
        srv.stop()


def test_damage_in_the_middle_stops_startup(tmp_path):
    wal = tmp_path / "wal"
    _fill_and_crash(wal)
    seg = segments(wal)[0]
    with open(seg, "r+b") as f:
        f.seek(32 + 24 + 10)              # inside the first record's payload
        b = f.read(1)
        f.seek(32 + 24 + 10)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(ServerError) as e:
        start(wal, "sync").stop()
    msg = str(e.value)
    assert os.path.basename(seg) in msg
    assert "offset 32" in msg

    srv = start(wal, "sync", "--wal.skip_damaged_records", "true")
    try:
        r = client(srv)
        assert r.get("key0") is None      # the damaged record is not loaded
        assert r.get("key1") == b"value1"
        assert r.dbsize() == 49
        r.close()
        assert "skipped" in srv.stderr()
    finally:
        srv.stop()
