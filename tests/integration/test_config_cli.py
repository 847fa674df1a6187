"""The command line and configuration: bad settings of every kind stop start-up with
exit status 2 and one message naming the key (and file:line when from a file);
--check-config, --help, --version; precedence file < env CRABCACHE_* < flag observed
through CONFIG GET (and through the port actually bound); a port already taken gives a
clear message and a non-zero exit.
"""

import os
import re
import socket
import subprocess
import tempfile

import pytest

import crabtest
from crabtest import CrabServer, RespConn, free_ports, parse, start_with_retry

pytestmark = pytest.mark.usefixtures("crab_only")


def run(args, env=None, timeout=20, cwd=None):
    """Run crabcache to completion; a server that starts instead is killed -> failure."""
    full_env = dict(os.environ)
    full_env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    for k in list(full_env):
        if k.startswith("CRABCACHE_") and k != "CRABCACHE_BIN_DIR":
            del full_env[k]
    if env:
        full_env.update(env)
    try:
        p = subprocess.run([crabtest.crab_binary()] + list(args), env=full_env,
                           capture_output=True, timeout=timeout, cwd=cwd or tempfile.gettempdir(),
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("crabcache %s did not exit within %ds (it started instead of refusing)"
                    % (" ".join(args), timeout), pytrace=False)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    rep = crabtest.sanitizer_report(err)
    assert rep is None, rep
    return p.returncode, out, err


def isolated_ports():
    """Flags that keep a run that wrongly starts from touching default ports."""
    p, r = free_ports(2)
    return ["--port", str(p), "--resp-port", str(r), "--metrics-port", "0"]


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


def write(tmp, name, text):
    path = tmp / name
    path.write_text(text)
    return str(path)


def assert_config_error(rc, out, err, *must_contain):
    assert rc == 2, "exit status %r, want 2\nstdout: %s\nstderr: %s" % (rc, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, "want exactly one message line, got:\n%s" % err
    for s in must_contain:
        assert s in lines[0], "message %r does not name %r" % (lines[0], s)


@pytest.mark.parametrize("text,key,line", [
    ("port = 7000\nno_such_key = 5\n", "no_such_key", 2),
    ("port = \"abc\"\n", "port", 1),
    ("port = 70000\n", "port", 1),
    ("port = -1\n", "port", 1),
    ("\n\nmax_memory = \"lots\"\n", "max_memory", 3),
    ("eviction_policy = \"random\"\n", "eviction_policy", 1),
    ("[eviction]\nbogus_option = 1\n", "bogus_option", 2),
    ("[wal]\nsync_policy = \"sometimes\"\n", "sync_policy", 2),
    ("threads = true\n", "threads", 1),
    ("[no_such_table]\nx = 1\n", "no_such_table", 2),
])
def test_bad_file_values(tmp, text, key, line):
    path = write(tmp, "bad.toml", text)
    rc, out, err = run(["--config", path] + isolated_ports())
    assert_config_error(rc, out, err, key, "%s:%d" % (path, line))
    rc, out, err = run(["--check-config", path])
    assert_config_error(rc, out, err, key, "%s:%d" % (path, line))


def test_bad_toml_syntax(tmp):
    path = write(tmp, "syntax.toml", "port = 7000\nport = = 3\n")
    rc, out, err = run(["--config", path] + isolated_ports())
    assert_config_error(rc, out, err, "%s:2" % path)


def test_duplicate_key(tmp):
    path = write(tmp, "dup.toml", "port = 7000\nport = 7001\n")
    rc, out, err = run(["--check-config", path])
    assert_config_error(rc, out, err, "port", "%s:2" % path)


def test_unreadable_file(tmp):
    missing = str(tmp / "does-not-exist.toml")
    rc, out, err = run(["--config", missing] + isolated_ports())
    assert_config_error(rc, out, err, missing)
    rc, out, err = run(["--config", str(tmp)] + isolated_ports())   # a directory
    assert_config_error(rc, out, err, str(tmp))
    rc, out, err = run(["--check-config", missing])
    assert_config_error(rc, out, err, missing)


@pytest.mark.parametrize("args,key", [
    (["--no-such-flag", "1"], "no-such-flag"),
    (["--port", "abc"], "port"),
    (["--port", "99999"], "port"),
    (["--max-memory", "12zb"], "max"),
    (["--threads", "-3"], "threads"),
    (["--eviction-policy", "fifo"], "eviction"),
    (["--log-level", "chatty"], "log"),
    (["--port"], "port"),
    (["stray-argument"], "stray-argument"),
])
def test_bad_flags(args, key):
    rc, out, err = run(isolated_ports() + args)
    assert_config_error(rc, out, err, key)


@pytest.mark.parametrize("var,value,key", [
    ("CRABCACHE_PORT", "abc", "CRABCACHE_PORT"),
    ("CRABCACHE_MAX_MEMORY", "-5", "CRABCACHE_MAX_MEMORY"),
    ("CRABCACHE_EVICTION_POLICY", "fifo", "CRABCACHE_EVICTION_POLICY"),
])
def test_bad_env(var, value, key):
    flags = isolated_ports()
    if var == "CRABCACHE_PORT":
        flags = flags[2:]     # a --port flag would override the variable
    rc, out, err = run(flags, env={var: value})
    assert_config_error(rc, out, err, key)


def test_check_config_valid(tmp):
    path = write(tmp, "ok.toml", "port = 7000\nmax_memory = \"64mb\"\n[eviction]\n"
                                 "memory_high_watermark = 0.85\n")
    rc, out, err = run(["--check-config", path])
    assert rc == 0, (out, err)
    assert crabtest.sanitizer_report(err) is None


def test_check_config_does_not_listen(tmp):
    port = free_ports(1)[0]
    path = write(tmp, "ok.toml", "port = %d\n" % port)
    rc, out, err = run(["--check-config", path])
    assert rc == 0, (out, err)
    assert not crabtest.port_open(port)


def test_help_and_version():
    rc, out, err = run(["--help"])
    assert rc == 0, err
    for flag in ("--config", "--port", "--resp-port", "--max-memory", "--check-config",
                 "--version", "--eviction-policy", "--threads"):
        assert flag in out, "--help does not mention %s" % flag
    rc, out, err = run(["--version"])
    assert rc == 0, err
    assert re.search(r"crabcache\S* v?\d+\.\d+\.\d+", out, re.I), out
    assert len(out.strip().splitlines()) == 1, out


def _config_get(port, name):
    with RespConn(port) as c:
        v = parse(c.call("CONFIG", "GET", name))[0]
    return dict(zip(v[0::2], v[1::2])).get(name.encode())


def _start(args, env=None, cwd=None):
    clean = {k: None for k in os.environ if k.startswith("CRABCACHE_") and k != "CRABCACHE_BIN_DIR"}
    e = dict(env or {})
    srv = start_with_retry(lambda: _EnvCrab(args, e, clean, cwd))
    return srv


class _EnvCrab(CrabServer):
    def __init__(self, args, env, clean, cwd):
        super().__init__(extra_args=args, env=env, cwd=cwd)
        for k in clean:
            if k not in env:
                self.env.pop(k, None)


MB = 1024 * 1024


def test_precedence_file_env_flag(tmp):
    path = write(tmp, "prec.toml", "max_memory = \"100mb\"\n")
    cases = [
        ([], {}, 100 * MB),
        ([], {"CRABCACHE_MAX_MEMORY": "200mb"}, 200 * MB),
        (["--max-memory", "300mb"], {"CRABCACHE_MAX_MEMORY": "200mb"}, 300 * MB),
        (["--max-memory", "300mb"], {}, 300 * MB),
    ]
    for flags, env, want in cases:
        srv = _start(["--config", path] + flags, env)
        try:
            got = _config_get(srv.resp_port, "maxmemory")
            assert got == str(want).encode(), (flags, env, got, want)
        finally:
            srv.stop()


def test_precedence_of_ports(tmp):
    """file port < CRABCACHE_PORT < --port, observed through the port actually bound."""
    fport, eport, flport, rport = free_ports(4)
    path = write(tmp, "ports.toml", "port = %d\nresp_port = %d\nmetrics_port = 0\n"
                 "threads = 1\nlog_level = \"warn\"\n" % (fport, rport))
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("CRABCACHE_") or k == "CRABCACHE_BIN_DIR"}
    for env, flags, want in [({}, [], fport), ({"CRABCACHE_PORT": str(eport)}, [], eport),
                             ({"CRABCACHE_PORT": str(eport)}, ["--port", str(flport)], flport)]:
        srv = crabtest.Server([crabtest.crab_binary(), "--config", path] + flags, [want, rport],
                              env=None)
        srv.env = dict(base, **env)
        srv.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        srv.start()
        try:
            with RespConn(want) as c:
                assert c.call("PING") == b"+PONG\r\n"
            assert _config_get(rport, "port") == str(want).encode()
        finally:
            srv.stop()


def test_port_taken():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    taken = s.getsockname()[1]
    try:
        for which in ("--port", "--resp-port"):
            p, r = free_ports(2)
            args = ["--port", str(p), "--resp-port", str(r), "--metrics-port", "0",
                    "--threads", "1", which, str(taken)]
            rc, out, err = run(args, timeout=20)
            assert rc != 0, "started although port %d is taken" % taken
            msg = (out + err).lower()
            assert str(taken) in msg, err
            assert "in use" in msg or "taken" in msg or "eaddrinuse" in msg, err
    finally:
        s.close()


def test_port_taken_by_another_crabcache():
    """Another server of the same user listening with SO_REUSEPORT (as every
    CrabCache worker does): the kernel would let a second one share the port and
    split the connections between them; start-up must fail instead."""
    first = CrabServer(threads=2).start()
    try:
        for which, port in (("--port", first.port), ("--resp-port", first.resp_port)):
            p, r = free_ports(2)
            args = ["--port", str(p), "--resp-port", str(r), "--metrics-port", "0",
                    "--threads", "2", which, str(port)]
            rc, out, err = run(args, timeout=20)
            assert rc != 0, "started although port %d is served by another crabcache" % port
            msg = (out + err).lower()
            assert str(port) in msg and "in use" in msg, err
        with RespConn(first.resp_port) as c:
            assert c.call("PING") == b"+PONG\r\n"
    finally:
        first.stop()


def test_sigterm_exits_zero(make_crab):
    srv = make_crab()
    with RespConn(srv.resp_port, server=srv) as c:
        assert c.call("SET", "a", "1") == b"+OK\r\n"
    assert srv.stop() == 0
