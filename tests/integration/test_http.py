"""The observability HTTP port and the introspection commands (SPEC 7, issue 7).

Covers: /metrics in the Prometheus text format (checked by Debian's promtool when it is
installed), /health, /stats, that INFO, STATS and /metrics report the same figures, the
per-command latency histograms (/metrics, LATENCY HISTOGRAM, INFO latencystats), the
optional bearer token of the HTTP port, SLOWLOG and LATENCY replies compared with
redis-server's, logs (JSON lines, text format, log_file reopened on SIGHUP, CONFIG SET
loglevel), the systemd readiness notices, and docs/metrics.md naming every family.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

import crabtest
from crabtest import CrabServer, NativeConn, RespConn, RespError, free_port, start_with_retry

pytestmark = pytest.mark.usefixtures("crab_only")

METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


# --------------------------------------------------------------------------------------
# helpers

def http_get(port, path, headers=None, method="GET", data=None, timeout=10):
    """(status, headers, body bytes) of one request to 127.0.0.1:port."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers or {},
                                 method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def parse_metrics(text):
    """{(name, frozenset(labels.items())): float} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        assert m, "unparsable metrics line: %r" % line
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def families(text):
    """{name: type} from the # TYPE lines."""
    return dict(re.findall(r'^# TYPE (\S+) (\S+)$', text, re.M))


def info_fields(conn, section):
    raw = conn.value("INFO", section)
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            fields[k] = v
    return fields


class MetricsServer(CrabServer):
    """A CrabCache with its HTTP port on (ready when all three ports answer)."""

    def __init__(self, extra_args=(), env=None, threads=2):
        self.metrics_port = free_port()
        super().__init__(extra_args=["--metrics-port", str(self.metrics_port)] + list(extra_args),
                         env=env, threads=threads)
        self.ready_ports.append(self.metrics_port)

    def get(self, path, **kw):
        return http_get(self.metrics_port, path, **kw)

    def metrics_text(self, headers=None):
        status, hdrs, body = self.get("/metrics", headers=headers)
        assert status == 200, body
        return body.decode()


@pytest.fixture(scope="module")
def msrv():
    srv = start_with_retry(lambda: MetricsServer())
    yield srv
    srv.stop()


@pytest.fixture
def msrv_clean(msrv):
    msrv.check()
    with RespConn(msrv.resp_port, server=msrv) as c:
        assert c.call("FLUSHALL") == b"+OK\r\n"
        assert c.call("CONFIG", "RESETSTAT") == b"+OK\r\n"
        assert c.call("SLOWLOG", "RESET") == b"+OK\r\n"
    yield msrv
    msrv.check()


# --------------------------------------------------------------------------------------
# /metrics format

def test_metrics_format_promtool(msrv_clean):
    srv = msrv_clean
    with RespConn(srv.resp_port, server=srv) as c:
        for i in range(50):
            c.call("SET", "k%d" % i, "v" * i)
        for i in range(80):
            c.call("GET", "k%d" % i)
        c.call("INCR", "k1")  # fails: not an integer
        c.call("GET")          # rejected: arity
    status, hdrs, body = srv.get("/metrics")
    assert status == 200
    assert hdrs["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    fams = families(text)
    for name, typ in fams.items():
        assert name.startswith("crabcache_"), name
        if typ == "counter":
            assert name.endswith("_total"), name
        if typ == "histogram":
            assert name.endswith("_seconds"), name
    samples = parse_metrics(text)
    assert metric(samples, "crabcache_commands_total", cmd="set") == 50
    assert metric(samples, "crabcache_commands_total", cmd="get") == 80
    assert metric(samples, "crabcache_commands_failed_total", cmd="incr") == 1
    assert metric(samples, "crabcache_commands_rejected_total", cmd="get") == 1
    assert metric(samples, "crabcache_keyspace_hits_total") == 50
    assert metric(samples, "crabcache_keyspace_misses_total") == 30
    assert metric(samples, "crabcache_keys") == 50
    assert metric(samples, "crabcache_serving") == 1
    shard_sum = sum(v for (n, _), v in samples.items() if n == "crabcache_shard_memory_bytes")
    assert shard_sum == metric(samples, "crabcache_memory_used_bytes")

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; scripts/deps.sh "
                    "installs it): the format was checked by this test's own parser only")
    p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                       timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        "promtool check metrics:\n%s%s" % (p.stdout.decode(), p.stderr.decode())


