"""RESP through a real client library (redis-py from Debian) on the RESP port and on the
native port (first byte '*'), RESP3 after HELLO 3 (raw: redis-py 4.3 speaks RESP2 only),
inline commands on the RESP port, and the admin commands clients rely on (INFO,
CONFIG, COMMAND, CLIENT, DEBUG, TIME, RESET, QUIT).

Where a reply is deterministic it is compared with a reference redis-server's.
"""

import time

import pytest
import redis

import crabtest
from crabtest import RespConn, RespError, parse


def client(port):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)


@pytest.fixture(params=["resp_port", "native_port"])
def r(request, crab):
    port = crab.resp_port if request.param == "resp_port" else crab.port
    c = client(port)
    yield c
    c.close()


def test_basic_commands(r):
    assert r.ping() is True
    assert r.set("a", "1") is True
    assert r.get("a") == b"1"
    assert r.incr("a") == 2
    assert r.incrby("a", 10) == 12
    assert r.decr("a") == 11
    assert r.incrbyfloat("a", 0.5) == 11.5
    assert r.append("a", "x") == 5
    assert r.get("a") == b"11.5x"
    assert r.strlen("a") == 5
    assert r.getrange("a", 0, 1) == b"11"
    assert r.setrange("a", 1, "Z") == 5
    assert r.get("a") == b"1Z.5x"
    assert r.mset({"m1": "a", "m2": b"\x00\xff"}) is True
    assert r.mget("m1", "m2", "nope") == [b"a", b"\x00\xff", None]
    assert r.msetnx({"m1": "z", "m3": "c"}) is False
    assert r.setnx("m3", "c") is True
    assert r.exists("m1", "m2", "m3", "nope") == 3
    assert r.delete("m1", "m2", "nope") == 2
    assert r.getdel("m3") == b"c"
    assert r.get("m3") is None
    assert r.getset("gs", "new") is None
    assert r.getset("gs", "newer") == b"new"
    assert r.type("gs") == b"string"
    assert r.type("nope") == b"none"
    assert r.unlink("gs") == 1
    assert r.dbsize() == 1


def test_expiry_commands(r):
    assert r.set("e", "v", ex=100) is True
    assert 99 <= r.ttl("e") <= 100
    assert 99000 <= r.pttl("e") <= 100000
    assert r.expire("e", 200) is True
    assert 199 <= r.ttl("e") <= 200
    assert r.persist("e") is True
    assert r.ttl("e") == -1
    assert r.pexpire("e", 50000) is True
    now = int(time.time())
    assert r.expireat("e", now + 300) is True
    assert abs(r.execute_command("EXPIRETIME", "e") - (now + 300)) <= 1
    assert r.setex("sx", 100, "v") is True
    assert r.psetex("px", 100000, "v") is True
    assert 99 <= r.ttl("sx") <= 100
    assert r.getex("sx", persist=True) == b"v"
    assert r.ttl("sx") == -1
    assert r.ttl("nope") == -2
    assert r.set("short", "v", px=200) is True
    time.sleep(0.4)
    assert r.get("short") is None


def test_keyspace_commands(r):
    keys = {b"key:%d" % i for i in range(300)}
    with r.pipeline(transaction=False) as p:
        for k in keys:
            p.set(k, b"v")
        p.execute()
    r.set(b"other", b"x")
    assert set(r.keys("key:*")) == keys
    assert set(r.scan_iter(match="key:*", count=17)) == keys
    assert set(r.scan_iter(_type="string")) == keys | {b"other"}
    assert r.randomkey() in keys | {b"other"}
    assert r.rename("other", "other2") is True
    assert r.renamenx("other2", "key:1") is False
    assert r.copy("other2", "copy") is True
    assert r.get("copy") == b"x"
    assert r.touch("copy", "nope") == 1
    assert r.dbsize() == 302
    assert r.flushdb() is True
    assert r.dbsize() == 0


def test_bits_and_lcs(r):
    assert r.setbit("b", 7, 1) == 0
    assert r.getbit("b", 7) == 1
    assert r.bitcount("b") == 1
    assert r.get("b") == b"\x01"
    r.set("l1", "ohmytext")
    r.set("l2", "mynewtext")
    assert r.execute_command("LCS", "l1", "l2") == b"mytext"
    assert r.execute_command("LCS", "l1", "l2", "LEN") == 6


def test_errors_raised(r):
    r.set("s", "notanumber")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.incr("s")
    with pytest.raises(redis.ResponseError, match="unknown command"):
        r.execute_command("NOSUCHCMD", "x")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("GET")
    assert r.ping() is True


