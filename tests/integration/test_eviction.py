"""Eviction in the running server: memory that holds under a write flood, noeviction's
OOM error byte for byte as Redis, live CONFIG SET of the policy and the limit, and the
INFO / STATS / metrics figures that report what happened.

The flood writes 3 x max_memory of values from 10 B to 100 KB (log-uniform sizes,
every key new). Under tinylfu and lru no write may fail and INFO used_memory must stay
at or below max_memory throughout. RSS is checked against
1.15 x max_memory + the empty server's RSS (peak RSS, VmHWM from /proc) only on a build
without AddressSanitizer, whose shadow memory and quarantine inflate RSS: when the
binary under test ($CRABCACHE_BIN_DIR) is an ASan build, the RSS check runs on the
release binary (build/crabcache, or $CRABCACHE_RELEASE_BIN) if there is one.
"""

import json
import math
import os
import random
import re
import time
import urllib.request

import pytest

import crabtest
from crabtest import CrabServer, NativeConn, RedisServer, RespConn, parse, wait_for

OOM = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
MB = 1 << 20


# --------------------------------------------------------------------------------------
# helpers

def is_asan(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def release_binary():
    """A crabcache binary without ASan for the RSS bound, or None."""
    cands = [os.environ.get("CRABCACHE_RELEASE_BIN"),
             os.path.join(crabtest.bin_dir(), "crabcache"),
             os.path.join(crabtest.REPO_ROOT, "build", "crabcache")]
    for c in cands:
        if c and os.access(c, os.X_OK) and not is_asan(c):
            return c
    return None


def start_crab(binary=None, **kw):
    """A CrabCache server (the binary under test unless `binary` is given)."""
    def make():
        srv = CrabServer(**kw)
        if binary:
            srv.argv[0] = binary
        return srv
    return crabtest.start_with_retry(make)


def proc_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("%s not in /proc/%d/status" % (field, pid))


def info(conn):
    text = parse(conn.call("INFO", "all"))[0]
    if not isinstance(text, bytes):
        text = bytes(text)
    out = {}
    for line in text.decode().splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def stats(srv):
    with NativeConn(srv.port, server=srv) as n:
        return json.loads(n.cmd("STATS"))


def settle(conn, timeout=5.0):
    """INFO once the background eviction has stopped (evicted_keys steady for 0.3 s)."""
    last = info(conn)

    def steady():
        nonlocal last
        time.sleep(0.3)
        cur = info(conn)
        same = cur["evicted_keys"] == last["evicted_keys"]
        last = cur
        return same
    assert wait_for(steady, timeout, 0), "eviction still running after %.0f s" % timeout
    return last


def value_of(i, size):
    return bytes([97 + i % 26]) * size


def flood_sizes(total, seed):
    """Value sizes, log-uniform in [10, 100000], adding up to at least total bytes."""
    rng = random.Random(seed)
    sizes, acc = [], 0
    lo, hi = math.log(10), math.log(100000)
    while acc < total:
        s = int(math.exp(rng.uniform(lo, hi)))
        sizes.append(s)
        acc += s
    return sizes


def flood(srv, conn, max_memory, seed=1, batch=32):
    """Write 3 x max_memory of new keys; returns (writes, failed, peak used_memory).
    used_memory is sampled after every batch."""
    sizes = flood_sizes(3 * max_memory, seed)
    failed, peak_used = 0, 0
    for start in range(0, len(sizes), batch):
        cmds = [("SET", "flood:%d:%d" % (i, sizes[i]), value_of(i, sizes[i]))
                for i in range(start, min(start + batch, len(sizes)))]
        for reply in conn.pipeline(cmds):
            if reply != b"+OK\r\n":
                failed += 1
        peak_used = max(peak_used, int(info(conn)["used_memory"]))
    return len(sizes), failed, peak_used


def check_sample(conn, n=40):
    """Keys left after eviction hold exactly what was written."""
    for _ in range(n):
        key = parse(conn.call("RANDOMKEY"))[0]
        if key is None:
            return
        _, i, size = key.decode().split(":")
        assert conn.call("GET", key) == b"$%d\r\n%s\r\n" % (int(size), value_of(int(i),
                                                                                  int(size)))


# --------------------------------------------------------------------------------------
# the write flood

@pytest.mark.parametrize("policy", ["tinylfu", "lru"])
def test_flood_no_write_fails_used_memory_holds(policy, crab_only):
    max_memory = 24 * MB
    srv = start_crab(max_memory=max_memory, extra_args=["--eviction-policy", policy])
    try:
        with RespConn(srv.resp_port, server=srv, timeout=30) as c:
            empty_rss = proc_kb(srv.proc.pid, "VmRSS")
            writes, failed, peak_used = flood(srv, c, max_memory)
            i = settle(c)
            assert failed == 0, "%d of %d writes failed under %s" % (failed, writes, policy)
            assert peak_used <= max_memory, \
                "used_memory reached %d > max_memory %d" % (peak_used, max_memory)
            evicted = int(i["evicted_keys"])
            keys = parse(c.call("DBSIZE"))[0]
            assert evicted > 0 and keys + evicted == writes, (keys, evicted, writes)
            assert int(i["maxmemory"]) == max_memory
            assert i["maxmemory_policy"] == {"tinylfu": "tinylfu", "lru": "allkeys-lru"}[policy]
            check_sample(c)
            st = stats(srv)
            assert st["evictions"] == evicted and st["max_memory"] == max_memory
            assert st["keys"] == keys and st["memory"] <= max_memory
            assert sum(s["keys"] for s in st["shards"]) == keys
            if not is_asan(srv.argv[0]):
                peak_rss = proc_kb(srv.proc.pid, "VmHWM")
                bound = 1.15 * max_memory + empty_rss
                crabtest.SUMMARY.append(
                    "eviction flood %s: peak RSS %.1f MB, bound %.1f MB (empty %.1f MB)" % (
                        policy, peak_rss / MB, bound / MB, empty_rss / MB))
                assert peak_rss <= bound, "peak RSS %d > 1.15 x max_memory + empty RSS = %d" % (
                    peak_rss, bound)
    finally:
        srv.stop()


def test_flood_rss_bound_release_build(crab_only):
    """The RSS bound on a build without ASan, when the binary under test has ASan."""
    if not is_asan(crabtest.crab_binary()):
        pytest.skip("the binary under test has no ASan: the flood test checked RSS")
    binary = release_binary()
    if binary is None:
        pytest.skip("no release build (run `make`) to check RSS without ASan")
    max_memory = 32 * MB
    for policy in ("tinylfu", "lru"):
        srv = start_crab(binary, max_memory=max_memory,
                         extra_args=["--eviction-policy", policy])
        try:
            with RespConn(srv.resp_port, server=srv, timeout=30) as c:
                empty_rss = proc_kb(srv.proc.pid, "VmRSS")
                writes, failed, peak_used = flood(srv, c, max_memory, seed=2)
                peak_rss = proc_kb(srv.proc.pid, "VmHWM")
            bound = 1.15 * max_memory + empty_rss
            crabtest.SUMMARY.append(
                "eviction flood %s (release %s): peak RSS %.1f MB, bound %.1f MB" % (
                    policy, binary, peak_rss / MB, bound / MB))
            assert failed == 0 and peak_used <= max_memory
            assert peak_rss <= bound, "%s: peak RSS %d > 1.15 x max_memory + empty RSS = %d" % (
                policy, peak_rss, bound)
        finally:
            srv.stop()


# --------------------------------------------------------------------------------------
# noeviction

def fill_until_oom(conn, prefix, size=1000, limit=100000):
    """SET new keys until a write fails; returns (keys written, the failing reply)."""
    for i in range(limit):
        r = conn.call("SET", "%s%d" % (prefix, i), "x" * size)
        if r != b"+OK\r\n":
            return i, r
    raise AssertionError("no write failed after %d keys" % limit)


def test_noeviction_oom_byte_exact_reads_go_on(crab_only):
    ref = crabtest.start_with_retry(lambda: RedisServer(
        extra_args=["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"]))
    try:
        with RespConn(ref.port, server=ref) as r:
            _, redis_err = fill_until_oom(r, "k")
    finally:
        ref.stop()
    assert redis_err == OOM, "this redis-server's OOM error is %r" % redis_err

    srv = start_crab(max_memory=MB, extra_args=["--eviction-policy", "noeviction"])
    try:
        with RespConn(srv.resp_port, server=srv) as c:
            n, err = fill_until_oom(c, "k")
            assert err == redis_err
            assert n > 500  # ~1 MB of 1 KB values was accepted first
            # writes that may add memory keep failing, exactly as in Redis
            assert c.call("SET", "another", "v") == OOM
            assert c.call("APPEND", "k1", "more") == OOM
            assert c.call("MSET", "a", "1", "b", "2") == OOM
            assert c.call("INCR", "counter") == OOM
            # reads go on, and so do commands that free memory
            assert c.call("GET", "k0") == b"$1000\r\n" + b"x" * 1000 + b"\r\n"
            assert c.call("GET", "k%d" % (n - 1)) == b"$1000\r\n" + b"x" * 1000 + b"\r\n"
            assert c.call("GET", "never") == b"$-1\r\n"
            assert c.call("EXISTS", "k5") == b":1\r\n"
            assert c.call("STRLEN", "k7") == b":1000\r\n"
            i = info(c)
            assert i["maxmemory_policy"] == "noeviction" and i["evicted_keys"] == "0"
            assert int(i["used_memory"]) > MB * 0.85
            assert parse(c.call("DBSIZE"))[0] == n
            # DEL frees memory; then writes are accepted again
            dels = c.pipeline([("DEL", "k%d" % j) for j in range(n // 2)])
            assert all(x == b":1\r\n" for x in dels)
            # fill up again: the native protocol gets the same error text, and reads
            fill_until_oom(c, "again")
        with NativeConn(srv.port, server=srv) as nat:
            assert b"OOM command not allowed when used memory > 'maxmemory'." in \
                nat.cmd("PUT native v")
            assert nat.cmd("GET k%d" % (n - 1)) == b"x" * 1000
        assert stats(srv)["evictions"] == 0
    finally:
        srv.stop()


# --------------------------------------------------------------------------------------
# CONFIG SET, live

def test_config_set_maxmemory_and_policy_live(crab_only):
    srv = start_crab(max_memory=64 * MB)
    try:
        with RespConn(srv.resp_port, server=srv) as c:
            c.pipeline([("SET", "k%d" % i, "v" * 1000) for i in range(4000)])
            i = info(c)
            assert i["evicted_keys"] == "0" and int(i["used_memory"]) > 3 * MB
            # a smaller limit: the next write evicts, the cron goes on to the low mark
            assert c.call("CONFIG", "SET", "maxmemory", "2mb") == b"+OK\r\n"
            assert c.call("CONFIG", "GET", "maxmemory") == \
                b"*2\r\n$9\r\nmaxmemory\r\n$7\r\n2097152\r\n"
            assert info(c)["maxmemory"] == "2097152"
            assert c.call("SET", "trigger", "v") == b"+OK\r\n"
            assert int(info(c)["used_memory"]) <= 2 * MB
            assert wait_for(lambda: int(info(c)["used_memory"]) <= 0.85 * 2 * MB, 3.0)
            evicted = int(info(c)["evicted_keys"])
            assert evicted > 1500
            assert parse(c.call("DBSIZE"))[0] == 4001 - evicted
            assert stats(srv)["evictions"] == evicted

            # noeviction, live: writes past the limit fail, nothing more is evicted
            assert c.call("CONFIG", "SET", "maxmemory-policy", "noeviction") == b"+OK\r\n"
            assert info(c)["maxmemory_policy"] == "noeviction"
            _, err = fill_until_oom(c, "ne")
            assert err == OOM
            assert int(info(c)["evicted_keys"]) == evicted
            assert c.call("GET", "trigger") == b"$1\r\nv\r\n"

            # back to an evicting policy (Redis's name): writes succeed again
            assert c.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru") == b"+OK\r\n"
            assert info(c)["maxmemory_policy"] == "allkeys-lru"
            assert c.call("CONFIG", "GET", "maxmemory-policy") == \
                b"*2\r\n$16\r\nmaxmemory-policy\r\n$3\r\nlru\r\n"
            for j in range(200):
                assert c.call("SET", "lru%d" % j, "v" * 1000) == b"+OK\r\n"
            assert int(info(c)["evicted_keys"]) > evicted
            assert int(info(c)["used_memory"]) <= 2 * MB

            # and to tinylfu
            assert c.call("CONFIG", "SET", "maxmemory-policy", "tinylfu") == b"+OK\r\n"
            assert info(c)["maxmemory_policy"] == "tinylfu"
            for j in range(200):
                assert c.call("SET", "tl%d" % j, "v" * 1000) == b"+OK\r\n"
            assert int(info(c)["used_memory"]) <= 2 * MB

            # no limit: the keyspace grows past the old limit, nothing is evicted
            assert c.call("CONFIG", "SET", "maxmemory", "0") == b"+OK\r\n"
            before = int(info(c)["evicted_keys"])
            c.pipeline([("SET", "big%d" % j, "v" * 1000) for j in range(4000)])
            i = info(c)
            assert int(i["evicted_keys"]) == before and int(i["used_memory"]) > 4 * MB
            assert i["maxmemory"] == "0"
    finally:
        srv.stop()


def test_lowered_maxmemory_evicts_without_writes(crab_only):
    """As in Redis, a lowered limit is enforced without waiting for the next write: the
    workers' cron starts evicting on its own."""
    srv = start_crab(max_memory=64 * MB)
    try:
        with RespConn(srv.resp_port, server=srv) as c:
            c.pipeline([("SET", "k%d" % i, "v" * 1000) for i in range(4000)])
            assert c.call("CONFIG", "SET", "maxmemory", "2mb") == b"+OK\r\n"
            assert wait_for(lambda: int(info(c)["used_memory"]) <= 2 * MB, 3.0), \
                "used_memory %s still above the lowered limit 3 s later" % (
                    info(c)["used_memory"])
            # and on down to the low watermark, paced, with no write at all
            assert wait_for(lambda: int(info(c)["used_memory"]) <= 0.71 * 2 * MB, 8.0)
            i = info(c)
            assert int(i["evicted_keys"]) == 4000 - parse(c.call("DBSIZE"))[0]
    finally:
        srv.stop()


# --------------------------------------------------------------------------------------
# W-TinyLFU at work, seen through the metrics

def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(crabcache_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


@pytest.mark.parametrize("policy", ["tinylfu", "lru"])
def test_scan_resistance_and_eviction_metrics(policy, crab_only):
    """Hot keys read a few times survive a one-time scan of 3 x max_memory under
    tinylfu (the scan's keys lose their frequency duels) but not under lru; the
    metrics split the evictions by reason and count the duels."""
    mport = crabtest.free_port()
    max_memory = 4 * MB
    srv = start_crab(max_memory=max_memory,
                     extra_args=["--eviction-policy", policy, "--metrics-port", str(mport)])
    try:
        with RespConn(srv.resp_port, server=srv) as c:
            hot = ["hot%d" % i for i in range(300)]
            c.pipeline([("SET", k, "h" * 1000) for k in hot])
            for _ in range(5):
                c.pipeline([("GET", k) for k in hot])
            scan = 3 * max_memory // 1000
            for start in range(0, scan, 200):
                c.pipeline([("SET", "scan%d" % j, "s" * 1000)
                            for j in range(start, min(start + 200, scan))])
            present = sum(r == b":1\r\n" for r in c.pipeline([("EXISTS", k) for k in hot]))
            evicted = int(info(c)["evicted_keys"])
            m = metrics(mport)
            # the background goes on evicting down to the low watermark
            # between the two reads: the metrics fall between INFO before and after
            evicted_after = int(info(c)["evicted_keys"])
        rejected = m['crabcache_evictions_total{reason="admission_rejected"}']
        capacity = m['crabcache_evictions_total{reason="capacity"}']
        assert evicted <= rejected + capacity <= evicted_after
        assert m['crabcache_eviction_policy_info{policy="%s"}' % policy] == 1
        crabtest.SUMMARY.append("scan of 3 x max_memory, %s: %d of 300 hot keys kept, "
                                "%d evicted (%d rejected at admission)" % (
                                    policy, present, evicted, rejected))
        if policy == "tinylfu":
            assert rejected > scan // 2, "the scan's keys should mostly lose their duels"
            assert present >= 270, "only %d of 300 hot keys survived the scan" % present
        else:
            assert rejected == 0 and m["crabcache_tinylfu_admissions_total"] == 0
            assert present <= 10, "%d hot keys survived a scan under LRU" % present
    finally:
        srv.stop()