def test_latency_histograms_agree(msrv_clean):
    srv = msrv_clean
    with RespConn(srv.resp_port, server=srv) as c:
        for i in range(200):
            c.call("SET", "h%d" % (i % 7), "x")
        for i in range(300):
            c.call("GET", "h%d" % (i % 11))
        samples = parse_metrics(srv.metrics_text())
        hist = parse_metrics_histogram(samples, "crabcache_command_duration_seconds", "get")
        counts = [v for _, v in hist]
        assert counts == sorted(counts), "buckets must be cumulative"
        assert hist[-1][0] == float("inf") and hist[-1][1] == 300
        assert metric(samples, "crabcache_command_duration_seconds_count", cmd="get") == 300
        assert metric(samples, "crabcache_command_duration_seconds_sum", cmd="get") > 0
        assert metric(samples, "crabcache_commands_total", cmd="get") == 300

        h = c.value("LATENCY", "HISTOGRAM", "get", "set", "nosuchcommand")
        as_dict = {h[i]: h[i + 1] for i in range(0, len(h), 2)}
        assert set(as_dict) == {b"get", b"set"}
        get = {as_dict[b"get"][i]: as_dict[b"get"][i + 1] for i in range(0, 4, 2)}
        assert get[b"calls"] == 300
        buckets = get[b"histogram_usec"]
        pairs = [(buckets[i], buckets[i + 1]) for i in range(0, len(buckets), 2)]
        assert pairs[-1][1] == 300
        for bound, cum in pairs:
            assert bound & (bound - 1) == 0, "bounds are powers of two"
            # the same cumulative count as the /metrics bucket with the same bound
            le = bound / 1e6
            got = [v for b, v in hist if abs(b - le) < 1e-12]
            if got:
                assert got[0] == cum

        lat = info_fields(c, "latencystats")
        line = lat["latency_percentiles_usec_get"]
        m = re.fullmatch(r"p50=([\d.]+),p99=([\d.]+),p99\.9=([\d.]+)", line)
        assert m, line
        p50, p99, p999 = map(float, m.groups())
        assert 0 < p50 <= p99 <= p999
        assert "latencystats" not in info_fields(c, "default")  # only in INFO all / latencystats
        everything = c.value("INFO", "all").decode()
        assert "# Latencystats" in everything


def parse_metrics_histogram(samples, name, cmd):
    out = []
    for (n, labels), v in samples.items():
        d = dict(labels)
        if n == name + "_bucket" and d.get("cmd") == cmd:
            out.append((float(d["le"]), v))
    return sorted(out)


# --------------------------------------------------------------------------------------
# /health, /stats and agreement

def test_health(msrv):
    status, hdrs, body = msrv.get("/health")
    assert status == 200
    assert hdrs["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["status"] == "healthy" and doc["service"] == "crabcache"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", doc["version"])
    status, _, _ = msrv.get("/health", method="HEAD")
    assert status == 200
    assert "libmicrohttpd" not in msrv.stderr(), msrv.stderr()  # no warning from MHD


def test_not_found_and_method(msrv):
    assert msrv.get("/nope")[0] == 404
    status, hdrs, _ = msrv.get("/metrics", method="POST", data=b"x=1")
    assert status == 405 and "GET" in hdrs["Allow"]


