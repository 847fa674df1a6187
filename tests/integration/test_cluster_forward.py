"""Cluster mode: requests forwarded to their slot's owner.

- The native protocol answers every key on every node (forwarded over a pooled,
  pipelined node-to-node connection), pipelined replies in order, quoted values and
  bare-LF clients included; a PEER connection (what nodes use) gets MOVED instead.
- The proxy port serves a plain (not cluster-aware) Redis client: replies byte for
  byte as a single redis-server gives them for the same random command stream, RESP2
  and RESP3, MGET/MSET/DEL/EXISTS/UNLINK/TOUCH across slots split and gathered,
  other multi-slot commands CROSSSLOT.
- Faults: an owner stopped with SIGSTOP makes requests forwarded to it fail after
  cluster.forward_timeout_ms with an error, without stalling the node's other
  clients; a killed owner fails them at once.
- A topology race: native writers through one node while a 4th node joins never see
  an error, and every acknowledged write reads back from every node.
"""

import os
import random
import signal
import socket
import threading
import time

import pytest

from crabtest import NativeConn, RespConn, RedisServer, encode
from test_cluster import (FIXED_IDS, Node, converged, free_bus_port, logs, pick_port,
                          stop_all, total_keys, wait_for)

FWD_TIMEOUT_MS = 1500


def start_trio(extra=()):
    buses = [free_bus_port() for _ in range(3)]
    nodes = []
    for i, b in enumerate(buses):
        proxy = pick_port(17000, 18000)
        n = Node(bus=b, seeds=buses, node_id=FIXED_IDS[i],
                 extra=["--cluster.proxy_port", str(proxy),
                        "--cluster.forward_timeout_ms", str(FWD_TIMEOUT_MS)] + list(extra))
        n.proxy = proxy
        nodes.append(n)
    try:
        for n in nodes:
            n.start()
        wait_for(lambda: converged(nodes, 3), 20, "3 nodes to form")
    except BaseException:
        stop_all(nodes)
        raise
    return nodes


@pytest.fixture
def trio():
    nodes = start_trio()
    try:
        yield nodes
    finally:
        stop_all(nodes)


def owner_of(nodes, key):
    """The node that owns key's slot."""
    owners = converged(nodes, len(nodes))
    by_id = {n.myid(): n for n in nodes}
    with nodes[0].resp() as c:
        slot = c.value("CLUSTER", "KEYSLOT", key)
    return by_id[owners[slot]], slot


def keys_owned(nodes, node, count, prefix="k"):
    """count keys whose slot node owns."""
    owners = converged(nodes, len(nodes))
    me = node.myid()
    out = []
    i = 0
    with nodes[0].resp() as c:
        while len(out) < count:
            k = "%s%d" % (prefix, i)
            if owners[c.value("CLUSTER", "KEYSLOT", k)] == me:
                out.append(k)
            i += 1
    return out


# ---- native protocol ------------------------------------------------------------------

def test_native_answers_every_key_on_every_node(trio):
    keys = ["key:%d" % i for i in range(600)]
    with NativeConn(trio[0].port) as c:
        for k in keys:
            assert c.cmd("PUT %s v-%s" % (k, k)) == b"OK"
    # Spread over the three owners, each key on its owner only.
    counts = [n.cmd("DBSIZE") for n in trio]
    assert sum(counts) == len(keys) and min(counts) > 100, counts
    for n in trio:
        with NativeConn(n.port) as c:
            for k in keys:
                assert c.cmd("GET %s" % k) == b"v-" + k.encode()
    # Every verb with a key is forwarded: TTL, EXPIRE, DEL, and a miss.
    other = [n for n in trio if n is not owner_of(trio, "key:1")[0]][0]
    with NativeConn(other.port) as c:
        assert c.cmd("TTL key:1") == b"-1"
        assert c.cmd("EXPIRE key:1 100") == b"OK"
        assert int(c.cmd("TTL key:1")) in (99, 100)
        assert c.cmd("PUT key:2 x 50") == b"OK"
        assert int(c.cmd("TTL key:2")) in (49, 50)
        assert c.cmd("DEL key:1") == b"OK"
        assert c.cmd("DEL key:1") == b"NULL"
        assert c.cmd("GET key:1") == b"NULL"
    info = trio[0].info()
    assert int(info["cluster_forwarded_requests"]) > 300
    assert int(info["cluster_forward_failed"]) == 0
    assert float(info["cluster_forward_usec_per_call"]) > 0


