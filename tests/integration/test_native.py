"""The native text protocol (SPEC 2a): every command and its exact reply line, case
insensitivity, token separation, bare LF, pipelining, QUIT, unknown commands, TTLs,
AUTH and STATS, and the switch to RESP when a connection's first byte is '*'.

Replies are checked as whole lines including the CRLF terminator (NativeConn.raw_line).
"""

import json
import socket
import time

import pytest

from crabtest import NativeConn, RespConn, encode, parse

pytestmark = pytest.mark.usefixtures("crab_only")


@pytest.fixture
def nat(crab):
    with NativeConn(crab.port, server=crab) as c:
        yield c


def raw(conn, line):
    conn.send(line)
    return conn.raw_line()


def test_ping_exact(nat):
    assert raw(nat, b"PING\r\n") == b"PONG\r\n"


def test_put_get_del_exact(nat):
    assert raw(nat, b"PUT k1 hello\r\n") == b"OK\r\n"
    assert raw(nat, b"GET k1\r\n") == b"hello\r\n"
    assert raw(nat, b"PUT k1 world\r\n") == b"OK\r\n"
    assert raw(nat, b"GET k1\r\n") == b"world\r\n"
    assert raw(nat, b"DEL k1\r\n") == b"OK\r\n"
    assert raw(nat, b"GET k1\r\n") == b"NULL\r\n"
    assert raw(nat, b"DEL k1\r\n") == b"NULL\r\n"
    assert raw(nat, b"GET never-set\r\n") == b"NULL\r\n"


def test_values_with_symbols(nat):
    for v in [b"{\"json\":1}", b"a:b:c", b"x=1&y=2", b"\xc3\xa9t\xc3\xa9", b"12345678901234567890",
              b"-", b"*star", b"$dollar", b"a\"b", b"back\\slash"]:
        assert nat.cmd(b"PUT sym " + v) == b"OK"
        assert nat.cmd(b"GET sym") == v
    # a value GET could not tell from a miss comes back quoted
    assert nat.cmd(b"PUT sym NULL") == b"OK"
    assert nat.cmd(b"GET sym") == b'"NULL"'


def quote(v):
    """A value written as docs/protocol.md 1.2 says a GET reply writes it."""
    if not (v == b"" or v.startswith(b'"') or v == b"NULL" or v.startswith(b"ERROR:")
            or any(c <= 0x20 or c == 0x7f for c in v)):
        return v
    out = b'"'
    for c in v:
        if c in b'"\\':
            out += b"\\" + bytes([c])
        elif c in b"\n\r\t":
            out += {10: b"\\n", 13: b"\\r", 9: b"\\t"}[c]
        elif c < 0x20 or c == 0x7f:
            out += b"\\x%02x" % c
        else:
            out += bytes([c])
    return out + b'"'


def test_issue18_json_as_python_writes_it(nat):
    """The original README's example: JSON from json.dumps (with spaces)."""
    doc = json.dumps({"name": "Alice Smith", "age": 30}).encode()
    assert nat.cmd(b"PUT user:124 " + quote(doc)) == b"OK"
    assert nat.cmd(b"PUT user:125 " + quote(doc) + b" 60") == b"OK"
    got = nat.cmd(b"GET user:124")
    assert got == quote(doc)
    assert nat.cmd(b"PUT copy " + got) == b"OK"      # a GET reply can be sent back as is
    assert nat.cmd(b"GET copy") == got
    # what the bytes are: the same, read through RESP
    with RespConn(nat.server.port) as r:
        assert r.value("GET", "copy") == doc
        assert r.value("GET", "user:125") == doc
    assert 59 <= int(nat.cmd(b"TTL user:125")) <= 60


