"""Differential test: random RESP commands sent to redis-server and to CrabCache, replies
compared byte for byte.

Design: a seeded generator draws commands from the SPEC 2b string/keyspace set over a
small key pool (so commands collide), with every option of each command, invalid
arguments, wrong arity, unknown commands, random case, binary data, inline commands and
RESP3 connections.  Commands are sent in pipelined batches over several connection
pairs (one connection to each server per pair); each batch's replies are compared as raw
bytes.  Only what must differ is normalised: TTL-style readings within a tolerance,
KEYS as a set, SCAN as the set a full iteration returns, RANDOMKEY by membership, and
the server name/version/id fields of HELLO.  Time-dependent state is kept far from any
race: relative TTLs are unique multiples of 1000 s, absolute ones sit 500 s off that grid.

Environment: CRABTEST_SEED (reproduce a run), CRABTEST_DIFF_N (command count, default
100000), CRABTEST_DIFF_SKIP (command names to leave out while triaging).  On a mismatch the command, both replies and the commands before it are shown.
"""

import collections
import os
import random
import time

import pytest

import crabtest
from crabtest import RespConn, RespError, encode, parse

N_COMMANDS = int(os.environ.get("CRABTEST_DIFF_N", "100000"))
# Triage knob: comma-separated command names never generated (e.g. "RESET,AUTH" to get
# past a known crash).  Empty by default: the real run covers everything.
SKIP_NAMES = {w.strip().upper().encode() for w in
              os.environ.get("CRABTEST_DIFF_SKIP", "").split(",") if w.strip()}

KEYS = [b"k%d" % i for i in range(14)] + [
    b"{user1}:a", b"{user1}:b", b"{user1}:c", b"{}x",
    b"bin\x00key", b"\xff\xfe\x80", b"cr\r\nlf", b"sp ace", b"",
]
# Keys used only by LCS and its own SETs: their values stay short so LCS stays cheap.
LCS_KEYS = [b"lcs:a", b"lcs:b", b"lcs:c", b"lcs:none"]

INT_ARGS = [b"0", b"1", b"-1", b"10", b"+5", b"007", b"-0", b"42", b"-100",
            b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808",
            b"1.5", b"abc", b"", b" 1", b"1 ", b"0x10", b"1e3", b"--1"]
FLOAT_ARGS = [b"0", b"1", b"-1", b"0.1", b"-0.1", b"1.5", b"3.0", b"1e3", b"-2.5e-3",
              b"5.0e3", b"1e308", b"-1e308", b"inf", b"-inf", b"nan", b"abc", b"",
              b" 1", b"1 ", b"0x10", b"1.", b".5", b"+7", b"10.00000000000000001",
              b"17179869184", b"3.14159265358979323846", b"1e-20", b"00012", b"1e-5",
              b"123456789.123456789", b"-0.0", b"1e17", b"1e-17", b"4.9e-324", b"1e400",
              b"-1e4000", b"1e5000", b"0.1e1", b"1E2", b"1e", b"e1", b"1.5\x00",
              b"99999999999999999999", b"0.30000000000000004", b"-.5", b"+.5e+1"]
VALUE_CONST = [b"", b"0", b"1", b"-5", b"10", b"3.14", b"1e5", b"-0", b"abc",
               b"9223372036854775806", b"9223372036854775807", b"-9223372036854775808",
               b"-9223372036854775807", b"18446744073709551616", b" 12", b"12 ",
               b"1.7976931348623157e308", b"0.1", b"hello world", b"\x00", b"a\x00b",
               b"a\r\nb", b"\r\n", b"\xff\xfe\xfd", b"inf", b"00", b"+3", b"foobar",
               b"1e400", b"2.5e-10", b"5\x00", b"-1.5", b"4503599627370496.5", b"1e17",
               b"12345678901234567890", b"0x1p3", b" ", b"\t7"]
PATTERNS = [b"*", b"k*", b"k?", b"k1*", b"*a*", b"[a-k]*", b"[^k]*", b"{user1}*",
            b"*\\**", b"k[0-3]", b"k[!0-3]", b"\\k*", b"?", b"", b"bin*", b"[",
            b"k[", b"*[a-", b"*:?", b"lcs:*", b"*x", b"sp ace", b"\xff*", b"[k]?",
            b"k[1-]", b"[-z]*", b"*\\"]


