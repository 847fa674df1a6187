"""Disk full through the real server: the WAL on a 2 MiB tmpfs.

The test mounts a small tmpfs (needs root / CAP_SYS_ADMIN; skipped with a clear
message when mount is refused), puts a filler file on it and runs the server
(policy sync) with its WAL there, then writes until the disk is full:

  - writes get -MISCONF naming the failing write and "No space left on device";
    a write in flight when the log failed is never acknowledged (its connection
    may be closed instead);
  - reads go on, and INFO persistence says wal_status:err;
  - once the filler is deleted the WAL retries and writes are accepted again in
    the same server process;
  - after kill -9 and a restart, every write acknowledged before the disk
    filled and after it resumed is there with its exact value.

The tmpfs is unmounted in teardown whatever happened (lazily if still busy).
"""

import os
import socket
import subprocess
import time

import pytest
import redis

import crabtest
from crabtest import CrabServer, start_with_retry

pytestmark = pytest.mark.skipif(crabtest.TARGET == "redis",
                                reason="CrabCache persistence; CRABTEST_TARGET=redis")

DISK_SIZE = "2m"
FILLER = 512 * 1024
VALUE = 900


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs mounted at tmp_path/disk, unmounted at teardown."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + DISK_SIZE, "tmpfs", str(mnt)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        pytest.skip("cannot mount a tmpfs for the disk-full test (needs root): %s" %
                    res.stdout.decode(errors="replace").strip())
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)])


def start(wal_dir):
    args = ["--wal.enabled", "true", "--wal-dir", str(wal_dir), "--wal-sync-policy", "sync",
            "--log-level", "info"]
    return start_with_retry(lambda: CrabServer(extra_args=args))


def client(srv):
    return redis.Redis(host="127.0.0.1", port=srv.resp_port, socket_timeout=20)


def value(i):
    return (b"%08d:" % i) * (VALUE // 9)


def info_field(r, name):
    return r.info("persistence").get(name)


def fill_until_refused(srv, acked, first):
    """SET distinct keys until the server refuses with MISCONF; returns the
    error text and the next key number. A write whose reply did not arrive is
    not recorded as acknowledged."""
    i = first
    r = client(srv)
    try:
        while i < first + 100000:
            try:
                r.set("k%d" % i, value(i))
                acked["k%d" % i] = value(i)
            except redis.ResponseError as e:
                return str(e), i + 1
            except redis.ConnectionError:
                r.close()            # held reply dropped: connection closed, not acked
                r = client(srv)
            i += 1
    finally:
        r.close()
    raise AssertionError("the 2 MiB disk never filled")


def test_disk_full_refuses_writes_keeps_reads_and_resumes(small_disk):
    filler = small_disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * FILLER)
    wal = small_disk / "wal"
    srv = start(wal)
    acked = {}
    try:
        r = client(srv)
        err, nxt = fill_until_refused(srv, acked, 0)
        assert err.startswith("MISCONF write-ahead log failing"), err
        assert "No space left on device" in err, err
        assert len(acked) > 500, len(acked)

        # every further write is refused with MISCONF, quickly, and changes nothing
        for cmd in (["SET", "new", "x"], ["INCR", "ctr"], ["DEL", "k0"],
                    ["APPEND", "k1", "zz"], ["EXPIRE", "k2", "100"]):
            with pytest.raises(redis.ResponseError) as e:
                r.execute_command(*cmd)
            assert "write-ahead log failing" in str(e.value), (cmd, e.value)
        # the native protocol refuses writes too, and still reads
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"PUT new x\r\nGET k0\r\n")
            f = s.makefile("rb")
            line = f.readline()
            assert line.startswith(b"ERROR: write-ahead log failing, writes refused"), line
            assert f.readline() == value(0) + b"\r\n"
        # reads go on
        assert r.get("k0") == value(0)
        assert r.get("k1") == value(1)
        assert r.ttl("k2") == -1
        assert r.exists("new") == 0
        assert r.get("k%d" % (nxt - 2)) in (None, value(nxt - 2))
        assert r.dbsize() >= len(acked)
        assert info_field(r, "wal_status") == "err"
        assert info_field(r, "wal_write_errors") >= 1

        # free space: the WAL retries on its own and writes are accepted again
        os.unlink(filler)
        deadline = time.monotonic() + 10
        while True:
            try:
                assert r.set("after-resume", "1") is True
                break
            except redis.ResponseError as e:
                assert "write-ahead log failing" in str(e)
                assert time.monotonic() < deadline, "writes did not resume within 10 s"
                time.sleep(0.1)
        acked["after-resume"] = b"1"
        assert info_field(r, "wal_status") == "ok"
        for i in range(nxt, nxt + 200):
            r.set("k%d" % i, value(i))
            acked["k%d" % i] = value(i)
        assert r.incr("ctr") == 1
        acked["ctr"] = b"1"
        r.close()
        assert "wal writes resumed" in srv.stderr()
        assert "No space left on device" in srv.stderr()
    finally:
        srv.kill()
        srv.stopped = True
        rep = crabtest.sanitizer_report(srv.stderr())
        srv.stop(check=False)
    assert not rep, rep

    # kill -9, restart on the same (tmpfs) directory: nothing acknowledged is lost
    srv2 = start(wal)
    try:
        r = client(srv2)
        pipe = r.pipeline(transaction=False)
        keys = sorted(acked)
        for k in keys:
            pipe.get(k)
        got = pipe.execute()
        lost = [k for k, v in zip(keys, got) if v != acked[k]]
        assert not lost, "%d acknowledged keys lost or changed, e.g. %s" % (len(lost), lost[:5])
        assert r.get("new") is None
        assert "damaged" not in srv2.stderr()
        r.close()
    finally:
        srv2.stop()


def test_disk_full_then_remount_bigger(small_disk):
    """Space can also come back by growing the filesystem (mount -o remount)."""
    wal = small_disk / "wal"
    srv = start(wal)
    acked = {}
    try:
        err, nxt = fill_until_refused(srv, acked, 0)
        assert "No space left on device" in err, err
        res = subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)])
        assert res.returncode == 0
        r = client(srv)
        deadline = time.monotonic() + 10
        while True:
            try:
                r.set("k%d" % nxt, value(nxt))
                acked["k%d" % nxt] = value(nxt)
                break
            except redis.ResponseError:
                assert time.monotonic() < deadline, "writes did not resume within 10 s"
                time.sleep(0.1)
        r.close()
        srv.stop()
        srv2 = start(wal)
        try:
            r = client(srv2)
            keys = sorted(acked)
            got = r.mget(keys)
            assert [k for k, v in zip(keys, got) if v != acked[k]] == []
            r.close()
        finally:
            srv2.stop()
    finally:
        srv.stop(check=False)
