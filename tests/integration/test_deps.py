"""scripts/deps.sh (run by `make test`) never stops a user's services: only under
CI=true does it stop the redis-server and prometheus services the packages start
(issue 18.7). The script runs for real, with dpkg-query, apt-get, id and
systemctl replaced by recording stand-ins on PATH, so nothing is installed or
stopped here."""
import os
import stat
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPS = os.path.join(REPO, "scripts", "deps.sh")


def shim(d, name, body):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write("#!/bin/sh\n" + body + "\n")
    os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR)


def run_deps(tmp_path, ci):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    log.write_text("")
    shim(bin_dir, "dpkg-query", "exit 1")                    # every package missing
    shim(bin_dir, "id", 'echo 0')                             # as root
    shim(bin_dir, "apt-get", 'echo "apt-get $*" >> %s' % log)
    shim(bin_dir, "systemctl", 'echo "systemctl $*" >> %s' % log)
    env = dict(os.environ, PATH=str(bin_dir) + ":" + os.environ["PATH"])
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    proc = subprocess.run(["bash", DEPS], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return log.read_text().splitlines()


def test_no_service_touched_outside_ci(tmp_path):
    calls = run_deps(tmp_path, None)
    assert any(c.startswith("apt-get install") for c in calls), calls
    assert not [c for c in calls if c.startswith("systemctl")], calls


def test_ci_false_is_not_ci(tmp_path):
    calls = run_deps(tmp_path, "false")
    assert not [c for c in calls if c.startswith("systemctl")], calls


def test_ci_stops_them(tmp_path):
    calls = run_deps(tmp_path, "true")
    assert "systemctl stop redis-server" in calls, calls
    assert "systemctl disable --now prometheus" in calls, calls
