"""kill -9 rounds under wal.sync_policy = sync: every acknowledged write survives.

Each round runs many clients against one server, each doing a random mix of SET
(plain, EX, PX), INCR, APPEND, DEL, EXPIRE/PEXPIRE, PERSIST, MSET and RENAME on a
keyspace it owns, and kills the server with SIGKILL while they run. A client
applies a write to its model only when the reply arrived; the one command in
flight at the kill is "unknown": afterwards each key it touches may be in its
state before or after it. The server is restarted on the same WAL directory and
every key of every client is read back (GET + PTTL):

  - a key's value must be exactly the acknowledged one (or, for the in-flight
    command's keys, the value that command would have produced);
  - its expiry must match: no TTL when none was acknowledged, else the absolute
    expiry the client computed from the time it sent and received the command
    (within TOL_MS); a key whose acknowledged expiry has passed must be gone.

Rounds chain: the restarted server is the next round's server, so later rounds
replay longer logs. CRAB_CRASH_ROUNDS (default 5) sets the number of rounds and
CRAB_CRASH_CLIENTS (default 12) the clients; bench/persist runs 20 rounds on
the release build. The module prints "crash rounds: N passed of M".
"""

import os
import random
import threading
import time

import pytest
import redis

import crabtest
from crabtest import CrabServer, start_with_retry

pytestmark = pytest.mark.skipif(crabtest.TARGET == "redis",
                                reason="CrabCache persistence; CRABTEST_TARGET=redis")

ROUNDS = int(os.environ.get("CRAB_CRASH_ROUNDS", "5"))
CLIENTS = int(os.environ.get("CRAB_CRASH_CLIENTS", "12"))
NKEYS = 12          # plain keys per client (values, long TTLs, APPEND, RENAME, MSET)
NCOUNT = 4          # counters per client (INCR)
NSHORT = 6          # short-TTL keys per client (SET PX 100..1500 only)
TOL_MS = 300        # expiry tolerance (client/server timing, ASan)
LONG_S = (200, 5000)

ABSENT = None       # model state of a key that does not exist


def now_ms():
    return int(time.time() * 1000)


def start(wal_dir):
    policy = os.environ.get("CRAB_CRASH_POLICY", "sync")   # "none": a negative control
    args = ["--wal.enabled", "true", "--wal-dir", str(wal_dir), "--wal-sync-policy", policy,
            "--log-level", "info"]
    return start_with_retry(lambda: CrabServer(extra_args=args))


