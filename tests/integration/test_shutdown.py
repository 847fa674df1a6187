"""SIGTERM (SPEC 1): stop accepting, finish in-flight replies, exit 0. A client
whose replies are still being written when the signal arrives gets all of them,
then the close; new connections are refused; a client that never reads cannot
hold the exit back for more than the grace period."""
import signal
import socket
import time

import pytest

import crabtest

pytestmark = pytest.mark.skipif(crabtest.TARGET == "redis",
                                reason="CrabCache shutdown; CRABTEST_TARGET=redis")


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def test_sigterm_finishes_replies_in_flight(make_crab):
    srv = make_crab()
    big = b"x" * (1 << 20)
    s = socket.create_connection(("127.0.0.1", srv.resp_port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(resp("SET", "big", big))
    assert s.recv(16) == b"+OK\r\n"
    n = 24  # 24 MiB of replies: far more than the socket buffers hold
    s.sendall(resp("GET", "big") * n)
    time.sleep(0.5)  # the server has built replies it cannot send yet
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    # new clients are refused while the old one drains
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.resp_port), timeout=2).recv(1)
    want = (b"$%d\r\n" % len(big) + big + b"\r\n") * n
    got = bytearray()
    s.settimeout(10)
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    assert len(got) == len(want) and bytes(got) == want
    assert srv.proc.wait(timeout=10) == 0
    srv.stopped = True


def test_a_client_that_never_reads_does_not_hold_the_exit(make_crab):
    srv = make_crab()
    s = socket.create_connection(("127.0.0.1", srv.resp_port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    s.sendall(resp("SET", "big", b"y" * (1 << 20)))
    s.recv(16)
    s.sendall(resp("GET", "big") * 16)
    time.sleep(0.3)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 5  # the 2 s grace, then a forced close
    srv.stopped = True
    s.close()


def test_health_is_503_while_stopping(make_crab):
    """SPEC 7: /health answers 503 when not serving. During the shutdown grace
    (a client still holds unsent replies) the HTTP port is up and says so."""
    import json
    import urllib.error
    import urllib.request

    mport = crabtest.free_port()
    srv = make_crab(extra_args=["--metrics-port", str(mport)])
    url = "http://127.0.0.1:%d/health" % mport
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200
        assert json.loads(r.read())["status"] == "healthy"
    s = socket.create_connection(("127.0.0.1", srv.resp_port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    s.sendall(resp("SET", "big", b"z" * (1 << 20)))
    s.recv(16)
    s.sendall(resp("GET", "big") * 16)  # never read: holds the shutdown open
    time.sleep(0.3)
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=5)
    assert e.value.code == 503
    body = json.loads(e.value.read())
    assert body["status"] != "healthy" and body["service"] == "crabcache"
    assert srv.proc.wait(timeout=10) == 0
    srv.stopped = True
    s.close()