def test_native_pipeline_keeps_order_quoting_and_line_endings(trio):
    node = trio[1]
    remote = keys_owned(trio, trio[0], 40, "a") + keys_owned(trio, trio[2], 40, "b")
    local = keys_owned(trio, node, 40, "c")
    mixed = [k for pair in zip(remote[:40], local, remote[40:]) for k in pair]
    with NativeConn(node.port) as c:
        # one write holding 240 requests, owners interleaved
        c.send("".join('PUT %s "v %s\\r\\n"\r\n' % (k, k) for k in mixed) +
               "".join("GET %s\r\n" % k for k in mixed))
        for k in mixed:
            assert c.read_line() == b"OK"
        for k in mixed:
            assert c.read_line() == b'"v %s\\r\\n"' % k.encode()
    # a client ending its lines in a bare LF gets bare-LF replies, forwarded or not
    s = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    try:
        s.sendall(b"".join(b"GET %s\n" % k.encode() for k in (remote[0], local[0], remote[1])))
        want = b"".join(b'"v %s\\r\\n"\n' % k.encode() for k in (remote[0], local[0], remote[1]))
        got = b""
        while len(got) < len(want):
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
        assert got == want
    finally:
        s.close()


def test_peer_connection_gets_moved_not_forwarded(trio):
    owner, slot = owner_of(trio, "somekey")
    other = next(n for n in trio if n is not owner)
    with NativeConn(other.port) as c:
        assert c.cmd("PUT somekey x") == b"OK"
        assert c.cmd("PEER") == b"OK"
        assert c.cmd("GET somekey") == b"ERROR: MOVED %d 127.0.0.1:%d" % (slot, owner.port)
    with NativeConn(owner.port) as c:
        assert c.cmd("PEER") == b"OK"
        assert c.cmd("GET somekey") == b"x"


# ---- proxy port -------------------------------------------------------------------------

def random_stream(rng, n, keys):
    """String and keyspace commands, single- and multi-key, on a few keys."""
    out = []
    for _ in range(n):
        k = rng.choice(keys)
        some = rng.sample(keys, rng.randint(1, 6))
        v = rng.choice(["", "1", "x" * rng.randint(1, 40), "12", "-3", "v w"])
        op = rng.randrange(16)
        if op == 0:
            out.append(["SET", k, v])
        elif op == 1:
            out.append(["GET", k])
        elif op == 2:
            out.append(["MGET"] + some)
        elif op == 3:
            args = ["MSET"]
            for s in some:
                args += [s, rng.choice(["a", "bb", "7"])]
            out.append(args)
        elif op == 4:
            out.append(["DEL"] + some)
        elif op == 5:
            out.append(["EXISTS"] + some + some[:1])
        elif op == 6:
            out.append(["UNLINK"] + some)
        elif op == 7:
            out.append(["TOUCH"] + some)
        elif op == 8:
            out.append(["INCR", k])
        elif op == 9:
            out.append(["APPEND", k, v])
        elif op == 10:
            out.append(["STRLEN", k])
        elif op == 11:
            out.append(["GETDEL", k])
        elif op == 12:
            out.append(["SET", k, v, "NX", "GET"])
        elif op == 13:
            out.append(["EXPIRE", k, "100"])
        elif op == 14:
            out.append(["TTL", k])
        else:
            out.append(["MSET", k])  # wrong arity: the same error as Redis
    return out


