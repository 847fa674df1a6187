"""Debian's redis-cli --cluster tools against a CrabCache cluster, unchanged.

`redis-cli --cluster check` reads CLUSTER NODES from every node it finds (the
configuration signature of each must agree), looks for open (importing or
migrating) slots and checks that all 16384 slots are covered; `--cluster info`
adds each master's DBSIZE. Both must pass on a 3-node cluster holding keys, and
again after a 4th node has joined and taken its share (issue 13, section 2).
Nodes are started as test_cluster.py starts them (fixed ids, short Raft timeouts).
"""

import re
import shutil
import subprocess

import pytest

from test_cluster import FIXED_IDS, Node, converged, trio, wait_for  # noqa: F401 (trio: the fixture)

REDIS_CLI = shutil.which("redis-cli")

pytestmark = [pytest.mark.usefixtures("crab_only"),
              pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli not installed")]

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def redis_cli(*args):
    p = subprocess.run([REDIS_CLI] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    return p.returncode, ANSI.sub("", p.stdout)


def check_ok(node, n_masters):
    """redis-cli --cluster check through node: exit 0, every slot covered, the
    nodes agree, no error or warning, n_masters masters listed. Returns the
    output."""
    rc, out = redis_cli("--cluster", "check", "127.0.0.1:%d" % node.resp_port)
    assert rc == 0, out
    assert "[OK] All nodes agree about slots configuration." in out, out
    assert "[OK] All 16384 slots covered." in out, out
    assert "[ERR]" not in out and "[WARNING]" not in out, out
    masters = re.findall(r"^M: (\S+) 127\.0\.0\.1:(\d+)$", out, re.M)
    assert len(masters) == n_masters, out
    return out, masters


def info_counts(node):
    """redis-cli --cluster info: {port: (keys, slots)} and the total it reports."""
    rc, out = redis_cli("--cluster", "info", "127.0.0.1:%d" % node.resp_port)
    assert rc == 0, out
    rows = re.findall(r"^127\.0\.0\.1:(\d+) \(\S+\) -> (\d+) keys \| (\d+) slots \| 0 slaves\.$",
                      out, re.M)
    total = re.search(r"\[OK\] (\d+) keys in (\d+) masters\.", out)
    assert total, out
    return {int(p): (int(k), int(s)) for p, k, s in rows}, int(total.group(1)), out


def owned_slots(node):
    return sum(end - start + 1 for (start, end), (port, _) in node.slots().items()
               if port == node.resp_port)


def fill(node, n):
    from redis.cluster import RedisCluster, ClusterNode
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", node.resp_port)])
    try:
        pipe = rc.pipeline()
        for i in range(n):
            pipe.set("cli:%d" % i, "v")
        assert all(pipe.execute())
    finally:
        rc.close()


def test_cluster_check_and_info_on_three_nodes(trio):
    fill(trio[0], 3000)
    # Through any node: the same view.
    for n in trio:
        out, masters = check_ok(n, 3)
        assert {int(p) for _, p in masters} == {t.resp_port for t in trio}
        assert {i for i, _ in masters} == {t.myid() for t in trio}
    counts, total, out = info_counts(trio[1])
    assert total == 3000, out
    assert set(counts) == {t.resp_port for t in trio}, out
    for t in trio:
        assert counts[t.resp_port] == (t.cmd("DBSIZE"), owned_slots(t)), (out, t.resp_port)
    assert sum(s for _, s in counts.values()) == 16384


def test_cluster_check_after_a_join(trio):
    fill(trio[0], 2000)
    fourth = Node(seeds=[trio[0].bus], node_id=FIXED_IDS[3])
    try:
        fourth.start()
        wait_for(lambda: converged(trio + [fourth], 4), 60, "the 4th node to take its share")
        # the moved keys leave their old owners in the background
        wait_for(lambda: sum(n.cmd("DBSIZE") for n in trio + [fourth]) == 2000, 30,
                 "old copies to be dropped")
        out, masters = check_ok(fourth, 4)
        assert fourth.myid() in {i for i, _ in masters}
        counts, total, out = info_counts(trio[0])
        assert total == 2000, out
        assert counts[fourth.resp_port][0] == fourth.cmd("DBSIZE") > 0, out
    finally:
        fourth.stop()