class Gen:
    """Draws random commands; every draw goes through self.rng (seeded)."""

    def __init__(self, seed, t0):
        self.rng = random.Random(seed)
        self.t0 = t0
        self.used_ttl = set()

    # ---- building blocks ----------------------------------------------------------
    def key(self):
        return self.rng.choice(KEYS)

    def keys(self, lo=1, hi=4):
        return [self.key() for _ in range(self.rng.randint(lo, hi))]

    def value(self):
        r = self.rng.random()
        if r < 0.45:
            return self.rng.choice(VALUE_CONST)
        if r < 0.65:
            return str(self.rng.randint(-1000, 1000)).encode()
        if r < 0.75:
            return ("%.*f" % (self.rng.randint(0, 5), self.rng.uniform(-1e4, 1e4))).encode()
        if r < 0.95:
            n = self.rng.choice([1, 2, 3, 5, 8, 13, 30, 64])
            return bytes(self.rng.choice(b"abcdefgh") for _ in range(n))
        n = self.rng.randint(1, 40)
        return bytes(self.rng.randrange(256) for _ in range(n))

    def short_value(self):
        n = self.rng.randint(0, 24)
        return bytes(self.rng.choice(b"abcdeACGT") for _ in range(n))

    def int_arg(self, lo=-50, hi=50):
        if self.rng.random() < 0.25:
            return self.rng.choice(INT_ARGS)
        return str(self.rng.randint(lo, hi)).encode()

    def _unique_k(self):
        while True:
            k = self.rng.randint(1, 200000)
            if k not in self.used_ttl:
                self.used_ttl.add(k)
                return k

    def rel_s(self):
        """A relative TTL in seconds, unique, a multiple of 1000 s (no GT/LT ties)."""
        return str(1000 * self._unique_k()).encode()

    def rel_ms(self):
        return str(1000000 * self._unique_k()).encode()

    def abs_s(self, allow_past=True):
        """An absolute time: in the past (deletes) or 500 s off the relative grid."""
        r = self.rng.random()
        if r < 0.1 and allow_past:
            return self.rng.choice([b"1", b"0", str(self.t0 - 3600).encode()])
        return str(self.t0 + 1000 * self.rng.randint(1, 200) + 500).encode()

    def abs_ms(self, allow_past=True):
        r = self.rng.random()
        if r < 0.1 and allow_past:
            return self.rng.choice([b"1", b"0", str((self.t0 - 3600) * 1000).encode()])
        return str((self.t0 + 1000 * self.rng.randint(1, 200) + 500) * 1000
                   + self.rng.randint(0, 999)).encode()

    def bad_time(self):
        return self.rng.choice([b"0", b"-1", b"-1000", b"abc", b"", b"1.5",
                                b"9223372036854775807", b"-9223372036854775808",
                                b"9223372036854775", b"9223372036854775808"])

    def huge_ok_s(self):
        return b"9223370000000000"

    def expiry_opt(self, allow_keepttl=True, allow_persist=False, allow_past=True):
        """One expiry option with its argument (sometimes an invalid one).  SET passes
        allow_past=False: Redis 7.0 keeps a key SET with a past EXAT until expiry
        reclaims it, so DBSIZE would race (covered by test_expiry.py instead)."""
        r = self.rng.random()
        if r < 0.03:
            return [self.rng.choice([b"EX", b"PX", b"EXAT", b"PXAT"]), self.bad_time()]
        choices = [b"EX", b"PX", b"EXAT", b"PXAT"]
        if allow_keepttl:
            choices.append(b"KEEPTTL")
        if allow_persist:
            choices.append(b"PERSIST")
        opt = self.rng.choice(choices)
        if opt == b"EX":
            return [opt, self.rel_s()]
        if opt == b"PX":
            return [opt, self.rel_ms()]
        if opt == b"EXAT":
            return [opt, self.abs_s(allow_past)]
        if opt == b"PXAT":
            return [opt, self.abs_ms(allow_past)]
        return [opt]

    # ---- commands -----------------------------------------------------------------
    def c_set(self):
        opts = []
        if self.rng.random() < 0.5:
            opts.append(self.expiry_opt(allow_past=False))
        if self.rng.random() < 0.3:
            opts.append([self.rng.choice([b"NX", b"XX"])])
        if self.rng.random() < 0.25:
            opts.append([b"GET"])
        if self.rng.random() < 0.04:   # conflicting or unknown options
            opts.append(self.rng.choice([[b"NX"], [b"XX"], [b"KEEPTTL"], [b"EX", self.rel_s()],
                                         [b"PX", self.rel_ms()], [b"GET"], [b"FOO"], [b"EX"]]))
        self.rng.shuffle(opts)
        args = [b"SET", self.key(), self.value()]
        for o in opts:
            args += o
        return args

    def c_get(self):
        return [b"GET", self.key()]

    def c_getex(self):
        args = [b"GETEX", self.key()]
        if self.rng.random() < 0.7:
            args += self.expiry_opt(allow_keepttl=False, allow_persist=True)
        if self.rng.random() < 0.05:
            args += self.rng.choice([[b"PERSIST"], [b"EX", self.rel_s()], [b"KEEPTTL"], [b"EX"]])
        return args

    def c_getdel(self):
        return [b"GETDEL", self.key()]

    def c_getset(self):
        return [b"GETSET", self.key(), self.value()]

    def c_mget(self):
        return [b"MGET"] + self.keys(1, 6)

    def c_mset(self):
        args = [b"MSET"]
        for _ in range(self.rng.randint(1, 4)):
            args += [self.key(), self.value()]
        return args

    def c_msetnx(self):
        args = [b"MSETNX"]
        for _ in range(self.rng.randint(1, 3)):
            args += [self.key(), self.value()]
        return args

    def c_setnx(self):
        return [b"SETNX", self.key(), self.value()]

    def c_setex(self):
        t = self.rel_s() if self.rng.random() < 0.9 else self.bad_time()
        return [b"SETEX", self.key(), t, self.value()]

    def c_psetex(self):
        t = self.rel_ms() if self.rng.random() < 0.9 else self.bad_time()
        return [b"PSETEX", self.key(), t, self.value()]

    def c_incr(self):
        return [self.rng.choice([b"INCR", b"DECR"]), self.key()]

    def c_incrby(self):
        n = self.int_arg(-1000, 1000)
        if self.rng.random() < 0.05:
            n = self.rng.choice([b"9223372036854775807", b"-9223372036854775808",
                                 b"9223372036854775000", b"-9223372036854775000"])
        return [self.rng.choice([b"INCRBY", b"DECRBY"]), self.key(), n]

    def c_incrbyfloat(self):
        if self.rng.random() < 0.5:
            f = self.rng.choice(FLOAT_ARGS)
        else:
            f = ("%.*f" % (self.rng.randint(0, 6), self.rng.uniform(-100, 100))).encode()
        return [b"INCRBYFLOAT", self.key(), f]

    def c_append(self):
        return [b"APPEND", self.key(), self.value()]

    def c_strlen(self):
        return [b"STRLEN", self.key()]

    def c_getrange(self):
        return [b"GETRANGE", self.key(), self.int_arg(-40, 40), self.int_arg(-40, 40)]

    def c_setrange(self):
        r = self.rng.random()
        if r < 0.85:
            off = str(self.rng.randint(0, 64)).encode()
        elif r < 0.92:
            off = str(self.rng.randint(65, 3000)).encode()
        else:
            off = self.rng.choice([b"-1", b"536870912", b"536870913", b"abc",
                                   b"9223372036854775807", b"4294967296"])
        v = self.value() if self.rng.random() < 0.9 else b""
        return [b"SETRANGE", self.key(), off, v]

    def c_del(self):
        return [self.rng.choice([b"DEL", b"UNLINK"])] + self.keys(1, 3)

    def c_exists(self):
        return [self.rng.choice([b"EXISTS", b"TOUCH"])] + self.keys(1, 5)

    def c_expire(self):
        cmd = self.rng.choice([b"EXPIRE", b"PEXPIRE", b"EXPIREAT", b"PEXPIREAT"])
        r = self.rng.random()
        if r < 0.08:
            t = self.bad_time()
        elif r < 0.10:
            t = self.huge_ok_s() if cmd in (b"EXPIRE", b"EXPIREAT") else b"9223370000000000000"
        elif cmd == b"EXPIRE":
            t = self.rel_s()
        elif cmd == b"PEXPIRE":
            t = self.rel_ms()
        elif cmd == b"EXPIREAT":
            t = self.abs_s()
        else:
            t = self.abs_ms()
        args = [cmd, self.key(), t]
        r = self.rng.random()
        if r < 0.5:
            args.append(self.rng.choice([b"NX", b"XX", b"GT", b"LT"]))
        if r < 0.06:
            args.append(self.rng.choice([b"NX", b"XX", b"GT", b"LT", b"FOO"]))
        return args

    def c_ttl(self):
        return [self.rng.choice([b"TTL", b"PTTL", b"EXPIRETIME", b"PEXPIRETIME"]), self.key()]

    def c_persist(self):
        return [b"PERSIST", self.key()]

    def c_type(self):
        return [b"TYPE", self.key()]

    def c_keys(self):
        return [b"KEYS", self.rng.choice(PATTERNS)]

    def c_scan(self):
        args = [b"SCAN", b"0"]
        if self.rng.random() < 0.05:
            args[1] = self.rng.choice([b"abc", b"", b"1x", b"18446744073709551616"])
        opts = []
        if self.rng.random() < 0.5:
            opts.append([b"MATCH", self.rng.choice(PATTERNS)])
        if self.rng.random() < 0.5:
            opts.append([b"COUNT", self.rng.choice([b"1", b"2", b"5", b"10", b"100"])])
        if self.rng.random() < 0.3:
            opts.append([b"TYPE", self.rng.choice([b"string", b"list", b"STRING", b"zset"])])
        if self.rng.random() < 0.05:
            opts.append(self.rng.choice([[b"COUNT", b"0"], [b"COUNT", b"abc"], [b"COUNT", b"-1"],
                                         [b"MATCH"], [b"FOO", b"1"], [b"COUNT"], [b"TYPE"]]))
        for o in opts:
            args += o
        return args

    def c_dbsize(self):
        return [b"DBSIZE"]

    def c_flush(self):
        args = [self.rng.choice([b"FLUSHALL", b"FLUSHDB"])]
        if self.rng.random() < 0.5:
            args.append(self.rng.choice([b"SYNC", b"ASYNC", b"FOO"]))
        return args

    def c_rename(self):
        return [self.rng.choice([b"RENAME", b"RENAMENX"]), self.key(), self.key()]

    def c_randomkey(self):
        return [b"RANDOMKEY"]

    def c_copy(self):
        args = [b"COPY", self.key(), self.key()]
        r = self.rng.random()
        if r < 0.4:
            args.append(b"REPLACE")
        if r < 0.1:
            args += [b"DB", self.rng.choice([b"0", b"1", b"abc", b"-1"])]
        if r < 0.02:
            args.append(b"FOO")
        return args

    def c_setbit(self):
        off = self.int_arg(0, 300) if self.rng.random() < 0.95 else self.rng.choice(
            [b"4294967296", b"-1", b"23999", b"abc"])
        bit = self.rng.choice([b"0", b"1", b"1", b"2", b"-1", b"a"]) \
            if self.rng.random() < 0.1 else self.rng.choice([b"0", b"1"])
        return [b"SETBIT", self.key(), off, bit]

    def c_getbit(self):
        off = self.int_arg(0, 400) if self.rng.random() < 0.95 else self.rng.choice(
            [b"4294967296", b"4294967295", b"-1"])
        return [b"GETBIT", self.key(), off]

    def c_bitcount(self):
        args = [b"BITCOUNT", self.key()]
        r = self.rng.random()
        if r < 0.8:
            args += [self.int_arg(-20, 20), self.int_arg(-20, 20)]
            if self.rng.random() < 0.5:
                args.append(self.rng.choice([b"BYTE", b"BIT", b"bit", b"FOO"]))
        elif r < 0.9:
            args.append(self.int_arg(-5, 5))
        return args

    def c_lcs(self):
        a = self.rng.choice(LCS_KEYS)
        b = self.rng.choice(LCS_KEYS)
        if self.rng.random() < 0.1:
            b = self.key()   # one long operand at most: stays O(n) small
        args = [b"LCS", a, b]
        opts = []
        if self.rng.random() < 0.3:
            opts.append([b"LEN"])
        if self.rng.random() < 0.5:
            opts.append([b"IDX"])
        if self.rng.random() < 0.4:
            opts.append([b"MINMATCHLEN", self.rng.choice([b"0", b"1", b"2", b"3", b"5",
                                                           b"-1", b"abc"])])
        if self.rng.random() < 0.4:
            opts.append([b"WITHMATCHLEN"])
        if self.rng.random() < 0.03:
            opts.append(self.rng.choice([[b"FOO"], [b"MINMATCHLEN"]]))
        self.rng.shuffle(opts)
        for o in opts:
            args += o
        return args

    def c_lcs_set(self):
        if self.rng.random() < 0.2:
            return [b"APPEND", self.rng.choice(LCS_KEYS[:3]), self.short_value()[:8]]
        return [b"SET", self.rng.choice(LCS_KEYS[:3]), self.short_value()]

    def c_misc(self):
        r = self.rng.random()
        if r < 0.2:
            return [b"PING"] + ([self.value()] if self.rng.random() < 0.5 else [])
        if r < 0.35:
            return [b"ECHO", self.value()]
        if r < 0.45:
            return [b"SELECT", self.rng.choice([b"0", b"0", b"1", b"abc", b"-1", b"16"])]
        if r < 0.55:
            return [b"CLIENT", b"SETNAME", self.rng.choice([b"conn-a", b"x", b"", b"bad name",
                                                            b"nl\nname"])]
        if r < 0.65:
            return [b"CLIENT", b"GETNAME"]
        if r < 0.7:
            return [b"AUTH", b"whatever"]
        if r < 0.75:
            return [b"FUNCTION", b"FLUSH"]
        if r < 0.8:
            return [b"RESET"]
        return [b"HELLO", self.rng.choice([b"2", b"3", b"3", b"4", b"abc"])]

    def c_unknown(self):
        name = self.rng.choice([b"FOOBAR", b"GETT", b"SETT", b"", b"X" * 70, b"get\x00",
                                b"sEtX", b"KEYZ"])
        return [name] + [self.value() for _ in range(self.rng.randint(0, 3))]

    TABLE = [
        (14, "c_set"), (10, "c_get"), (3, "c_getex"), (1.5, "c_getdel"), (1.5, "c_getset"),
        (3, "c_mget"), (2.5, "c_mset"), (1, "c_msetnx"), (1.5, "c_setnx"), (1.5, "c_setex"),
        (1.5, "c_psetex"), (4, "c_incr"), (3, "c_incrby"), (3, "c_incrbyfloat"),
        (2.5, "c_append"), (2, "c_strlen"), (3, "c_getrange"), (3, "c_setrange"),
        (3, "c_del"), (3, "c_exists"), (6, "c_expire"), (4, "c_ttl"), (1.5, "c_persist"),
        (1, "c_type"), (1, "c_keys"), (0.4, "c_scan"), (0.8, "c_dbsize"), (0.05, "c_flush"),
        (2, "c_rename"), (0.4, "c_randomkey"), (2, "c_copy"), (3, "c_setbit"),
        (2.5, "c_getbit"), (2.5, "c_bitcount"), (2, "c_lcs"), (1.5, "c_lcs_set"),
        (2, "c_misc"), (1, "c_unknown"),
    ]

    def command(self):
        """One command: (args, how) where how says how to send/compare it."""
        if not hasattr(self, "_names"):
            self._names = [n for _, n in self.TABLE]
            self._weights = [w for w, _ in self.TABLE]
        while True:
            name = self.rng.choices(self._names, self._weights)[0]
            args = getattr(self, name)()
            if not SKIP_NAMES or args[0].upper() not in SKIP_NAMES:
                break
        r = self.rng.random()
        if r < 0.03 and args[0] not in (b"SCAN", b"RANDOMKEY", b"HELLO", b"RESET"):
            if len(args) > 1 and self.rng.random() < 0.6:
                args = args[:self.rng.randint(1, len(args) - 1)]
            else:
                args = args + [self.rng.choice([b"junk", b"xx"])]
        if self.rng.random() < 0.2:
            args = [self.recase(args[0])] + [
                self.recase(a) if a.isupper() and a.isalpha() else a for a in args[1:]]
        return args

    def recase(self, word):
        mode = self.rng.random()
        if mode < 0.4:
            return word.lower()
        return bytes(c ^ 0x20 if chr(c).isalpha() and self.rng.random() < 0.5 else c
                     for c in word)


