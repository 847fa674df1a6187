"""Commands that change several keys (RENAME, MSET) are logged as one group:
when the log is cut inside the group, recovery applies none of it, so a crash
can never leave RENAME half done (both keys, or a lost source)."""
import os

import pytest
import redis

import crabtest
from test_persist import client, crash, segments, start

pytestmark = pytest.mark.skipif(crabtest.TARGET == "redis",
                                reason="CrabCache persistence; CRABTEST_TARGET=redis")

HDR = 24  # record header (docs/wal-format.md)


@pytest.fixture
def servers():
    """Every server a test starts is stopped at the end, failures included."""
    started = []
    yield started
    for srv in started:
        if srv.alive():
            srv.kill()
        srv.stopped = True


def start_tracked(started, wal_dir):
    srv = start(wal_dir)
    started.append(srv)
    return srv


def cut_tail(wal_dir, nbytes):
    seg = [s for s in segments(wal_dir) if os.path.getsize(s) > 32][-1]
    size = os.path.getsize(seg)
    with open(seg, "r+b") as f:
        f.truncate(size - nbytes)


def test_rename_is_all_or_nothing(tmp_path, servers):
    srv = start_tracked(servers, tmp_path)
    r = client(srv)
    r.set("src", "v1")
    assert r.rename("src", "dst")
    crash(srv)
    # The group is SET dst then DEL src; cut into its last record (DEL src,
    # payload 4 + 3 bytes): with a group, the SET dst must go too.
    cut_tail(tmp_path, HDR + 4 + 3 - 2)
    srv = start_tracked(servers, tmp_path)
    r = client(srv)
    assert r.get("src") == b"v1"
    assert r.get("dst") is None
    srv.stop()


def test_rename_whole_group_survives(tmp_path, servers):
    srv = start_tracked(servers, tmp_path)
    r = client(srv)
    r.set("src", "v1")
    r.rename("src", "dst")
    crash(srv)
    srv = start_tracked(servers, tmp_path)
    r = client(srv)
    assert r.get("src") is None and r.get("dst") == b"v1"
    srv.stop()


def test_mset_is_all_or_nothing(tmp_path, servers):
    srv = start_tracked(servers, tmp_path)
    r = client(srv)
    r.set("a", "old")
    r.mset({"a": "1", "b": "2", "c": "3"})
    crash(srv)
    # cut into the last SET (c=3): payload 16 + 1 + 1
    cut_tail(tmp_path, HDR + 18 - 5)
    srv = start_tracked(servers, tmp_path)
    r = client(srv)
    assert r.mget("a", "b", "c") == [b"old", None, None]
    srv.stop()
