"""Security settings against real server processes: token authentication (native AUTH,
RESP AUTH [user] token, HELLO 3 AUTH, what is allowed before it, several tokens from
the file and CRABCACHE_AUTH_TOKEN, failures counted and logged with the address),
per-address rate limiting, the allowed_ips list, max_connections, max_command_size,
idle_timeout (slowloris included) and the per-client output buffer limit.

Every client connects to 127.0.0.1 (the allow-list test also uses 127.0.0.2 as the
source address, still loopback).  Replies are compared byte for byte; where Redis has
the same behaviour, a redis-server with requirepass is asked the same questions.
"""

import os
import re
import socket
import time

import pytest

import crabtest
from crabtest import NativeConn, RespConn, RedisServer, encode, parse, start_with_retry

pytestmark = pytest.mark.usefixtures("crab_only")


def info_field(conn, name):
    """A numeric field of INFO (all sections)."""
    raw = conn.value("INFO", "everything")
    for line in raw.decode().split("\r\n"):
        if line.startswith(name + ":"):
            return int(line.split(":", 1)[1])
    raise AssertionError("INFO has no field %s" % name)


def closed_by_server(sock, timeout=5.0):
    """True when the server closes sock (EOF or reset) within timeout, whatever
    it sent before."""
    sock.settimeout(timeout)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def settle(srv, want=1, timeout=5.0):
    """Wait until the server counts exactly `want` clients (the caller's probe
    included): start-up probes and closed connections are gone."""
    deadline = time.time() + timeout
    with RespConn(srv.resp_port, server=srv) as c:
        while info_field(c, "connected_clients") != want:
            assert time.time() < deadline, "connections did not settle"
            time.sleep(0.05)