# ---- inline encoding (sdssplitargs syntax) --------------------------------------------
def inline_arg(a):
    if a and all(33 <= c < 127 and c not in b"\"'\\" for c in a):
        return a
    out = bytearray(b'"')
    for c in a:
        if c == 0x22:
            out += b'\\"'
        elif c == 0x5C:
            out += b"\\\\"
        elif c == 0x0A:
            out += b"\\n"
        elif c == 0x0D:
            out += b"\\r"
        elif c == 0x09:
            out += b"\\t"
        elif 32 <= c < 127:
            out.append(c)
        else:
            out += b"\\x%02x" % c
    out += b'"'
    return bytes(out)


def inline(args):
    return b" ".join(inline_arg(a) for a in args) + b"\r\n"


# ---- comparison -----------------------------------------------------------------------
TTL_TOL = {b"TTL": 1, b"PTTL": 1000, b"EXPIRETIME": 1, b"PEXPIRETIME": 1000}


def _hello_norm(raw):
    v = parse(raw)[0]
    if isinstance(v, RespError):
        return raw
    if isinstance(v, tuple) and v[0] == "map":
        items = v[1]
    else:
        items = list(zip(v[0::2], v[1::2]))
    return [(k, val) for k, val in items if k not in (b"server", b"version", b"id")]