def test_issue18_empty_and_escapes(nat):
    assert nat.cmd(b'PUT empty ""') == b"OK"
    assert nat.cmd(b"GET empty") == b'""'
    with RespConn(nat.server.port) as r:
        assert r.value("GET", "empty") == b""
        assert r.value("STRLEN", "empty") == 0
    assert nat.cmd(b'PUT esc "a\\"b\\\\c\\n\\r\\t\\x41\\x00\\q"') == b"OK"
    with RespConn(nat.server.port) as r:
        assert r.value("GET", "esc") == b'a"b\\c\n\r\tA\x00q'
    assert nat.cmd(b"GET esc") == b'"a\\"b\\\\c\\n\\r\\tA\\x00q"'
    assert nat.cmd(b'PUT "key with space" "v w"') == b"OK"
    assert nat.cmd(b'GET "key with space"') == b'"v w"'
    # a quote inside a plain token is an ordinary byte, as it always was
    assert nat.cmd(b'PUT k {"a":"b"}') == b"OK"
    assert nat.cmd(b"GET k") == b'{"a":"b"}'


def test_issue18_round_trip_any_bytes(crab, nat):
    """Any value stored through RESP, read natively, sent back natively, is the same bytes."""
    import random
    rnd = random.Random(18)
    with RespConn(crab.port) as r:
        for i in range(300):
            v = bytes(rnd.choice(b' \t\r\n"\\x0aN\x00\x7f\xff') for _ in range(rnd.randrange(0, 30)))
            assert r.value("SET", "rt", v) == "OK"
            got = nat.cmd(b"GET rt")
            assert got == quote(v), (v, got)
            assert nat.cmd(b"PUT rt2 " + got) == b"OK"
            assert r.value("GET", "rt2") == v, (v, got)


def test_issue18_precise_errors(nat):
    r = nat.cmd(b'PUT user:124 {"name": "Alice"}')
    assert r.startswith(b"ERROR: unbalanced quotes: the closing quote at byte 29 is followed by '}'"), r
    r = nat.cmd(b'PUT sp3 {"name": "Alice Smith"}')
    assert r.startswith(b"ERROR: unbalanced quotes"), r
    r = nat.cmd(b'PUT k "no end')
    assert r.startswith(b"ERROR: unbalanced quotes: the quote at byte 7 is not closed"), r
    r = nat.cmd(b"PUT sp hello world and more")
    assert r.startswith(b"ERROR: wrong number of arguments: too many tokens (6, at most 4)"), r
    assert b"double-quoted" in r
    r = nat.cmd(b"PUT sp hello world")
    assert r == (b"ERROR: invalid ttl world: expected a positive number of seconds "
                 b"(a value with spaces must be one double-quoted token)"), r
    assert nat.cmd(b"PUT sp hello -5") == b"ERROR: invalid ttl -5: expected a positive number of seconds"
    assert nat.cmd(b"GET") == b"ERROR: wrong number of arguments: too few tokens (1, at least 2): usage: GET key"
    # the connection goes on after each of these
    assert nat.cmd(b"PING") == b"PONG"


def test_long_value(nat):
    v = b"v" * 100000
    assert nat.cmd(b"PUT big " + v) == b"OK"
    assert nat.cmd(b"GET big") == v


def test_case_insensitive_commands(nat):
    assert nat.cmd(b"ping") == b"PONG"
    assert nat.cmd(b"PiNg") == b"PONG"
    assert nat.cmd(b"put Key Val") == b"OK"
    assert nat.cmd(b"gEt Key") == b"Val"
    # keys stay case-sensitive
    assert nat.cmd(b"get key") == b"NULL"
    assert nat.cmd(b"ttl Key") == b"-1"
    assert nat.cmd(b"Expire Key 100") == b"OK"
    assert nat.cmd(b"dEl Key") == b"OK"


def test_multiple_spaces(nat):
    assert nat.cmd(b"PUT    spaced     value") == b"OK"
    assert nat.cmd(b"GET   spaced") == b"value"
    assert nat.cmd(b"PUT  t2  v2   100") == b"OK"
    ttl = int(nat.cmd(b"TTL    t2"))
    assert 98 <= ttl <= 100