def test_pipeline_large(r):
    with r.pipeline(transaction=False) as p:
        for i in range(5000):
            p.set("p%d" % i, i)
            p.get("p%d" % i)
        out = p.execute()
    assert out[0::2] == [True] * 5000
    assert out[1::2] == [str(i).encode() for i in range(5000)]


def test_big_value(r):
    v = bytes(range(256)) * 8192   # 2 MiB
    assert r.set("big", v) is True
    assert r.get("big") == v
    assert r.strlen("big") == len(v)


def test_info_sections(crab):
    c = client(crab.resp_port)
    c.mset({"i1": "a", "i2": "b"})
    c.set("i3", "c", ex=1000)
    with RespConn(crab.resp_port, server=crab) as raw:
        body = parse(raw.call("INFO"))[0].decode()
        for section in ("Server", "Clients", "Memory", "Stats", "CPU", "Persistence",
                        "Replication", "Keyspace"):
            assert "# %s\r\n" % section in body, "INFO lacks section %s" % section
        ks = parse(raw.call("INFO", "keyspace"))[0].decode()
        assert "db0:keys=3,expires=1," in ks, ks
        cs = parse(raw.call("INFO", "commandstats"))[0].decode()
        assert "cmdstat_mset:calls=" in cs, cs[:500]
    info = c.info()
    assert "used_memory" in info and "connected_clients" in info
    assert info["connected_clients"] >= 1
    assert c.info("keyspace")["db0"]["keys"] == 3
    c.close()


def test_config_get_set(crab_only, make_crab):
    srv = make_crab(max_memory="64mb")
    c = client(srv.resp_port)
    assert c.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
    assert c.config_set("maxmemory", str(100 * 1024 * 1024)) is True
    assert c.config_get("maxmemory") == {"maxmemory": str(100 * 1024 * 1024)}
    assert c.config_get("no-such-parameter") == {}
    c.close()


def test_config_get_resp3_shape(crab, redis_ref):
    for srv in (redis_ref, crab):
        with RespConn(srv.resp_port, server=srv) as c:
            assert c.call("HELLO", "3")[:1] == b"%"
            assert c.call("CONFIG", "GET", "no-such-parameter") == b"%0\r\n"
            v = parse(c.call("CONFIG", "GET", "maxmemory"))[0]
            assert v[0] == "map" and v[1][0][0] == b"maxmemory", v


def test_command_introspection(crab):
    with RespConn(crab.resp_port, server=crab) as raw:
        n = parse(raw.call("COMMAND", "COUNT"))[0]
        assert isinstance(n, int) and n >= 40
        info = parse(raw.call("COMMAND", "INFO", "get", "set", "nosuch"))[0]
        assert info[0][0] == b"get" and info[0][1] == 2
        assert info[1][0] == b"set" and info[1][1] == -3
        assert info[2] is None
        docs = parse(raw.call("COMMAND", "DOCS", "get"))[0]
        assert isinstance(docs, list) and docs and docs[0] == b"get"
    c = client(crab.resp_port)
    cmds = c.command()   # redis-py parses the full COMMAND reply
    assert "get" in cmds and cmds["get"]["arity"] == 2
    c.close()


def test_client_commands(crab):
    c = client(crab.resp_port)
    other = client(crab.resp_port)
    cid = c.client_id()
    assert isinstance(cid, int)
    assert c.client_setname("tester") is True
    assert c.client_getname() == "tester" or c.client_getname() == b"tester"
    other.ping()
    lst = c.client_list()
    assert any(e.get("name") == "tester" and int(e["id"]) == cid for e in lst), lst
    assert len(lst) >= 2
    info = c.execute_command("CLIENT", "INFO")
    info = info.decode() if isinstance(info, bytes) else info
    assert "id=%d " % cid in info and "name=tester" in info
    other.close()
    c.close()


def test_client_kill_raw(crab):
    with RespConn(crab.resp_port, server=crab) as a, RespConn(crab.resp_port, server=crab) as b:
        bid = parse(b.call("CLIENT", "ID"))[0]
        assert a.call("CLIENT", "KILL", "ID", str(bid)) == b":1\r\n"
        data, closed = b.read_all(5.0)
        assert closed and data == b"", "killed client still open: %r" % data
        assert a.call("CLIENT", "KILL", "ID", str(bid)) == b":0\r\n"


def test_misc_admin(crab):
    with RespConn(crab.resp_port, server=crab) as c:
        t = parse(c.call("TIME"))[0]
        assert len(t) == 2 and abs(int(t[0]) - time.time()) < 5 and 0 <= int(t[1]) < 1000000
        assert isinstance(parse(c.call("LASTSAVE"))[0], int)
        assert c.call("SELECT", "0") == b"+OK\r\n"
        assert c.call("FUNCTION", "FLUSH") == b"+OK\r\n"
        assert c.call("DEBUG", "SLEEP", "0") == b"+OK\r\n"
        assert c.call("DEBUG", "LOG", "hello from the tests") == b"+OK\r\n"
        assert c.call("DEBUG", "SET-ACTIVE-EXPIRE", "1") == b"+OK\r\n"
        assert c.call("ECHO", "x") == b"$1\r\nx\r\n"
        assert c.call("DBSIZE") == b":0\r\n"


