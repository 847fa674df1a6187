"""The /dashboard page in a real browser: Debian's headless Chromium loads it from a
CrabCache on loopback while a load runs, and the test reads the rendered DOM (tiles and
charts drawn from live data) and keeps a screenshot in build/artifacts/dashboard.png.

Skips, saying why, only when the chromium binary is not installed (scripts/deps.sh
installs it)."""

import html
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

import crabtest
from crabtest import CrabServer, RespConn, free_port, start_with_retry

pytestmark = pytest.mark.usefixtures("crab_only")

TOKEN = "dash-token"
ARTIFACTS = os.path.join(crabtest.REPO_ROOT, "build", "artifacts")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--window-size=1280,1150"]


class MetricsServer(CrabServer):
    def __init__(self, extra_args=()):
        self.metrics_port = free_port()
        super().__init__(extra_args=["--metrics-port", str(self.metrics_port)] + list(extra_args))
        self.ready_ports.append(self.metrics_port)


@pytest.fixture
def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium is not installed (Debian package `chromium`; run scripts/deps.sh "
                "as root)")


def run_chromium(binary, url, extra, budget_ms):
    """Run headless Chromium once with a fresh profile; returns stdout (bytes)."""
    profile = tempfile.mkdtemp(prefix="crabtest-chromium-")
    try:
        p = subprocess.run([binary] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile,
                           "--virtual-time-budget=%d" % budget_ms] + extra + [url],
                           capture_output=True, timeout=180, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr.decode(errors="replace")[-3000:]
        return p.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def element_text(dom, elem_id):
    m = re.search(r'id="%s"[^>]*>([^<]*)<' % re.escape(elem_id), dom)
    assert m, "no element #%s in the DOM" % elem_id
    return html.unescape(m.group(1)).strip()


def canvas_points(dom, elem_id):
    m = re.search(r'<canvas id="%s" data-points="(\d+)"' % re.escape(elem_id), dom)
    assert m, "no canvas #%s" % elem_id
    return int(m.group(1))


class Load:
    """SET/GET traffic (about 2/3 hits) on its own thread until stopped."""

    def __init__(self, srv):
        self.srv, self.stop_at, self.ops = srv, None, 0
        self.done = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        with RespConn(self.srv.resp_port, server=self.srv) as c:
            i = 0
            while not self.done.is_set():
                batch = []
                for j in range(20):
                    k = (i * 20 + j) % 3000
                    batch.append(["SET", "d%d" % (k % 2000), "x" * (k % 200)])
                    batch.append(["GET", "d%d" % k])
                c.pipeline(batch)
                self.ops += len(batch)
                i += 1
                time.sleep(0.002)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.done.set()
        self.t.join(30)


def test_dashboard_live_in_chromium(chromium):
    srv = start_with_retry(lambda: MetricsServer(extra_args=["--metrics-token", TOKEN]))
    try:
        base = "http://127.0.0.1:%d" % srv.metrics_port
        # The page is self-contained: nothing it references lives elsewhere.
        with urllib.request.urlopen(base + "/dashboard?token=" + TOKEN, timeout=10) as r:
            page = r.read().decode()
            csp = r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page), "external asset"
        assert "<canvas" in page

        url = base + "/dashboard?interval=250&token=" + TOKEN
        with Load(srv) as load:
            time.sleep(0.5)
            dom1 = run_chromium(chromium, url, ["--dump-dom"], 4000).decode()
            time.sleep(0.5)
            dom2 = run_chromium(chromium, url, ["--dump-dom"], 4000).decode()
            os.makedirs(ARTIFACTS, exist_ok=True)
            shot = os.path.join(ARTIFACTS, "dashboard.png")
            if os.path.exists(shot):
                os.unlink(shot)
            run_chromium(chromium, url, ["--screenshot=" + shot], 6000)
            assert load.ops > 0

        for dom in (dom1, dom2):
            samples = int(re.search(r'<body data-samples="(\d+)"', dom).group(1))
            assert samples >= 3, "the page applied %d polls" % samples
            assert "live" in element_text(dom, "status")
            ops = element_text(dom, "v-ops")
            m = re.fullmatch(r"([\d.]+)(k|M|G)?/s", ops)
            assert m and float(m.group(1)) > 0, "throughput tile shows %r under load" % ops
            for tile in ("v-p50", "v-p95", "v-p99", "v-e2e-p50", "v-e2e-p95", "v-e2e-p99"):
                assert re.fullmatch(r"[\d.]+ (\u00b5s|ms|s)", element_text(dom, tile)), tile
            assert re.fullmatch(r"[\d.]+ %", element_text(dom, "v-hit"))
            assert element_text(dom, "v-conn") != "0"  # the load's connection at least
            assert re.fullmatch(r"[\d.]+ (B|KiB|MiB)", element_text(dom, "v-mem"))
            # every chart drew points from the polled data
            for cv in ("c-ops", "c-lat", "c-hit", "c-evict", "c-conn"):
                assert canvas_points(dom, cv) >= 2, cv
            assert canvas_points(dom, "c-mem") >= 1  # one bar per shard
            assert "standalone" in dom
            # cluster mode is off: the cluster card stays hidden
            card = re.search(r'<div class="card wide" id="cl-card"([^>]*)>', dom)
            assert card and re.search(r"\shidden\b", card.group(1)), card
        c1 = int(element_text(dom1, "v-commands"))
        c2 = int(element_text(dom2, "v-commands"))
        assert c2 > c1 > 0, "the command total did not move between loads: %d, %d" % (c1, c2)

        with open(shot, "rb") as f:
            png = f.read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000
        crabtest.SUMMARY.append("dashboard: screenshot kept in %s (%d bytes); commands %d -> %d"
                                % (os.path.relpath(shot, crabtest.REPO_ROOT), len(png), c1, c2))
    finally:
        srv.stop()