def test_stats_and_info_agree_with_metrics(msrv_clean):
    srv = msrv_clean
    with RespConn(srv.resp_port, server=srv) as c:
        for i in range(40):
            c.call("SET", "s%d" % i, "val%d" % i)
        c.call("SET", "ttl", "x", "PX", "50")
        for i in range(60):
            c.call("GET", "s%d" % i)
        c.call("AUTH", "wrong-token")  # no auth configured: an error, not a failure count
        assert crabtest.wait_for(lambda: c.value("EXISTS", "ttl") == 0, timeout=5)
        time.sleep(0.3)  # let active expiry reclaim "ttl"

        info = info_fields(c, "everything")
        samples = parse_metrics(srv.metrics_text())
        status, _, body = srv.get("/stats")
        assert status == 200
        stats = json.loads(body)
    with NativeConn(srv.port, server=srv) as n:
        native = json.loads(n.cmd("STATS"))

    pairs = [
        ("keyspace_hits", "crabcache_keyspace_hits_total", "hits"),
        ("keyspace_misses", "crabcache_keyspace_misses_total", "misses"),
        ("evicted_keys", "crabcache_evictions_total", "evictions"),
        ("expired_keys", "crabcache_expirations_total", "expirations"),
        ("used_memory", "crabcache_memory_used_bytes", "memory"),
        ("maxmemory", "crabcache_memory_max_bytes", "max_memory"),
        ("auth_failures", "crabcache_auth_failures_total", "auth_failures"),
        ("rejected_connections", "crabcache_connections_rejected_total", "rejected_connections"),
        ("total_connections_received", "crabcache_connections_received_total", None),
        ("rate_limited_requests", "crabcache_rate_limited_requests_total", "rate_limited"),
    ]
    for info_key, metric_name, stats_key in pairs:
        total = sum(v for (n, _), v in samples.items() if n == metric_name)
        assert int(info[info_key]) == total, (info_key, info[info_key], total)
        if stats_key:
            assert stats[stats_key] == total, (stats_key, stats[stats_key], total)
    assert info["db0"].startswith("keys=40,")
    assert metric(samples, "crabcache_keys") == 40 == stats["keys"]
    assert native["keys"] == stats["keys"] and native["hits"] == stats["hits"]
    assert len(stats["shards"]) == int(info["shards"])
    for sh in stats["shards"]:
        assert metric(samples, "crabcache_shard_keys", shard=str(sh["id"])) == sh["keys"]
        assert metric(samples, "crabcache_shard_memory_bytes", shard=str(sh["id"])) == sh["memory"]
    for cmd in ("get", "set"):
        m = re.search(r"calls=(\d+)", info["cmdstat_" + cmd])
        assert int(m.group(1)) == metric(samples, "crabcache_commands_total", cmd=cmd)
    assert int(info["expired_keys"]) >= 1
    assert metric(samples, "crabcache_connections") >= 1


def test_scrapes_do_not_stall_clients(msrv_clean):
    """Scrape continuously while clients run: every scrape succeeds, clients keep going,
    and the server's own render time stays small."""
    srv = msrv_clean
    stop = time.monotonic() + 3.0
    done = {"ops": 0, "scrapes": 0}

    def load():
        with RespConn(srv.resp_port, server=srv) as c:
            i = 0
            while time.monotonic() < stop:
                c.pipeline([["SET", "l%d" % (i % 500), "v"], ["GET", "l%d" % (i % 700)]])
                i += 1
            done["ops"] += 2 * i

    t = threading.Thread(target=load)
    t.start()
    worst = 0.0
    while time.monotonic() < stop:
        t0 = time.monotonic()
        text = srv.metrics_text()
        worst = max(worst, time.monotonic() - t0)
        done["scrapes"] += 1
        assert "crabcache_commands_total" in text
        time.sleep(0.005)  # leave the client thread the interpreter now and then
    t.join()
    render = metric(parse_metrics(srv.metrics_text()), "crabcache_metrics_render_seconds")
    assert done["scrapes"] >= 10 and done["ops"] > 1000, done
    assert render < 0.25, render  # ASan build; a release build renders in well under 1 ms
    crabtest.SUMMARY.append("metrics: %d scrapes during load, slowest %.1f ms, %d ops"
                            % (done["scrapes"], worst * 1000, done["ops"]))


def test_docs_list_every_metric(msrv):
    text = msrv.metrics_text()
    with open(os.path.join(crabtest.REPO_ROOT, "docs", "metrics.md")) as f:
        doc = f.read()
    for name, typ in families(text).items():
        assert "`%s`" % name in doc, "docs/metrics.md does not document %s" % name
        assert re.search(r"`%s`\s*\|\s*%s" % (re.escape(name), typ), doc), \
            "docs/metrics.md gives %s another type than %s" % (name, typ)
    # the HELP text is the table's description, word for word (backticks aside)
    rows = {m.group(1): m.group(2).strip().replace("`", "")
            for m in re.finditer(r"^\| `(crabcache_[a-z0-9_]+)` \| \w+ \|[^|]*\| (.*) \|\s*$",
                                 doc, re.M)}
    helps = dict(line.split(" ", 3)[2:] for line in text.splitlines()
                 if line.startswith("# HELP "))
    for name, help_text in helps.items():
        assert rows.get(name) == help_text, \
            "HELP of %s differs from docs/metrics.md:\n help: %s\n docs: %s" % (
                name, help_text, rows.get(name))


