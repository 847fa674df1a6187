"""Hostile clients all at once, while one normal client measures: slowloris clients
(a byte a second), 10,000 idle connections, a client pipelining a million commands
without reading, megabyte-sized garbage on both protocols, and a flood of failed AUTH.
The normal client must get every reply right with a p99 under 10 ms, and the server
must end the run alive, clean (no sanitizer report) and with its counters showing
what happened.

Attackers run in child processes (so the measuring client does not wait for the GIL
of a busy attacker); every socket goes to 127.0.0.1 only. The test raises its own
RLIMIT_NOFILE (the server, started afterwards, inherits it). Bounded in time: about
half a minute.
"""

import multiprocessing as mp
import os
import random
import resource
import socket
import time

import pytest

import crabtest
from crabtest import RespConn, encode

pytestmark = pytest.mark.usefixtures("crab_only")

TOKEN = "adv-token"
IDLE_CONNS = 10000
DURATION = 12.0   # seconds of measured traffic


def _connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def idle_holder(port, resp_port, n, ready, stop):
    """Open n connections (both ports, half authenticated) and hold them."""
    socks = []
    for i in range(n):
        for attempt in range(50):
            try:
                socks.append(_connect(port if i % 2 else resp_port))
                break
            except OSError:
                time.sleep(0.02)
        if i % 1000 == 999:
            time.sleep(0.01)
    ready.put(len(socks))
    stop.wait(120)
    for s in socks:
        s.close()


def slowloris(port, n, stop, result):
    socks = [_connect(port) for _ in range(n)]
    partial = b"*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$1000\r\n" + b"s" * 1000
    i = 0
    while not stop.is_set() and i < len(partial):
        for s in socks:
            try:
                s.sendall(partial[i:i + 1])
            except OSError:
                pass
        i += 1
        stop.wait(1.0)
    result.put(i)
    for s in socks:
        s.close()


def pipeliner(port, n, result):
    """A million GETs without reading a reply: the output buffer limit must drop it."""
    s = _connect(port, timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(encode("AUTH", TOKEN) + encode("SET", "pipelined", "p" * 200))
    chunk = encode("GET", "pipelined") * 10000   # 1 MB of requests, 2 MB of replies
    sent, dropped = 0, False
    try:
        while sent < n:
            s.sendall(chunk)
            sent += 10000
    except OSError:
        dropped = True
    if not dropped:
        # all sent: the server must still close it (replies pile up past the limit)
        s.settimeout(20)
        try:
            while s.recv(1 << 16):
                time.sleep(0.01)   # read slowly: a few KB now and then
            dropped = True
        except ConnectionResetError:
            dropped = True
        except socket.timeout:
            dropped = False
    result.put((sent, dropped))
    s.close()


def garbage(port, resp_port, rounds, result):
    """Megabyte-sized garbage: random bytes, a RESP-looking prefix with junk, and a
    megabyte line on the native port. Each connection must end with an error or a
    close, never hang."""
    outcomes = []
    for r in range(rounds):
        kind = r % 3
        s = _connect(port if kind != 1 else resp_port, timeout=10)
        if kind == 0:
            payload = os.urandom(1 << 20)
        elif kind == 1:
            payload = b"*1\r\n$" + b"9" * (1 << 20)
        else:
            payload = b"PUT k " + b"x" * (1 << 20) + b"\r\n"
        try:
            s.sendall(payload)
        except OSError:
            pass
        s.settimeout(3)   # native garbage gets errors and may stay open
        got, closed = b"", False
        try:
            while True:
                c = s.recv(1 << 16)
                if not c:
                    closed = True
                    break
                got += c
                if len(got) > (4 << 20):
                    break
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            pass
        outcomes.append((kind, closed or b"ERR" in got))
        s.close()
    result.put(outcomes)


def auth_flood(port, stop, result):
    s = _connect(port)
    batch = encode("AUTH", "not-the-token") * 500
    n = 0
    buf = b""
    while not stop.is_set():
        s.sendall(batch)
        want = 500
        while want:
            buf += s.recv(1 << 16)
            k = buf.count(b"\r\n")
            if k >= want:
                buf = b""
                want = 0
        n += 500
        # a breath between volleys: on a 2-core machine a flood client spinning
        # flat out would mostly measure the CPU scheduler, not the server
        time.sleep(0.003)
    result.put(n)
    s.close()


def measure_baseline(c, seconds=2.0):
    """p99 of SET+GET pairs (per request) before any attack starts: how loaded the
    machine is on its own."""
    lat = []
    t_end = time.time() + seconds
    while time.time() < t_end:
        t0 = time.perf_counter()
        assert c.call("SET", "base", "x") == b"+OK\r\n"
        assert c.call("GET", "base") == b"$1\r\nx\r\n"
        lat.append((time.perf_counter() - t0) / 2)
        time.sleep(0.002)
    lat.sort()
    return lat[int(len(lat) * 0.99)]


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, want))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


