"""Shared helpers for the CrabCache integration tests.

Design: every test starts real server processes (CrabCache, and redis-server as the
reference) on loopback ports picked at run time, each in its own temp directory with
stdout/stderr captured to files.  A server that dies, or that leaves an
AddressSanitizer / UBSan / LeakSanitizer report in its stderr, makes the test fail
with that report shown.  Clients here are raw sockets: RespConn returns the exact bytes
of every reply (so tests can compare byte for byte against Redis), NativeConn speaks
the line-based native protocol.  Only the standard library is used.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HOST = "127.0.0.1"

# Stderr patterns that mean a sanitizer found something.
SANITIZER_RE = re.compile(
    r"(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    r"SUMMARY: (Address|Undefined|Leak)Sanitizer|WARNING: ThreadSanitizer)")

# When set to "redis", the `crab` fixtures start redis-server instead of CrabCache:
# this self-checks the harness and the differential generator (both sides must agree).
TARGET = os.environ.get("CRABTEST_TARGET", "crab")


class ServerError(AssertionError):
    """The server could not start, died, or reported a sanitizer error."""


# --------------------------------------------------------------------------------------
# binaries and ports

def bin_dir():
    """Directory holding the `crabcache` binary: $CRABCACHE_BIN_DIR, else build/asan/bin,
    else build/."""
    env = os.environ.get("CRABCACHE_BIN_DIR")
    if env:
        return env
    for cand in ("build/asan/bin", "build"):
        d = os.path.join(REPO_ROOT, cand)
        if os.path.isfile(os.path.join(d, "crabcache")):
            return d
    return os.path.join(REPO_ROOT, "build/asan/bin")


def crab_binary():
    path = os.path.join(bin_dir(), "crabcache")
    if not os.access(path, os.X_OK):
        raise ServerError("crabcache binary not found at %s (set CRABCACHE_BIN_DIR or build "
                          "with `make test` / cmake into build/asan)" % path)
    return path


def redis_binary():
    path = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(path, os.X_OK):
        raise ServerError("redis-server not installed")
    return path


_handed_out = set()


def free_ports(n=1):
    """n distinct TCP ports that were free on 127.0.0.1 a moment ago (kernel-chosen).
    A port is never handed out twice by this process."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
            p = s.getsockname()[1]
            if p not in _handed_out:
                _handed_out.add(p)
                ports.append(p)
    finally:
        for s in socks:
            s.close()
    return ports


def free_port():
    return free_ports(1)[0]


def port_open(port, host=HOST):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------
# server processes

def sanitizer_report(text):
    """The sanitizer part of a stderr text, or None when there is none."""
    m = SANITIZER_RE.search(text)
    if not m:
        return None
    start = text.rfind("\n", 0, max(0, m.start() - 2000)) + 1
    return text[start:start + 12000]