@pytest.mark.parametrize("resp3", [False, True])
def test_proxy_replies_as_a_single_redis_server(trio, resp3):
    rng = random.Random(20261208 + resp3)
    keys = ["p%d" % i for i in range(30)]
    stream = random_stream(rng, 1500, keys)
    redis = RedisServer().start()
    try:
        with RespConn(trio[0].proxy) as a, RespConn(redis.port) as b:
            if resp3:
                assert a.call("HELLO", "3").startswith(b"%")
                assert b.call("HELLO", "3").startswith(b"%")
            for i in range(0, len(stream), 50):
                chunk = stream[i:i + 50]
                # pipelined: 50 commands in one write to each
                a.send(b"".join(encode(*cmd) for cmd in chunk))
                b.send(b"".join(encode(*cmd) for cmd in chunk))
                for cmd in chunk:
                    ra, rb = a.read_reply(), b.read_reply()
                    assert ra == rb, (cmd, ra, rb)
    finally:
        redis.stop()
    # the keys really are spread over the three nodes, and the proxy forwarded
    assert all(n.cmd("DBSIZE") > 0 for n in trio)
    assert int(trio[0].info()["cluster_forwarded_requests"]) > 100


def test_proxy_with_a_plain_redis_client(trio):
    import redis
    r = redis.Redis(port=trio[2].proxy, decode_responses=True)
    try:
        pipe = r.pipeline(transaction=False)
        for i in range(3000):
            pipe.set("plain:%d" % i, i)
        assert all(pipe.execute())
        names = ["plain:%d" % i for i in range(3000)]
        assert r.mget(names + ["missing"]) == [str(i) for i in range(3000)] + [None]
        assert r.exists(*names[:100]) == 100
        assert r.delete(*names[:100]) == 100
        assert r.mset({"m:%d" % i: i for i in range(50)})
        assert r.mget(["m:%d" % i for i in range(50)]) == [str(i) for i in range(50)]
        with pytest.raises(redis.ResponseError, match="CROSSSLOT"):
            r.rename("m:1", "m:2")
        # a hash tag keeps keys together: the command runs as a whole
        r.set("{t}a", "1")
        assert r.rename("{t}a", "{t}b")
        assert r.get("{t}b") == "1"
    finally:
        r.close()
    assert sum(n.cmd("DBSIZE") for n in trio) == 2900 + 50 + 1


# ---- faults -------------------------------------------------------------------------------

def test_forward_to_a_stopped_owner_fails_after_the_timeout(trio):
    owner = trio[0]
    node = trio[1]
    remote = keys_owned(trio, owner, 1, "s")[0]
    local = keys_owned(trio, node, 1, "l")[0]
    with NativeConn(node.port) as c:
        assert c.cmd("PUT %s 1" % remote) == b"OK"
        assert c.cmd("PUT %s 2" % local) == b"OK"
    os.kill(owner.srv.proc.pid, signal.SIGSTOP)
    try:
        with NativeConn(node.port, timeout=20) as c, NativeConn(node.port) as c2:
            t0 = time.monotonic()
            c.send("GET %s\r\n" % remote)
            # meanwhile the node serves its other clients
            time.sleep(0.2)
            assert c2.cmd("GET %s" % local) == b"2"
            line = c.read_line()
            took = time.monotonic() - t0
        assert line.startswith(b"ERROR: forward to 127.0.0.1:%d failed" % owner.port), line
        assert FWD_TIMEOUT_MS / 1000 - 0.05 <= took < FWD_TIMEOUT_MS / 1000 + 5, took
        assert int(node.info()["cluster_forward_failed"]) >= 1
    finally:
        os.kill(owner.srv.proc.pid, signal.SIGCONT)
    # the link is opened again once the owner answers
    with NativeConn(node.port) as c:
        assert wait_for(lambda: c.cmd("GET %s" % remote) == b"1", 10, "the owner to answer")


def test_forward_to_a_killed_owner_fails_at_once(trio):
    owner = trio[0]
    node = trio[1]
    remote = keys_owned(trio, owner, 1, "d")[0]
    owner.kill9()
    with NativeConn(node.port) as c:
        t0 = time.monotonic()
        line = c.cmd("GET %s" % remote)
        assert line.startswith(b"ERROR: forward to 127.0.0.1:%d failed" % owner.port), line
        assert time.monotonic() - t0 < FWD_TIMEOUT_MS / 1000
    with RespConn(trio[2].proxy) as c:
        assert c.call("GET", remote).startswith(b"-ERR forward to 127.0.0.1:%d failed"
                                                % owner.resp_port)


# ---- a topology race -------------------------------------------------------------------------