def compare(args, exp, got):
    """True when got is an acceptable reply given Redis's exp for command args."""
    if exp == got:
        return True
    name = args[0].upper() if args else b""
    if name in TTL_TOL:
        try:
            a, b = parse(exp)[0], parse(got)[0]
        except Exception:
            return False
        if not isinstance(a, int) or not isinstance(b, int) or isinstance(a, bool):
            return False
        if a < 0 or b < 0:
            return a == b
        return abs(a - b) <= TTL_TOL[name]
    if name == b"KEYS":
        a, b = parse(exp)[0], parse(got)[0]
        if isinstance(a, list) and isinstance(b, list):
            return sorted(a) == sorted(b)
        return False
    if name == b"HELLO":
        return _hello_norm(exp) == _hello_norm(got)
    return False


def show(x, limit=400):
    """repr(x), its middle cut out when long."""
    r = repr(x)
    if len(r) <= limit:
        return r
    return "%s ...(%d chars)... %s" % (r[:limit // 2], len(r), r[-limit // 4:])


class Pair:
    """One connection to Redis and one to CrabCache, used in lockstep."""

    def __init__(self, idx, ref, crab, crab_port, resp3, inline_ok):
        self.idx = idx
        self.r = RespConn(ref.port, server=ref, timeout=30)
        self.c = RespConn(crab_port, server=crab, timeout=30)
        self.resp3 = resp3
        self.inline_ok = inline_ok
        self.started = False    # inline only after a first RESP command ('*' first byte)

    def close(self):
        self.r.close()
        self.c.close()


class Differ:
    def __init__(self, seed, ref, crab):
        self.seed = seed
        self.ref = ref
        self.crab = crab
        self.gen = Gen(seed, int(time.time()))
        self.history = collections.deque(maxlen=12)
        self.counts = collections.Counter()
        self.errors = collections.Counter()
        self.total = 0
        self.inflight = []
        native = crab.port if hasattr(crab, "port") else crab.resp_port
        self.pairs = [
            Pair(0, ref, crab, crab.resp_port, False, True),
            Pair(1, ref, crab, crab.resp_port, True, True),
            Pair(2, ref, crab, crab.resp_port, False, True),
            # native port: the first byte is '*', so RESP as Redis serves it (inline too)
            Pair(3, ref, crab, native, False, True),
            Pair(4, ref, crab, native, True, False),
            Pair(5, ref, crab, crab.resp_port, True, True),
        ]
        for p in self.pairs:
            if p.resp3:
                self.run_batch(p, [[b"HELLO", b"3"]])

    def fail(self, pair, args, exp, got, note=""):
        lines = ["differential mismatch (seed %d, command #%d, connection %d%s)%s" % (
            self.seed, self.total, pair.idx, " RESP3" if pair.resp3 else "",
            (": " + note) if note else "")]
        lines.append("command:  %s" % show(args))
        lines.append("redis:    %s" % show(exp))
        lines.append("crabcache:%s" % show(got))
        lines.append("previous commands (connection, command):")
        for h in list(self.history)[:-1]:
            lines.append("  %s" % show(h))
        if self.inflight:
            lines.append("sent in the same batch after it (the culprit may be among them):")
            for a in self.inflight:
                lines.append("  %s" % show(a))
        lines.append("reproduce: CRABTEST_SEED=%d" % self.seed)
        pytest.fail("\n".join(lines), pytrace=False)

    def count(self, args, exp):
        self.total += 1
        self.counts[args[0].upper() if args else b"<empty>"] += 1
        if exp[:1] in (b"-", b"!"):
            self.errors[args[0].upper() if args else b"<empty>"] += 1

    def run_batch(self, pair, batch):
        """batch: list of args lists; sends each (RESP or inline) to both, compares."""
        wire = []
        for args in batch:
            if pair.inline_ok and pair.started and args and args[0] and \
                    self.gen.rng.random() < 0.04:
                wire.append(inline(args))
            else:
                wire.append(encode(*args))
        data = b"".join(wire)
        pair.started = True
        pair.r.send(data)
        pair.c.send(data)
        for i, args in enumerate(batch):
            self.history.append((pair.idx, args))
            exp = pair.r.read_reply()
            try:
                got = pair.c.read_reply()
            except (crabtest.ConnectionClosed, crabtest.ServerError) as e:
                self.inflight = batch[i + 1:]
                self.fail(pair, args, exp, None, "no reply from CrabCache: %s" % e)
            except ValueError as e:
                self.inflight = batch[i + 1:]
                self.fail(pair, args, exp, bytes(pair.c.buf[pair.c.pos:pair.c.pos + 300]),
                          "malformed RESP from CrabCache: %s" % e)
            self.count(args, exp)
            if not compare(args, exp, got):
                self.fail(pair, args, exp, got)
            name = args[0].upper() if args else b""
            if name == b"HELLO" and exp.startswith((b"%", b"*")):
                pair.resp3 = args[1] == b"3"
            elif name == b"RESET" and exp == b"+RESET\r\n":
                pair.resp3 = False

    def scan_all(self, conn, args):
        """Full SCAN iteration with args' options: ('err', raw) or ('ok', set of keys)."""
        cursor = args[1]
        found = set()
        for _ in range(20000):
            raw = conn.call(*([args[0], cursor] + args[2:]))
            v = parse(raw)[0]
            if isinstance(v, RespError):
                return ("err", raw)
            if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], bytes)
                    and isinstance(v[1], list)):
                return ("bad", raw)
            found.update(v[1])
            cursor = v[0]
            if cursor == b"0":
                return ("ok", frozenset(found))
        return ("endless", cursor)

    def run_special(self, pair, args):
        self.history.append((pair.idx, args))
        name = args[0].upper()
        if name == b"SCAN":
            exp = self.scan_all(pair.r, args)
            got = self.scan_all(pair.c, args)
            self.count(args, exp[1] if exp[0] == "err" else b"*")
            if exp != got:
                self.fail(pair, args, exp, got, "full SCAN iteration differs")
        elif name == b"RANDOMKEY":
            exp = pair.r.call(*args)
            got = pair.c.call(*args)
            self.count(args, exp)
            ve, vg = parse(exp)[0], parse(got)[0]
            if (ve is None) != (vg is None) or not (vg is None or isinstance(vg, bytes)):
                self.fail(pair, args, exp, got)
            if vg is not None and parse(pair.c.call(b"EXISTS", vg))[0] != 1:
                self.fail(pair, args, exp, got, "RANDOMKEY returned a key that does not exist")

    def run(self, n):
        rng = self.gen.rng
        while self.total < n:
            pair = rng.choice(self.pairs)
            batch = []
            size = rng.choice([1, 2, 5, 10, 20, 50, 100])
            while len(batch) < size:
                args = self.gen.command()
                if args and args[0].upper() in (b"SCAN", b"RANDOMKEY"):
                    if batch:
                        self.run_batch(pair, batch)
                        batch = []
                    self.run_special(pair, args)
                    continue
                batch.append(args)
            if batch:
                self.run_batch(pair, batch)
        # The final keyspaces must agree too.
        pair = self.pairs[0]
        self.run_batch(pair, [[b"DBSIZE"], [b"KEYS", b"*"]])
        for k in KEYS + LCS_KEYS:
            self.run_batch(pair, [[b"GET", k], [b"PTTL", k]])

    def summary(self):
        lines = ["differential test: seed %d, %d commands, %d error replies" % (
            self.seed, self.total, sum(self.errors.values()))]
        for name, n in sorted(self.counts.items(), key=lambda kv: -kv[1]):
            lines.append("  %-14s %7d  (errors %d)" % (
                name.decode("latin-1")[:14], n, self.errors[name]))
        return lines


@pytest.fixture
def diff_servers(redis_ref, crab):
    return redis_ref, crab


