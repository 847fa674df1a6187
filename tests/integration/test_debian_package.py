"""The Debian package (issue 18.6): debian/ is built with `dpkg-buildpackage -us -uc -b`
from a copy of the tree, installed with dpkg, the installed server started as the
crabcache user with the installed conffile (without systemd: the binary directly, on
free ports) and talked to with the installed crabcache-cli, then purged.

Installing a package changes the machine, so this runs only as root and where it
cannot disturb a running system: in CI (CI=true) or where systemd is not running (a
container or a build chroot, where the package's postinst starts no service). It is
skipped, saying why, elsewhere, and when a crabcache package is already installed."""
import os
import pwd
import shutil
import socket
import subprocess
import time

import pytest

import crabtest

REPO = crabtest.REPO_ROOT

pytestmark = pytest.mark.slow


def sh(*argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 900)
    return subprocess.run(list(argv), **kw)


def preconditions():
    if os.geteuid() != 0:
        return "needs root (dpkg -i)"
    if os.environ.get("CI") != "true" and os.path.isdir("/run/systemd/system"):
        return ("systemd runs here: installing would start a crabcache service on this "
                "machine; run with CI=true on a throw-away machine")
    if shutil.which("dpkg-buildpackage") is None or shutil.which("dh") is None:
        return "dpkg-dev and debhelper are not installed (scripts/deps.sh installs them)"
    st = sh("dpkg-query", "-W", "-f", "${Status}", "crabcache")
    if st.returncode == 0 and "installed" in st.stdout:
        return "a crabcache package is already installed here"
    return None


def copy_tree(dst):
    """The tracked and new files of the checkout (not build/, not ignored files)."""
    r = sh("git", "ls-files", "-co", "--exclude-standard", cwd=REPO)
    if r.returncode != 0:
        shutil.copytree(REPO, dst, ignore=shutil.ignore_patterns("build", ".git"))
        return
    for rel in r.stdout.splitlines():
        src = os.path.join(REPO, rel)
        if not os.path.isfile(src):
            continue
        os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dst, rel))


def test_build_install_start_purge(tmp_path):
    why = preconditions()
    if why:
        pytest.skip(why)
    tree = tmp_path / "crabcache"
    copy_tree(str(tree))
    r = sh("dpkg-checkbuilddeps", cwd=str(tree))
    assert r.returncode == 0, "build dependencies missing: " + r.stderr
    r = sh("dpkg-buildpackage", "-us", "-uc", "-b", cwd=str(tree))
    assert r.returncode == 0, (r.stdout[-4000:] + r.stderr[-4000:])
    debs = [f for f in os.listdir(str(tmp_path)) if f.startswith("crabcache_") and
            f.endswith(".deb")]
    assert len(debs) == 1, os.listdir(str(tmp_path))
    deb = str(tmp_path / debs[0])

    contents = sh("dpkg-deb", "-c", deb).stdout
    for path in ("./usr/bin/crabcache", "./usr/bin/crabcache-cli", "./usr/bin/crabcache-bench",
                 "./usr/bin/crabcache-sim", "./etc/crabcache/crabcache.toml",
                 "./lib/systemd/system/crabcache.service"):
        assert path in contents, path

    # Another dpkg or apt (an unattended upgrade, a parallel install) may hold
    # the lock for a while: wait for it rather than fail.
    for _ in range(60):
        r = sh("dpkg", "-i", deb)
        if r.returncode == 0 or "lock" not in r.stderr:
            break
        time.sleep(2)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        conffiles = sh("dpkg-query", "-W", "-f", "${Conffiles}", "crabcache").stdout
        assert "/etc/crabcache/crabcache.toml" in conffiles, conffiles
        user = pwd.getpwnam("crabcache")
        assert user.pw_dir == "/var/lib/crabcache" and user.pw_uid < 1000
        st = os.stat("/var/lib/crabcache")
        assert st.st_uid == user.pw_uid
        with open("/lib/systemd/system/crabcache.service") as f:
            unit = f.read()
        assert "ExecStart=/usr/bin/crabcache --config /etc/crabcache/crabcache.toml" in unit
        assert "User=crabcache" in unit and "/usr/local" not in unit
        assert sh("/usr/bin/crabcache", "--check-config",
                  "/etc/crabcache/crabcache.toml").returncode == 0

        # start it as the unit would (its user, config and working directory), on
        # free ports instead of 8000/6379/9090
        ports = crabtest.free_ports(3)
        env = dict(os.environ, CRABCACHE_WAL_DIR="/var/lib/crabcache/wal")
        proc = subprocess.Popen(
            ["runuser", "-u", "crabcache", "--", "/usr/bin/crabcache", "--config",
             "/etc/crabcache/crabcache.toml", "--port", str(ports[0]), "--resp-port",
             str(ports[1]), "--metrics-port", str(ports[2])],
            cwd="/var/lib/crabcache", env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", ports[0]), timeout=1).close()
                    break
                except OSError:
                    assert proc.poll() is None, proc.stderr.read()
                    time.sleep(0.05)
            cli = ["/usr/bin/crabcache-cli", "-p", str(ports[0])]
            assert sh(*cli, "PUT", "pkg", "installed value").stdout == "OK\n"
            assert sh(*cli, "GET", "pkg").stdout == '"installed value"\n'
            assert sh(*cli, "PING").stdout == "PONG\n"
            ps = sh("ps", "-o", "user=", "-p", str(proc.pid)).stdout.strip()
            assert ps in ("crabcache", "root")  # runuser itself, or the server if exec'd
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        r = sh("dpkg", "--purge", "crabcache")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists("/usr/bin/crabcache")
    assert not os.path.exists("/etc/crabcache/crabcache.toml")
    assert not os.path.exists("/var/lib/crabcache")