def test_request_duration_end_to_end(msrv_clean):
    """crabcache_request_duration_seconds (issue 18.5): one observation per request,
    both protocols, pipelined or not, each at least as long as its execution, and
    reset by CONFIG RESETSTAT."""
    def e2e():
        s = parse_metrics(msrv_clean.metrics_text())
        return (metric(s, "crabcache_request_duration_seconds_count"),
                metric(s, "crabcache_request_duration_seconds_sum"))
    n0, _ = e2e()
    assert n0 <= 2  # RESETSTAT, SLOWLOG RESET may be counted once written
    with RespConn(msrv_clean.resp_port, server=msrv_clean) as c:
        for i in range(50):
            assert c.call("SET", "k%d" % i, "v") == b"+OK\r\n"
        c.pipeline([["GET", "k%d" % i] for i in range(200)])
    with NativeConn(msrv_clean.port, server=msrv_clean) as c:
        for i in range(30):
            assert c.cmd(b"GET k1") == b"v"
        c.send(b"GET k2\n" * 100)
        for i in range(100):
            assert c.read_line() == b"v"
    deadline = time.time() + 5
    while True:
        n1, total = e2e()
        if n1 - n0 >= 380 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert n1 - n0 == 380, (n0, n1)
    s = parse_metrics(msrv_clean.metrics_text())
    executed = sum(v for (name, labels), v in s.items()
                   if name == "crabcache_command_duration_seconds_sum")
    assert total >= executed > 0, (total, executed)
    with RespConn(msrv_clean.resp_port, server=msrv_clean) as c:
        assert c.call("CONFIG", "RESETSTAT") == b"+OK\r\n"
    assert e2e()[0] <= 1


# --------------------------------------------------------------------------------------
# token on the HTTP port

def test_metrics_token(make_crab):
    token = "s3cret-token"
    srv = start_with_retry(lambda: MetricsServer(extra_args=["--metrics-token", token]))
    try:
        for path in ("/metrics", "/stats", "/dashboard", "/dashboard/data"):
            status, hdrs, _ = srv.get(path)
            assert status == 401, path
            assert hdrs["WWW-Authenticate"].startswith("Bearer")
            assert srv.get(path, headers={"Authorization": "Bearer wrong"})[0] == 401
            assert srv.get(path, headers={"Authorization": "Bearer " + token[:-1]})[0] == 401
            assert srv.get(path, headers={"Authorization": "Bearer " + token})[0] == 200
            assert srv.get(path + "?token=" + token)[0] == 200
        assert srv.get("/health")[0] == 200  # load balancers probe without the token
        text = srv.metrics_text(headers={"Authorization": "Bearer " + token})
        samples = parse_metrics(text)
        assert metric(samples, "crabcache_http_requests_total", path="/metrics", code="401") == 3
    finally:
        srv.stop()


def test_metrics_port_taken():
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        taken = s.getsockname()[1]
        p, r = crabtest.free_ports(2)
        proc = subprocess.run([crabtest.crab_binary(), "--port", str(p), "--resp-port", str(r),
                               "--metrics-port", str(taken), "--threads", "1"],
                              capture_output=True, timeout=60)
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert "metrics_port %d" % taken in err and "in use" in err, err


# --------------------------------------------------------------------------------------
# SLOWLOG and LATENCY, compared with redis-server where Redis defines the reply