def test_differential(diff_servers):
    ref, crab = diff_servers
    seed = int(os.environ.get("CRABTEST_SEED", str(random.SystemRandom().randrange(1 << 31))))
    print("differential seed: %d (reproduce with CRABTEST_SEED=%d)" % (seed, seed))
    d = Differ(seed, ref, crab)
    t = time.monotonic()
    try:
        d.run(N_COMMANDS)
    finally:
        lines = d.summary()
        lines.insert(1, "  elapsed %.1fs" % (time.monotonic() - t))
        crabtest.SUMMARY.extend(lines)
        print("\n".join(lines))
        for p in d.pairs:
            p.close()
    crab.check()
    assert d.total >= N_COMMANDS


def test_differential_fixed_cases(diff_servers):
    """Hand-picked edge cases every run checks, whatever the seed."""
    ref, crab = diff_servers
    cases = [
        [b"FLUSHALL"],
        # option words are compared as C strings, as Redis does: "nx\0junk" is NX
        [b"SET", b"o", b"1"], [b"SET", b"o", b"2", b"nx\x00junk"], [b"GET", b"o"],
        [b"SET", b"o", b"3", b"px\x00", b"100000"], [b"GETEX", b"o", b"ex\x00z", b"100"],
        [b"SET", b"n", b"10"], [b"INCRBYFLOAT", b"n", b"0.1"], [b"INCRBYFLOAT", b"n", b"1e3"],
        [b"INCRBYFLOAT", b"n", b"-1010.1"], [b"GET", b"n"],
        [b"SET", b"f", b"3.0"], [b"INCRBYFLOAT", b"f", b"1.5"], [b"GET", b"f"],
        [b"SET", b"big", b"9223372036854775807"], [b"INCR", b"big"], [b"DECRBY", b"big",
                                                                    b"-9223372036854775808"],
        [b"SET", b"s", b"hello world"], [b"GETRANGE", b"s", b"-5", b"-1"],
        [b"GETRANGE", b"s", b"5", b"2"], [b"GETRANGE", b"s", b"-100", b"100"],
        [b"SETRANGE", b"s", b"20", b"X"], [b"GET", b"s"], [b"SETRANGE", b"s", b"536870912", b"X"],
        [b"SETRANGE", b"nokey", b"5", b""], [b"EXISTS", b"nokey"],
        [b"SETBIT", b"b", b"7", b"1"], [b"SETBIT", b"b", b"100", b"1"], [b"GET", b"b"],
        [b"BITCOUNT", b"b"], [b"BITCOUNT", b"b", b"0", b"0"], [b"BITCOUNT", b"b", b"0", b"7",
                                                              b"BIT"],
        [b"BITCOUNT", b"b", b"1"], [b"SETBIT", b"b", b"4294967296", b"1"],
        [b"SET", b"l1", b"ohmytext"], [b"SET", b"l2", b"mynewtext"], [b"LCS", b"l1", b"l2"],
        [b"LCS", b"l1", b"l2", b"LEN"], [b"LCS", b"l1", b"l2", b"IDX"],
        [b"LCS", b"l1", b"l2", b"IDX", b"MINMATCHLEN", b"4", b"WITHMATCHLEN"],
        [b"LCS", b"l1", b"l2", b"LEN", b"IDX"],
        [b"SET", b"k", b"v", b"NX", b"XX"], [b"SET", b"k", b"v", b"EX", b"0"],
        [b"SET", b"k", b"v", b"KEEPTTL", b"EX", b"100"], [b"SET", b"k", b"v", b"GET"],
        [b"SET", b"k", b"w", b"NX", b"GET"], [b"SET", b"k", b"x", b"XX", b"GET", b"PX", b"9000000"],
        [b"GETEX", b"k", b"PERSIST"], [b"TTL", b"k"], [b"EXPIRE", b"k", b"100", b"NX", b"XX"],
        [b"EXPIRE", b"k", b"100", b"GT", b"LT"], [b"EXPIRE", b"k", b"100", b"GT"],
        [b"EXPIRE", b"k", b"100", b"LT"], [b"EXPIRE", b"k", b"9223372036854775807"],
        [b"EXPIREAT", b"k", b"1"], [b"EXISTS", b"k"], [b"COPY", b"s", b"s"],
        [b"COPY", b"s", b"s2"], [b"COPY", b"s", b"s2"], [b"COPY", b"s", b"s2", b"REPLACE"],
        [b"RENAME", b"nokey", b"x"], [b"RENAME", b"s", b"s"], [b"RENAMENX", b"s", b"s2"],
        [b"MSET", b"a", b"1", b"b"], [b"MSETNX", b"a", b"1", b"b", b"2"],
        [b"MSETNX", b"a", b"1", b"c", b"2"], [b"MGET", b"a", b"b", b"c", b"nokey"],
        [b"get"], [b"GET", b"a", b"b"], [b"foo", b"bar"], [b"SELECT", b"1"], [b"SELECT", b"0"],
        [b"TYPE", b"a"], [b"TYPE", b"nokey"], [b"DBSIZE"], [b"ECHO", b"\x00\r\n"], [b"PING"],
        [b"PING", b"x"], [b"PING", b"x", b"y"], [b"HELLO", b"4"], [b"SETEX", b"k", b"-1", b"v"],
        [b"PSETEX", b"k", b"0", b"v"], [b"APPEND", b"a", b"\xff\x00"], [b"STRLEN", b"a"],
        [b"GETDEL", b"a"], [b"GETDEL", b"a"], [b"DEL", b"b", b"b", b"c"], [b"UNLINK", b"s2"],
        [b"EXISTS", b"s", b"s", b"nokey"], [b"TOUCH", b"s", b"nokey"],
        [b"PEXPIREAT", b"s", b"99999999999999"], [b"PEXPIRETIME", b"s"], [b"EXPIRETIME", b"s"],
        [b"PERSIST", b"s"], [b"PERSIST", b"s"], [b"PTTL", b"s"], [b"TTL", b"nokey"],
        [b"FLUSHDB", b"ASYNC"], [b"DBSIZE"], [b"FUNCTION", b"FLUSH"],
    ]
    for proto in (b"2", b"3"):
        with RespConn(ref.port) as r, RespConn(crab.resp_port, server=crab) as c:
            for cmd in [[b"HELLO", proto]] + cases:
                exp, got = r.call(*cmd), c.call(*cmd)
                if not compare(cmd, exp, got):
                    pytest.fail("fixed case %s (RESP%s):\n redis:     %s\n crabcache: %s"
                                % (show(cmd), proto.decode(), show(exp), show(got)),
                                pytrace=False)


