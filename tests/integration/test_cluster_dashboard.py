"""The dashboard's cluster view on a real 3-node cluster (issue 13, "Show it").

/dashboard/data's `cluster` object is checked against what the same node answers to
CLUSTER INFO, CLUSTER NODES, CLUSTER SLOTS and CLUSTER MYID: node count, addresses,
each node's vbuckets (its slot ranges / 64), the ring (each vbucket's primary), the
config epoch and the Raft figures. Then Debian's headless Chromium loads /dashboard
and the rendered DOM must show the cluster card with the 3 nodes, a ring of 256
segments coloured by the same primaries, and no text that does not fit. A screenshot
is kept in build/artifacts/cluster-dashboard.png.

The nodes are started as tests/integration/test_cluster.py starts them (its helpers
are imported from there); Chromium is found and run as test_dashboard.py does.
"""

import html
import json
import os
import re
import urllib.request

import pytest

import crabtest
from test_cluster import (FIXED_IDS, Node, converged, free_bus_port, pick_port, stop_all,
                          wait_for)
from test_dashboard import ARTIFACTS, chromium, element_text, run_chromium  # noqa: F401

pytestmark = pytest.mark.usefixtures("crab_only")

SLOTS = 16384


def http_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode())


def cluster_nodes(node):
    """CLUSTER NODES as {id: (address ip:port, myself?, slots owned)}."""
    text = node.cmd("CLUSTER", "NODES")
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        slots = 0
        for r in f[8:]:
            lo, _, hi = r.partition("-")
            slots += int(hi or lo) - int(lo) + 1
        out[f[0]] = (f[1].split("@")[0], "myself" in f[2].split(","), slots)
    return out


def stable_snapshot(node, base):
    """/dashboard/data together with CLUSTER INFO / NODES / SLOTS / MYID of the same
    node, taken when the config epoch did not move while they were read."""
    def take():
        before = node.info()
        data = http_json(base + "/dashboard/data")
        nodes = cluster_nodes(node)
        slots = node.slots()
        myid = node.myid()
        after = node.info()
        if before["cluster_current_epoch"] != after["cluster_current_epoch"]:
            return None
        if before["raft_term"] != after["raft_term"]:
            return None
        return data, after, nodes, slots, myid
    return wait_for(take, 20, "a topology that holds still")


def check_data_against_cluster_commands(data, info, nodes, slots, myid):
    c = data["cluster"]
    assert c["enabled"] is True
    assert c["state"] == info["cluster_state"] == "ok"
    assert c["slots_assigned"] == int(info["cluster_slots_assigned"]) == SLOTS
    assert c["config_epoch"] == int(info["cluster_current_epoch"])
    assert c["role"] == info["raft_role"]
    assert c["term"] == int(info["raft_term"])
    assert c["leader"] == info["raft_leader_id"]
    assert c["id"] == myid
    assert c["member"] is True
    assert c["vbuckets"] == 256 and c["slots_per_vbucket"] == SLOTS // 256

    # nodes: same ids, addresses, "myself", and vbuckets = slot ranges / 64
    assert len(c["nodes"]) == int(info["cluster_known_nodes"]) == len(nodes) == 3
    assert {n["id"] for n in c["nodes"]} == set(nodes)
    for n in c["nodes"]:
        addr, myself, nslots = nodes[n["id"]]
        assert n["addr"] == addr, (n, addr)
        assert n["self"] is myself and n["self"] == (n["id"] == myid)
        assert nslots % 64 == 0
        assert n["vbuckets"] == nslots // 64, (n["id"], n["vbuckets"], nslots)
        assert n["slots"] == nslots
        assert abs(n["share"] - nslots / SLOTS) < 1e-3
        assert n["leaving"] is False
        assert n["leader"] is (n["id"] == info["raft_leader_id"])
    assert sum(n["vbuckets"] for n in c["nodes"]) == 256
    assert sum(1 for n in c["nodes"] if n["self"]) == 1

    # ring: 256 entries, each the index (in nodes) of the primary CLUSTER SLOTS gives
    owner = {}
    for (start, end), (_, nid) in slots.items():
        for s in range(start, end + 1):
            owner[s] = nid
    assert len(owner) == SLOTS
    assert len(c["ring"]) == 256
    for vb, idx in enumerate(c["ring"]):
        assert 0 <= idx < 3, (vb, idx)
        for s in (vb * 64, vb * 64 + 63):
            assert c["nodes"][idx]["id"] == owner[s], (vb, s)
    for i, n in enumerate(c["nodes"]):
        assert c["ring"].count(i) == n["vbuckets"]

    m = c["migrations"]
    assert m["in_flight"] == []  # converged: no copy in flight
    assert m["active"] == int(info["cluster_migrations_active"]) == 0
    assert m["completed"] == int(info["cluster_migrations_completed"])
    assert m["keys_migrated"] == int(info["cluster_keys_migrated"])
    assert m["bytes_migrated"] == int(info["cluster_bytes_migrated"])
    return c


