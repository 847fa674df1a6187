"""A CrabCache process started with cluster.enabled, before any topology is published
(the control thread that publishes it is not part of this test): the replies Redis
Cluster clients look at first, and a clean shutdown of workers that quiesce every loop
turn (the check handle that only cluster mode creates)."""

import socket

import pytest

import crabtest
from crabtest import CrabServer, RespConn, parse


@pytest.fixture(scope="module")
def cluster_node():
    # the bus port is given, below 55536 (its Raft port is bus + 10000): a random
    # port + 10000 may be above 65535
    from test_cluster import free_bus_port
    srv = crabtest.start_with_retry(lambda: CrabServer(extra_args=[
        "--cluster-enabled", "yes", "--cluster-port", str(free_bus_port())]))
    yield srv
    srv.stop()


def test_cluster_mode_replies(cluster_node, crab_only):
    with RespConn(cluster_node.resp_port, server=cluster_node) as c:
        assert b"\r\ncluster_enabled:1\r\n" in c.call("INFO", "cluster")
        assert b"\r\nredis_mode:cluster\r\n" in c.call("INFO", "server")
        info = parse(c.call("CLUSTER", "INFO"))[0]
        lines = dict(l.split(b":", 1) for l in info.split(b"\r\n") if l)
        # no topology yet: no slot is served, no node is known
        assert lines[b"cluster_state"] == b"fail"
        assert lines[b"cluster_slots_assigned"] == b"0"
        assert lines[b"cluster_known_nodes"] == b"0"
        assert lines[b"raft_role"] == b"unavailable"
        assert c.call("CLUSTER", "SLOTS") == b"*0\r\n"
        assert c.call("CLUSTER", "SHARDS") == b"*0\r\n"
        assert c.call("CLUSTER", "NODES") == b"$0\r\n\r\n"
        assert c.call("CLUSTER", "KEYSLOT", "foo") == b":12182\r\n"
        assert c.call("CLUSTER", "COUNTKEYSINSLOT", "0") == b":0\r\n"
        for cmd in ("READONLY", "READWRITE", "ASKING"):
            assert c.call(cmd) == b"+OK\r\n"
        # MEET of a port where no bus listens: Redis's arity, then our error
        assert c.call("CLUSTER", "MEET", "127.0.0.1", "1").startswith(
            b"-ERR cannot reach the cluster bus at 127.0.0.1:10001")
        assert c.call("CLUSTER", "ADDSLOTS", "1") == (
            b"-ERR CLUSTER ADDSLOTS is not supported by CrabCache\r\n")
        # no key is served before the first topology, as a Redis Cluster node without
        # slots; keyless commands are
        assert c.call("GET", "k") == b"-CLUSTERDOWN Hash slot not served\r\n"
        assert c.call("SET", "k", "v") == b"-CLUSTERDOWN Hash slot not served\r\n"
        assert c.call("MGET", "a", "b") == b"-CLUSTERDOWN Hash slot not served\r\n"
        assert c.call("DBSIZE") == b":0\r\n"
        assert b"errorstat_CLUSTERDOWN:count=3\r\n" in c.call("INFO", "errorstats")
        # many loop turns on both workers, then a clean stop (fixture) under ASan
        for _ in range(200):
            assert c.call("PING") == b"+PONG\r\n"
    cluster_node.check()


def test_cluster_mode_native(cluster_node, crab_only):
    with socket.create_connection(("127.0.0.1", cluster_node.port)) as s:
        s.sendall(b"PUT k v\r\nGET k\r\nPING\r\n")
        want = b"ERROR: CLUSTERDOWN Hash slot not served\r\n" * 2 + b"PONG\r\n"
        got = b""
        s.settimeout(5)
        while len(got) < len(want):
            d = s.recv(4096)
            if not d:
                break
            got += d
        assert got == want
    cluster_node.check()
