"""The compact store under churn: every item layout (short, wide, medium slab classes,
large values in their own allocation), items that gain a TTL and move to a larger
chunk, deletes and overwrites that leave dead chunks for the policy to release, and
eviction running all along under a small max_memory (2 MB: a few thousand evictions).

A model of the last value written per key is kept: every read must return that value
or nothing (evicted), never another key's bytes or a stale value; TTLs read back as
set; used_memory stays under max_memory; the server (an ASan build under make test)
reports no error at the end (the fixtures check its stderr).
"""

import random

import pytest

from crabtest import RespConn, parse

MB = 1 << 20

SIZES = [0, 1, 10, 100, 255, 256, 300, 1000, 1100, 2000, 5000, 16000, 17000, 40000]


def value_for(rng, key, gen):
    n = rng.choice(SIZES)
    seed = ("%s:%d:" % (key, gen)).encode()
    return (seed * (n // len(seed) + 1))[:n]


@pytest.mark.parametrize("policy", ["tinylfu", "lru"])
def test_churn_model(policy, make_crab, crab_only):
    srv = make_crab(extra_args=["--max-memory", str(2 * MB), "--eviction-policy", policy])
    rng = random.Random(7)
    keys = ["k%d" % i for i in range(600)] + ["w" * 300 + str(i) for i in range(20)]
    model = {}          # key -> value last written (or None after DEL)
    ttl_set = {}        # key -> True when a TTL was given after the write
    gen = 0
    hits = 0
    with RespConn(srv.resp_port, server=srv) as c:
        for round_ in range(60):
            cmds, kinds = [], []
            for _ in range(200):
                k = rng.choice(keys)
                op = rng.random()
                if op < 0.45:
                    gen += 1
                    v = value_for(rng, k, gen)
                    cmds.append(("SET", k, v))
                    kinds.append(("set", k, v))
                elif op < 0.55:
                    cmds.append(("DEL", k))
                    kinds.append(("del", k, None))
                elif op < 0.65:
                    cmds.append(("EXPIRE", k, "1000"))
                    kinds.append(("expire", k, None))
                elif op < 0.70:
                    cmds.append(("PERSIST", k))
                    kinds.append(("persist", k, None))
                elif op < 0.75:
                    cmds.append(("APPEND", k, "xy"))
                    kinds.append(("append", k, None))
                else:
                    cmds.append(("GET", k))
                    kinds.append(("get", k, None))
            replies = c.pipeline(cmds)
            for (kind, k, v), r in zip(kinds, replies):
                if kind == "set":
                    assert r == b"+OK\r\n", r
                    model[k] = v
                    ttl_set.pop(k, None)
                elif kind == "del":
                    model[k] = None
                    ttl_set.pop(k, None)
                elif kind == "expire":
                    if r == b":1\r\n":
                        ttl_set[k] = True
                    else:
                        assert r == b":0\r\n", r
                elif kind == "persist":
                    if r == b":1\r\n":
                        ttl_set.pop(k, None)
                elif kind == "append":
                    n = parse(r)[0]
                    old = model.get(k)
                    # absent (deleted or evicted): APPEND starts a new value
                    if old is None or n != len(old) + 2:
                        assert n == 2, (k, n, old is None)
                        model[k] = b"xy"
                        ttl_set.pop(k, None)
                    else:
                        model[k] = old + b"xy"
                else:
                    got = parse(r)[0]
                    if got is not None:
                        assert model.get(k) is not None, "deleted key %r came back" % k
                        assert got == model[k], "key %r: wrong value (%d bytes, want %d)" % (
                            k, len(got), len(model[k]))
                        hits += 1
            info = dict(line.split(":", 1) for line in
                        parse(c.call("INFO", "memory"))[0].decode().split("\r\n")
                        if ":" in line)
            assert int(info["used_memory"]) <= 2 * MB
        # TTLs read back as set, for keys still there
        for k, has in list(ttl_set.items()):
            ttl = parse(c.call("PTTL", k))[0]
            if ttl == -2:
                continue  # evicted
            assert 0 < ttl <= 1000 * 1000, (k, ttl)
        evicted = int(dict(line.split(":", 1) for line in
                           parse(c.call("INFO", "stats"))[0].decode().split("\r\n")
                           if ":" in line)["evicted_keys"])
        assert evicted > 0, "the churn should have run the policy"
        assert hits > 500, "too few reads found their key (%d) to check anything" % hits
        print("churn %s: %d reads checked, %d evicted" % (policy, hits, evicted))
        assert c.call("FLUSHALL") == b"+OK\r\n"
        assert parse(c.call("DBSIZE"))[0] == 0
