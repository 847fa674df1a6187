"""Packaging without a container engine (issue 18.6): the Dockerfile's build context
(.dockerignore), its packages, its build steps run on exactly what it copies, and its
`docker run` example under protected mode. The Debian package test is
test_debian_package.py; scripts/dockerfile-chroot runs the whole Dockerfile in a fresh
Debian 12 tree (by hand: it downloads a Debian base system)."""
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

import crabtest

REPO = crabtest.REPO_ROOT
DOCKERFILE = os.path.join(REPO, "Dockerfile")
sys.path.insert(0, os.path.join(REPO, "scripts"))
import dockerfile  # noqa: E402  (scripts/dockerfile.py)


def stages():
    return dockerfile.stages(DOCKERFILE)


def test_dockerignore_keeps_the_context_small():
    files = dockerfile.context_files(REPO)
    assert os.path.exists(os.path.join(REPO, ".dockerignore"))
    assert not [f for f in files if f.startswith(("build/", ".git/"))]
    size = sum(os.path.getsize(os.path.join(REPO, f)) for f in files)
    assert size < 20 * 1024 * 1024, "build context of %d bytes" % size
    # and every COPY source is still in it
    for st in stages():
        for ins, arg in st.steps:
            if ins == "COPY":
                frm, srcs, _ = dockerfile.copy_args(arg)
                for s in srcs if frm is None else []:
                    assert s in files or any(f.startswith(s.rstrip("/") + "/") for f in files), s


def test_dockerignore_patterns():
    pats = dockerfile.ignore_patterns(REPO)
    for path in ("build/asan/bin/crabcache", "build", ".git/HEAD", "tests/__pycache__/x.pyc",
                 "src/x.pyc", "crash-123", "debian/.debhelper/x"):
        assert dockerfile.ignored(path, pats), path
    for path in ("src/main.c", "tests/integration/test_packaging.py", "config/default.toml",
                 "tools/cli/cli.c", "CMakeLists.txt"):
        assert not dockerfile.ignored(path, pats), path


def test_packages_exist_in_debian():
    """Every package an apt-get install of the Dockerfile names is known to apt here
    (Debian 12, the base image's release)."""
    pkgs = [p for st in stages() for p in st.packages()]
    assert len(pkgs) >= 10
    for p in pkgs:
        r = subprocess.run(["apt-cache", "show", "--no-all-versions", p],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "Package: " + p in r.stdout, "no Debian package %s" % p


def linked_packages(binary):
    """Debian packages of the shared libraries binary links (through ldd, dpkg -S)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    pkgs = set()
    for line in out.splitlines():
        parts = line.split("=>")
        if len(parts) != 2 or not parts[1].strip().startswith("/"):
            continue
        lib = parts[1].split()[0]
        real = os.path.realpath(lib)
        for cand in (lib, real, "/usr" + lib if lib.startswith("/lib") else lib):
            r = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
            if r.returncode == 0:
                pkgs.add(r.stdout.split(":")[0].strip())
                break
        else:
            pytest.fail("no package owns %s" % lib)
    return pkgs


def image_packages(pkgs):
    """What a debian:12-slim image holds after installing pkgs: the essential and
    required packages and pkgs, with everything they depend on (apt-cache depends
    --recurse, dependencies only)."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Essential} ${Priority}\\n"],
                         capture_output=True, text=True, check=True).stdout
    base = {ln.split()[0] for ln in out.splitlines()
            if " yes " in ln or ln.endswith(" required")}
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"]
                       + sorted(base | set(pkgs)), capture_output=True, text=True, check=True)
    return {ln.strip().split(":")[0] for ln in r.stdout.splitlines()
            if ln and not ln.startswith(" ")} | base


