"""Smoke tests of crabcache-bench and bench/compare, fast enough for every `make test`.

crabcache-bench runs against a real redis-server (RESP) started on a free
loopback port, and against a small in-process server speaking the native
text protocol (PUT/GET, NULL, ERROR:). Traces are generated here in each
supported format, so the expected hit ratio (an unbounded cache: 1 -
unique/requests) is known exactly. bench/compare runs in --quick mode.
"""

import gzip
import json
import lzma
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.environ.get("CRABCACHE_BIN_DIR", os.path.join(REPO, "build"))
BENCH = os.path.join(BIN_DIR, "crabcache-bench")
REDIS = shutil.which("redis-server")

pytestmark = [
    pytest.mark.skipif(not os.access(BENCH, os.X_OK), reason="crabcache-bench not built"),
    pytest.mark.skipif(REDIS is None, reason="redis-server not installed"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resp_cmd(port, *args):
    """Send one RESP command and return the raw reply line."""
    payload = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        return s.recv(4096).split(b"\r\n")[0]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    port = free_port()
    d = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(d), "--loglevel", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                if resp_cmd(port, "PING") == b"+PONG":
                    break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("redis-server did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bench(*args, check=True, timeout=60):
    p = subprocess.run([BENCH] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def bench_json(*args, **kw):
    p = bench(*args, "--json", **kw)
    return json.loads(p.stdout)


def check_latency(lat, count):
    assert lat["count"] == count
    if count:
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]


# ---- command line -------------------------------------------------------------------------

def test_help_lists_every_option():
    p = bench("--help")
    for opt in ("--host", "--port", "--protocol", "--threads", "--connections", "--pipeline",
                "--ratio", "--keys", "--distribution", "--zipf-exponent", "--value-size",
                "--duration", "--requests", "--rate", "--trace", "--trace-format", "--json",
                "--seed", "--load", "--key-prefix"):
        assert opt in p.stdout


@pytest.mark.parametrize("args", [["--ratio", "x"], ["--protocol", "memcache"],
                                  ["--threads", "0"], ["--bogus"], ["--zipf-exponent", "0"],
                                  ["--key-prefix", ""], ["--key-prefix", "a b"],
                                  ["--key-prefix", "x" * 33]])
def test_bad_usage_exits_2(args):
    p = bench(*args, check=False)
    assert p.returncode == 2
    assert p.stderr


def test_connection_refused_is_reported():
    p = bench("--port", free_port(), "--requests", 10, check=False)
    assert p.returncode == 1
    assert "cannot connect" in p.stderr


# ---- RESP against redis-server --------------------------------------------------------------

def test_load_fills_exact_key_count(redis_port):
    resp_cmd(redis_port, "FLUSHALL")
    r = bench_json("--port", redis_port, "--load", "--keys", 3000, "--value-size", 10,
                   "--connections", 7)
    assert r["requests"] == 3000 and r["sets"] == 3000 and r["errors"] == 0
    assert resp_cmd(redis_port, "DBSIZE") == b":3000"
    assert resp_cmd(redis_port, "STRLEN", "key:000000002999") == b":10"
    check_latency(r["latency_us"]["set"], 3000)
    # every GET over the loaded key space hits
    r = bench_json("--port", redis_port, "--ratio", "0:1", "--keys", 3000, "--requests", 4000,
                   "--threads", 2, "--connections", 4, "--pipeline", 8)
    assert r["gets"] == 4000 and r["hits"] == 4000 and r["hit_ratio"] == 1.0


def test_key_prefix_names_the_keys(redis_port):
    resp_cmd(redis_port, "FLUSHALL")
    r = bench_json("--port", redis_port, "--load", "--keys", 500, "--value-size", 10,
                   "--key-prefix", '{t"\\}k:')
    assert r["sets"] == 500 and r["errors"] == 0
    assert r["config"]["key_prefix"] == '{t"\\}k:'
    assert resp_cmd(redis_port, "DBSIZE") == b":500"
    assert resp_cmd(redis_port, "STRLEN", '{t"\\}k:000000000499') == b":10"
    assert resp_cmd(redis_port, "EXISTS", "key:000000000499") == b":0"
    r = bench_json("--port", redis_port, "--ratio", "0:1", "--keys", 500, "--requests", 1000,
                   "--key-prefix", '{t"\\}k:')
    assert r["hits"] == 1000


def test_mixed_requests_count_and_ratio(redis_port):
    r = bench_json("--port", redis_port, "--ratio", "1:3", "--requests", 8000, "--keys", 500,
                   "--threads", 2, "--connections", 6, "--pipeline", 4, "--seed", 9)
    assert r["requests"] == 8000
    assert r["gets"] + r["sets"] == 8000
    assert 1600 < r["sets"] < 2400           # 25 % of 8000, with slack
    assert r["hits"] + r["misses"] == r["gets"]
    assert r["errors"] == 0 and r["timeouts"] == 0
    check_latency(r["latency_us"]["all"], 8000)
    assert r["config"]["ratio"] == "1:3"


def test_zipf_and_duration(redis_port):
    r = bench_json("--port", redis_port, "--distribution", "zipf", "--zipf-exponent", 1.2,
                   "--keys", 100000, "--duration", 0.5, "--pipeline", 16, "--connections", 4)
    assert r["requests"] > 0 and r["errors"] == 0
    assert 0.4 < r["elapsed_s"] < 5
    assert r["config"]["distribution"] == "zipf"


def test_fixed_rate_offers_the_rate(redis_port):
    r = bench_json("--port", redis_port, "--rate", 2000, "--duration", 1, "--connections", 5)
    assert 1600 <= r["requests"] <= 2100
    assert r["errors"] == 0
    check_latency(r["latency_us"]["all"], r["requests"])


def test_human_output(redis_port):
    p = bench("--port", redis_port, "--requests", 500, "--connections", 2)
    assert "req/s" in p.stdout and "p99.9" in p.stdout and "latency" in p.stdout


# ---- traces -------------------------------------------------------------------------------

def trace_keys():
    """A key sequence with repeats: 600 requests over 150 distinct keys."""
    return [(i * 7919) % 150 for i in range(600)]


def write_trace(tmp_path, fmt, keys):
    if fmt == "lirs":
        path = tmp_path / "t-lirs.trace.gz"
        lines = ["*"] + [str(k) for k in keys] + [""]
        with gzip.open(path, "wt") as f:
            f.write("\r\n".join(lines))
        return path
    if fmt == "arc":
        # runs of consecutive keys: each line "start count 0 n" expands to count keys
        path = tmp_path / "t-arc.lis"
        expanded = []
        with open(path, "w") as f:
            for i, k in enumerate(keys[:200]):
                f.write("%d %d 0 %d\n" % (k, 3, i))
                expanded += [k, k + 1, k + 2]
        return path, expanded
    if fmt == "cache2k":
        path = tmp_path / "t-cache2k.trace.xz"
        with lzma.open(path, "wb") as f:
            f.write(b"".join(struct.pack(">i", k - 75) for k in keys))
        return path
    path = tmp_path / "t-scarab.trace.xz"
    with lzma.open(path, "wb") as f:
        f.write(b"".join(struct.pack(">q", (k - 75) * 10**12) for k in keys))
    return path


@pytest.mark.parametrize("fmt", ["lirs", "arc", "cache2k", "scarab"])
def test_trace_hit_ratio(redis_port, tmp_path, fmt):
    keys = trace_keys()
    made = write_trace(tmp_path, fmt, keys)
    if fmt == "arc":
        made, keys = made
    resp_cmd(redis_port, "FLUSHALL")
    r = bench_json("--port", redis_port, "--trace", made)
    unique = len(set(keys))
    assert r["trace_records"] == len(keys)
    assert r["gets"] == len(keys)
    assert r["misses"] == unique and r["sets"] == unique
    assert r["hits"] == len(keys) - unique
    assert abs(r["hit_ratio"] - (1 - unique / len(keys))) < 1e-5
    assert resp_cmd(redis_port, "DBSIZE") == b":%d" % unique


def test_trace_request_cap_and_explicit_format(redis_port, tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("\n".join(str(k) for k in trace_keys()) + "\n")
    resp_cmd(redis_port, "FLUSHALL")
    r = bench_json("--port", redis_port, "--trace", path, "--trace-format", "lirs",
                   "--requests", 100)
    assert r["trace_records"] == 100 and r["gets"] == 100


# ---- the native protocol, against a tiny in-process server ------------------------------------

class NativeHandler(socketserver.StreamRequestHandler):
    """PUT key value -> OK; GET key -> value or NULL; keys ending in 7 -> ERROR."""

    def handle(self):
        srv = self.server
        while True:
            line = self.rfile.readline()
            if not line:
                return
            parts = line.split()
            if len(parts) >= 2 and parts[1].endswith(b"7"):
                reply = b"ERROR: test error"
                with srv.lock:
                    srv.errors += 1
            elif parts[:1] == [b"PUT"] and len(parts) >= 3:
                with srv.lock:
                    srv.store[parts[1]] = parts[2]
                reply = b"OK"
            elif parts[:1] == [b"GET"] and len(parts) == 2:
                with srv.lock:
                    reply = srv.store.get(parts[1], b"NULL")
            else:
                reply = b"ERROR: unknown command"
            self.wfile.write(reply + b"\r\n")


class NativeServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), NativeHandler)
        self.lock = threading.Lock()
        self.store = {}
        self.errors = 0


def test_native_protocol_put_get():
    srv = NativeServer()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        port = srv.server_address[1]
        r = bench_json("--protocol", "native", "--port", port, "--ratio", "1:1", "--keys", 300,
                       "--requests", 3000, "--connections", 3, "--pipeline", 4,
                       "--value-size", 40)
        assert r["requests"] == 3000
        assert r["errors"] == srv.errors > 0
        assert r["hits"] > 0 and r["misses"] > 0
        assert r["hits"] + r["misses"] + r["errors"] >= r["gets"]
        stored = [v for k, v in srv.store.items()]
        assert stored and all(len(v) == 40 for v in stored)
    finally:
        srv.shutdown()
        srv.server_close()


# ---- bench/compare ----------------------------------------------------------------------------

def test_compare_quick(tmp_path):
    crab = os.path.join(BIN_DIR, "crabcache")
    if not os.access(crab, os.X_OK):
        crab = "redis"   # redis-server stands in: tests the script, not the server
    out = tmp_path / "compare.json"
    p = subprocess.run([os.path.join(REPO, "bench", "compare"), "--quick", "--crabcache", crab,
                        "--bench", BENCH, "--json", str(out)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    for metric in ("SET P1 req/s", "GET P16 req/s", "server CPU us/req P16", "RSS B/key",
                   "p99 us at", "redis-benchmark GET P16"):
        assert metric in p.stdout, p.stdout + p.stderr[-3000:]
    data = json.loads(out.read_text())
    ratios = [row["ratio"] for row in data["rows"]]
    assert ratios and all(r is None or r > 0 for r in ratios)
    assert all(row["runs"] for row in data["runs"])


# ---- bench/cluster ----------------------------------------------------------------------------

def test_cluster_quick(tmp_path):
    """bench/cluster end to end on a few thousand keys: a 3-node CrabCache cluster and a
    3-primary Redis Cluster each get a 4th node, redis-benchmark --cluster runs against
    both, and the forwarding section either measures or says it is not available."""
    if not os.access(os.path.join(BIN_DIR, "crabcache"), os.X_OK):
        pytest.skip("no crabcache binary in %s" % BIN_DIR)
    if not (shutil.which("redis-cli") and shutil.which("redis-benchmark")):
        pytest.skip("redis-cli / redis-benchmark not installed")
    out = tmp_path / "cluster.json"
    p = subprocess.run([os.path.join(REPO, "bench", "cluster"), "--quick", "--bin-dir", BIN_DIR,
                        "--keys", "3000", "--bench-requests", "2000", "--depths", "1",
                        "--probe-warm", "0.5", "--fwd-duration", "0.5", "--json", str(out),
                        "--work", str(tmp_path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=500)
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    for row in ("move time Redis / CrabCache", "probe p99 during the move: CrabCache / Redis",
                "throughput SET P1: CrabCache / Redis Cluster", "throughput GET P1",
                "forward: native GET through a non-owner"):
        assert row in p.stdout, p.stdout + p.stderr[-3000:]
    assert "forwarding not available" in p.stdout or "through / direct" in p.stdout, p.stdout
    res = json.loads(out.read_text())["results"]
    crab, redis = res["move"]["crab"][0], res["move"]["redis"][0]
    # the fixed node ids move 62 of 256 vbuckets; rebalance gives the new primary 4096 slots
    assert crab["slots"] == crab["slots_new"] == 3968, crab
    assert redis["slots_new"] == 4096, redis
    assert 0 < crab["keys"] < 3000 and 0 < redis["keys"] < 3000
    assert crab["errors"] == 0 and redis["errors"] == 0, (crab, redis)
    assert crab["requests"] > 0 and redis["requests"] > 0
    tp = res["throughput"]
    assert tp["crab P1"][0]["SET"][0] > 0 and tp["redis P1"][0]["GET"][0] > 0


# ---- bench/ab ---------------------------------------------------------------------------------

def test_ab_alternates_and_reports_medians():
    if not os.access(os.path.join(BIN_DIR, "crabcache"), os.X_OK):
        pytest.skip("no crabcache binary in %s" % BIN_DIR)
    p = subprocess.run([os.path.join(REPO, "bench", "ab"), "--a", BIN_DIR, "--b", BIN_DIR,
                        "--reps", "2", "--load", "--keys 2000",
                        "--bench", "--keys 2000 --duration 0.3 --connections 4"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    runs = [l.split() for l in p.stdout.splitlines() if l.startswith("rep ")]
    # A B, then B A: the order alternates
    assert [r[2] for r in runs] == ["A", "B", "B", "A"], p.stdout
    assert all(float(r[3]) > 0 and float(r[7]) > 0 for r in runs), p.stdout
    summary = p.stdout.splitlines()[-1]
    assert summary.startswith("median A ") and "pairs" in summary, p.stdout


# ---- bench/eviction ---------------------------------------------------------------------------

def test_eviction_hit_ratio_subset(tmp_path):
    """bench/eviction on one short workload and two of its four servers: the table names
    what ran, the JSON has a cell for each, and every replay evicted. The trace stands
    in for lirs-gli (2 MiB of 2 KiB values, about 800 keys): 3 passes over 2,000 keys."""
    if not os.access(os.path.join(BIN_DIR, "crabcache"), os.X_OK):
        pytest.skip("no crabcache binary in %s" % BIN_DIR)
    with gzip.open(tmp_path / "lirs-gli.trace.gz", "wt") as f:
        f.write("".join("%d\n" % k for _ in range(3) for k in range(2000)))
    out = tmp_path / "eviction.json"
    cmd = [os.path.join(REPO, "bench", "eviction"), "--bin-dir", BIN_DIR,
           "--trace-dir", str(tmp_path), "--no-throughput", "--workload", "lirs-gli",
           "--server", "crab-tinylfu", "--server", "redis-lfu", "--json", str(out)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    header = p.stdout.splitlines()[0]
    assert "crab-tinylfu | redis-lfu | tinylfu − redis-lfu" in header, p.stdout
    assert "crab-lru" not in header and "redis-lru" not in header, p.stdout
    row = json.loads(out.read_text())["hit_ratio"][0]
    assert row["workload"] == "lirs-gli"
    assert sorted(row["cells"]) == ["crab-tinylfu", "redis-lfu"]
    for cell in row["cells"].values():
        assert cell["requests"] == 6000 and cell["errors"] == 0
        assert 0 <= cell["hit_ratio"] < 2 / 3 and cell["evicted_keys"] > 0
    # a workload asked for by name whose trace is missing is an error, not an empty table
    (tmp_path / "lirs-gli.trace.gz").unlink()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60)
    assert p.returncode != 0 and "not found" in p.stderr, (p.returncode, p.stderr)