class NativeWriters:
    """Threads writing unique keys over the native protocol, all through one node,
    recording every acknowledged write and every reply that was not OK."""

    def __init__(self, port, threads=3):
        self.port = port
        self.acked = {}
        self.errors = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]

    def run(self, w):
        i = 0
        with NativeConn(self.port, timeout=30) as c:
            while not self.stop.is_set():
                # a small pipeline each time: requests to several owners in flight
                batch = [("nw%d:%d" % (w, i + j), "v%d-%d" % (w, i + j)) for j in range(8)]
                c.send("".join("PUT %s %s\r\n" % kv for kv in batch))
                for k, v in batch:
                    line = c.read_line()
                    if line == b"OK":
                        with self.lock:
                            self.acked[k] = v
                    else:
                        self.errors.append((k, line))
                i += 8

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_native_writes_through_one_node_during_a_join_lose_nothing(trio):
    fourth = Node(seeds=[trio[0].bus], node_id=FIXED_IDS[3])
    try:
        with NativeWriters(trio[1].port) as w:
            time.sleep(1.0)
            before = len(w.acked)
            fourth.start()
            wait_for(lambda: converged(trio + [fourth], 4), 60, "the 4th node to take its share")
            time.sleep(0.5)
        everyone = trio + [fourth]
        assert before > 100 and len(w.acked) > before, (before, len(w.acked))
        assert w.errors == [], (w.errors[:5], logs(everyone))
        assert fourth.cmd("DBSIZE") > 0
        keys = sorted(w.acked)
        for n in (trio[0], fourth):
            with NativeConn(n.port) as c:
                for i in range(0, len(keys), 200):
                    chunk = keys[i:i + 200]
                    c.send("".join("GET %s\r\n" % k for k in chunk))
                    got = [c.read_line() for _ in chunk]
                    lost = [(k, g) for k, g in zip(chunk, got) if g != w.acked[k].encode()]
                    assert lost == [], lost[:5]
        wait_for(lambda: total_keys(everyone) == len(w.acked), 30, "old copies to be dropped")
    finally:
        fourth.stop()


# ---- the write-ahead log in cluster mode ---------------------------------------------------

def test_wal_keeps_a_copy_received_and_forgets_a_vbucket_handed_over(tmp_path):
    """With the WAL on: a node restarted after kill -9 still has the vbuckets a copy
    brought it (the copy is logged where it is applied), and a node that handed
    vbuckets over does not get their keys back (the drop is logged)."""
    def wal_args(name):
        d = tmp_path / name
        d.mkdir()
        return ["--wal.enabled", "true", "--wal-dir", str(d), "--wal-sync-policy", "sync"]

    buses = [free_bus_port() for _ in range(3)]
    nodes = [Node(bus=b, seeds=buses, node_id=FIXED_IDS[i], extra=wal_args("n%d" % i))
             for i, b in enumerate(buses)]
    fourth = Node(seeds=[buses[0]], node_id=FIXED_IDS[3], extra=wal_args("n3"))
    everyone = nodes + [fourth]
    try:
        for n in nodes:
            n.start()
        wait_for(lambda: converged(nodes, 3), 20, "3 nodes to form")
        keys = ["wal:%d" % i for i in range(3000)]
        with NativeConn(nodes[0].port) as c:
            c.send("".join("PUT %s v%s\r\n" % (k, k) for k in keys))
            assert [c.read_line() for _ in keys] == [b"OK"] * len(keys)
        fourth.start()
        wait_for(lambda: converged(everyone, 4), 60, "the 4th node to take its share")
        wait_for(lambda: total_keys(everyone) == len(keys), 30, "old copies to be dropped")
        before = [n.cmd("DBSIZE") for n in everyone]
        assert before[3] > 0, before
        # kill -9 the node that received copies, and one that handed vbuckets over
        for n in (fourth, nodes[1]):
            n.kill9()
            n.start()
        wait_for(lambda: converged(everyone, 4), 30, "the restarted nodes to rejoin")
        after = [n.cmd("DBSIZE") for n in everyone]
        assert after == before, (before, after)
        with NativeConn(nodes[2].port) as c:
            c.send("".join("GET %s\r\n" % k for k in keys))
            got = [c.read_line() for _ in keys]
        assert got == [b"v" + k.encode() for k in keys]
    finally:
        stop_all(everyone)