@pytest.fixture(scope="module")
def docker_built(tmp_path_factory):
    """The build stage's steps, as written, on a tree holding only what it COPYs:
    its RUN's cmake commands with /src, /build and /out moved under a scratch dir."""
    st = [s for s in stages() if s.name == "build"][0]
    root = tmp_path_factory.mktemp("docker")
    src, build, out = root / "src", root / "build", root / "out"
    workdir = "/"
    for ins, arg in st.steps:
        if ins == "WORKDIR":
            workdir = arg
        elif ins == "COPY":
            frm, srcs, dst = dockerfile.copy_args(arg)
            assert frm is None and workdir == "/src"
            for s in srcs:
                target = src / dst / os.path.basename(s.rstrip("/")) if dst.endswith("/") \
                    else src / dst
                if os.path.isdir(os.path.join(REPO, s)):
                    shutil.copytree(os.path.join(REPO, s), target,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    os.makedirs(target.parent, exist_ok=True)
                    shutil.copy(os.path.join(REPO, s), target)
    runs = [r for r in st.runs() if r.startswith("cmake ")]
    assert len(runs) == 1, runs
    cmd = runs[0].replace("/build", str(build)).replace("/out", str(out))
    cmd = cmd.replace('"$(nproc)"', "2")
    r = subprocess.run(["bash", "-c", cmd], cwd=str(src), capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1].startswith("crabcache ")  # its --version
    return out


@pytest.mark.slow
def test_build_stage_builds_from_its_copy_set(docker_built):
    for tool in ("crabcache", "crabcache-cli", "crabcache-bench"):
        assert os.access(str(docker_built / tool), os.X_OK), tool
    runtime = stages()[-1]
    for ins, arg in runtime.steps:
        if ins == "COPY":
            frm, srcs, _ = dockerfile.copy_args(arg)
            if frm == "build":
                for s in srcs:
                    if s.startswith("/out/"):
                        assert os.path.exists(str(docker_built / s[len("/out/"):])), s


@pytest.mark.slow
def test_runtime_stage_has_every_linked_library(docker_built):
    runtime = image_packages(stages()[-1].packages())
    missing = linked_packages(str(docker_built / "crabcache")) - runtime
    assert not missing, "the runtime stage lacks %s" % sorted(missing)


def outbound_address():
    """This machine's address on its default route, or None (then no non-loopback
    client can be made here)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


def start_like_the_image(binary, env_extra, tmp_path):
    """The runtime stage's ENTRYPOINT + CMD with its ENV, the image's config file at the
    path CMD names, and free ports in place of the published ones."""
    st = stages()[-1]
    config = None
    for ins, arg in st.steps:
        if ins == "COPY":
            frm, srcs, dst = dockerfile.copy_args(arg)
            if dst == "/etc/crabcache/crabcache.toml":
                config = os.path.join(REPO, os.path.relpath(srcs[0], "/src"))
    argv = [binary] + st.entrypoint[1:] + st.cmd
    argv = [config if a == "/etc/crabcache/crabcache.toml" else a for a in argv]
    assert config and config in argv, argv
    ports = crabtest.free_ports(3)
    env = dict(os.environ)
    env.update(st.env)
    env["CRABCACHE_WAL_DIR"] = str(tmp_path / "wal")
    env.update(env_extra)
    argv += ["--port", str(ports[0]), "--resp-port", str(ports[1]),
             "--metrics-port", str(ports[2])]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(str(tmp_path / "server.log"), "w"))
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", ports[1]), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("server exited: " + (tmp_path / "server.log").read_text())
            time.sleep(0.05)
    return proc, ports


def resp_exchange(addr, port, data):
    """Send data (if any), then read until the server closes or goes quiet."""
    with socket.create_connection((addr, port), timeout=5) as s:
        if data:
            s.sendall(data)
        s.settimeout(1.0)
        out = b""
        while True:
            try:
                chunk = s.recv(4096)
            except (socket.timeout, ConnectionResetError):
                return out
            if not chunk:
                return out
            out += chunk


def test_docker_run_example_works_with_protected_mode(tmp_path):
    """The Dockerfile binds 0.0.0.0; a client through a published port is not loopback.
    Without a token that client is refused (protected mode), with the example's
    CRABCACHE_AUTH_TOKEN it is served once it AUTHs."""
    addr = outbound_address()
    if addr is None:
        pytest.skip("no non-loopback address on this machine to connect from")
    example = dockerfile.docker_run_example(DOCKERFILE)
    env_example = {}
    for i, w in enumerate(example):
        if w == "-e":
            k, _, v = example[i + 1].partition("=")
            env_example[k] = v
    assert env_example.get("CRABCACHE_AUTH_TOKEN"), example
    binary = os.path.join(crabtest.bin_dir(), "crabcache")

    proc, ports = start_like_the_image(binary, {}, tmp_path)
    try:
        out = resp_exchange(addr, ports[1], b"")  # refused at accept
        assert out.startswith(b"-DENIED") and b"protected mode" in out, out
    finally:
        proc.terminate()
        proc.wait(30)

    proc, ports = start_like_the_image(binary, env_example, tmp_path)
    try:
        token = env_example["CRABCACHE_AUTH_TOKEN"].encode()
        out = resp_exchange(addr, ports[1], b"AUTH " + token + b"\r\nPING\r\n")
        assert out == b"+OK\r\n+PONG\r\n", out
        out = resp_exchange(addr, ports[0], b"AUTH " + token + b"\nPUT k v\nGET k\n")
        assert out == b"OK\nOK\nv\n", out
        # the HEALTHCHECK's probe
        with socket.create_connection(("127.0.0.1", ports[2]), timeout=5) as s:
            s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            assert b" 200 " in s.recv(4096).split(b"\r\n")[0]
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
