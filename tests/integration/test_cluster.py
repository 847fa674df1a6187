"""Cluster mode on loopback: several crabcache processes, one topology agreed through Raft.

Every node gets its own ports and --cluster-dir; the bus port is picked below 55536
(its Raft transport listens on bus + 10000). Short Raft timeouts (300 ms) as CI
uses them. Checks: forming from one seed list, identical slot maps, redis-py's
RedisCluster over 20,000 keys, MOVED for the native protocol and RESP, a 4th node
joining (CLUSTER MEET and --seeds) moving at most 1/4 + 5 % of the slots, a join
committing after kill -9 of the Raft leader, restarts keeping the identity, a wiped
directory giving a new one, CLUSTER FORGET, and a clear error for a bad cluster.dir.
"""

import os
import random
import threading
import re
import signal
import socket
import stat
import tempfile
import time

import pytest

from crabtest import CrabServer, RespConn, NativeConn, ServerError, port_open

ELECTION_MS = 300

# Fixed node ids: where the nodes' points fall on the ring depends on their ids.
# Over random ids, adding a 4th node to 3 moves 63 of 256 vbuckets on average
# but more than 1/4 + 5 % (76) for about 2 % of id sets (test_ring measures it);
# these ids move 62 (24.2 %), so the bound below is checked, not left to chance.
FIXED_IDS = ["crabtest-node-%d" % i for i in range(1, 5)]


_taken = set()


def _free(p):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_port(lo, hi, also=0):
    """A free port in [lo, hi) never handed out before by this module (and, with
    also, port + also free too). The ranges keep client ports, bus ports and Raft
    ports (bus + 10000) apart, so that no node's Raft transport can ever be handed
    another node's client port while that node is not yet listening, and all stay
    below the kernel's ephemeral range (32768-60999), where the test's own client
    connections would take them."""
    for _ in range(500):
        p = random.randrange(lo, hi)
        if p in _taken or (also and p + also in _taken):
            continue
        if _free(p) and (not also or _free(p + also)):
            _taken.add(p)
            if also:
                _taken.add(p + also)
            return p
    raise RuntimeError("no free port in %d-%d" % (lo, hi))


def free_bus_port():
    """A bus port below 55536 whose Raft port (+10000) is free too."""
    return pick_port(11000, 17000, also=10000)


class Node:
    """One cluster node: a CrabServer with its bus port and cluster directory kept
    across restarts."""

    def __init__(self, bus=None, seeds=None, cdir=None, extra=(), node_id=None):
        self.node_id = node_id
        self.bus = bus or free_bus_port()
        self.cdir = cdir or tempfile.mkdtemp(prefix="crabtest-cluster-")
        self.seeds = seeds
        self.extra = list(extra)
        self.srv = None
        self.port = pick_port(27000, 29500)
        self.resp_port = pick_port(29500, 32000)

    def argv(self):
        a = ["--cluster.enabled", "yes", "--cluster-port", str(self.bus),
             "--cluster-dir", self.cdir, "--raft-election-timeout-ms", str(ELECTION_MS)]
        if self.seeds:
            a += ["--seeds", ",".join("127.0.0.1:%d" % b for b in self.seeds)]
        if self.node_id:
            a += ["--node-id", self.node_id]
        return a + self.extra

    def start(self):
        self.srv = CrabServer(extra_args=self.argv(), port=self.port,
                              resp_port=self.resp_port).start()
        self.port, self.resp_port = self.srv.port, self.srv.resp_port
        return self

    def kill9(self):
        self.srv.kill()
        self.srv.stopped = True

    def stop(self):
        if self.srv is not None:
            self.srv.stop()

    def resp(self):
        return RespConn(self.resp_port)

    def cmd(self, *args):
        with self.resp() as c:
            return c.value(*args)

    def info(self):
        text = self.cmd("CLUSTER", "INFO")
        if isinstance(text, bytes):
            text = text.decode()
        return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)

    def myid(self):
        return self.cmd("CLUSTER", "MYID").decode()

    def slots(self):
        """CLUSTER SLOTS as {slot_range: (primary port, primary id)}, normalised."""
        out = {}
        for entry in self.cmd("CLUSTER", "SLOTS"):
            start, end, primary = entry[0], entry[1], entry[2]
            out[(start, end)] = (primary[1], primary[2].decode())
        return out