def canvas_attr(dom, elem_id, attr):
    m = re.search(r'<canvas id="%s"[^>]*\sdata-%s="([^"]*)"' % (re.escape(elem_id), attr), dom)
    assert m, "no data-%s on canvas #%s" % (attr, elem_id)
    return html.unescape(m.group(1))


def test_dashboard_labels_fit_and_both_latencies(chromium):
    """Issue 18.5: the axis labels of every chart fit inside it (their measured text
    extents, with three-digit values on the memory axis, which used to lose their
    first digit), and the latency card shows both latencies, end to end measured in
    the server (read to reply written) above the execution time."""
    srv = start_with_retry(lambda: MetricsServer())
    try:
        base = "http://127.0.0.1:%d" % srv.metrics_port
        with RespConn(srv.resp_port, server=srv) as c:
            # about 250 KiB per shard: memory axis ticks of three digits (KiB)
            data = http_json(base + "/dashboard/data")
            assert data["cluster"] == {"enabled": False, "role": "standalone"}
            nshards = len(data["shards"])
            value = "v" * 1000
            for i in range(0, 260 * nshards, 50):
                c.pipeline([["SET", "big:%d" % (i + j), value] for j in range(50)])
        shard_mem = [s["memory"] for s in http_json(base + "/dashboard/data")["shards"]]
        assert max(shard_mem) * 1.15 >= 100 * 1024 * 4 / 3, shard_mem
        url = base + "/dashboard?interval=250"
        with Load(srv):
            time.sleep(0.5)
            dom = run_chromium(chromium, url, ["--dump-dom"], 4000).decode()
        labels = canvas_attr(dom, "c-mem", "labels").split("|")
        assert any(re.fullmatch(r"\d{3}\.\d KiB", s) for s in labels), labels
        for cv in ("c-ops", "c-lat", "c-mem", "c-hit", "c-evict", "c-conn"):
            assert canvas_attr(dom, cv, "clipped") == "0", \
                "%s: a label does not fit: %s" % (cv, canvas_attr(dom, cv, "labels"))
        title = html.unescape(re.search(r'<h2 id="lat-title">(.*?)</h2>', dom, re.S).group(1))
        assert "end to end (read \u2192 reply written)" in title and "execution" in title, title
        e2e = element_text(dom, "v-e2e-p50")
        ex = element_text(dom, "v-p50")

        def us(text):
            v, unit = text.split(" ")
            return float(v) * {"\u00b5s": 1, "ms": 1e3, "s": 1e6}[unit]
        assert us(e2e) > us(ex) > 0, (e2e, ex)
        # the end-to-end figure is measured: /metrics counts every request
        text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
        count = int(re.search(r"^crabcache_request_duration_seconds_count (\d+)$", text,
                              re.M).group(1))
        assert count >= 260 * nshards
    finally:
        srv.stop()


def http_json(url):
    import json
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode())
