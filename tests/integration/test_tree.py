"""The source tree itself: no absolute path of a machine (a developer's home, the
build machines' /work tree, root's home) in any tracked file, so that what works
here works from any clone (issue 18.4)."""
import os
import re
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Written in pieces so that this file does not match itself.
MACHINE_PATH = "(^|[^A-Za-z0-9_.~$-])/(" + "|".join(["wo" + "rk", "ho" + "me", "ro" + "ot"]) + ")/"


def test_no_absolute_machine_paths():
    if not os.path.isdir(os.path.join(REPO, ".git")) and \
            not os.path.isfile(os.path.join(REPO, ".git")):
        pytest.skip("not a git checkout")
    proc = subprocess.run(["git", "grep", "-n", "-I", "-E", MACHINE_PATH],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    hits = [line for line in proc.stdout.splitlines() if line]
    assert not hits, "absolute paths of a machine in the tree:\n" + "\n".join(hits)


def test_the_pattern_catches_what_it_should():
    for bad in ["x /" + "work/shared/traces", "\"/" + "home/u/x\"", "cd /" + "root/a"]:
        assert re.search(MACHINE_PATH, bad), bad
    for good in ["~/" + "work/x", "build/" + "work/x", "$HOME/x", "a/" + "root/b"]:
        assert not re.search(MACHINE_PATH, good), good


def test_docs_use_tools_that_make_test_installs():
    """README and docs talk to the native port with crabcache-cli, not socat or nc,
    which nothing installs (issue 18.8)."""
    paths = [os.path.join(REPO, "README.md")] + [
        os.path.join(REPO, "docs", f) for f in sorted(os.listdir(os.path.join(REPO, "docs")))
        if f.endswith(".md")]
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                assert not re.search(r"\|\s*(socat|nc|netcat|telnet)\b", line), \
                    "%s:%d pipes into a tool make test does not install: %s" % (p, n, line)