class Server:
    """A server process in its own temp dir; output goes to files there."""

    name = "server"

    def __init__(self, argv, ready_ports, env=None, cwd=None):
        self.argv = list(argv)
        self.ready_ports = list(ready_ports)
        self.tmpdir = cwd or tempfile.mkdtemp(prefix="crabtest-%s-" % self.name)
        self._own_tmp = cwd is None
        self.env = dict(os.environ)
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        # libraft's own leaks at shutdown (tests/lsan.supp says which)
        self.env.setdefault("LSAN_OPTIONS",
                            "suppressions=" + os.path.join(REPO_ROOT, "tests", "lsan.supp"))
        if env:
            self.env.update(env)
        self.proc = None
        self.stopped = False
        self.reported = False    # a death / report already raised by check()
        self.returncode = None
        self._out = self._err = None

    @property
    def stdout_path(self):
        return os.path.join(self.tmpdir, "stdout.log")

    @property
    def stderr_path(self):
        return os.path.join(self.tmpdir, "stderr.log")

    def start(self, timeout=30.0):
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.argv, cwd=self.tmpdir, env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, start_new_session=True)
        deadline = time.monotonic() + timeout
        pending = list(self.ready_ports)
        while pending:
            if self.proc.poll() is not None:
                raise ServerError("%s exited with status %s during start-up: %s\n%s" % (
                    self.name, self.proc.returncode, " ".join(self.argv), self.output()))
            if port_open(pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError("%s did not accept connections on %s within %.0fs\n%s" % (
                    self.name, pending, timeout, self.output()))
            time.sleep(0.05)
        return self

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stdout(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def output(self, limit=20000):
        err = self.stderr()
        out = self.stdout()
        text = ""
        if out.strip():
            text += "--- stdout ---\n" + out[-limit:] + "\n"
        if err.strip():
            text += "--- stderr ---\n" + err[-limit:] + "\n"
        return text or "(no output)"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check(self):
        """Fail (ServerError) if the server died or its stderr holds a sanitizer report."""
        if self.reported:
            raise ServerError("%s died earlier (reported by an earlier test)" % self.name)
        rep = sanitizer_report(self.stderr())
        if self.proc is not None and self.proc.poll() is not None and not self.stopped:
            self.reported = True
            raise ServerError("%s died (status %s)\n%s" % (
                self.name, self.proc.returncode, rep or self.output()))
        if rep:
            self.reported = True
            raise ServerError("%s sanitizer report:\n%s" % (self.name, rep))

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def stop(self, timeout=15.0, check=True):
        """SIGTERM, wait, SIGKILL if needed.  With check, raise ServerError when the
        server had died before, did not exit on SIGTERM, or left a sanitizer report."""
        if self.proc is None:
            return None
        if self.reported:
            check = False    # its death was reported already: do not report it twice
        died_before = self.proc.poll() is not None and not self.stopped
        problems = []
        if died_before:
            problems.append("%s had died (status %s) before the test ended" % (
                self.name, self.proc.returncode))
        elif self.proc.poll() is None:
            self.stopped = True
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append("%s did not exit within %.0fs of SIGTERM" % (self.name, timeout))
                self.kill()
        self.stopped = True
        self.returncode = self.proc.returncode
        for f in (self._out, self._err):
            if f:
                f.close()
        rep = sanitizer_report(self.stderr())
        if rep:
            problems.append("%s sanitizer report:\n%s" % (self.name, rep))
        elif problems:
            problems.append(self.output())
        if self._own_tmp and not problems:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if problems and check:
            raise ServerError("\n".join(problems))
        return self.returncode


def restart(srv):
    """Replace a dead (already reported) server by a fresh one on new ports, in place,
    so that one crash does not fail every later test of a module."""
    srv.stop(check=False)
    for _ in range(3):
        type(srv).__init__(srv, **srv.init_kw)
        try:
            return srv.start()
        except ServerError as e:
            srv.stop(check=False)
            if "in use" not in str(e).lower():
                raise
    raise ServerError("could not restart %s" % srv.name)


class CrabServer(Server):
    """crabcache --port P --resp-port R --metrics-port 0 --threads 2 --log-level warn ..."""

    name = "crabcache"

    def __init__(self, extra_args=(), env=None, port=None, resp_port=None, threads=2,
                 max_memory=None, cwd=None):
        self.init_kw = dict(extra_args=extra_args, env=env, port=port, resp_port=resp_port,
                            threads=threads, max_memory=max_memory, cwd=cwd)
        p, r = free_ports(2)
        self.port = port or p
        self.resp_port = resp_port or r
        argv = [crab_binary(), "--port", str(self.port), "--resp-port", str(self.resp_port),
                "--metrics-port", "0", "--threads", str(threads), "--log-level", "warn"]
        if max_memory:
            argv += ["--max-memory", str(max_memory)]
        argv += list(extra_args)
        super().__init__(argv, [self.port, self.resp_port], env=env, cwd=cwd)


class RedisServer(Server):
    """A reference redis-server: no persistence, one database, loopback only."""

    name = "redis-server"

    def __init__(self, extra_args=(), port=None, cwd=None):
        self.init_kw = dict(extra_args=extra_args, port=port, cwd=cwd)
        self.port = port or free_port()
        self.resp_port = self.port
        argv = [redis_binary(), "--port", str(self.port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--databases", "1", "--protected-mode", "no",
                "--logfile", "", "--daemonize", "no", "--loglevel", "warning",
                "--enable-debug-command", "local"]
        argv += list(extra_args)
        super().__init__(argv, [self.port], cwd=cwd)


def start_with_retry(factory, attempts=3):
    """Start factory() with fresh ports, retrying when a port was taken meanwhile."""
    last = None
    for _ in range(attempts):
        srv = factory()
        try:
            return srv.start()
        except ServerError as e:
            last = e
            srv.stop(check=False)
            if "in use" not in str(e).lower() and "taken" not in str(e).lower():
                raise
    raise last


# --------------------------------------------------------------------------------------
# RESP encoding and parsing

class RespError(Exception):
    """A RESP error reply (-ERR ... or !verbatim error) as a value."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text

    def __eq__(self, other):
        return isinstance(other, RespError) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return "RespError(%r)" % self.text


class Incomplete(Exception):
    pass


def to_bytes(x):
    if isinstance(x, bytes):
        return x
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    return str(x).encode()


def encode(*args):
    """RESP multibulk for one command; args are bytes, str or numbers."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = to_bytes(a)
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


class Attribute(dict):
    pass


class Verbatim(bytes):
    pass


class Push(list):
    pass


def _line(buf, pos):
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete()
    return buf[pos:end], end + 2


def parse(buf, pos=0):
    """Parse one RESP2/RESP3 value at buf[pos:].  Returns (value, end).  Raises Incomplete
    when more bytes are needed, ValueError on a malformed reply."""
    if pos >= len(buf):
        raise Incomplete()
    t = buf[pos:pos + 1]
    line, nxt = _line(buf, pos + 1)
    if t == b"+":
        return line.decode("latin-1"), nxt
    if t == b"-":
        return RespError(line.decode("latin-1")), nxt
    if t == b":":
        return int(line), nxt
    if t in (b"$", b"=", b"!"):
        n = int(line)
        if n < 0:
            return None, nxt
        if len(buf) < nxt + n + 2:
            raise Incomplete()
        if buf[nxt + n:nxt + n + 2] != b"\r\n":
            raise ValueError("bulk string not terminated by CRLF at %d" % (nxt + n))
        data = bytes(buf[nxt:nxt + n])
        if t == b"!":
            return RespError(data.decode("latin-1")), nxt + n + 2
        if t == b"=":
            return Verbatim(data), nxt + n + 2
        return data, nxt + n + 2
    if t == b"_":
        return None, nxt
    if t == b",":
        return float(line.decode()), nxt
    if t == b"#":
        return line == b"t", nxt
    if t == b"(":
        return int(line), nxt
    if t in (b"*", b"~", b">"):
        n = int(line)
        if n < 0:
            return None, nxt
        out = Push() if t == b">" else []
        p = nxt
        for _ in range(n):
            v, p = parse(buf, p)
            out.append(v)
        if t == b"~":
            return ("set", out), p
        return out, p
    if t in (b"%", b"|"):
        n = int(line)
        items = []
        p = nxt
        for _ in range(n):
            k, p = parse(buf, p)
            v, p = parse(buf, p)
            items.append((k, v))
        if t == b"|":
            # an attribute precedes the real reply
            real, p = parse(buf, p)
            return real, p
        return ("map", items), p
    raise ValueError("unknown RESP type byte %r at %d" % (t, pos))


class ConnectionClosed(Exception):
    pass


class RespConn:
    """A raw RESP client: sends bytes, returns each reply's exact bytes."""

    def __init__(self, port, host=HOST, timeout=10.0, server=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        self.server = server
        self.port = port

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            msg = "timed out waiting for a reply on port %d" % self.port
            if self.server is not None:
                self.server.check()
            raise ConnectionClosed(msg)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            if self.server is not None:
                self.server.check()
            raise ConnectionClosed("connection closed by server (port %d)" % self.port)
        if self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def read_reply(self):
        """The exact bytes of the next reply (blocks until complete)."""
        while True:
            try:
                _, end = parse(self.buf, self.pos)
            except Incomplete:
                self._fill()
                continue
            raw = bytes(self.buf[self.pos:end])
            self.pos = end
            return raw

    def read_replies(self, n):
        return [self.read_reply() for _ in range(n)]

    def call(self, *args):
        """Send one command, return its raw reply bytes."""
        self.send(encode(*args))
        return self.read_reply()

    def value(self, *args):
        """Send one command, return its parsed reply value."""
        return parse(self.call(*args))[0]

    def pipeline(self, cmds):
        """Send many commands (lists of args, or raw bytes) in one write; raw replies."""
        self.send(b"".join(c if isinstance(c, bytes) else encode(*c) for c in cmds))
        return self.read_replies(len(cmds))

    def read_all(self, timeout=5.0):
        """Read until the server closes (returns (data, True)) or until timeout passes
        with no byte (returns (data, False)).  Includes unread buffered bytes."""
        data = bytes(self.buf[self.pos:])
        self.pos = len(self.buf)
        self.sock.settimeout(timeout)
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                return data, False
            except (ConnectionResetError, BrokenPipeError):
                return data, True
            if not chunk:
                return data, True
            data += chunk


class NativeConn:
    """The native line protocol: send a line, read a line (without its CRLF)."""

    def __init__(self, port, host=HOST, timeout=10.0, server=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.server = server
        self.port = port

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(to_bytes(data))

    def read_line(self):
        """Next reply line without the trailing CRLF (or bare LF)."""
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                if self.server is not None:
                    self.server.check()
                raise ConnectionClosed("timed out waiting for a line on port %d; have %r"
                                       % (self.port, self.buf[:200]))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if self.server is not None:
                    self.server.check()
                raise ConnectionClosed("connection closed by server; pending %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        if line.endswith(b"\r"):
            line = line[:-1]
        return line

    def raw_line(self):
        """Next reply line including its terminator, to check the exact framing."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionClosed("connection closed by server; pending %r" % self.buf)
            self.buf += chunk
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def cmd(self, line):
        """Send one request line (CRLF appended) and return the reply line."""
        self.send(to_bytes(line) + b"\r\n")
        return self.read_line()

    def closed_by_peer(self, timeout=5.0):
        """True when the server closes the connection within timeout (no more data)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


# Lines the tests want printed at the end of the run (conftest prints them).
SUMMARY = []


def wait_for(pred, timeout=5.0, interval=0.05):
    """Poll pred() until it is truthy or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)