def test_bare_lf(nat):
    """Replies end the way the request did: LF after a bare LF, CRLF after CRLF."""
    nat.send(b"PING\n")
    assert nat.raw_line() == b"PONG\n"
    nat.send(b"PUT lf v\nGET lf\n")
    assert nat.raw_line() == b"OK\n"
    assert nat.raw_line() == b"v\n"
    nat.send(b"GET lf\r\nGET lf\n")
    assert nat.raw_line() == b"v\r\n"
    assert nat.raw_line() == b"v\n"
    # every kind of reply: NULL, integers, errors, quoted values, STATS
    nat.send(b"GET none\nTTL lf\nBOGUS\nPUT q \"a b\"\nGET q\nPUT k \"x\n\nSTATS\n")
    assert nat.raw_line() == b"NULL\n"
    assert nat.raw_line() == b"-1\n"
    line = nat.raw_line()
    assert line.startswith(b"ERROR: unknown command") and not line.endswith(b"\r\n")
    assert nat.raw_line() == b"OK\n"
    assert nat.raw_line() == b'"a b"\n'
    line = nat.raw_line()
    assert line.startswith(b"ERROR: unbalanced quotes") and not line.endswith(b"\r\n")
    assert nat.raw_line() == b"ERROR: empty command\n"
    stats = nat.raw_line()
    assert stats.startswith(b"{") and stats.endswith(b"}\n") and b"\r" not in stats
    nat.send(b"QUIT\n")
    assert nat.raw_line() == b"OK\n"


def test_bare_lf_fatal_error(crab):
    """The error before a close follows the connection's last line ending."""
    with NativeConn(crab.port, server=crab) as c:
        c.send(b"PING\n" + b"x" * (1024 * 1024 + 10) + b"\n")
        assert c.raw_line() == b"PONG\n"
        assert c.raw_line() == b"ERROR: line too long\n"


def test_original_readme_table(nat):
    """Each row of the original README's table, as docs/protocol.md 1.3 says CrabCache
    answers it (same, or the documented difference)."""
    assert nat.cmd(b"PING") == b"PONG"
    assert nat.cmd(b"PUT key value") == b"OK"
    assert nat.cmd(b"GET key") == b"value"
    assert nat.cmd(b"EXPIRE key 60") == b"OK"
    assert 59 <= int(nat.cmd(b"TTL key")) <= 60
    assert nat.cmd(b"DEL key") == b"OK"
    stats = json.loads(nat.cmd(b"STATS"))
    assert isinstance(stats, dict) and "keys" in stats
    # the documented differences: a missing key
    assert nat.cmd(b"GET key") == b"NULL"
    assert nat.cmd(b"DEL key") == b"NULL"
    assert nat.cmd(b"EXPIRE key 60") == b"NULL"


# The Python client of the original CrabCache README (github.com/RogerFelipeNsk/crabcache,
# README.md, "Cliente Python"), verbatim but for the port: it sends bare-LF lines and
# expects the replies its comments give.
ORIGINAL_README_CLIENT = """
import socket

# Conectar
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.connect(('localhost', 8000))

# Enviar comandos
sock.send(b'PUT user:123 {"name":"Alice"}\\n')
response = sock.recv(4096)  # b'OK\\n'

sock.send(b'GET user:123\\n')
response = sock.recv(4096)  # b'{"name":"Alice"}\\n'

sock.close()
"""


def test_original_readme_python_client(crab):
    src = ORIGINAL_README_CLIENT.replace("8000", str(crab.port))
    replies = []
    real_recv = socket.socket.recv

    def recv(self, n, *a):
        data = real_recv(self, n, *a)
        replies.append(data)
        return data

    socket.socket.recv = recv
    try:
        exec(compile(src, "original-readme-client", "exec"), {})
    finally:
        socket.socket.recv = real_recv
    assert replies == [b"OK\n", b'{"name":"Alice"}\n']


def test_pipelining_in_order(nat):
    n = 2000
    req = b"".join(b"PUT p%d v%d\r\n" % (i, i) for i in range(n))
    req += b"".join(b"GET p%d\r\n" % i for i in range(n))
    req += b"GET p-missing\r\nPING\r\n"
    nat.send(req)
    for _ in range(n):
        assert nat.read_line() == b"OK"
    for i in range(n):
        assert nat.read_line() == b"v%d" % i
    assert nat.read_line() == b"NULL"
    assert nat.read_line() == b"PONG"


