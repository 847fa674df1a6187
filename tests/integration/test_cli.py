"""crabcache-cli: one-shot commands, an interactive session on standard input,
AUTH with -a, and errors (exit status, a server that is not there)."""
import os
import re
import subprocess

import crabtest


def cli_path():
    p = os.path.join(crabtest.bin_dir(), "crabcache-cli")
    assert os.access(p, os.X_OK), "crabcache-cli not built at %s" % p
    return p


def run(port, *args, stdin=None, extra=()):
    argv = [cli_path(), "-p", str(port), *extra, *args]
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=20)


def test_one_shot_commands(crab, crab_only):
    r = run(crab.port, "PUT", "a", "hello")
    assert (r.returncode, r.stdout) == (0, b"OK\n")
    assert run(crab.port, "GET", "a").stdout == b"hello\n"
    r = run(crab.port, "PUT", "t", "v", "100")
    assert r.stdout == b"OK\n"
    ttl = int(run(crab.port, "TTL", "t").stdout)
    assert 99 <= ttl <= 100
    assert run(crab.port, "DEL", "a").stdout == b"OK\n"
    assert run(crab.port, "GET", "a").stdout == b"NULL\n"
    r = run(crab.port, "BOGUS")
    assert r.returncode == 1 and r.stdout.startswith(b"ERROR: ")


def test_interactive_from_stdin(crab, crab_only):
    script = b"PING\nPUT k v\n\nget k\nSTATS\nQUIT\nGET k\n"
    r = run(crab.port, stdin=script)
    lines = r.stdout.split(b"\n")
    assert r.returncode == 0
    assert lines[0:3] == [b"PONG", b"OK", b"v"]
    assert lines[3].startswith(b"{") and b'"keys"' in lines[3]
    assert lines[4] == b"OK"          # QUIT, then nothing more is sent
    assert lines[5:] == [b""]


def test_auth_flag(make_crab, crab_only):
    srv = make_crab(extra_args=["--auth-token", "s3cret"])
    r = run(srv.port, "GET", "x")
    assert r.returncode == 1 and r.stdout.startswith(b"ERROR:")
    r = run(srv.port, "GET", "x", extra=["-a", "s3cret"])
    assert (r.returncode, r.stdout) == (0, b"OK\nNULL\n")
    r = run(srv.port, "GET", "x", extra=["-a", "wrong"])
    assert r.returncode == 1 and r.stdout == b"ERROR: invalid token\n"


def test_no_server():
    r = run(crabtest.free_port(), "PING")
    assert r.returncode == 1 and b"cannot connect" in r.stderr


def test_cli_quotes_arguments(crab, crab_only):
    """crabcache-cli PUT sp "hello world": one argument, one token (issue 18)."""
    r = run(crab.port, "PUT", "sp", "hello world")
    assert (r.returncode, r.stdout) == (0, b"OK\n")
    assert run(crab.port, "GET", "sp").stdout == b'"hello world"\n'
    r = run(crab.port, "PUT", "j", '{"name": "Alice"}', "60")
    assert (r.returncode, r.stdout) == (0, b"OK\n")
    assert run(crab.port, "GET", "j").stdout == b'"{\\"name\\": \\"Alice\\"}"\n'
    assert run(crab.port, "PUT", "e", "").stdout == b"OK\n"
    assert run(crab.port, "GET", "e").stdout == b'""\n'
    with crabtest.RespConn(crab.port) as c:
        assert c.value("GET", "sp") == b"hello world"
        assert c.value("GET", "j") == b'{"name": "Alice"}'
        assert c.value("GET", "e") == b""
    # interactive lines are sent as typed, so the user quotes
    r = run(crab.port, stdin=b'PUT i "a b"\nGET i\n')
    assert r.stdout == b'OK\n"a b"\n'


def test_readme_stdin_example(crab, crab_only):
    """README's and docs/protocol.md's scripts on stdin, as written (port aside)."""
    r = run(crab.port, stdin=b"PUT k v\nGET k\nTTL k\n")
    assert (r.returncode, r.stdout) == (0, b"OK\nv\n-1\n")
    r = run(crab.port, stdin=b"PUT greeting hello 60\nGET greeting\nTTL greeting\nGET nope\n")
    lines = r.stdout.split(b"\n")
    assert lines[0:2] == [b"OK", b"hello"] and 59 <= int(lines[2]) <= 60 and lines[3] == b"NULL"


def test_version_and_h_means_host():
    """--version everywhere; -h is the host in crabcache-cli and crabcache-bench (as in
    redis-cli and redis-benchmark), --help is help in every tool (issue 18.8)."""
    tools = ["crabcache", "crabcache-cli", "crabcache-bench", "crabcache-sim"]
    for t in tools:
        path = os.path.join(crabtest.bin_dir(), t)
        r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0 and r.stdout.startswith(t + " "), (t, r.stdout, r.stderr)
        assert re.match(r"^%s \d+\.\d+\.\d+\n$" % re.escape(t), r.stdout), r.stdout
        r = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0 and "--version" in r.stdout, t
    port = crabtest.free_port()
    for t, extra in (("crabcache-cli", ["PING"]), ("crabcache-bench", ["--requests", "1"])):
        path = os.path.join(crabtest.bin_dir(), t)
        r = subprocess.run([path, "-h", "127.0.0.1", "-p", str(port)] + extra,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "127.0.0.1:%d" % port in r.stderr, (t, r.stderr)
        assert "cannot connect" in r.stderr or "Connection refused" in r.stderr, r.stderr