def test_cluster_view_data_and_page(chromium):  # noqa: F811 (the fixture)
    buses = [free_bus_port() for _ in range(3)]
    mport = pick_port(27000, 29500)
    nodes = [Node(bus=b, seeds=buses, node_id=FIXED_IDS[i],
                  extra=["--metrics-port", str(mport)] if i == 0 else [])
             for i, b in enumerate(buses)]
    try:
        for n in nodes:
            n.start()
        wait_for(lambda: converged(nodes, 3), 20, "3 nodes to form")
        base = "http://127.0.0.1:%d" % mport
        data, info, cnodes, slots, myid = stable_snapshot(nodes[0], base)
        c = check_data_against_cluster_commands(data, info, cnodes, slots, myid)
        assert myid == FIXED_IDS[0]

        url = base + "/dashboard?interval=250"
        dom = run_chromium(chromium, url, ["--dump-dom"], 3000).decode()
        os.makedirs(ARTIFACTS, exist_ok=True)
        shot = os.path.join(ARTIFACTS, "cluster-dashboard.png")
        if os.path.exists(shot):
            os.unlink(shot)
        run_chromium(chromium, url, ["--screenshot=" + shot], 3000)
        # the topology did not change meanwhile: the page drew what was checked above
        assert nodes[0].info()["cluster_current_epoch"] == info["cluster_current_epoch"]

        samples = int(re.search(r'<body data-samples="(\d+)"', dom).group(1))
        assert samples >= 2, "the page applied %d polls" % samples
        card = re.search(r'<div class="card wide" id="cl-card"([^>]*)>', dom)
        assert card, "no cluster card in the DOM"
        assert not re.search(r"\shidden\b", card.group(1)), "the cluster card is hidden"
        clipped = re.search(r'data-clipped="(\d+)"', card.group(1))
        assert clipped and clipped.group(1) == "0", "a text of the cluster card does not fit"

        # nodes: one row per node, in the order of the data, this node marked once
        rows = re.findall(r'<tr data-node-id="([^"]*)">(.*?)</tr>', dom, re.S)
        assert [html.unescape(r[0]) for r in rows] == [n["id"] for n in c["nodes"]]
        for (rid, row), n in zip(rows, c["nodes"]):
            cells = [html.unescape(re.sub(r"<[^>]*>", " ", td)).split()
                     for td in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            assert len(cells) == 5, cells
            assert ("this" in cells[0]) is n["self"]
            assert cells[1] == [n["addr"]]
            assert cells[2] == ["member"]
            role = c["role"] if n["self"] else "leader" if n["leader"] else "\u2013"
            assert cells[3] == [role], (cells[3], role)
            assert cells[4][0] == str(n["vbuckets"]), cells[4]
        assert dom.count(">this node<") == 1

        # the ring: 256 segments, each coloured by (and tagged with) its primary
        ring = re.search(r'<svg id="cl-ring"[^>]*data-segments="(\d+)"[^>]*>(.*?)</svg>', dom,
                         re.S)
        assert ring and ring.group(1) == "256"
        segs = re.findall(r'<path class="seg"[^>]*data-vb="(\d+)" data-node="(-?\d+)"',
                          ring.group(2))
        assert len(segs) == 256
        assert [int(n) for _, n in sorted(segs, key=lambda s: int(s[0]))] == c["ring"]
        fills = {}
        for m in re.finditer(r'<path class="seg"[^>]*fill="([^"]+)"[^>]*data-node="(\d+)"',
                             ring.group(2)):
            fills.setdefault(int(m.group(2)), set()).add(m.group(1))
        assert all(len(f) == 1 for f in fills.values()) and \
            len({next(iter(f)) for f in fills.values()}) == 3, fills
        assert "256 vbuckets" in ring.group(2)

        mig = element_text(dom, "cl-mig-self")
        assert "%d handed over" % c["migrations"]["completed"] in mig, mig
        assert "not built yet" in html.unescape(dom)

        with open(shot, "rb") as f:
            png = f.read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000
        crabtest.SUMMARY.append("cluster dashboard: screenshot kept in %s (%d bytes)"
                                % (os.path.relpath(shot, crabtest.REPO_ROOT), len(png)))
    finally:
        stop_all(nodes)