def slot_owner_map(slots):
    """slot -> primary id, from a slots() answer."""
    m = {}
    for (start, end), (_, nid) in slots.items():
        for s in range(start, end + 1):
            m[s] = nid
    return m


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except (OSError, ServerError, AssertionError, ValueError, KeyError) as e:
            last = e
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def converged(nodes, n_members):
    """Every node reports cluster_state:ok, n_members known nodes and the same
    complete slot map; returns that map."""
    maps = []
    for n in nodes:
        info = n.info()
        if info.get("cluster_state") != "ok" or int(info["cluster_known_nodes"]) != n_members:
            return None
        if int(info.get("cluster_migrations_active", "0")) != 0 or \
                int(info.get("cluster_vbuckets_pending", "1")) != 0:
            return None
        maps.append(slot_owner_map(n.slots()))
    if any(m != maps[0] for m in maps) or len(maps[0]) != 16384:
        return None
    return maps[0]


@pytest.fixture
def trio():
    buses = [free_bus_port() for _ in range(3)]
    nodes = [Node(bus=b, seeds=buses, node_id=FIXED_IDS[i]) for i, b in enumerate(buses)]
    try:
        for n in nodes:
            n.start()
        wait_for(lambda: converged(nodes, 3), 20, "3 nodes to form")
        yield nodes
    finally:
        stop_all(nodes)


def stop_all(nodes):
    """Stop every node, then report the first problem (one node's sanitizer report
    must not leave the others running)."""
    first = None
    for n in nodes:
        try:
            n.stop()
        except ServerError as e:
            first = first or e
    if first:
        raise first


def raft_leader(nodes):
    for n in nodes:
        if n.srv.alive() and n.info().get("raft_role") == "leader":
            return n
    return None


def test_three_nodes_form_with_identical_slot_maps(trio):
    owners = converged(trio, 3)
    ids = {n.myid() for n in trio}
    assert len(ids) == 3 and set(owners.values()) == ids
    # Every node owns a share near a third (256 vbuckets on the ring, 256 points each).
    for nid in ids:
        share = sum(1 for v in owners.values() if v == nid) / 16384
        assert 0.15 < share < 0.5, share
    info = trio[0].info()
    with trio[0].resp() as c:
        assert b"cluster_enabled:1" in c.value("INFO", "cluster")
    assert int(info["raft_term"]) >= 1
    assert int(info["raft_commit_index"]) >= 1
    assert len({n.info()["raft_leader_id"] for n in trio}) == 1


def test_redis_py_cluster_client_reads_and_writes(trio):
    from redis.cluster import RedisCluster, ClusterNode
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", trio[0].resp_port)],
                      decode_responses=True)
    try:
        pipe = rc.pipeline()
        for i in range(20000):
            pipe.set("key:%d" % i, "v%d" % i)
        assert all(pipe.execute())
        pipe = rc.pipeline()
        for i in range(20000):
            pipe.get("key:%d" % i)
        got = pipe.execute()
        assert got == ["v%d" % i for i in range(20000)]
    finally:
        rc.close()
    # The keys are spread: every node holds some, and each key lives on its owner only.
    counts = [n.cmd("DBSIZE") for n in trio]
    assert sum(counts) == 20000 and min(counts) > 2000, counts