def test_slowlog_entries(msrv_clean):
    srv = msrv_clean
    with RespConn(srv.resp_port, server=srv) as c:
        c.call("CLIENT", "SETNAME", "slowpoke")
        assert c.value("DEBUG", "SLEEP", "0.02") == "OK"
        c.call("DEBUG", "SLEEP", "0.015")
        assert c.value("SLOWLOG", "LEN") == 2
        entries = c.value("SLOWLOG", "GET")
        assert len(entries) == 2
        newest = entries[0]
        assert len(newest) == 6
        assert newest[0] > entries[1][0]  # ids grow, newest first
        assert abs(newest[1] - time.time()) < 60
        assert newest[2] >= 15000
        assert newest[3] == [b"DEBUG", b"SLEEP", b"0.015"]
        assert newest[4].startswith(b"127.0.0.1:")
        assert newest[5] == b"slowpoke"
        assert len(c.value("SLOWLOG", "GET", "1")) == 1
        assert len(c.value("SLOWLOG", "GET", "-1")) == 2
        assert c.value("SLOWLOG", "GET", "0") == []
        samples = parse_metrics(srv.metrics_text())
        assert metric(samples, "crabcache_slowlog_entries") == 2
        assert c.call("SLOWLOG", "RESET") == b"+OK\r\n"
        assert c.value("SLOWLOG", "LEN") == 0
        c.call("DEBUG", "SLEEP", "0.012")
        assert c.value("SLOWLOG", "GET")[0][0] > newest[0]  # ids survive a reset


@pytest.mark.parametrize("cmd", [
    ("SLOWLOG", "HELP"), ("SLOWLOG", "GET", "x"), ("SLOWLOG", "GET", "-2"),
    ("SLOWLOG", "GET", "1", "2"), ("SLOWLOG", "LEN", "1"), ("SLOWLOG", "RESET", "x"),
    ("SLOWLOG", "HELP", "x"), ("SLOWLOG", "foo"), ("SLOWLOG",),
    ("LATENCY", "HELP"), ("LATENCY", "LATEST"), ("LATENCY", "LATEST", "x"),
    ("LATENCY", "HISTORY", "command"), ("LATENCY", "HISTORY"), ("LATENCY", "RESET"),
    ("LATENCY", "RESET", "a", "b"), ("LATENCY", "GRAPH", "command"), ("LATENCY", "GRAPH"),
    ("LATENCY", "DOCTOR", "x"), ("LATENCY", "foo"), ("LATENCY", "HISTOGRAM", "nosuch"),
])
def test_slowlog_latency_replies_like_redis(msrv, redis_ref, cmd):
    with RespConn(msrv.resp_port, server=msrv) as a, RespConn(redis_ref.port) as b:
        assert a.call(*cmd) == b.call(*cmd)


def skeleton(v):
    """The shape of a parsed reply: every integer replaced by 0."""
    if isinstance(v, tuple) and v and v[0] == "map":
        return ("map", [(skeleton(k), skeleton(x)) for k, x in v[1]])
    if isinstance(v, list):
        return [skeleton(x) for x in v]
    if isinstance(v, int) and not isinstance(v, bool):
        return 0
    return v


def test_latency_histogram_shape_like_redis(msrv, redis_ref):
    """Same structure as Redis 7, RESP2 and RESP3: name -> {calls, histogram_usec}."""
    for proto in ("2", "3"):
        shapes = []
        for port in (msrv.resp_port, redis_ref.port):
            with RespConn(port) as c:
                c.call("HELLO", proto)
                c.call("CONFIG", "RESETSTAT")
                c.call("SET", "hk", "v")
                shapes.append(skeleton(c.value("LATENCY", "HISTOGRAM", "set")))
        assert shapes[0] == shapes[1], (proto, shapes)


# --------------------------------------------------------------------------------------
# logs

def read_json_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_log_file_json_and_sighup_reopen(make_crab):
    d = tempfile.mkdtemp(prefix="crabtest-log-")
    log = os.path.join(d, "crab.log")
    srv = make_crab(extra_args=["--log-file", log, "--log-level", "info"])
    # the ports open a moment before the "ready" line is written
    assert crabtest.wait_for(
        lambda: any(r["msg"] == "crabcache ready" for r in read_json_lines(log)), timeout=10)
    lines = read_json_lines(log)
    for rec in lines:
        assert set(rec) >= {"ts", "level", "msg"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["ts"])
    ready = [r for r in lines if r["msg"] == "crabcache ready"]
    assert ready and ready[0]["level"] == "info" and ready[0]["port"] == srv.port

    os.rename(log, log + ".1")  # what logrotate does
    os.kill(srv.proc.pid, signal.SIGHUP)
    assert crabtest.wait_for(lambda: os.path.exists(log), timeout=10), "log not reopened"
    assert crabtest.wait_for(
        lambda: any(r["msg"].startswith("SIGHUP") for r in read_json_lines(log)), timeout=10)
    with RespConn(srv.resp_port, server=srv) as c:
        assert c.call("PING") == b"+PONG\r\n"
    shutil.rmtree(d, ignore_errors=True)


