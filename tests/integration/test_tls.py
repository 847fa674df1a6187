"""TLS on tls_port: both protocols over TLS (RESP on a first '*', else native), with
redis-cli --tls, openssl s_client and Python's ssl module; big values and pipelines
across many records; optional client-certificate verification (tls_auth_clients);
refused handshakes counted; bad certificate files refused at start-up.

Certificates are made for each run with `openssl req` / `openssl x509` in a temp dir
(a CA, a server certificate for 127.0.0.1, a client certificate from the CA and one
self-signed impostor); nothing secret is kept in the repository.
"""

import os
import socket
import ssl
import subprocess
import time

import pytest

import crabtest
from crabtest import CrabServer, encode, free_port, parse

pytestmark = pytest.mark.usefixtures("crab_only")


def run(*argv, **kw):
    return subprocess.run(list(argv), check=True, capture_output=True, timeout=60, **kw)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    p = lambda name: str(d / name)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=crabtest-ca", "-keyout", p("ca.key"), "-out", p("ca.crt"))
    with open(p("server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    with open(p("client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=crabtest-" + who,
            "-keyout", p(who + ".key"), "-out", p(who + ".csr"))
        run("openssl", "x509", "-req", "-in", p(who + ".csr"), "-CA", p("ca.crt"),
            "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "2", "-out", p(who + ".crt"),
            "-extfile", p(who + ".ext"))
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=impostor", "-keyout", p("rogue.key"), "-out", p("rogue.crt"))
    with open(p("garbage.pem"), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    return p


def tls_server(pki, extra=()):
    def make():
        port = free_port()
        srv = CrabServer(extra_args=["--tls-port", str(port), "--tls-cert-file", pki("server.crt"),
                                     "--tls-key-file", pki("server.key")] + list(extra))
        srv.tls_port = port
        srv.ready_ports.append(port)
        return srv
    return crabtest.start_with_retry(make)


@pytest.fixture(scope="module")
def tls_srv(pki):
    srv = tls_server(pki)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def mtls_srv(pki):
    srv = tls_server(pki, ["--tls-ca-cert-file", pki("ca.crt"), "--tls-auth-clients", "yes"])
    yield srv
    srv.stop()


def client_ctx(pki, cert=None):
    ctx = ssl.create_default_context(cafile=pki("ca.crt"))
    if cert:
        ctx.load_cert_chain(pki(cert + ".crt"), pki(cert + ".key"))
    return ctx


class TlsConn:
    def __init__(self, pki, port, cert=None, timeout=10):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = client_ctx(pki, cert).wrap_socket(raw, server_hostname="127.0.0.1")
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def recv_until(self, pred):
        while not pred(self.buf):
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("closed; have %r" % self.buf[:200])
            self.buf += chunk

    def reply(self):
        """One RESP reply, parsed."""
        while True:
            try:
                v, end = parse(self.buf)
                self.buf = self.buf[end:]
                return v
            except crabtest.Incomplete:
                self.recv_until(lambda b, n=len(self.buf): len(b) > n)

    def line(self):
        self.recv_until(lambda b: b"\n" in b)
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def test_resp_and_native_over_tls(pki, tls_srv):
    c = TlsConn(pki, tls_srv.tls_port)
    try:
        c.send(encode("SET", "tk", "tv"))
        assert c.reply() == "OK"
        c.send(encode("GET", "tk"))
        assert c.reply() == b"tv"
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        c.close()
    n = TlsConn(pki, tls_srv.tls_port)
    try:
        n.send(b"PING\r\nGET tk\r\nPUT k2 v2\r\nGET k2\r\n")
        assert [n.line() for _ in range(4)] == [b"PONG", b"tv", b"OK", b"v2"]
        n.send(b"QUIT\r\n")
        assert n.line() == b"OK"
    finally:
        n.close()


def test_big_values_and_pipelines_over_tls(pki, tls_srv):
    c = TlsConn(pki, tls_srv.tls_port)
    try:
        big = os.urandom(3 * 1024 * 1024)   # many 16 KB records each way
        c.send(encode("SET", "big", big))
        assert c.reply() == "OK"
        c.send(encode("GET", "big"))
        assert c.reply() == big
        c.send(b"".join(encode("INCR", "ctr") for _ in range(5000)))
        got = [c.reply() for _ in range(5000)]
        assert got == list(range(1, 5001))
    finally:
        c.close()


def test_redis_cli_tls(pki, tls_srv):
    base = ["redis-cli", "--tls", "--cacert", pki("ca.crt"), "-h", "127.0.0.1",
            "-p", str(tls_srv.tls_port)]
    assert run(*base, "SET", "cli", "hello").stdout.strip() == b"OK"
    assert run(*base, "GET", "cli").stdout.strip() == b"hello"
    assert run(*base, "PING").stdout.strip() == b"PONG"
    # without --tls the plain-text client gets no reply and a closed connection
    r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(tls_srv.tls_port), "PING"],
                       capture_output=True, timeout=30)
    assert b"PONG" not in r.stdout


