"""The dashboard's cluster view on a real 3-node cluster (issue 13, "Show it").

/dashboard/data's `cluster` object is checked against what the same node answers to
CLUSTER INFO, CLUSTER NODES, CLUSTER SLOTS and CLUSTER MYID: node count, addresses,
each node's vbuckets (its slot ranges / 64), the ring (each vbucket's primary), the
config epoch and the Raft figures. Then Debian's headless Chromium loads /dashboard
and the rendered DOM must show the cluster card with the 3 nodes, a ring of 256
segments coloured by the same primaries, and no text that does not fit. A screenshot
is kept in build/artifacts/cluster-dashboard.png. A second test polls /dashboard/data
while a 4th node joins (the copies in flight must agree with the ring) and has the page
draw the busiest answer it saw. Without chromium the data checks still run, then skip.

The nodes are started as tests/integration/test_cluster.py starts them (its helpers
are imported from there); Chromium is found and run as test_dashboard.py does.
"""

import html
import http.server
import json
import os
import re
import shutil
import threading
import time
import urllib.request

import pytest

import crabtest
from crabtest import NativeConn
from test_cluster import (FIXED_IDS, Node, converged, free_bus_port, pick_port, stop_all,
                          wait_for)
from test_dashboard import ARTIFACTS, element_text, run_chromium

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


def test_cluster_view_data_and_page():
    buses = [free_bus_port() for _ in range(3)]
    mport = pick_port(27000, 29500)
    nodes = [Node(bus=b, seeds=buses, node_id=FIXED_IDS[i],
                  extra=["--metrics-port", str(mport)] if i == 0 else [])
             for i, b in enumerate(buses)]
    try:
        for n in nodes:
            n.start()
        wait_for(lambda: converged(nodes, 3), 20, "3 nodes to form")
        # native GETs through node 0: those of keys owned elsewhere are forwarded
        with NativeConn(nodes[0].port) as nc:
            for i in range(200):
                assert nc.cmd("GET fwd:%d" % i) == b"NULL"
        base = "http://127.0.0.1:%d" % mport
        data, info, cnodes, slots, myid = stable_snapshot(nodes[0], base)
        c = check_data_against_cluster_commands(data, info, cnodes, slots, myid)
        assert myid == FIXED_IDS[0]
        fwd = c["forward"]
        assert fwd["requests"] == int(info["cluster_forwarded_requests"]) > 100, fwd
        assert fwd["failed"] == 0 and 0 < fwd["p50_us"] <= fwd["p99_us"], fwd
        chromium = chromium_path()
        if chromium is None:
            pytest.skip("chromium is not installed (Debian package `chromium`; run "
                        "scripts/deps.sh as root); the data part above ran")

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
        fwd_text = element_text(dom, "cl-fwd")
        assert fwd_text.startswith("Forwarded by this node: %d requests, latency p50 "
                                   % fwd["requests"]), fwd_text

        with open(shot, "rb") as f:
            png = f.read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000
        crabtest.SUMMARY.append("cluster dashboard: screenshot kept in %s (%d bytes)"
                                % (os.path.relpath(shot, crabtest.REPO_ROOT), len(png)))
    finally:
        stop_all(nodes)


def copies_with_progress(data):
    return [m for m in data["cluster"]["migrations"]["in_flight"] if m["walked"] is not None]


def check_copies(data):
    """A /dashboard/data taken during a join: every copy in flight goes from the
    vbucket's primary on the ring to another member that is not leaving; those
    with a walk's progress are sent by this node."""
    c = data["cluster"]
    n = len(c["nodes"])
    me = [i for i, nd in enumerate(c["nodes"]) if nd["self"]]
    assert len(c["ring"]) == c["vbuckets"]
    for m in copies_with_progress(data):
        assert [m["from"]] == me, m
        assert m["walked"] >= 0 and m["total"] >= 0, m
    for m in c["migrations"]["in_flight"]:
        assert 0 <= m["vb"] < c["vbuckets"]
        assert m["first_slot"] == m["vb"] * c["slots_per_vbucket"]
        assert m["last_slot"] == m["first_slot"] + c["slots_per_vbucket"] - 1
        assert m["from"] == c["ring"][m["vb"]], m
        assert 0 <= m["to"] < n and m["to"] != m["from"], m
        assert not c["nodes"][m["to"]]["leaving"]
    return len(c["migrations"]["in_flight"])


