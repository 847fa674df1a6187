"""crabcache-sim: the offline trace simulator over the evict module.

Runs the simulator on the small LIRS traces and on tiny generated traces,
and checks its figures: exact LRU and OPT against the traces README, our
W-TinyLFU against the published Caffeine figure, and hand-computed hits.
"""
import json
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.environ.get("CRABCACHE_BIN_DIR", os.path.join(REPO, "build"))
SIM = os.path.join(BIN_DIR, "crabcache-sim")
TRACES = next((d for d in (os.environ.get("CRABCACHE_TRACES", ""),
                           os.path.join(REPO, "traces"),
                           os.path.join(REPO, "..", "shared", "traces"))
               if d and os.path.isdir(d)), None)


def run_sim(*args):
    proc = subprocess.run([SIM, "--json", *args], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


pytestmark = pytest.mark.skipif(not os.path.exists(SIM),
                                reason="crabcache-sim not built")


@pytest.mark.skipif(TRACES is None, reason="shared traces not present")
def test_lirs_traces_against_readme():
    rc, rows = run_sim("--traces", TRACES, "--trace", "lirs-loop",
                       "--trace", "lirs-gli", "--size", "404",
                       "--size", "250", "--size", "252")
    by = {(r["trace"], r["size"]): r for r in rows}
    loop = by[("lirs-loop.trace.gz", 404)]
    # LRU on a loop larger than the cache never hits; OPT as in the README.
    assert loop["lru"] == 0.0
    assert loop["opt"] == pytest.approx(39.88, abs=0.01)
    # Target: the published adaptive W-TinyLFU (Caffeine) figure.
    assert loop["caffeine"] == pytest.approx(38.80)
    assert loop["ours"] >= 38.80
    assert loop["result"] == "PASS"
    gli = by[("lirs-gli.trace.gz", 250)]
    assert gli["lru"] == pytest.approx(0.91, abs=0.01)
    assert gli["opt"] == pytest.approx(17.71, abs=0.01)
    assert gli["ours"] <= gli["opt"]
    assert by[("lirs-gli.trace.gz", 252)]["ours"] >= 14.55
    assert rc == 0


def write_lirs(path, keys):
    with open(path, "w") as f:
        f.write("*\n")                       # checkpoint marker: skipped
        for k in keys:
            f.write("%d\r\n" % k)            # CRLF is stripped
        f.write("\n")


def test_small_generated_trace(tmp_path):
    # 1 2 3 1 2 3 ... with 3 entries: everything after warm-up hits under
    # LRU and OPT; W-TinyLFU too (the whole set fits).
    path = tmp_path / "cyc.txt"
    write_lirs(path, [1, 2, 3] * 10)
    rc, rows = run_sim("--file", str(path), "--format", "lirs",
                       "--size", "3", "--size", "2")
    by = {r["size"]: r for r in rows}
    assert by[3]["lru"] == pytest.approx(90.0)
    assert by[3]["opt"] == pytest.approx(90.0)
    assert by[3]["ours"] == pytest.approx(90.0)
    # Two entries on a loop of three: LRU never hits, OPT hits every other
    # request after warm-up; W-TinyLFU lies in between.
    assert by[2]["lru"] == 0.0
    assert by[2]["ours"] <= by[2]["opt"]
    assert by[2]["result"] == "-"
    assert rc == 0


def test_shards_split_the_keys(tmp_path):
    # Eight keys read in a loop, 8 entries: all fit in one policy (72 of 80
    # hit). Over 8 shards of 1 entry each, keys that hash to the same shard
    # push each other out, so ours hits less; the exact-LRU reference is
    # never split. --shards 1 is the default.
    path = tmp_path / "loop8.txt"
    write_lirs(path, list(range(1, 9)) * 10)
    args = ("--file", str(path), "--format", "lirs", "--size", "8", "--no-opt")
    _, one = run_sim(*args)
    _, one_explicit = run_sim(*args, "--shards", "1")
    _, eight = run_sim(*args, "--shards", "8")
    assert one[0]["ours"] == pytest.approx(90.0)
    assert one_explicit[0]["ours"] == one[0]["ours"]
    assert eight[0]["lru"] == pytest.approx(90.0)
    assert eight[0]["ours"] < 90.0


def test_binary_formats(tmp_path):
    # cache2k: big-endian int32; scarab: big-endian int64 (may be negative).
    keys = [5, -7, 5, -7, 9, 5]
    c2k = tmp_path / "t.c2k"
    c2k.write_bytes(b"".join(k.to_bytes(4, "big", signed=True) for k in keys))
    sc = tmp_path / "t.scarab"
    sc.write_bytes(b"".join(k.to_bytes(8, "big", signed=True) for k in keys))
    for path, fmt in ((c2k, "cache2k"), (sc, "scarab")):
        _, rows = run_sim("--file", str(path), "--format", fmt, "--size", "8")
        # 3 distinct keys in 6 requests, all fit: 3 hits.
        assert rows[0]["lru"] == pytest.approx(50.0)
        assert rows[0]["ours"] == pytest.approx(50.0)


def test_arc_block_count_expansion(tmp_path):
    # "start count ignored reqno": 10 3 -> keys 10 11 12.
    path = tmp_path / "t.lis"
    path.write_text("10 3 0 0\n11 1 0 1\n20 2 0 2\n10 3 0 3\n")
    _, rows = run_sim("--file", str(path), "--format", "arc", "--size", "100")
    # 9 requests over keys 10 11 12 20 21: 4 hits (11, 10, 11, 12).
    assert rows[0]["lru"] == pytest.approx(100.0 * 4 / 9, abs=0.01)


def test_bad_arguments():
    proc = subprocess.run([SIM, "--file", "/nonexistent/x.lis", "--size", "5"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    proc = subprocess.run([SIM, "--bogus"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2


def test_redis_lfu_model_keeps_frequent_keys_through_scans(tmp_path):
    # Four hot keys, each read 10 times, then two one-time keys before every
    # hot read: between two reads of a hot key come 11 other keys, so exact
    # LRU with 8 entries never hits again, while the model of Redis's
    # allkeys-lfu keeps the hot keys (counters above the new keys' 5) and
    # hits on most hot reads (sampled eviction sometimes takes a hot key).
    keys = [h for h in range(4) for _ in range(10)]
    scan = 1000
    for i in range(3000):
        keys += [scan, scan + 1, i % 4]
        scan += 2
    path = tmp_path / "scan.txt"
    write_lirs(path, keys)
    _, rows = run_sim("--file", str(path), "--format", "lirs", "--size", "8",
                      "--redis-lfu", "--no-opt")
    r = rows[0]
    hot_share = 100.0 * 3000 / len(keys)
    assert r["lru"] < 5.0
    assert r["redis_lfu"] > 0.75 * hot_share
    # Without --redis-lfu the column is absent (null).
    _, rows = run_sim("--file", str(path), "--format", "lirs", "--size", "8", "--no-opt")
    assert rows[0]["redis_lfu"] is None


def test_missing_traces_named_with_their_address(tmp_path):
    """No traces where it looks: each missing one named, with where it is published,
    exit status 2, nothing replayed (issue 18.4)."""
    env = dict(os.environ, CRABCACHE_TRACES=str(tmp_path))
    proc = subprocess.run([SIM, "--trace", "lirs"], capture_output=True, text=True,
                          timeout=60, env=env, cwd=str(tmp_path))
    assert proc.returncode == 2
    for name, url in (("loop", "lirs/loop.trace.gz"), ("gli", "lirs/gli.trace.gz"),
                      ("cs", "lirs/cs.trace.gz"), ("multi2", "lirs/multi2.trace.gz")):
        assert "trace %s/lirs-%s.trace.gz: No such file or directory" % (tmp_path, name) \
            in proc.stderr, proc.stderr
        assert "https://github.com/ben-manes/caffeine/raw/master/" in proc.stderr
        assert url in proc.stderr
    assert "4 traces missing in %s" % tmp_path in proc.stderr
    assert "CRABCACHE_TRACES" in proc.stderr and "docs/eviction.md" in proc.stderr
    assert proc.stdout == ""
    # with no variable and no directory: the relative default, ./traces
    env.pop("CRABCACHE_TRACES")
    proc = subprocess.run([SIM, "--trace", "arc-OLTP"], capture_output=True, text=True,
                          timeout=60, env=env, cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "trace traces/arc-OLTP.lis.zst: No such file" in proc.stderr
    assert "https://github.com/moka-rs/cache-trace/raw/main/arc/OLTP.lis.zst" in proc.stderr


@pytest.mark.skipif(TRACES is None, reason="traces not present")
def test_traces_from_environment(tmp_path):
    env = dict(os.environ, CRABCACHE_TRACES=os.path.abspath(TRACES))
    proc = subprocess.run([SIM, "--json", "--no-opt", "--trace", "lirs-cs", "--size", "563"],
                          capture_output=True, text=True, timeout=120, env=env,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "lirs-cs" in proc.stdout


def test_help_says_what_and_where():
    out = subprocess.run([SIM, "--help"], capture_output=True, text=True, timeout=30).stdout
    assert "Replays public cache traces offline" in out
    assert "$CRABCACHE_TRACES" in out and "docs/eviction.md" in out
    assert out.count("https://github.com/") == 8