def test_differential_cluster_disabled(diff_servers):
    """Cluster mode off: CLUSTER, READONLY, READWRITE, ASKING and COMMAND GETKEYS answer
    as redis-server with cluster support disabled, byte for byte (its checks of the
    subcommand's name and arity come first)."""
    ref, crab = diff_servers
    cases = [
        [b"CLUSTER"], [b"CLUSTER", b"KEYSLOT", b"foo"], [b"CLUSTER", b"KEYSLOT"],
        [b"CLUSTER", b"KEYSLOT", b"a", b"b"], [b"CLUSTER", b"INFO"], [b"CLUSTER", b"INFO", b"x"],
        [b"CLUSTER", b"HELP"], [b"cluster", b"help", b"x"], [b"CLUSTER", b"MYID"],
        [b"CLUSTER", b"SLOTS"], [b"CLUSTER", b"SHARDS"], [b"CLUSTER", b"NODES"],
        [b"CLUSTER", b"COUNTKEYSINSLOT", b"1"], [b"CLUSTER", b"COUNTKEYSINSLOT"],
        [b"CLUSTER", b"GETKEYSINSLOT", b"1", b"1"], [b"CLUSTER", b"GETKEYSINSLOT", b"1"],
        [b"CLUSTER", b"MEET", b"127.0.0.1"], [b"CLUSTER", b"MEET", b"127.0.0.1", b"1"],
        [b"CLUSTER", b"FORGET", b"x"], [b"CLUSTER", b"bogus"], [b"CLUSTER", b"SETSLOT", b"1"],
        [b"CLUSTER", b"RESET"], [b"CLUSTER", b"LINKS"], [b"CLUSTER", b"count-failure-reports"],
        [b"READONLY"], [b"READONLY", b"x"], [b"READWRITE"], [b"readwrite", b"x"], [b"ASKING"],
        [b"ASKING", b"x"], [b"SET", b"k", b"v"], [b"GET", b"k"],
        [b"COMMAND", b"INFO", b"readonly", b"readwrite", b"asking"],
        [b"COMMAND", b"GETKEYS"], [b"COMMAND", b"GETKEYS", b"get"],
        [b"COMMAND", b"GETKEYS", b"get", b"foo"], [b"COMMAND", b"GETKEYS", b"GET", b"a", b"b"],
        [b"COMMAND", b"GETKEYS", b"mset", b"a", b"1", b"b", b"2"],
        [b"COMMAND", b"GETKEYS", b"mset", b"a", b"1", b"b"],
        [b"COMMAND", b"GETKEYS", b"mget", b"a", b"b", b"c"],
        [b"COMMAND", b"GETKEYS", b"del", b"a"], [b"COMMAND", b"GETKEYS", b"lcs", b"a", b"b"],
        [b"COMMAND", b"GETKEYS", b"rename", b"a", b"b"],
        [b"COMMAND", b"GETKEYS", b"copy", b"a", b"b", b"REPLACE"],
        [b"COMMAND", b"GETKEYS", b"set", b"a", b"b", b"EX", b"10"],
        [b"COMMAND", b"GETKEYS", b"ping", b"x"], [b"COMMAND", b"GETKEYS", b"keys", b"*"],
        [b"COMMAND", b"GETKEYS", b"nosuch", b"a"], [b"COMMAND", b"GETKEYS", b"cluster", b"info"],
        [b"COMMAND", b"GETKEYS", b"setex", b"a", b"b"],
        [b"COMMAND", b"GETKEYSANDFLAGS"], [b"COMMAND", b"GETKEYSANDFLAGS", b"get"],
        [b"COMMAND", b"GETKEYSANDFLAGS", b"get", b"a"],
        [b"COMMAND", b"GETKEYSANDFLAGS", b"mset", b"a", b"1", b"b", b"2"],
        [b"COMMAND", b"GETKEYSANDFLAGS", b"rename", b"a", b"b"],
        [b"COMMAND", b"GETKEYSANDFLAGS", b"renamenx", b"a", b"b"],
        [b"COMMAND", b"GETKEYSANDFLAGS", b"copy", b"a", b"b"],
        [b"COMMAND", b"GETKEYSANDFLAGS", b"del", b"a", b"b"],
        [b"COMMAND", b"GETKEYSANDFLAGS", b"set", b"a", b"b"],
        [b"COMMAND", b"GETKEYSANDFLAGS", b"set", b"a", b"b", b"gEt"],
        [b"COMMAND", b"GETKEYSANDFLAGS", b"set", b"a", b"b", b"NX", b"get\x00x"],
        [b"COMMAND", b"GETKEYSANDFLAGS", b"set", b"a", b"b", b"getx"],
        [b"COMMAND", b"GETKEYSANDFLAGS", b"ping", b"a"],
        [b"COMMAND", b"GETKEYSANDFLAGS", b"nosuch", b"a"],
        [b"INFO", b"cluster"],
    ]
    # COMMAND INFO of every keyed command (key specs with Redis's flags, tips) and of the
    # keyless ones with tips
    for name in [b"get", b"set", b"setnx", b"setex", b"psetex", b"getex", b"getdel",
                 b"getset", b"mget", b"mset", b"msetnx", b"incr", b"decr", b"incrby",
                 b"decrby", b"incrbyfloat", b"append", b"strlen", b"getrange", b"substr",
                 b"setrange", b"setbit", b"getbit", b"bitcount", b"lcs", b"del", b"unlink",
                 b"exists", b"touch", b"expire", b"pexpire", b"expireat", b"pexpireat", b"ttl",
                 b"pttl", b"expiretime", b"pexpiretime", b"persist", b"type", b"rename",
                 b"renamenx", b"copy", b"keys", b"scan", b"dbsize", b"flushall", b"flushdb",
                 b"randomkey", b"time", b"lastsave"]:
        cases.append([b"COMMAND", b"INFO", name])
        cases.append([b"COMMAND", b"GETKEYSANDFLAGS", name, b"a", b"b", b"c", b"d"])
    for proto in (b"2", b"3"):
        with RespConn(ref.port) as r, RespConn(crab.resp_port, server=crab) as c:
            for cmd in [[b"HELLO", proto]] + cases:
                exp, got = r.call(*cmd), c.call(*cmd)
                if not compare(cmd, exp, got):
                    pytest.fail("cluster-disabled case %s (RESP%s):\n redis:     %s\n"
                                " crabcache: %s" % (show(cmd), proto.decode(), show(exp),
                                                    show(got)), pytrace=False)


def test_differential_errorstats(diff_servers):
    """INFO errorstats and total_error_replies count error replies per code as Redis does,
    rejected commands (arity, unknown command, cluster disabled) included."""
    ref, crab = diff_servers
    cases = [[b"CONFIG", b"RESETSTAT"], [b"GET", b"a", b"b"], [b"nosuch"], [b"SET", b"k", b"v"],
             [b"INCR", b"k"], [b"CLUSTER", b"KEYSLOT", b"x"], [b"CLUSTER", b"bogus"],
             [b"READONLY"], [b"HELLO", b"4"], [b"COMMAND", b"GETKEYS", b"ping", b"x"],
             [b"SET", b"k", b"v", b"EX", b"0"], [b"GET", b"k"], [b"INFO", b"errorstats"]]
    with RespConn(ref.port) as r, RespConn(crab.resp_port, server=crab) as c:
        for cmd in cases:
            exp, got = r.call(*cmd), c.call(*cmd)
            if not compare(cmd, exp, got):
                pytest.fail("errorstats case %s:\n redis:     %s\n crabcache: %s"
                            % (show(cmd), show(exp), show(got)), pytrace=False)

        def total(conn):
            info = parse(conn.call(b"INFO", b"stats"))[0]
            return [l for l in info.split(b"\r\n") if l.startswith(b"total_error_replies:")]
        assert total(r) == total(c) == [b"total_error_replies:9"]


# ---- Pub/Sub, OBJECT and keyspace notifications -----------------------------------------
PS_CHANNELS = [b"news", b"news.sport", b"news.tech", b"chat", b"c", b"", b"bin\x00ch", b"\xff\xfe",
               b"__keyspace@0__:k"]
PS_PATTERNS = [b"news.*", b"n*", b"*", b"c?at", b"[cn]*", b"news.[st]*", b"\\*", b"", b"[",
               b"*\xff*"]
N_PUBSUB = int(os.environ.get("CRABTEST_DIFF_PUBSUB_N", "1500"))