class Client:
    """One load client: its keyspace, its model of it, the command in flight."""

    def __init__(self, n, seed):
        self.n = n
        self.rng = random.Random(seed)
        self.keys = ["c%d:k%d" % (n, i) for i in range(NKEYS)]
        self.counters = ["c%d:n%d" % (n, i) for i in range(NCOUNT)]
        self.shorts = ["c%d:s%d" % (n, i) for i in range(NSHORT)]
        # key -> ABSENT or (value bytes, None | (lo_ms, hi_ms) absolute expiry)
        self.model = {k: ABSENT for k in self.all_keys()}
        self.pending = None     # {key: state after} of the command in flight
        self.acked = 0
        self.error = None
        self.seq = 0

    def all_keys(self):
        return self.keys + self.counters + self.shorts

    # -- one random write: returns (argv, {key: state after}, expected reply) --

    def next_op(self):
        r = self.rng
        m = self.model
        self.seq += 1
        val = ("v%d.%d." % (self.n, self.seq)).encode() + b"x" * r.randrange(0, 40)
        p = r.random()
        if p < 0.25:
            k = r.choice(self.keys)
            kind = r.randrange(3)
            if kind == 0:
                return ["SET", k, val], {k: (val, None)}, True
            if kind == 1:
                ttl = r.randrange(*LONG_S)
                return ["SET", k, val, "EX", ttl], {k: (val, ("ex", ttl * 1000))}, True
            ttl = r.randrange(*LONG_S) * 1000 + r.randrange(1000)
            return ["SET", k, val, "PX", ttl], {k: (val, ("ex", ttl))}, True
        if p < 0.40:
            k = r.choice(self.shorts)
            ttl = r.randrange(100, 1500)
            return ["SET", k, val, "PX", ttl], {k: (val, ("ex", ttl))}, True
        if p < 0.55:
            k = r.choice(self.counters)
            cur = m[k]
            n = int(cur[0]) + 1 if cur is not ABSENT else 1
            exp = cur[1] if cur is not ABSENT else None
            return ["INCR", k], {k: (str(n).encode(), exp)}, n
        if p < 0.65:
            k = r.choice(self.keys)
            cur = m[k]
            suffix = ("+%d" % self.seq).encode()
            nv = (cur[0] if cur is not ABSENT else b"") + suffix
            exp = cur[1] if cur is not ABSENT else None
            return ["APPEND", k, suffix], {k: (nv, exp)}, len(nv)
        if p < 0.70:
            ks = r.sample(self.keys + self.counters, 2)
            n = sum(1 for k in ks if m[k] is not ABSENT)
            return ["DEL"] + ks, {k: ABSENT for k in ks}, n
        if p < 0.78:
            k = r.choice(self.keys + self.counters)
            cur = m[k]
            if r.random() < 0.5:
                ttl = r.randrange(*LONG_S)
                argv, ttl_ms = ["EXPIRE", k, ttl], ttl * 1000
            else:
                ttl_ms = r.randrange(*LONG_S) * 1000 + r.randrange(1000)
                argv = ["PEXPIRE", k, ttl_ms]
            if cur is ABSENT:
                return argv, {}, 0
            return argv, {k: (cur[0], ("ex", ttl_ms))}, 1
        if p < 0.84:
            k = r.choice(self.keys + self.counters)
            cur = m[k]
            if cur is ABSENT or cur[1] is None:
                return ["PERSIST", k], {}, 0
            return ["PERSIST", k], {k: (cur[0], None)}, 1
        if p < 0.92:
            ks = r.sample(self.keys, r.randrange(2, 5))
            argv, after = ["MSET"], {}
            for i, k in enumerate(ks):
                v = val + (":%d" % i).encode()
                argv += [k, v]
                after[k] = (v, None)
            return argv, after, True
        present = [k for k in self.keys if m[k] is not ABSENT]
        if not present:
            k = r.choice(self.keys)
            return ["SET", k, val], {k: (val, None)}, True
        src = r.choice(present)
        dst = r.choice([k for k in self.keys if k != src])
        return ["RENAME", src, dst], {src: ABSENT, dst: m[src]}, True

    @staticmethod
    def fix_times(after, t_send, t_recv):
        """Turn ("ex", ttl_ms) into the absolute window [t_send+ttl, t_recv+ttl]."""
        out = {}
        for k, st in after.items():
            if st is not ABSENT and st[1] is not None and st[1][0] == "ex":
                st = (st[0], (t_send + st[1][1], t_recv + st[1][1]))
            out[k] = st
        return out

    def run(self, port, stop, killed):
        conn = redis.Redis(host="127.0.0.1", port=port, socket_timeout=30)
        try:
            while not stop.is_set():
                argv, after, expect = self.next_op()
                t_send = now_ms()
                self.pending = self.fix_times(after, t_send, t_send + 60000)
                try:
                    reply = conn.execute_command(*argv)
                except (redis.ConnectionError, redis.TimeoutError, ConnectionError) as e:
                    if killed.is_set():
                        return          # the kill: the command stays in flight
                    self.error = "%s: %r" % (argv, e)
                    return
                except redis.ResponseError as e:
                    self.error = "%s: error reply %r, model expects %r" % (argv, e, expect)
                    return
                t_recv = now_ms()
                if expect is True:
                    ok = reply in (True, b"OK", "OK")
                else:
                    ok = reply == expect
                if not ok:
                    self.error = "%s: reply %r, model expects %r" % (argv, reply, expect)
                    return
                self.model.update(self.fix_times(after, t_send, t_recv))
                self.pending = None
                self.acked += 1
        finally:
            conn.close()


def state_matches(st, val, pttl, ta, tb):
    """Does the observed (val, pttl) read between ta and tb fit state st?"""
    if st is ABSENT:
        return val is None
    value, exp = st
    if exp is None:
        return val == value and pttl == -1
    lo, hi = exp
    if hi + TOL_MS < ta:
        return val is None               # acknowledged expiry passed: must be gone
    if val is None:
        return lo - TOL_MS <= tb         # may have expired meanwhile
    if val != value or pttl < 0:
        return False
    return ta + pttl <= hi + TOL_MS and tb + pttl >= lo - TOL_MS


def observed_state(st, val):
    """The model state after a verified read (an expired key becomes ABSENT)."""
    if val is None:
        return ABSENT
    return st


