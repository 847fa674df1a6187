#!/usr/bin/python3
"""Capture a real Redis Cluster's replies, byte for byte, as a reference.

Starts three redis-server nodes with cluster-enabled on loopback, forms a
cluster with `redis-cli --cluster create`, then prints (as Python byte
literals) the raw RESP2 and RESP3 replies of the CLUSTER subcommands and the
redirection errors. The shapes in tests/unit/test_cluster_cmds.c were written
from this output (redis-server 7.0.15).

Usage: redis_cluster_capture.py [base_port]   (ports base..base+2, < 55536)
The nodes are stopped by pid at the end; their files live in a temp dir.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time


def call(sock, *args):
    sock.sendall(b"*%d\r\n" % len(args) +
                 b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    time.sleep(0.1)
    sock.settimeout(0.3)
    data = b""
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                break
            data += d
    except socket.timeout:
        pass
    return data


def main():
    base = int(sys.argv[1]) if len(sys.argv) > 1 else 42201
    ports = [base, base + 1, base + 2]
    tmp = tempfile.mkdtemp(prefix="redis-cluster-")
    procs = []
    try:
        for p in ports:
            d = os.path.join(tmp, str(p))
            os.mkdir(d)
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(p), "--cluster-enabled", "yes",
                 "--cluster-config-file", os.path.join(d, "nodes.conf"), "--dir", d,
                 "--save", "", "--appendonly", "no", "--daemonize", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        subprocess.run(["redis-cli", "--cluster", "create"] +
                       ["127.0.0.1:%d" % p for p in ports] + ["--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL)
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", ports[0]))
            ok = b"cluster_state:ok" in call(s, b"CLUSTER", b"INFO")
            s.close()
            if ok:
                break
            time.sleep(0.1)
        cmds = [[b"CLUSTER", b"INFO"], [b"CLUSTER", b"MYID"], [b"CLUSTER", b"SLOTS"],
                [b"CLUSTER", b"SHARDS"], [b"CLUSTER", b"NODES"], [b"CLUSTER", b"HELP"],
                [b"CLUSTER", b"KEYSLOT", b"foo"], [b"CLUSTER", b"COUNTKEYSINSLOT", b"1"],
                [b"CLUSTER", b"COUNTKEYSINSLOT", b"16384"],
                [b"CLUSTER", b"COUNTKEYSINSLOT", b"x"],
                [b"CLUSTER", b"GETKEYSINSLOT", b"1", b"10"],
                [b"CLUSTER", b"GETKEYSINSLOT", b"1", b"-1"],
                [b"CLUSTER", b"GETKEYSINSLOT", b"16384", b"1"],
                [b"GET", b"foo"], [b"GET", b"bar"], [b"GET", b"a"],
                [b"MGET", b"foo", b"bar"], [b"MGET", b"{a}1", b"{a}2"],
                [b"READONLY"], [b"READWRITE"], [b"ASKING"], [b"READONLY", b"x"],
                [b"INFO", b"errorstats"], [b"INFO", b"cluster"],
                [b"CLUSTER", b"nosuch"], [b"CLUSTER", b"KEYSLOT"]]
        for proto in (b"2", b"3"):
            s = socket.create_connection(("127.0.0.1", ports[0]))
            call(s, b"HELLO", proto)
            for c in cmds:
                print("== RESP%s %s" % (proto.decode(), b" ".join(c).decode()))
                print(repr(call(s, *c)))
            s.close()
    finally:
        for pr in procs:
            pr.terminate()
        for pr in procs:
            pr.wait()


if __name__ == "__main__":
    main()