@pytest.fixture
def adv_server():
    limit = raise_nofile(2 * IDLE_CONNS + 2000)
    if limit < IDLE_CONNS + 500:
        pytest.skip("RLIMIT_NOFILE hard limit %d is too low for %d connections"
                    % (limit, IDLE_CONNS))
    srv = crabtest.start_with_retry(lambda: crabtest.CrabServer(extra_args=[
        "--auth-token", TOKEN, "--max-connections", str(IDLE_CONNS + 1000),
        "--max-output-buffer", "1mb", "--idle-timeout", "0"]))
    yield srv
    srv.stop()


def test_hostile_clients_do_not_hurt_a_normal_client(adv_server):
    srv = adv_server
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    q_idle, q_slow, q_pipe, q_garb, q_auth = (ctx.Queue() for _ in range(5))

    holder = ctx.Process(target=idle_holder,
                         args=(srv.port, srv.resp_port, IDLE_CONNS, q_idle, stop))
    holder.start()
    opened = q_idle.get(timeout=120)
    assert opened == IDLE_CONNS

    procs = [
        holder,
        ctx.Process(target=slowloris, args=(srv.resp_port, 50, stop, q_slow)),
        ctx.Process(target=pipeliner, args=(srv.resp_port, 1000000, q_pipe)),
        ctx.Process(target=garbage, args=(srv.port, srv.resp_port, 6, q_garb)),
        ctx.Process(target=auth_flood, args=(srv.resp_port, stop, q_auth)),
    ]
    lat = []
    wrong = []
    with RespConn(srv.resp_port, server=srv, timeout=10) as c:
        assert c.call("AUTH", TOKEN) == b"+OK\r\n"
        base = measure_baseline(c)
        for p in procs[1:]:
            p.start()
        rnd = random.Random(1)
        t_end = time.time() + DURATION
        i = 0
        while time.time() < t_end:
            key = "normal:%d" % (i % 500)
            val = "%d-%d" % (i, rnd.getrandbits(32))
            t0 = time.perf_counter()
            r1 = c.call("SET", key, val)
            r2 = c.call("GET", key)
            lat.append((time.perf_counter() - t0) / 2)
            if r1 != b"+OK\r\n" or r2 != b"$%d\r\n%s\r\n" % (len(val), val.encode()):
                wrong.append((key, val, r1, r2))
            i += 1
            time.sleep(0.002)
        clients = int(c.value("INFO", "clients").decode().split("connected_clients:")[1]
                      .split("\r")[0])
        stats = c.value("INFO", "stats").decode()

    stop.set()
    sent, dropped = q_pipe.get(timeout=60)
    outcomes = q_garb.get(timeout=60)
    floods = q_auth.get(timeout=30)
    trickled = q_slow.get(timeout=30)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0, p

    lat.sort()
    p99 = lat[int(len(lat) * 0.99)]
    print("normal client: %d requests, p50 %.2f ms, p99 %.2f ms, max %.2f ms; "
          "pipeliner sent %d before the drop; %d failed AUTHs; %d clients at peak"
          % (2 * len(lat), 1000 * lat[len(lat) // 2], 1000 * p99, 1000 * lat[-1], sent,
             floods, clients))
    assert not wrong, wrong[:5]
    assert len(lat) > 500
    # The bar is 10 ms. When the machine alone (other jobs, no attack)
    # already shows a p99 above 5 ms, that bar measures the neighbours, so the
    # limit becomes baseline x 2 + 10 ms and the figures are printed.
    limit = 0.010 if base <= 0.005 else 2 * base + 0.010
    print("baseline p99 %.2f ms, limit %.2f ms" % (1000 * base, 1000 * limit))
    assert p99 < limit, "p99 %.2f ms (baseline %.2f ms)" % (1000 * p99, 1000 * base)
    # the attacks really happened and were handled
    assert clients >= IDLE_CONNS, clients
    assert dropped, "the non-reading pipeliner was never disconnected"
    assert all(ok for _, ok in outcomes), outcomes
    assert floods >= 1000
    assert trickled >= 5
    assert int(stats.split("auth_failures:")[1].split("\r")[0]) > 0
    with RespConn(srv.resp_port, server=srv) as c:
        assert c.call("AUTH", TOKEN) == b"+OK\r\n"
        stats = c.value("INFO", "stats").decode()
    assert int(stats.split("auth_failures:")[1].split("\r")[0]) >= floods
    log = srv.stderr()
    assert "output buffer limit reached" in log
    auth_lines = [ln for ln in log.splitlines() if "authentication failed" in ln]
    assert len(auth_lines) <= 10 * (DURATION + 20), len(auth_lines)
    # the server is healthy afterwards
    with RespConn(srv.resp_port, server=srv) as c:
        assert c.call("PING") == b"+PONG\r\n"
    srv.check()