def _drain(conn, wait=0.05):
    """The replies a server has already sent on conn (Redis writes a PUBLISH's messages to
    its subscribers before it replies to the publisher)."""
    out = []
    old = conn.sock.gettimeout()
    conn.sock.settimeout(wait)
    try:
        while True:
            try:
                out.append(conn.read_reply())
            except crabtest.ConnectionClosed:
                break
    finally:
        conn.sock.settimeout(old)
    return out


def _ps_compare(args, exp, got):
    name = args[0].upper()
    if name == b"PUBSUB" and len(args) > 1 and args[1].upper() == b"CHANNELS":
        a, b = parse(exp)[0], parse(got)[0]
        if isinstance(a, list) and isinstance(b, list):
            return sorted(a) == sorted(b)
    return compare(args, exp, got)


class PubsubDiffer:
    """Connections to both servers in pairs; each step one pair sends a command, then
    every pair's replies and messages are compared byte for byte (CrabCache's are read
    until it has sent as many as Redis had)."""

    def __init__(self, seed, ref, crab, n=4):
        self.rng = random.Random(seed)
        self.pairs = [(RespConn(ref.port, timeout=10), RespConn(crab.resp_port, server=crab,
                                                                timeout=10))
                      for _ in range(n)]
        self.chans = [set() for _ in range(n)]
        self.history = collections.deque(maxlen=int(os.environ.get("CRABTEST_PS_HISTORY", "20")))

    def close(self):
        for r, c in self.pairs:
            r.close()
            c.close()

    def command(self, i):
        rng = self.rng
        x = rng.random()
        if x < 0.18:
            return [b"SUBSCRIBE"] + rng.sample(PS_CHANNELS, rng.randint(1, 3))
        if x < 0.28:
            if len(self.chans[i]) <= 1 and rng.random() < 0.4:
                return [b"UNSUBSCRIBE"]   # no arguments: a client's channels come in
            return [b"UNSUBSCRIBE"] + rng.sample(PS_CHANNELS, rng.randint(1, 2))  # hash order
        if x < 0.38:
            return [b"PSUBSCRIBE"] + rng.sample(PS_PATTERNS, rng.randint(1, 2))
        if x < 0.46:
            if rng.random() < 0.4:
                return [b"PUNSUBSCRIBE"]
            return [b"PUNSUBSCRIBE"] + rng.sample(PS_PATTERNS, rng.randint(1, 2))
        if x < 0.70:
            return [b"PUBLISH", rng.choice(PS_CHANNELS),
                    rng.choice([b"hello", b"", b"\x00\r\n", b"x" * rng.randint(1, 300)])]
        if x < 0.74:
            return [b"PING"] + ([rng.choice([b"hi", b""])] if rng.random() < 0.5 else [])
        if x < 0.78:
            return [rng.choice([b"GET", b"SET"]), b"k"] + ([b"v"] if rng.random() < 0.5 else [])
        if x < 0.81:
            return [b"HELLO", rng.choice([b"2", b"3"])]
        if x < 0.83:
            return [b"RESET"]
        if x < 0.88:
            return [b"PUBSUB", b"NUMSUB"] + rng.sample(PS_CHANNELS, rng.randint(0, 3))
        if x < 0.91:
            return [b"PUBSUB", b"NUMPAT"] + ([b"x"] if rng.random() < 0.1 else [])
        if x < 0.96:
            return [b"PUBSUB", b"CHANNELS"] + ([rng.choice(PS_PATTERNS)]
                                                 if rng.random() < 0.6 else [])
        return rng.choice([[b"SUBSCRIBE"], [b"PSUBSCRIBE"], [b"PUBLISH", b"a"],
                           [b"PUBSUB"], [b"PUBSUB", b"FOO"], [b"PUBSUB", b"HELP"],
                           [b"PUBSUB", b"CHANNELS", b"a", b"b"], [b"PUBSUB", b"SHARDCHANNELS"],
                           [b"PUBSUB", b"SHARDNUMSUB", b"news"]])

    def track(self, i, args, exp):
        name = args[0].upper()
        if name == b"SUBSCRIBE" and not exp[0].startswith(b"-"):
            self.chans[i].update(args[1:])
        elif name == b"UNSUBSCRIBE" and not exp[0].startswith(b"-"):
            if len(args) == 1:
                self.chans[i].clear()
            self.chans[i].difference_update(args[1:])
        elif name == b"RESET":
            self.chans[i].clear()

    def fail(self, what, args, exp, got):
        lines = ["%s: %s\n redis:     %s\n crabcache: %s" % (what, show(args), show(exp),
                                                              show(got)), "recent commands:"]
        lines += ["  [%d] %s" % (i, show(a)) for i, a in self.history]
        pytest.fail("\n".join(lines), pytrace=False)

    def step(self):
        i = self.rng.randrange(len(self.pairs))
        args = self.command(i)
        self.history.append((i, args))
        r, c = self.pairs[i]
        r.send(encode(*args))
        c.send(encode(*args))
        exp = [r.read_reply()] + _drain(r, 0.01)
        got = [c.read_reply() for _ in exp]
        if args[0].upper() == b"PUBLISH":   # RESP3: its own pushes, then the count
            ok = sorted(exp) == sorted(got)
        else:
            ok = all(_ps_compare(args, e, g) for e, g in zip(exp, got))
        if not ok:
            self.fail("replies differ", args, exp, got)
        self.track(i, args, exp)
        for j, (rj, cj) in enumerate(self.pairs):
            if j == i:
                continue
            # Redis wrote them before its reply to the publisher: already here
            exp = _drain(rj, 0.003)
            got = [cj.read_reply() for _ in exp]
            # Redis delivers a message's pmessages in the order of its pattern dict's
            # hash (seeded at random per process): compared as a multiset
            if sorted(exp) != sorted(got):
                self.fail("messages to connection %d differ" % j, args, exp, got)

    def finish(self):
        time.sleep(0.2)
        for j, (rj, cj) in enumerate(self.pairs):
            exp, got = _drain(rj), _drain(cj, 0.2)
            if exp != got:
                self.fail("connection %d at the end" % j, [b"(end)"], exp, got)


def test_differential_pubsub(diff_servers):
    """PUBLISH / (P)SUBSCRIBE / (P)UNSUBSCRIBE / PUBSUB from four connections interleaved
    at random: confirmations, messages, pmessages, RESP2's subscribed context (its errors
    and PING), RESP3 pushes, RESET, and PUBSUB's answers, byte for byte (what Redis orders
    by its hash tables' random seed -- PUBSUB CHANNELS, a message's pmessages -- as sets)."""
    ref, crab = diff_servers
    seed = int(os.environ.get("CRABTEST_SEED", str(random.SystemRandom().randrange(1 << 31))))
    print("pubsub differential seed: %d" % seed)
    d = PubsubDiffer(seed, ref, crab)
    try:
        for _ in range(N_PUBSUB):
            d.step()
        d.finish()
    finally:
        d.close()
    crab.check()


