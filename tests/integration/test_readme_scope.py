"""README says what works with Redis clients and what does not yet (issue 18.9):
no blanket "every Redis client works" claim, and each command it lists as not
there yet is really refused by the server, so the list cannot go stale silently
in either direction (when one of them lands, this test says to update README)."""
import os
import re

from crabtest import RespConn

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def readme():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        return f.read()


def test_no_blanket_compatibility_claim():
    text = re.sub(r"\s+", " ", readme()).lower()
    for claim in ("every redis client", "all redis clients", "any redis client",
                  "work unchanged", "works unchanged", "drop-in replacement"):
        assert claim not in text, "README claims %r" % claim


def not_yet_section():
    text = readme()
    i = text.index("**Not there yet**")
    return text[i:text.index("\n- **", i + 1)]


def test_not_yet_commands_are_refused(crab, crab_only):
    section = not_yet_section()
    listed = set(re.findall(r"`([A-Z]+)[`/ ]", section))
    for must in ("MULTI", "EXEC", "EVAL", "HSET", "LPUSH", "SADD", "ZADD"):
        assert must in listed, must
    args = {"EVAL": ["return 1", "0"], "FCALL": ["f", "0"], "SSUBSCRIBE": ["ch"],
            "HSET": ["h", "f", "v"], "LPUSH": ["l", "v"],
            "SADD": ["s", "m"], "ZADD": ["z", "1", "m"], "XADD": ["x", "*", "f", "v"],
            "WATCH": ["k"], "SELECT": ["1"]}
    with RespConn(crab.resp_port) as c:
        for name in sorted(listed):
            reply = c.call(name, *args.get(name, []))
            want = b"-ERR" if name == "SELECT" else b"-ERR unknown command '%s'" % name.encode()
            assert reply.startswith(want), \
                "README says %s is not there yet, the server answers %r" % (name, reply)


def test_cluster_claims_match_what_is_there(crab, crab_only):
    """README says replicas and failover are not there yet, and that native
    clients and plain Redis clients (the proxy port) talk to any node, which
    test_cluster_forward checks; without cluster mode, CLUSTER answers as Redis
    with cluster support off."""
    text = re.sub(r"\s+", " ", readme())
    i = text.index("**Cluster mode**")
    claim = text[i:i + 900]
    assert "Not there yet: replicas and failover" in claim
    assert "Native-protocol clients talk to any node" in claim
    assert "`--cluster.proxy_port`" in claim
    with RespConn(crab.resp_port) as c:
        assert c.call("CLUSTER", "INFO").startswith(b"-ERR This instance has cluster support disabled")
        assert c.call("CONFIG", "GET", "cluster-proxy-port") == b"*0\r\n"