def test_pipelining_split_across_packets(nat):
    req = b"PUT split abc\r\nGET split\r\nPING\r\n"
    for i in range(len(req)):
        nat.send(req[i:i + 1])
        time.sleep(0.001)
    assert nat.read_line() == b"OK"
    assert nat.read_line() == b"abc"
    assert nat.read_line() == b"PONG"


def test_quit_closes(crab):
    with NativeConn(crab.port, server=crab) as c:
        assert c.cmd(b"PING") == b"PONG"
        c.send(b"QUIT\r\n")
        assert c.raw_line() == b"OK\r\n"
        assert c.closed_by_peer(5.0), "server did not close the connection after QUIT"


def test_quit_lowercase_and_pipelined_tail_ignored(crab):
    with NativeConn(crab.port, server=crab) as c:
        c.send(b"PUT q1 a\r\nquit\r\nPUT q2 b\r\n")
        assert c.read_line() == b"OK"
        assert c.read_line() == b"OK"
        assert c.closed_by_peer(5.0)
    with NativeConn(crab.port, server=crab) as c:
        assert c.cmd(b"GET q1") == b"a"
        assert c.cmd(b"GET q2") == b"NULL", "a command after QUIT was executed"


def test_unknown_command_keeps_connection(nat):
    for bad in [b"FROB x", b"GETX k", b"12345", b"PUTT k v", b"\x01\x02"]:
        reply = nat.cmd(bad)
        assert reply.startswith(b"ERROR: ") and len(reply) > len(b"ERROR: "), (bad, reply)
    assert nat.cmd(b"PING") == b"PONG"


def test_wrong_arguments_are_errors(nat):
    for bad in [b"GET", b"PUT onlykey", b"PUT k v notanumber", b"EXPIRE k",
                b"EXPIRE k abc", b"TTL", b"DEL", b"GET a b", b"PUT k v 10 extra"]:
        reply = nat.cmd(bad)
        assert reply.startswith(b"ERROR: "), (bad, reply)
    assert nat.cmd(b"GET k") == b"NULL", "a rejected PUT stored something"
    assert nat.cmd(b"PING") == b"PONG"


def test_ttl_semantics(nat):
    assert nat.cmd(b"TTL missing") == b"NULL"
    assert nat.cmd(b"PUT t v") == b"OK"
    assert nat.cmd(b"TTL t") == b"-1"
    assert nat.cmd(b"EXPIRE t 100") == b"OK"
    assert 99 <= int(nat.cmd(b"TTL t")) <= 100
    assert nat.cmd(b"EXPIRE missing 100") == b"NULL"
    assert nat.cmd(b"PUT t2 v 50") == b"OK"
    assert 49 <= int(nat.cmd(b"TTL t2")) <= 50
    # PUT without a ttl replaces the key, expiry included (as SET does in Redis)
    assert nat.cmd(b"PUT t2 w") == b"OK"
    assert nat.cmd(b"TTL t2") == b"-1"


def test_ttl_expires(nat):
    assert nat.cmd(b"PUT e1 v 1") == b"OK"
    assert nat.cmd(b"PUT e2 v") == b"OK"
    assert nat.cmd(b"EXPIRE e2 1") == b"OK"
    assert nat.cmd(b"GET e1") == b"v"
    time.sleep(1.3)
    assert nat.cmd(b"GET e1") == b"NULL"
    assert nat.cmd(b"GET e2") == b"NULL"
    assert nat.cmd(b"TTL e1") == b"NULL"
    assert nat.cmd(b"DEL e2") == b"NULL"
    assert nat.cmd(b"EXPIRE e1 10") == b"NULL"