def test_openssl_s_client_native(pki, tls_srv):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls_srv.tls_port,
                        "-CAfile", pki("ca.crt"), "-verify_return_error", "-quiet"],
                       input=b"PUT sk sv\r\nGET sk\r\nQUIT\r\n", capture_output=True, timeout=30)
    assert r.stdout.split(b"\r\n")[:3] == [b"OK", b"sv", b"OK"], (r.stdout, r.stderr)


def test_failed_handshakes_counted_and_closed(pki, tls_srv):
    def rejected():
        with crabtest.RespConn(tls_srv.resp_port) as c:
            raw = c.value("INFO", "stats").decode()
        return int(raw.split("rejected_connections_tls:")[1].split("\r")[0])

    before = rejected()
    # plain text on the TLS port
    s = socket.create_connection(("127.0.0.1", tls_srv.tls_port), timeout=5)
    s.sendall(b"PING\r\n")
    s.settimeout(5)
    try:
        data = s.recv(1000)
    except ConnectionResetError:
        data = b""
    assert b"PONG" not in data
    s.close()
    # a megabyte of garbage
    s = socket.create_connection(("127.0.0.1", tls_srv.tls_port), timeout=5)
    try:
        s.sendall(b"\x16\x03\x01" + os.urandom(1 << 20))
    except OSError:
        pass
    s.close()
    # a client that does not trust the server's CA
    ctx = ssl.create_default_context()
    raw = socket.create_connection(("127.0.0.1", tls_srv.tls_port), timeout=5)
    with pytest.raises(ssl.SSLError):
        ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    raw.close()
    deadline = time.time() + 5
    while rejected() < before + 3 and time.time() < deadline:
        time.sleep(0.05)
    assert rejected() >= before + 3


def test_handshake_deadline(pki, tls_srv):
    """A client that opens the TLS port and says nothing is dropped after 10 s, even
    with idle_timeout off (slowloris on the handshake)."""
    s = socket.create_connection(("127.0.0.1", tls_srv.tls_port), timeout=20)
    t0 = time.time()
    s.settimeout(20)
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass
    elapsed = time.time() - t0
    s.close()
    assert 9 <= elapsed <= 15, elapsed


def test_client_certificates_required(pki, mtls_srv):
    c = TlsConn(pki, mtls_srv.tls_port, cert="client")
    try:
        c.send(encode("PING"))
        assert c.reply() == "PONG"
    finally:
        c.close()
    for cert in (None, "rogue"):
        with pytest.raises((ssl.SSLError, EOFError, ConnectionResetError, BrokenPipeError)):
            c = TlsConn(pki, mtls_srv.tls_port, cert=cert)
            try:
                # TLS 1.3: the server's verdict on the client arrives with the first read
                c.send(encode("PING"))
                c.reply()
            finally:
                c.close()
    base = ["redis-cli", "--tls", "--cacert", pki("ca.crt"), "-h", "127.0.0.1",
            "-p", str(mtls_srv.tls_port)]
    ok = run(*base, "--cert", pki("client.crt"), "--key", pki("client.key"), "PING")
    assert ok.stdout.strip() == b"PONG"
    bad = subprocess.run(base + ["PING"], capture_output=True, timeout=30)
    assert b"PONG" not in bad.stdout


def test_auth_and_maxclients_over_tls(pki):
    srv = tls_server(pki, ["--auth-token", "tlstok", "--max-connections", "2"])
    try:
        # The start-up probe's connections count until the server has seen
        # them close: retry the first client until they are gone.
        deadline = time.monotonic() + 5
        while True:
            a = TlsConn(pki, srv.tls_port)
            a.send(encode("GET", "x"))
            try:
                got = a.reply()
            except ValueError:  # a native-form "max clients" line, then close
                got = None
            if got is not None or time.monotonic() > deadline:
                break
            a.close()
            time.sleep(0.1)
        assert got == crabtest.RespError("NOAUTH Authentication required.")
        a.send(encode("AUTH", "tlstok"))
        assert a.reply() == "OK"
        b = TlsConn(pki, srv.tls_port)
        b.send(b"AUTH tlstok\r\n")
        assert b.line() == b"OK"
        # the third client: the native-form error once the handshake is done, then close
        c = TlsConn(pki, srv.tls_port)
        c.recv_until(lambda buf: b"\n" in buf)
        assert c.buf == b"ERROR: max number of clients reached\r\n"
        with pytest.raises((EOFError, ssl.SSLError, ConnectionResetError)):
            c.recv_until(lambda buf: False)
        for x in (a, b, c):
            x.close()
    finally:
        srv.stop()


@pytest.mark.parametrize("bad", [
    ["--tls-cert-file", "garbage.pem"],
    ["--tls-key-file", "rogue.key"],          # does not match the certificate
])
def test_bad_certificate_files_refused_at_start(pki, bad):
    args = ["--tls-port", str(free_port()), "--tls-cert-file", pki("server.crt"),
            "--tls-key-file", pki("server.key")]
    for i in range(0, len(bad), 2):
        args[args.index(bad[i]) + 1] = pki(bad[i + 1])
    srv = CrabServer(extra_args=args)
    with pytest.raises(crabtest.ServerError) as e:
        srv.start(timeout=15)
    srv.stop(check=False)
    assert "tls_" in str(e.value)