def test_log_text_format_and_config_set_loglevel(make_crab):
    d = tempfile.mkdtemp(prefix="crabtest-log-")
    log = os.path.join(d, "crab.log")
    srv = make_crab(extra_args=["--log-file", log, "--log-format", "text",
                                "--log-level", "info"])
    assert crabtest.wait_for(lambda: os.path.getsize(log) > 0, timeout=10)
    with open(log) as f:
        first = f.readline()
    assert re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z INFO ", first), first
    with RespConn(srv.resp_port, server=srv) as c:
        assert c.value("CONFIG", "GET", "loglevel") == [b"loglevel", b"info"]
        assert c.call("CONFIG", "SET", "loglevel", "warning") == b"+OK\r\n"
        assert c.value("CONFIG", "GET", "loglevel")[1] in (b"warn", b"warning")
        size = os.path.getsize(log)
        os.kill(srv.proc.pid, signal.SIGHUP)  # logs at info: filtered out now
        time.sleep(0.5)
        assert c.call("PING") == b"+PONG\r\n"
        assert os.path.getsize(log) == size
        assert c.call("CONFIG", "SET", "loglevel", "debug") == b"+OK\r\n"
        os.kill(srv.proc.pid, signal.SIGHUP)
        assert crabtest.wait_for(lambda: os.path.getsize(log) > size, timeout=10)
    shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------------------
# systemd readiness

def test_sd_notify_ready_and_stopping():
    d = tempfile.mkdtemp(prefix="crabtest-notify-")
    path = os.path.join(d, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(60)
    srv = CrabServer(env={"NOTIFY_SOCKET": path})
    try:
        srv.start()
        msg = sock.recv(4096).decode()
        assert "READY=1" in msg.split("\n"), msg
        # READY comes after the listeners are open
        with RespConn(srv.resp_port, server=srv) as c:
            assert c.call("PING") == b"+PONG\r\n"
        srv.stopped = True  # the SIGTERM below is the test's, not a crash
        os.kill(srv.proc.pid, signal.SIGTERM)
        msg = sock.recv(4096).decode()
        assert "STOPPING=1" in msg.split("\n"), msg
    finally:
        srv.stop()
        sock.close()
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------------------
# write-ahead log figures

def test_wal_metrics_and_info_persistence(tmp_path):
    srv = start_with_retry(lambda: MetricsServer(
        extra_args=["--wal.enabled", "yes", "--wal-dir", str(tmp_path / "wal"),
                    "--wal-sync-policy", "sync"]))
    try:
        with RespConn(srv.resp_port, server=srv) as c:
            for i in range(25):
                assert c.call("SET", "w%d" % i, "v%d" % i) == b"+OK\r\n"
            c.call("DEL", "w0")
            text = srv.metrics_text()
            info = info_fields(c, "persistence")
        samples = parse_metrics(text)
        assert metric(samples, "crabcache_wal_enabled") == 1
        assert metric(samples, "crabcache_wal_healthy") == 1
        assert metric(samples, "crabcache_wal_records_total") == 26 == int(info["wal_records"])
        assert metric(samples, "crabcache_wal_fsyncs_total") >= 1
        assert metric(samples, "crabcache_wal_durable_lag_records") == 0  # sync policy
        assert metric(samples, "crabcache_wal_disk_bytes") == int(info["wal_disk_bytes"]) > 0
        assert metric(samples, "crabcache_changes_since_last_snapshot") == 26
        assert info["wal_enabled"] == "1" and info["wal_status"] == "ok"
        assert info["wal_sync_policy"] == "sync"
        fams = families(text)
        assert fams["crabcache_snapshots_total"] == "counter"
        promtool = shutil.which("promtool")
        if promtool:
            p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                               capture_output=True, timeout=60)
            assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
                p.stdout.decode() + p.stderr.decode()
    finally:
        srv.stop()


def test_wal_metrics_absent_without_persistence(msrv):
    samples = parse_metrics(msrv.metrics_text())
    assert metric(samples, "crabcache_wal_enabled") == 0
    assert not any(n.startswith("crabcache_wal_records") for n, _ in samples)
    with RespConn(msrv.resp_port, server=msrv) as c:
        assert info_fields(c, "persistence")["wal_enabled"] == "0"