def test_moved_for_keys_owned_elsewhere(trio):
    owners = converged(trio, 3)
    by_id = {n.myid(): n for n in trio}
    key = "somekey"
    with trio[0].resp() as c:
        slot = c.value("CLUSTER", "KEYSLOT", key)
    owner = by_id[owners[slot]]
    other = next(n for n in trio if n is not owner)
    with other.resp() as c:
        r = c.call("SET", key, "x")
    assert r == ("-MOVED %d 127.0.0.1:%d\r\n" % (slot, owner.resp_port)).encode()
    with owner.resp() as c:
        assert c.call("SET", key, "x") == b"+OK\r\n"
    # The native protocol forwards to the owner (test_cluster_forward.py); a PEER
    # connection, as nodes open to each other, gets MOVED with the native port.
    with NativeConn(other.port) as nc:
        assert nc.cmd("GET %s" % key) == b"x"
        assert nc.cmd("PEER") == b"OK"
        line = nc.cmd("GET %s" % key)
    assert line == b"ERROR: MOVED %d 127.0.0.1:%d" % (slot, owner.port), line
    with NativeConn(owner.port) as nc:
        assert nc.cmd("GET %s" % key) == b"x"


def test_fourth_node_joins_by_seeds_and_moves_at_most_a_quarter(trio):
    before = converged(trio, 3)
    fourth = Node(seeds=[trio[0].bus], node_id=FIXED_IDS[3])
    try:
        fourth.start()
        after = wait_for(lambda: converged(trio + [fourth], 4), 20, "the 4th node to join")
        moved = sum(1 for s in range(16384) if before[s] != after[s])
        assert moved <= 16384 * (0.25 + 0.05), moved
        # Only towards the new node.
        new_id = fourth.myid()
        assert all(after[s] == new_id for s in range(16384) if before[s] != after[s])
        assert moved > 0
    finally:
        fourth.stop()


def test_cluster_meet_joins_a_node_without_seeds(trio):
    lone = Node()
    try:
        lone.start()
        assert lone.info()["cluster_state"] == "fail"
        with trio[1].resp() as c:
            t0 = time.monotonic()
            assert c.call("CLUSTER", "MEET", "127.0.0.1", str(lone.port), str(lone.bus)) \
                == b"+OK\r\n"
            took = time.monotonic() - t0
        # MEET answered once the join was committed: the member already lists it.
        ids = {line.split()[0] for line in
               trio[1].cmd("CLUSTER", "NODES").decode().strip().split("\n")}
        assert lone.myid() in ids, (ids, took)
        wait_for(lambda: converged(trio + [lone], 4), 20, "the met node to converge")
        # A MEET of an address where nothing listens fails with a clear error.
        with trio[0].resp() as c:
            r = c.call("CLUSTER", "MEET", "127.0.0.1", "1", str(free_bus_port()))
        assert r.startswith(b"-ERR cannot reach the cluster bus"), r
    finally:
        lone.stop()


def test_join_commits_after_kill_of_the_raft_leader(trio):
    leader = wait_for(lambda: raft_leader(trio), 5, "a leader")
    rest = [n for n in trio if n is not leader]
    leader.kill9()
    t0 = time.monotonic()
    new_leader = wait_for(lambda: raft_leader(rest), 5, "a new leader")
    elected = time.monotonic() - t0
    assert new_leader is not leader
    # 0.4-0.6 s on a quiet machine (ET 300 ms, pre-vote; docs/cluster.md); the
    # bound is CLUSTER.md's leader-failover budget, as this runs under ASan on two
    # cores shared with the rest of the suite.
    assert elected < 1.5, "new leader after %.3f s" % elected
    fourth = Node(seeds=[n.bus for n in rest])
    try:
        fourth.start()
        wait_for(lambda: all(int(n.info()["cluster_known_nodes"]) == 4 for n in rest), 10,
                 "the join to commit without the old leader")
    finally:
        fourth.stop()


def test_restart_keeps_identity_and_wiped_dir_gets_a_new_one(trio):
    n = trio[2]
    old_id = n.myid()
    n.stop()
    n.start()
    assert n.myid() == old_id
    wait_for(lambda: converged(trio, 3), 20, "the restarted node to rejoin")
    # Wiped: a new node id (and Raft id). Its address proves the old identity is
    # gone for good, so the leader retires it: the cluster is back to 3 nodes.
    n.stop()
    n.node_id = None  # a wiped directory and no fixed id: a new identity
    for name in os.listdir(n.cdir):
        path = os.path.join(n.cdir, name)
        if os.path.isdir(path):
            for f in os.listdir(path):
                os.unlink(os.path.join(path, f))
            os.rmdir(path)
        else:
            os.unlink(path)
    n.start()
    new_id = n.myid()
    assert new_id != old_id
    owners = wait_for(lambda: converged(trio, 3), 30, "the wiped node to join as a new one")
    assert old_id not in owners.values() and new_id in owners.values()
    ids = {line.split()[0] for line in
           trio[0].cmd("CLUSTER", "NODES").decode().strip().split("\n")}
    assert ids == {t.myid() for t in trio}


