"""Debian's redis-tools against CrabCache: redis-cli (plain commands, on both ports, and
--pipe mass insertion) and redis-benchmark (pipelined SET/GET/INCR/MSET) must work with
no error; each benchmark test must report a rate.
"""

import re
import shutil
import subprocess

import pytest

from crabtest import RespConn, parse

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-tools missing")


def cli(port, *args, stdin=None, timeout=60):
    p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + list(args),
                       input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("which", ["resp_port", "port"])
def test_cli_basic(crab, which):
    port = getattr(crab, which)
    assert cli(port, "PING")[:2] == (0, "PONG\n")
    assert cli(port, "SET", "greeting", "hello world")[:2] == (0, "OK\n")
    assert cli(port, "GET", "greeting")[:2] == (0, "hello world\n")
    assert cli(port, "GET", "missing")[:2] == (0, "\n")
    assert cli(port, "INCRBY", "n", "5")[:2] == (0, "5\n")
    assert cli(port, "MGET", "greeting", "n")[:2] == (0, "hello world\n5\n")
    rc, out, _ = cli(port, "INCR", "greeting")
    assert rc == 0 and out.startswith("ERR value is not an integer"), out
    assert cli(port, "DBSIZE")[:2] == (0, "2\n")
    assert cli(port, "--no-raw", "GET", "greeting")[:2] == (0, '"hello world"\n')


def test_cli_resp3(crab):
    rc, out, err = cli(crab.resp_port, "-3", "GET", "nope")
    assert rc == 0 and out == "\n", (out, err)
    rc, out, err = cli(crab.resp_port, "-3", "--no-raw", "HELLO", "3")
    assert rc == 0 and "proto" in out, (out, err)


def test_cli_pipe_mass_insert(crab):
    n = 5000
    lines = []
    for i in range(n):
        k, v = b"pipe:%d" % i, b"value-%d" % i
        lines.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
    lines.append(b"*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n" * 100)
    rc, out, err = cli(crab.resp_port, "--pipe", stdin=b"".join(lines))
    assert rc == 0, (out, err)
    assert "errors: 0, replies: %d" % (n + 100) in out, (out, err)
    with RespConn(crab.resp_port, server=crab) as c:
        assert parse(c.call("DBSIZE"))[0] == n + 1
        assert c.call("GET", "pipe:4321") == b"$10\r\nvalue-4321\r\n"
        assert c.call("GET", "counter") == b"$3\r\n100\r\n"


def test_cli_pipe_inline_and_errors(crab):
    data = b"SET a 1\r\nINCR a\r\nINCR nonint\r\nSET nonint x\r\nINCR nonint\r\n"
    rc, out, err = cli(crab.resp_port, "--pipe", stdin=data)
    assert "errors: 1, replies: 5" in out, (out, err)


def test_redis_benchmark(crab):
    p = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(crab.resp_port),
                        "-t", "set,get,incr,mset", "-P", "16", "-n", "20000", "-q"],
                       capture_output=True, timeout=240)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, (out, err)
    final = [seg.strip() for seg in re.split(r"[\r\n]", out) if "requests per second" in seg]
    for name in ("SET", "GET", "INCR", "MSET (10 keys)"):
        rates = [ln for ln in final if ln.startswith(name + ":")]
        assert rates, "no rate reported for %s:\n%s\n%s" % (name, out, err)
        m = re.match(r"%s: ([0-9.]+) requests per second" % re.escape(name), rates[-1])
        assert m and float(m.group(1)) > 0, rates[-1]
    for bad in ("ERR", "Error", "error", "WARNING", "Could not"):
        assert bad not in out and bad not in err, (out, err)
    crab.check()
    with RespConn(crab.resp_port, server=crab) as c:
        assert parse(c.call("GET", "counter:__rand_int__"))[0] is not None