def test_debug_refused_server_survives(crab_only, crab):
    with RespConn(crab.resp_port, server=crab) as c:
        for sub in ("SEGFAULT", "PANIC", "RELOAD", "RESTART", "OOM"):
            reply = c.call("DEBUG", sub)
            assert reply.startswith(b"-ERR"), (sub, reply)
        assert c.call("PING") == b"+PONG\r\n"
    crab.check()


def test_resp3_hello_and_types(crab):
    with RespConn(crab.resp_port, server=crab) as c:
        hello = parse(c.call("HELLO", "3"))[0]
        assert hello[0] == "map"
        fields = dict(hello[1])
        assert fields[b"proto"] == 3
        assert b"server" in fields and b"version" in fields and b"id" in fields
        assert fields[b"role"] == b"master" and fields[b"mode"] == b"standalone"
        assert c.call("GET", "nope") == b"_\r\n"
        assert c.call("MGET", "nope", "nope") == b"*2\r\n_\r\n_\r\n"
        assert c.call("SET", "k", "v") == b"+OK\r\n"
        assert c.call("SET", "k", "v", "NX") == b"_\r\n"
        assert c.call("INCRBYFLOAT", "f", "1.5") == b"$3\r\n1.5\r\n"
        assert c.call("PING") == b"+PONG\r\n"
        assert c.call("HELLO", "2")[:1] == b"*"
        assert c.call("GET", "nope") == b"$-1\r\n"
        assert c.call("HELLO", "3")[:1] == b"%"
        assert c.call("RESET") == b"+RESET\r\n"
        assert c.call("GET", "nope") == b"$-1\r\n"
        assert c.call("HELLO", "4") == b"-NOPROTO unsupported protocol version\r\n"


def test_resp3_on_native_port(crab):
    with RespConn(crab.port, server=crab) as c:
        assert c.call("HELLO", "3")[:1] == b"%"
        assert c.call("GET", "nope") == b"_\r\n"


def test_inline_commands(crab):
    with RespConn(crab.resp_port, server=crab) as c:
        c.send(b"PING\r\n")
        assert c.read_reply() == b"+PONG\r\n"
        c.send(b"SET inl value\r\n")
        assert c.read_reply() == b"+OK\r\n"
        c.send(b"GET inl\r\n")
        assert c.read_reply() == b"$5\r\nvalue\r\n"
        c.send(b'SET "with space" "a\\x41\\n\\"q\\""\r\n')
        assert c.read_reply() == b"+OK\r\n"
        assert c.call("GET", "with space") == b'$6\r\naA\n"q"\r\n'
        c.send(b"set   multi    spaces\n")
        assert c.read_reply() == b"+OK\r\n"
        assert c.call("GET", "multi") == b"$6\r\nspaces\r\n"
        c.send(b"\r\n\r\nPING\r\n")   # empty inline lines are ignored
        assert c.read_reply() == b"+PONG\r\n"
        c.send(b"INCR n\r\nINCR n\r\n" + b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n")
        assert c.read_replies(3) == [b":1\r\n", b":2\r\n", b":3\r\n"]


def test_quit(crab):
    for port in (crab.resp_port, crab.port):
        with RespConn(port, server=crab) as c:
            c.send(crabtest.encode("QUIT") + crabtest.encode("SET", "afterquit", "1"))
            data, closed = c.read_all(5.0)
            assert data == b"+OK\r\n" and closed, (port, data, closed)
    with RespConn(crab.resp_port, server=crab) as c:
        assert c.call("EXISTS", "afterquit") == b":0\r\n"


def test_error_texts_match_redis(crab, redis_ref):
    cmds = [["GET"], ["SET", "k"], ["SET", "k", "v", "EX", "abc"], ["nosuch", "a", "b"],
            ["INCRBY", "k", "1.5"], ["CONFIG"], ["CLIENT", "NOSUCH"], ["SELECT", "9"],
            ["HELLO", "3", "AUTH"], ["COMMAND", "NOSUCH"], ["DBSIZE", "x"]]
    for cmd in cmds:
        with RespConn(redis_ref.port) as a, RespConn(crab.resp_port, server=crab) as b:
            exp, got = a.call(*cmd), b.call(*cmd)
            assert isinstance(parse(exp)[0], RespError)
            assert got == exp, (cmd, exp, got)