def test_cluster_forget_removes_a_node(trio):
    gone = trio[2]
    gid = gone.myid()
    with trio[0].resp() as c:
        assert c.call("CLUSTER", "FORGET", trio[0].myid()).startswith(b"-ERR")
        assert c.call("CLUSTER", "FORGET", "0" * 40) == b"-ERR Unknown node " + b"0" * 40 + b"\r\n"
        assert c.call("CLUSTER", "FORGET", gid) == b"+OK\r\n"
    owners = wait_for(lambda: converged(trio[:2], 2), 20, "two nodes left")
    assert gid not in owners.values()


def test_bad_cluster_dir_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, stat.S_IRUSR | stat.S_IXUSR)
    if os.access(str(ro), os.W_OK):
        pytest.skip("running as a user that can write anywhere (root): use a file instead")
    n = Node(cdir=str(ro / "sub"))
    with pytest.raises(ServerError) as e:
        n.start()
    assert "cluster.dir" in str(e.value)


def test_cluster_dir_that_is_a_file_is_a_clear_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    n = Node(cdir=str(f))
    with pytest.raises(ServerError) as e:
        n.start()
    assert "cluster.dir" in str(e.value)


class Writers:
    """Client threads writing unique keys through redis-py's RedisCluster while
    the topology changes. Every write that was acknowledged is recorded; any
    exception that reaches the application is recorded too (redis-py follows
    MOVED and retries TRYAGAIN by itself: those must not surface)."""

    def __init__(self, port, threads=2):
        from redis.cluster import RedisCluster, ClusterNode
        self.acked = {}
        self.errors = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.clients = [RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port)],
                                     decode_responses=True) for _ in range(threads)]
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]

    def run(self, w):
        rc = self.clients[w]
        i = 0
        while not self.stop.is_set():
            key, val = "w%d:%d" % (w, i), "v%d-%d" % (w, i)
            try:
                if rc.set(key, val):
                    with self.lock:
                        self.acked[key] = val
            except Exception as e:  # noqa: BLE001 -- every surfaced error is a failure
                self.errors.append(repr(e))
            i += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        for rc in self.clients:
            rc.close()

    def check(self, port):
        """Every acknowledged write reads back, through any node."""
        from redis.cluster import RedisCluster, ClusterNode
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port)], decode_responses=True)
        try:
            keys = sorted(self.acked)
            lost = []
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                pipe = rc.pipeline()
                for k in chunk:
                    pipe.get(k)
                for k, v in zip(chunk, pipe.execute()):
                    if v != self.acked[k]:
                        lost.append((k, self.acked[k], v))
            return lost
        finally:
            rc.close()


def logs(nodes):
    """The nodes' logs, for a failure's message."""
    return "\n".join("--- node %s\n%s" % (n.bus, n.srv.output(4000)) for n in nodes if n.srv)


def total_keys(nodes):
    return sum(n.cmd("DBSIZE") for n in nodes)


def test_join_under_write_load_moves_data_and_loses_no_acknowledged_write(trio):
    fourth = Node(seeds=[trio[0].bus], node_id=FIXED_IDS[3])
    try:
        with Writers(trio[0].resp_port) as w:
            time.sleep(1.0)
            before = len(w.acked)
            fourth.start()
            wait_for(lambda: converged(trio + [fourth], 4), 60, "the 4th node to take its share")
            time.sleep(0.5)
        assert before > 100 and len(w.acked) > before, (before, len(w.acked))
        assert w.errors == [], (w.errors[:5], logs(trio + [fourth]))
        assert w.check(trio[1].resp_port) == []
        # The moved keys left their old owners (dropped in the background).
        wait_for(lambda: total_keys(trio + [fourth]) == len(w.acked), 30,
                 "old copies to be dropped")
        assert fourth.cmd("DBSIZE") > 0
        infos = [n.info() for n in trio]
        assert sum(int(i["cluster_migrations_completed"]) for i in infos) > 0
        assert sum(int(i["cluster_keys_migrated"]) for i in infos) > 0
    finally:
        fourth.stop()