def verify(port, clients):
    """Read every key back; returns a list of mismatch descriptions and resyncs
    each client's model to what the server holds."""
    conn = redis.Redis(host="127.0.0.1", port=port, socket_timeout=30)
    problems = []
    for c in clients:
        keys = c.all_keys()
        pipe = conn.pipeline(transaction=False)
        for k in keys:
            pipe.get(k)
            pipe.pttl(k)
        ta = now_ms()
        res = pipe.execute()
        tb = now_ms()
        pending = c.pending or {}
        for i, k in enumerate(keys):
            val, pttl = res[2 * i], res[2 * i + 1]
            allowed = [c.model[k]]
            if k in pending:
                allowed.append(pending[k])
            for st in allowed:
                if state_matches(st, val, pttl, ta, tb):
                    c.model[k] = observed_state(st, val)
                    break
            else:
                problems.append("%s: got %r pttl %r, acknowledged %r%s (read at %d..%d)" % (
                    k, val, pttl, allowed[0],
                    ", or in flight %r" % (allowed[1],) if len(allowed) > 1 else "", ta, tb))
                # go on from what the server holds (the round is failed already)
                if val is None:
                    c.model[k] = ABSENT
                else:
                    c.model[k] = (val, None if pttl < 0 else (ta + pttl, tb + pttl))
        c.pending = None
    conn.close()
    return problems


def crash_rounds(tmp_path, rounds, nclients, seed):
    wal = tmp_path / "wal"
    rng = random.Random(seed)
    clients = [Client(n, rng.randrange(1 << 30)) for n in range(nclients)]
    srv = start(wal)
    passed = 0
    report = []
    try:
        for rnd in range(rounds):
            stop, killed = threading.Event(), threading.Event()
            threads = [threading.Thread(target=c.run, args=(srv.resp_port, stop, killed))
                       for c in clients]
            before = sum(c.acked for c in clients)
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.4, 1.5))
            killed.set()
            srv.kill()                    # kill -9 in the middle of the load
            srv.stopped = True
            for t in threads:
                t.join(60)
            rep = crabtest.sanitizer_report(srv.stderr())
            assert not rep, rep
            srv.stop(check=False)
            errors = [c.error for c in clients if c.error]
            assert not errors, errors
            acked = sum(c.acked for c in clients) - before
            inflight = sum(1 for c in clients if c.pending)
            srv = start(wal)
            problems = verify(srv.resp_port, clients)
            report.append((rnd + 1, acked, inflight, len(problems)))
            if problems:
                print("round %d: %d mismatches:\n  %s" % (rnd + 1, len(problems),
                                                          "\n  ".join(problems[:20])))
            else:
                passed += 1
            assert acked > 0, "no write acknowledged in round %d" % (rnd + 1)
        srv.stop()
    finally:
        srv.stop(check=False)
    print("crash rounds: %d passed of %d (%d clients)" % (passed, rounds, nclients))
    for rnd, acked, inflight, bad in report:
        print("  round %d: %d writes acknowledged, %d in flight at the kill, %d mismatches" % (
            rnd, acked, inflight, bad))
    return passed, report


def test_kill9_rounds_under_sync_load(tmp_path):
    seed = int(os.environ.get("CRAB_CRASH_SEED", str(int(time.time()))))
    print("seed %d" % seed)
    passed, report = crash_rounds(tmp_path, ROUNDS, CLIENTS, seed)
    assert passed == ROUNDS, report
    assert sum(r[1] for r in report) >= ROUNDS * 50


def test_model_checker_catches_a_lost_write():
    """The checker itself: a lost value, a lost TTL, a resurrected key and a key
    whose acknowledged expiry passed are all reported; fitting reads are not."""
    t = now_ms()
    assert state_matches((b"v", None), b"v", -1, t, t)
    assert not state_matches((b"v", None), None, -2, t, t)
    assert not state_matches((b"v", None), b"old", -1, t, t)
    assert not state_matches((b"v", None), b"v", 5000, t, t)
    assert not state_matches(ABSENT, b"v", -1, t, t)
    long_exp = (t + 100000, t + 100010)
    assert state_matches((b"v", long_exp), b"v", 100005, t, t)
    assert not state_matches((b"v", long_exp), b"v", -1, t, t)
    assert not state_matches((b"v", long_exp), b"v", 50000, t, t)
    past = (t - 2000, t - 1990)
    assert state_matches((b"v", past), None, -2, t, t)
    assert not state_matches((b"v", past), b"v", 100, t, t)