def stderr_text(srv):
    with open(srv.stderr_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


# ---------------------------------------------------------------------------------
# authentication

AUTH_CASES = [
    # before AUTH: only PING/AUTH/HELLO/QUIT (PING is refused by Redis, not here)
    ("GET", "k"),
    ("SET", "k", "v"),
    ("AUTH", "wrong"),
    ("AUTH", "default", "wrong"),
    ("AUTH", "nosuchuser", "s3cret"),
    ("AUTH", "a", "b", "c"),
    ("HELLO", "3"),
    ("HELLO", "3", "AUTH", "default", "wrong"),
    ("HELLO", "3", "AUTH", "someone", "s3cret"),
    ("GET", "k"),
    ("AUTH", "s3cret"),
    ("SET", "k", "v"),
    ("GET", "k"),
    ("AUTH", "wrong"),          # a failed AUTH does not log an authenticated client out
    ("GET", "k"),
]


def test_resp_auth_replies_match_redis(make_crab):
    srv = make_crab(extra_args=["--auth-token", "s3cret"])
    ref = start_with_retry(lambda: RedisServer(extra_args=["--requirepass", "s3cret"]))
    try:
        with RespConn(srv.resp_port, server=srv) as c, RespConn(ref.port, server=ref) as r:
            for cmd in AUTH_CASES:
                assert c.call(*cmd) == r.call(*cmd), cmd
    finally:
        ref.stop()


def test_resp_noauth_texts_and_allowed_commands(make_crab):
    srv = make_crab(extra_args=["--auth-token", "s3cret"])
    with RespConn(srv.resp_port, server=srv) as c:
        assert c.call("GET", "k") == b"-NOAUTH Authentication required.\r\n"
        assert c.call("CONFIG", "GET", "*") == b"-NOAUTH Authentication required.\r\n"
        assert c.call("PING") == b"+PONG\r\n"
        assert c.call("AUTH", "bad") == (
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
        assert c.call("HELLO", "3").startswith(b"-NOAUTH HELLO must be called with the client")
        # HELLO 3 AUTH authenticates and switches to RESP3 in one go
        hello = c.call("HELLO", "3", "AUTH", "default", "s3cret")
        assert hello.startswith(b"%7\r\n")
        assert b"proto\r\n:3\r\n" in hello
        assert c.call("SET", "k", "v") == b"+OK\r\n"
        assert c.call("QUIT") == b"+OK\r\n"
    # the same on the native port when the first byte is '*'
    with RespConn(srv.port, server=srv) as c:
        assert c.call("GET", "k") == b"-NOAUTH Authentication required.\r\n"
        assert c.call("AUTH", "default", "s3cret") == b"+OK\r\n"
        assert c.call("GET", "k") == b"$1\r\nv\r\n"
    # authentication belongs to a connection
    with RespConn(srv.resp_port, server=srv) as c:
        assert c.call("GET", "k") == b"-NOAUTH Authentication required.\r\n"


def test_unauthenticated_big_requests_refused_early(make_crab):
    """Before AUTH, a bulk or multibulk header announcing a large request is a protocol
    error at once (as Redis 7 does): an anonymous client cannot make the server wait
    for, or reserve, megabytes."""
    srv = make_crab(extra_args=["--auth-token", "s3cret"])
    with RespConn(srv.resp_port, server=srv) as c:
        c.send(b"*1\r\n$100000000\r\n")
        data, closed = c.read_all(timeout=5)
        assert data.startswith(b"-ERR Protocol error: unauthenticated bulk length")
        assert closed
    with RespConn(srv.resp_port, server=srv) as c:
        c.send(b"*100000\r\n")
        data, closed = c.read_all(timeout=5)
        assert data.startswith(b"-ERR Protocol error: unauthenticated multibulk length")
        assert closed


def test_native_auth(make_crab):
    srv = make_crab(extra_args=["--auth-token", "s3cret"])
    with NativeConn(srv.port, server=srv) as c:
        assert c.cmd("GET k") == b"ERROR: authentication required"
        assert c.cmd("PUT k v") == b"ERROR: authentication required"
        assert c.cmd("STATS") == b"ERROR: authentication required"
        assert c.cmd("PING") == b"PONG"
        assert c.cmd("AUTH nope") == b"ERROR: invalid token"
        assert c.cmd("AUTH s3cret") == b"OK"
        assert c.cmd("PUT k v") == b"OK"
        assert c.cmd("GET k") == b"v"
        assert c.cmd("QUIT") == b"OK"


def test_native_auth_without_tokens(make_crab):
    srv = make_crab()
    with NativeConn(srv.port, server=srv) as c:
        assert c.cmd("AUTH x") == b"ERROR: AUTH called without any token configured"
        assert c.cmd("PING") == b"PONG"
    with RespConn(srv.resp_port, server=srv) as c:
        assert info_field(c, "auth_failures") == 0


def test_several_tokens_from_file_and_env(make_crab, tmp_path):
    conf = tmp_path / "crab.toml"
    conf.write_text('[security]\nauth_token = "first"\nauth_tokens = ["second", "third"]\n')
    srv = make_crab(extra_args=["--config", str(conf)])
    for tok in ("first", "second", "third"):
        with NativeConn(srv.port, server=srv) as c:
            assert c.cmd("AUTH " + tok) == b"OK", tok
    with NativeConn(srv.port, server=srv) as c:
        assert c.cmd("AUTH fourth") == b"ERROR: invalid token"
        assert c.cmd("AUTH firs") == b"ERROR: invalid token"
        assert c.cmd("AUTH firstfirst") == b"ERROR: invalid token"

    # CRABCACHE_AUTH_TOKEN with a comma list: each piece is a token
    srv2 = make_crab(env={"CRABCACHE_AUTH_TOKEN": "alpha,beta,,gamma"})
    for tok in ("alpha", "beta", "gamma"):
        with RespConn(srv2.resp_port, server=srv2) as c:
            assert c.call("AUTH", tok) == b"+OK\r\n", tok
    with RespConn(srv2.resp_port, server=srv2) as c:
        assert c.call("AUTH", "alpha,beta").startswith(b"-WRONGPASS")
        assert c.call("AUTH", "").startswith(b"-WRONGPASS")


def test_auth_failures_counted_and_logged_with_address(make_crab):
    srv = make_crab(extra_args=["--auth-token", "s3cret"])
    with RespConn(srv.resp_port, server=srv) as c, NativeConn(srv.port, server=srv) as n:
        for _ in range(3):
            assert c.call("AUTH", "bad").startswith(b"-WRONGPASS")
        assert c.call("AUTH", "bob", "s3cret").startswith(b"-WRONGPASS")
        assert c.call("HELLO", "2", "AUTH", "default", "bad").startswith(b"-WRONGPASS")
        assert n.cmd("AUTH bad") == b"ERROR: invalid token"
        assert c.call("AUTH", "s3cret") == b"+OK\r\n"
        assert info_field(c, "auth_failures") == 6
        local = "127.0.0.1:%d" % c.sock.getsockname()[1]
    log = stderr_text(srv)
    lines = [ln for ln in log.splitlines() if "authentication failed" in ln]
    assert len(lines) == 6, log[-2000:]
    assert any(local in ln for ln in lines), lines
    assert any('"via":"native AUTH"' in ln for ln in lines), lines


def test_failed_auth_flood_log_is_throttled(make_crab):
    srv = make_crab(extra_args=["--auth-token", "s3cret"])
    n = 3000
    with RespConn(srv.resp_port, server=srv) as c:
        replies = c.pipeline([("AUTH", "wrong%d" % i) for i in range(n)])
        assert all(r.startswith(b"-WRONGPASS") for r in replies)
        assert c.call("AUTH", "s3cret") == b"+OK\r\n"
        assert info_field(c, "auth_failures") == n
    lines = [ln for ln in stderr_text(srv).splitlines() if "authentication failed" in ln]
    # at most 10 lines per second of flood (a few seconds under ASan at most)
    assert 10 <= len(lines) <= 100, len(lines)


# ---------------------------------------------------------------------------------
# rate limiting

RATE_ARGS = ["--rate-limit", "yes", "--max-requests-per-second", "5", "--burst-capacity", "5"]
RATE_ERR = b"-ERR rate limit exceeded, try again later\r\n"


def test_rate_limit_burst_then_errors_connection_stays(make_crab):
    srv = make_crab(extra_args=RATE_ARGS)
    with RespConn(srv.resp_port, server=srv) as c:
        replies = c.pipeline([("PING",)] * 20)
        assert replies[:5] == [b"+PONG\r\n"] * 5
        assert replies[5:] == [RATE_ERR] * 15
        time.sleep(1.1)  # about 5 tokens back
        assert c.call("PING") == b"+PONG\r\n"
    with NativeConn(srv.port, server=srv) as n:
        time.sleep(1.1)
        n.send(b"PING\r\n" * 12)
        lines = [n.read_line() for _ in range(12)]
        assert lines.count(b"PONG") >= 5
        assert lines.count(b"PONG") <= 6  # 5 + at most one refilled meanwhile
        assert lines[-1] == b"ERROR: rate limit exceeded, try again later"


def test_rate_limit_shared_by_connections_of_one_address(make_crab):
    srv = make_crab(extra_args=RATE_ARGS, threads=2)
    conns = [RespConn(srv.resp_port, server=srv) for _ in range(6)]
    try:
        # the connections land on both workers; together they get the burst
        ok = sum(c.call("PING") == b"+PONG\r\n" for c in conns)
        ok += sum(c.call("PING") == b"+PONG\r\n" for c in conns)
        assert ok in (5, 6), ok
        # reconnecting does not refill the bucket
        with RespConn(srv.resp_port, server=srv) as fresh:
            assert fresh.call("PING") == RATE_ERR
        time.sleep(1.2)
        assert conns[0].call("INFO", "stats").startswith(b"$")
        assert info_field(conns[1], "rate_limited_requests") >= 6
    finally:
        for c in conns:
            c.close()


def test_rate_limit_live_config(make_crab):
    srv = make_crab(extra_args=RATE_ARGS)
    with RespConn(srv.resp_port, server=srv) as c:
        assert c.call("CONFIG", "SET", "rate_limiting.burst_capacity", "1000") == b"+OK\r\n"
        assert c.call("CONFIG", "SET", "rate_limiting.max_requests_per_second", "100000") \
            == b"+OK\r\n"
        time.sleep(0.2)
        replies = c.pipeline([("PING",)] * 300)
        assert replies == [b"+PONG\r\n"] * 300
        assert c.call("CONFIG", "SET", "rate_limiting.enabled", "no") == b"+OK\r\n"
        assert c.pipeline([("PING",)] * 3000) == [b"+PONG\r\n"] * 3000


# ---------------------------------------------------------------------------------
# allowed_ips

def connect_from(src_ip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src_ip, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def rejected_allowlist(port):
    """INFO's rejected_connections_allowlist, asked from an allowed peer."""
    s = connect_from("127.0.0.2", port)
    try:
        s.sendall(encode("INFO", "stats"))
        data = b""
        while not data.endswith(b"\r\n\r\n"):
            chunk = s.recv(1 << 16)
            assert chunk, data
            data += chunk
        m = re.search(rb"rejected_connections_allowlist:(\d+)\r\n", data)
        assert m, data
        return int(m.group(1))
    finally:
        s.close()


def test_allowed_ips_closes_others_at_accept(make_crab):
    srv = make_crab(extra_args=["--allowed-ips", "127.0.0.2,10.0.0.0/8,fd00::/8,::1"])
    # the harness's start-up probes (from 127.0.0.1) were refused too; how many
    # of them reached a listener depends on timing: count from here
    before = rejected_allowlist(srv.resp_port)
    for port in (srv.port, srv.resp_port):
        s = connect_from("127.0.0.1", port)
        try:
            s.sendall(b"PING\r\n")
        except OSError:
            pass
        assert closed_by_server(s), "a peer outside allowed_ips was served"
        s.close()
    s = connect_from("127.0.0.2", srv.resp_port)
    try:
        s.sendall(encode("PING"))
        assert s.recv(100) == b"+PONG\r\n"
    finally:
        s.close()
    assert rejected_allowlist(srv.resp_port) == before + 2
    assert "allowed_ips" in stderr_text(srv)


def test_allowed_ips_from_env_and_bad_entry(make_crab):
    srv = make_crab(env={"CRABCACHE_ALLOWED_IPS": "127.0.0.0/8"})
    with RespConn(srv.resp_port, server=srv) as c:
        assert c.call("PING") == b"+PONG\r\n"
    bad = crabtest.CrabServer(extra_args=["--allowed-ips", "127.0.0.1/40"])
    with pytest.raises(crabtest.ServerError) as e:
        bad.start(timeout=10)
    bad.stop(check=False)
    assert "127.0.0.1/40" in str(e.value)


# ---------------------------------------------------------------------------------
# limits

def test_max_connections_reply_per_port(make_crab):
    srv = make_crab(extra_args=["--max-connections", "3"])
    settle(srv, want=1)
    # the settle probe's close is handled by its worker on its own time: wait
    # for it through the first held connection before filling the other slots
    held = [RespConn(srv.resp_port, server=srv)]
    try:
        deadline = time.time() + 5
        while info_field(held[0], "connected_clients") != 1:
            assert time.time() < deadline
            time.sleep(0.05)
        held += [RespConn(srv.resp_port, server=srv) for _ in range(2)]
        for c in held:
            assert c.call("PING") == b"+PONG\r\n"
        with RespConn(srv.resp_port) as c:
            data, closed = c.read_all(timeout=5)
            assert (data, closed) == (b"-ERR max number of clients reached\r\n", True)
        with RespConn(srv.port) as c:
            data, closed = c.read_all(timeout=5)
            assert (data, closed) == (b"ERROR: max number of clients reached\r\n", True)
        assert info_field(held[0], "rejected_connections_max_connections") == 2
        held.pop().close()
        deadline = time.time() + 5
        while info_field(held[0], "connected_clients") != 2:
            assert time.time() < deadline
            time.sleep(0.05)
        with RespConn(srv.resp_port, server=srv) as c:
            assert c.call("PING") == b"+PONG\r\n"
    finally:
        for c in held:
            c.close()


def test_max_command_size(make_crab):
    srv = make_crab(extra_args=["--max-command-size", "4096"])
    # one bulk larger than the limit: refused from its header
    with RespConn(srv.resp_port, server=srv) as c:
        c.send(b"*2\r\n$3\r\nGET\r\n$5000\r\n")
        data, closed = c.read_all(timeout=5)
        assert data == b"-ERR Protocol error: invalid bulk length\r\n" and closed
    # many small arguments adding up past the limit, never finished
    with RespConn(srv.resp_port, server=srv) as c:
        c.send(b"*200\r\n" + b"$40\r\n" + b"x" * 40 + b"\r\n" + (b"$40\r\n" + b"y" * 40 + b"\r\n") * 100)
        data, closed = c.read_all(timeout=5)
        assert data == b"-ERR Protocol error: request too large\r\n" and closed
    # native: a line that does not end
    with NativeConn(srv.port, server=srv) as n:
        n.send(b"PUT k " + b"z" * 6000)
        assert n.read_line() == b"ERROR: request too large"
    # within the limit all is well
    with RespConn(srv.resp_port, server=srv) as c:
        assert c.call("SET", "k", "v" * 3000) == b"+OK\r\n"


def test_idle_timeout_and_slowloris(make_crab):
    srv = make_crab(extra_args=["--idle-timeout", "2"])
    idle = RespConn(srv.resp_port, server=srv)
    slow = socket.create_connection(("127.0.0.1", srv.resp_port), timeout=5)
    busy = RespConn(srv.resp_port, server=srv)
    try:
        t0 = time.time()
        partial = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n" + b"a" * 100
        sent, slow_closed_at = 0, None
        while time.time() - t0 < 6:
            assert busy.call("PING") == b"+PONG\r\n"   # a working client stays
            try:
                slow.sendall(partial[sent:sent + 1])  # one byte ~ every 0.5 s
                sent += 1
            except OSError:
                slow_closed_at = slow_closed_at or time.time() - t0
            time.sleep(0.5)
        assert closed_by_server(slow, timeout=1), "a slowloris client outlived idle_timeout"
        assert closed_by_server(idle.sock, timeout=1), "an idle client outlived idle_timeout"
        assert busy.call("PING") == b"+PONG\r\n"
    finally:
        idle.close()
        slow.close()
        busy.close()


def test_output_buffer_limit_drops_client_that_does_not_read(make_crab):
    srv = make_crab(extra_args=["--max-output-buffer", "1mb"])
    with RespConn(srv.resp_port, server=srv) as c:
        assert c.call("SET", "big", "x" * 100000) == b"+OK\r\n"
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", srv.resp_port))
    req = encode("GET", "big")
    try:
        for _ in range(1000):   # 100 MB of replies asked for, none read
            s.sendall(req * 10)
    except OSError:
        pass                     # dropped while still sending: fine
    got = 0
    s.settimeout(5)
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    assert got < 50 * 1000000, "the server kept queueing replies for a client not reading"
    assert "output buffer limit reached" in stderr_text(srv)
    # others are unaffected
    with RespConn(srv.resp_port, server=srv) as c:
        assert c.call("STRLEN", "big") == b":100000\r\n"


def test_huge_bulk_header_does_not_reserve_memory(make_crab):
    """Authenticated (no auth) clients may announce bulks up to max_command_size, but the
    server only grows its buffer with the bytes that really arrive."""
    srv = make_crab()
    conns = []
    try:
        for _ in range(50):
            c = RespConn(srv.resp_port, server=srv)
            c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000000\r\nabc")
            conns.append(c)
        time.sleep(0.5)
        with open("/proc/%d/status" % srv.proc.pid) as f:
            rss_kb = int([ln for ln in f if ln.startswith("VmRSS")][0].split()[1])
        # 50 x 500 MB announced; ASan's own overhead is a few hundred MB
        assert rss_kb < 1500 * 1024, rss_kb
        with RespConn(srv.resp_port, server=srv) as c:
            assert c.call("PING") == b"+PONG\r\n"
    finally:
        for c in conns:
            c.close()