def test_cluster_view_shows_copies_of_a_join():
    """A 4th node joins a 3-node cluster holding data while /dashboard/data of node 0
    is polled: the copies in flight it reports are consistent with its ring, some are
    seen, and once converged it agrees with CLUSTER INFO and shows 4 nodes."""
    buses = [free_bus_port() for _ in range(3)]
    mport = pick_port(27000, 29500)
    nodes = [Node(bus=b, seeds=buses, node_id=FIXED_IDS[i],
                  extra=["--metrics-port", str(mport)] if i == 0 else [])
             for i, b in enumerate(buses)]
    fourth = Node(seeds=[buses[0]], node_id=FIXED_IDS[3])
    try:
        for n in nodes:
            n.start()
        wait_for(lambda: converged(nodes, 3), 20, "3 nodes to form")
        from redis.cluster import ClusterNode, RedisCluster
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", nodes[0].resp_port)])
        try:
            value = "x" * 400
            for i in range(0, 40000, 1000):
                pipe = rc.pipeline()
                for j in range(i, i + 1000):
                    pipe.set("k:%d" % j, value)
                assert all(pipe.execute())
        finally:
            rc.close()
        base = "http://127.0.0.1:%d" % mport
        # a thread of its own polls as fast as it can, so the join cannot
        # slip between two polls while the test checks convergence
        got = {"seen": 0, "polls": 0, "busiest": None, "error": None, "progress": 0}
        stop = threading.Event()

        def poll():
            try:
                while not stop.is_set():
                    d = http_json(base + "/dashboard/data")
                    k = check_copies(d)
                    b = got["busiest"]
                    if k and (b is None or k > len(b["cluster"]["migrations"]["in_flight"])
                              or (copies_with_progress(d) and not copies_with_progress(b))):
                        got["busiest"] = d
                    got["progress"] += len(copies_with_progress(d))
                    got["seen"] += k
                    got["polls"] += 1
                    time.sleep(0.002)
            except Exception as e:  # noqa: BLE001 -- reported by the test below
                got["error"] = e

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            fourth.start()
            wait_for(lambda: converged(nodes + [fourth], 4), 60,
                     "the 4th node to take its share")
        finally:
            stop.set()
            poller.join(30)
        if got["error"] is not None:
            raise got["error"]
        seen, polls, busiest = got["seen"], got["polls"], got["busiest"]
        assert seen > 0, "no copy in flight seen in %d polls of a join" % polls
        assert got["progress"] > 0, "no copy of node 0 with its progress in %d polls" % polls
        data, info, cnodes, _, _ = stable_snapshot(nodes[0], base)
        c = data["cluster"]
        assert len(c["nodes"]) == len(cnodes) == 4
        assert c["migrations"]["in_flight"] == []
        assert c["migrations"]["completed"] == int(info["cluster_migrations_completed"]) > 0
        assert c["migrations"]["keys_migrated"] == int(info["cluster_keys_migrated"]) > 0
        crabtest.SUMMARY.append("cluster dashboard: %d copies in flight seen over %d polls "
                                "of a join; node 0 handed over %d vbuckets"
                                % (seen, polls, c["migrations"]["completed"]))
        with urllib.request.urlopen(base + "/dashboard", timeout=10) as r:
            page = r.read()
    finally:
        stop_all(nodes + [fourth])
    if chromium_path() is None:
        pytest.skip("chromium is not installed (Debian package `chromium`; run "
                    "scripts/deps.sh as root); the data part above ran")
    check_page_with_copies(page, busiest)


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def check_page_with_copies(page, data):
    """The page as the server sent it, fed (from a loopback server of the test) with
    the /dashboard/data answer of the join that had the most copies in flight: it
    lists each copy and marks its vbucket on the ring."""
    body = json.dumps(data).encode()

    class Replay(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            out, ctype = (body, "application/json") if self.path.startswith("/dashboard/data") \
                else (page, "text/html; charset=utf-8")
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        url = "http://127.0.0.1:%d/dashboard?interval=250" % srv.server_address[1]
        dom = run_chromium(chromium_path(), url, ["--dump-dom"], 2000).decode()
    finally:
        srv.shutdown()
        srv.server_close()
    c = data["cluster"]
    flight = c["migrations"]["in_flight"]
    rows = re.findall(r'<div class="row" data-vb="(\d+)">([^<]*)<', dom)
    assert [int(vb) for vb, _ in rows] == [m["vb"] for m in flight], rows
    for (_, text), m in zip(rows, flight):
        text = html.unescape(text)
        assert "%s \u2192 %s" % (c["nodes"][m["from"]]["id"], c["nodes"][m["to"]]["id"]) in text
        # the walk's figures for a copy this node sends (below 10000: as they are)
        assert (" keys" in text) is (m["walked"] is not None), text
        if m["walked"] is not None and m["total"] < 10000 and m["walked"] < 10000:
            assert "%d of %d keys" % (m["walked"], m["total"]) in text, text
    # a progress bar for each copy this node sends, as far as its walk went
    bars = [float(p) for p in re.findall(r'<div class="bar" data-progress="([0-9.]+)"', dom)]
    want = [min(1, m["walked"] / m["total"]) if m["total"] else 1
            for m in flight if m["walked"] is not None]
    assert len(bars) == len(want) and all(abs(a - b) < 1e-3 for a, b in zip(bars, want)), \
        (bars, want)
    assert dom.count('<path class="copy"') == len(flight)
    assert dom.count('<path class="seg"') == c["vbuckets"]
    assert len(re.findall(r'<tr data-node-id=', dom)) == len(c["nodes"])
    card = re.search(r'<div class="card wide" id="cl-card"([^>]*)>', dom).group(1)
    assert "hidden" not in card and 'data-clipped="0"' in card, card