def test_forget_under_write_load_loses_no_acknowledged_write(trio):
    gone = trio[2]
    gid = gone.myid()
    with Writers(trio[0].resp_port) as w:
        time.sleep(1.0)
        with trio[0].resp() as c:
            assert c.call("CLUSTER", "FORGET", gid) == b"+OK\r\n"
        time.sleep(0.5)
    assert w.errors == [], (w.errors[:5], logs(trio))
    owners = wait_for(lambda: converged(trio[:2], 2), 30, "two nodes left")
    assert gid not in owners.values()
    assert w.check(trio[0].resp_port) == []
    wait_for(lambda: total_keys(trio[:2]) == len(w.acked), 30, "every key on the two left")
    # The node that left applied its last handovers before it was let go, and
    # dropped what it held.
    wait_for(lambda: gone.cmd("DBSIZE") == 0, 30, "the forgotten node to drop its keys")


def test_forget_of_a_dead_node_places_its_vbuckets_again(trio):
    dead = trio[2]
    did = dead.myid()
    dead.kill9()
    with RespConn(trio[0].resp_port, timeout=60) as c:
        t0 = time.monotonic()
        assert c.call("CLUSTER", "FORGET", did) == b"+OK\r\n"
        took = time.monotonic() - t0
    # Its keys are lost (no replicas yet: docs/cluster.md), its slots are served
    # again by the two left.
    owners = wait_for(lambda: converged(trio[:2], 2), 30, "the dead node's slots placed again")
    assert did not in owners.values()
    assert took < 15.0, took
    with trio[0].resp() as c:
        # a write to any slot works again (through MOVED when needed)
        from redis.cluster import RedisCluster, ClusterNode
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", trio[0].resp_port)])
        try:
            for i in range(200):
                assert rc.set("after:%d" % i, "x")
        finally:
            rc.close()


def test_metrics_and_health_of_a_one_node_cluster():
    import urllib.request
    bus = free_bus_port()
    mport = pick_port(27000, 29500)
    node = Node(bus=bus, seeds=[bus], extra=["--metrics-port", str(mport)])
    try:
        node.start()
        wait_for(lambda: converged([node], 1), 20, "a cluster of one")

        def metrics():
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5) as r:
                text = r.read().decode()
            return {l.rsplit(" ", 1)[0]: float(l.rsplit(" ", 1)[1])
                    for l in text.splitlines() if l.startswith("crabcache_cluster")}

        with node.resp() as c:
            slot = c.value("CLUSTER", "KEYSLOT", "k")
            assert c.call("SET", "k", "v") == b"+OK\r\n"
        m = metrics()
        assert m["crabcache_cluster_enabled"] == 1
        assert m["crabcache_cluster_state_ok"] == 1
        assert m["crabcache_cluster_nodes_total"] == 1
        assert m["crabcache_cluster_slots_owned"] == 16384
        assert m["crabcache_cluster_vbuckets_owned"] == 256
        assert m['crabcache_cluster_raft_role{role="leader"}'] == 1
        assert m["crabcache_cluster_raft_commit_index"] >= 3
        assert m["crabcache_cluster_config_epoch"] == int(node.info()["cluster_current_epoch"])
        assert m['crabcache_cluster_bus_frames_total{dir="sent"}'] >= 0
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % mport, timeout=5) as r:
            health = r.read().decode()
        assert '"cluster":{"state":"ok","slots_assigned":16384,"known_nodes":1,' \
               '"raft_role":"leader"}' in health, health
        assert slot >= 0
    finally:
        node.stop()
