"""A real Prometheus (Debian's `prometheus` package) scrapes CrabCache on loopback, with
the HTTP port's bearer token, and answers PromQL queries about it through its HTTP API.

Skips, saying why, only when the prometheus binary is not installed (scripts/deps.sh
installs it)."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import crabtest
from crabtest import CrabServer, RespConn, free_port, start_with_retry

pytestmark = pytest.mark.usefixtures("crab_only")

TOKEN = "prom-scrape-token"


class MetricsServer(CrabServer):
    def __init__(self, extra_args=()):
        self.metrics_port = free_port()
        super().__init__(extra_args=["--metrics-port", str(self.metrics_port)] + list(extra_args))
        self.ready_ports.append(self.metrics_port)


def query(port, promql):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": promql}))
    with urllib.request.urlopen(url, timeout=10) as r:
        doc = json.loads(r.read())
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def scalar(result):
    return float(result[0]["value"][1]) if result else None


@pytest.fixture
def prometheus_bin():
    path = shutil.which("prometheus")
    if path is None:
        pytest.skip("the prometheus binary is not installed (Debian package `prometheus`; "
                    "run scripts/deps.sh as root)")
    return path


def test_prometheus_scrapes_and_answers_promql(prometheus_bin):
    crab = start_with_retry(lambda: MetricsServer(extra_args=["--metrics-token", TOKEN]))
    work = tempfile.mkdtemp(prefix="crabtest-prom-")
    prom = None
    try:
        prom_port = free_port()
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: crabcache
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials: %s
    static_configs:
      - targets: ['127.0.0.1:%d']
""" % (TOKEN, crab.metrics_port))
        log = open(os.path.join(work, "prometheus.log"), "wb")
        prom = subprocess.Popen(
            [prometheus_bin, "--config.file=" + cfg,
             "--storage.tsdb.path=" + os.path.join(work, "data"),
             "--web.listen-address=127.0.0.1:%d" % prom_port,
             "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, cwd=work, start_new_session=True)

        def ready():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % prom_port,
                                            timeout=2) as r:
                    return r.status == 200
            except (urllib.error.URLError, OSError):
                return prom.poll() is not None
        assert crabtest.wait_for(ready, timeout=60), "prometheus did not become ready"
        assert prom.poll() is None, open(os.path.join(work, "prometheus.log")).read()

        with RespConn(crab.resp_port, server=crab) as c:
            for i in range(300):
                c.call("SET", "p%d" % i, "v")
            for i in range(500):
                c.call("GET", "p%d" % (i % 400))

        def scraped():
            v = scalar(query(prom_port, 'crabcache_commands_total{job="crabcache",cmd="get"}'))
            return v is not None and v >= 500
        assert crabtest.wait_for(scraped, timeout=60, interval=0.5), \
            "Prometheus never saw the GET calls; targets: %s" % urllib.request.urlopen(
                "http://127.0.0.1:%d/api/v1/targets" % prom_port, timeout=5).read()[:2000]

        assert scalar(query(prom_port, 'up{job="crabcache"}')) == 1
        assert scalar(query(prom_port, "crabcache_commands_total{cmd=\"set\"}")) == 300
        # GET p0..p399 then p0..p99 over 300 keys: 400 hits, 100 misses
        assert scalar(query(prom_port, "crabcache_keyspace_hits_total")) == 400
        assert scalar(query(prom_port, "crabcache_keyspace_misses_total")) == 100
        assert scalar(query(prom_port, "crabcache_keys")) == 300
        p99 = scalar(query(prom_port, 'histogram_quantile(0.99, sum by (le) '
                                      '(crabcache_command_duration_seconds_bucket{cmd="get"}))'))
        assert p99 is not None and 0 < p99 < 1, p99
        ratio = scalar(query(prom_port, "crabcache_keyspace_hits_total / ignoring() "
                                        "(crabcache_keyspace_hits_total + "
                                        "crabcache_keyspace_misses_total)"))
        assert abs(ratio - 0.8) < 1e-9
        crabtest.SUMMARY.append("prometheus: scraped with a bearer token; p99 of GET %.1f us"
                                % (p99 * 1e6))
    finally:
        if prom is not None and prom.poll() is None:
            prom.terminate()
            try:
                prom.wait(20)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
        crab.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_alert_rules_in_operations_doc_are_valid():
    """docs/operations.md ships alert rules; promtool must accept them as they are."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`; run "
                    "scripts/deps.sh as root)")
    with open(os.path.join(crabtest.REPO_ROOT, "docs", "operations.md")) as f:
        doc = f.read()
    start = doc.index("# crabcache-alerts\n")
    rules = doc[start:doc.index("```", start)]
    work = tempfile.mkdtemp(prefix="crabtest-rules-")
    try:
        path = os.path.join(work, "crabcache.rules.yml")
        with open(path, "w") as f:
            f.write(rules)
        p = subprocess.run([promtool, "check", "rules", path], capture_output=True, timeout=60)
        out = p.stdout.decode() + p.stderr.decode()
        assert p.returncode == 0, out
        assert "SUCCESS: 8 rules found" in out, out
    finally:
        shutil.rmtree(work, ignore_errors=True)