def test_differential_keyspace_notifications(diff_servers):
    """notify-keyspace-events KEA (and narrower classes): the __keyspace@0__ and
    __keyevent@0__ messages of the string and keyspace commands, and of a key expiring,
    are the ones Redis publishes, in its order."""
    ref, crab = diff_servers
    cmds = [[b"SET", b"k", b"1"], [b"SET", b"k", b"2", b"EX", b"100"], [b"INCR", b"k"],
            [b"INCRBY", b"k", b"5"], [b"DECRBY", b"k", b"1"], [b"INCRBYFLOAT", b"k", b"1.5"],
            [b"APPEND", b"k", b"x"], [b"SETRANGE", b"k", b"0", b"y"],
            [b"SETRANGE", b"k", b"0", b""], [b"SETBIT", b"b", b"3", b"1"],
            [b"SETBIT", b"b", b"3", b"1"], [b"EXPIRE", b"k", b"100"], [b"PERSIST", b"k"],
            [b"PERSIST", b"k"], [b"RENAME", b"k", b"k2"], [b"RENAMENX", b"k2", b"k4"],
            [b"COPY", b"k4", b"k3"], [b"GETSET", b"k3", b"v"], [b"MSET", b"m1", b"a", b"m2", b"b"],
            [b"MSETNX", b"m1", b"a"], [b"GETDEL", b"m1"], [b"GETEX", b"m2", b"EX", b"50"],
            [b"GETEX", b"m2", b"PERSIST"], [b"DEL", b"m2", b"nokey", b"k3"],
            [b"SETNX", b"n", b"1"], [b"SETEX", b"n", b"10", b"v"], [b"PSETEX", b"n", b"10000", b"w"],
            [b"DECR", b"cnt"], [b"EXPIRE", b"n", b"-1"], [b"SET", b"w", b"1", b"GET"],
            [b"SET", b"w", b"2", b"KEEPTTL"], [b"UNLINK", b"w"], [b"FLUSHALL"],
            [b"SET", b"e", b"1", b"PX", b"1"]]
    for flags, canon in [(b"KEA", b"AKE"), (b"Kg", b"gK"), (b"E$x", b"$xE"), (b"KEx", b"xKE")]:
        with RespConn(ref.port) as rs, RespConn(crab.resp_port, server=crab) as cs, \
                RespConn(ref.port) as r, RespConn(crab.resp_port, server=crab) as c:
            for conn in (r, c):
                assert conn.call(b"CONFIG", b"SET", b"notify-keyspace-events", flags) == b"+OK\r\n"
                assert parse(conn.call(b"CONFIG", b"GET", b"notify-keyspace-events"))[0] == \
                    [b"notify-keyspace-events", canon]
            for s in (rs, cs):
                s.call(b"PSUBSCRIBE", b"__key*@0__:*")
            try:
                for cmd in cmds:
                    exp, got = r.call(*cmd), c.call(*cmd)
                    assert exp == got, (cmd, exp, got)
                time.sleep(0.2)
                for conn in (r, c):
                    conn.call(b"GET", b"e")   # expired by now: the lookup reclaims it
                exp = _drain(rs, 0.3)
                got = [cs.read_reply() for _ in exp]
                assert exp == got
                assert _drain(cs, 0.2) == []
            finally:
                for conn in (r, c):
                    conn.call(b"CONFIG", b"SET", b"notify-keyspace-events", b"")
    with RespConn(ref.port) as r, RespConn(crab.resp_port, server=crab) as c:
        for cmd in [[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAq"],
                    [b"CONFIG", b"GET", b"notify-keyspace-events"]]:
            assert r.call(*cmd) == c.call(*cmd)


def test_differential_object_memory(diff_servers):
    """OBJECT and MEMORY: what CrabCache answers as Redis does with an LFU policy (values
    never shared: REFCOUNT 1; IDLETIME refused), byte for byte; FREQ and MEMORY figures
    are CrabCache's own and are checked by their shape."""
    ref, crab = diff_servers
    cases = [[b"SET", b"i", b"12345"], [b"SET", b"neg", b"-42"], [b"SET", b"z", b"0"],
             [b"SET", b"lead", b"007"], [b"SET", b"mz", b"-0"], [b"SET", b"plus", b"+5"],
             [b"SET", b"big", b"9223372036854775807"], [b"SET", b"big2", b"9223372036854775808"],
             [b"SET", b"small", b"-9223372036854775808"], [b"SET", b"e44", b"x" * 44],
             [b"SET", b"e45", b"x" * 45], [b"SET", b"s", b"hello"], [b"SET", b"empty", b""],
             [b"INCR", b"ctr"], [b"MSET", b"m1", b"17", b"m2", b"abc"], [b"SET", b"sp", b" 1"]]
    keys = [b"i", b"neg", b"z", b"lead", b"mz", b"plus", b"big", b"big2", b"small", b"e44",
            b"e45", b"s", b"empty", b"ctr", b"m1", b"m2", b"sp", b"nokey"]
    for k in keys:
        cases += [[b"OBJECT", b"ENCODING", k], [b"OBJECT", b"REFCOUNT", k],
                  [b"OBJECT", b"IDLETIME", k]]
    cases += [[b"OBJECT"], [b"OBJECT", b"ENCODING"], [b"OBJECT", b"ENCODING", b"i", b"x"],
              [b"OBJECT", b"FREQ"], [b"OBJECT", b"FREQ", b"nokey"], [b"OBJECT", b"foo"],
              [b"OBJECT", b"HELP"], [b"object", b"help", b"x"], [b"MEMORY"], [b"MEMORY", b"HELP"],
              [b"MEMORY", b"USAGE"], [b"MEMORY", b"USAGE", b"nokey"],
              [b"MEMORY", b"USAGE", b"i", b"SAMPLES"], [b"MEMORY", b"USAGE", b"i", b"SAMPLES", b"x"],
              [b"MEMORY", b"USAGE", b"i", b"SAMPLES", b"-1"], [b"MEMORY", b"USAGE", b"i", b"FOO"],
              [b"MEMORY", b"foo"], [b"MEMORY", b"STATS", b"x"], [b"MEMORY", b"DOCTOR", b"x"],
              [b"MEMORY", b"PURGE"]]
    with RespConn(ref.port) as r:
        old = parse(r.call(b"CONFIG", b"GET", b"maxmemory*"))[0]
        r.call(b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lfu")
        r.call(b"CONFIG", b"SET", b"maxmemory", b"1gb")
    try:
        for proto in (b"2", b"3"):
            with RespConn(ref.port) as r, RespConn(crab.resp_port, server=crab) as c:
                for cmd in [[b"HELLO", proto]] + cases:
                    exp, got = r.call(*cmd), c.call(*cmd)
                    if not compare(cmd, exp, got):
                        pytest.fail("OBJECT/MEMORY case %s (RESP%s):\n redis:     %s\n"
                                    " crabcache: %s" % (show(cmd), proto.decode(), show(exp),
                                                        show(got)), pytrace=False)
                # shapes: FREQ and MEMORY USAGE are integers, STATS a map with Redis's keys
                for cmd in ([b"OBJECT", b"FREQ", b"i"], [b"MEMORY", b"USAGE", b"i"],
                            [b"MEMORY", b"USAGE", b"e45", b"SAMPLES", b"0"]):
                    assert r.call(*cmd)[:1] == c.call(*cmd)[:1] == b":"
                ve, vg = parse(r.call(b"MEMORY", b"STATS"))[0], parse(c.call(b"MEMORY", b"STATS"))[0]
                if proto == b"3":
                    ve, vg = ve[1], vg[1]
                    ke, kg = [k for k, _ in ve], [k for k, _ in vg]
                else:
                    ke, kg = ve[0::2], vg[0::2]
                assert ke == kg
                de, dg = parse(r.call(b"MEMORY", b"DOCTOR"))[0], parse(c.call(b"MEMORY", b"DOCTOR"))[0]
                assert type(de) == type(dg)
    finally:
        with RespConn(ref.port) as r:
            cfg = dict(zip(old[0::2], old[1::2]))
            r.call(b"CONFIG", b"SET", b"maxmemory-policy", cfg[b"maxmemory-policy"])
            r.call(b"CONFIG", b"SET", b"maxmemory", cfg[b"maxmemory"])