def test_stats_json(nat):
    nat.cmd(b"PUT s1 v")
    nat.cmd(b"PUT s2 v")
    before = json.loads(nat.cmd(b"STATS"))
    assert nat.cmd(b"GET s1") == b"v"
    assert nat.cmd(b"GET nope") == b"NULL"
    line = nat.cmd(b"STATS")
    stats = json.loads(line)
    assert isinstance(stats, dict)
    flat = json.dumps(stats)
    for field in ("keys", "memory", "hits", "misses", "evictions", "shard"):
        assert field in flat, "STATS lacks %r: %s" % (field, line[:500])

    def top(d, word):
        for k, v in d.items():
            if word in k and isinstance(v, (int, float)):
                return v
        raise AssertionError("no numeric top-level %r in STATS: %s" % (word, line[:500]))

    assert top(stats, "keys") == 2
    assert top(stats, "hits") >= top(before, "hits") + 1
    assert top(stats, "misses") >= top(before, "misses") + 1


def test_auth(make_crab):
    srv = make_crab(extra_args=["--auth-token", "s3cret"])
    with NativeConn(srv.port, server=srv) as c:
        assert c.cmd(b"PING") == b"PONG"
        assert c.cmd(b"GET k").startswith(b"ERROR: ")
        assert c.cmd(b"PUT k v").startswith(b"ERROR: ")
        assert c.cmd(b"AUTH wrong") == b"ERROR: invalid token"
        assert c.cmd(b"GET k").startswith(b"ERROR: ")
        assert c.cmd(b"AUTH s3cret") == b"OK"
        assert c.cmd(b"PUT k v") == b"OK"
        assert c.cmd(b"GET k") == b"v"
    with NativeConn(srv.port, server=srv) as c:
        assert c.cmd(b"GET k").startswith(b"ERROR: "), "authentication leaked to a new connection"
        c.send(b"QUIT\r\n")
        assert c.read_line() == b"OK"


def test_star_switches_to_resp(crab):
    with RespConn(crab.port, server=crab) as r:
        assert r.call(b"PING") == b"+PONG\r\n"
        assert r.call(b"SET", b"bin\x00k", b"v\r\nx") == b"+OK\r\n"
        assert r.call(b"GET", b"bin\x00k") == b"$4\r\nv\r\nx\r\n"
        assert r.call(b"GET", b"missing") == b"$-1\r\n"
        assert r.call(b"INCR", b"n") == b":1\r\n"
        r.send(encode(b"SET", b"a", b"1") + encode(b"GET", b"a") + encode(b"DEL", b"a"))
        assert r.read_replies(3) == [b"+OK\r\n", b"$1\r\n1\r\n", b":1\r\n"]


def test_native_and_resp_share_keyspace(crab, nat):
    assert nat.cmd(b"PUT shared fromnative") == b"OK"
    with RespConn(crab.resp_port, server=crab) as r:
        assert r.call(b"GET", b"shared") == b"$10\r\nfromnative\r\n"
        assert r.call(b"SET", b"shared2", b"fromresp", b"EX", b"100") == b"+OK\r\n"
    assert nat.cmd(b"GET shared2") == b"fromresp"
    assert 99 <= int(nat.cmd(b"TTL shared2")) <= 100


def test_many_connections_interleaved(crab):
    conns = [NativeConn(crab.port, server=crab) for _ in range(50)]
    try:
        for i, c in enumerate(conns):
            c.send(b"PUT c%d %d\r\n" % (i, i))
        for c in conns:
            assert c.read_line() == b"OK"
        for i, c in enumerate(reversed(conns)):
            j = len(conns) - 1 - i
            assert c.cmd(b"GET c%d" % j) == b"%d" % j
    finally:
        for c in conns:
            c.close()


def test_client_close_midline_then_server_fine(crab):
    s = socket.create_connection(("127.0.0.1", crab.port))
    s.sendall(b"PUT half")
    s.close()
    with NativeConn(crab.port, server=crab) as c:
        assert c.cmd(b"PING") == b"PONG"
        assert c.cmd(b"GET half") == b"NULL"


def test_resp_view_of_native_put(crab, nat):
    assert nat.cmd(b"PUT view 12 100") == b"OK"
    with RespConn(crab.resp_port, server=crab) as r:
        assert r.call(b"INCR", b"view") == b":13\r\n"
        assert parse(r.call(b"TTL", b"view"))[0] in (99, 100)
