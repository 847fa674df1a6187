"""Read the project's Dockerfile without Docker: its stages and instructions, and the
build context as .dockerignore filters it. Used by tests/integration/test_packaging.py
and scripts/dockerfile-chroot. Handles what our Dockerfile uses: FROM ... AS name,
RUN (shell form), COPY [--from=stage] src... dst, WORKDIR, ENV k=v..., USER, and
records the rest (EXPOSE, VOLUME, HEALTHCHECK, STOPSIGNAL, ENTRYPOINT, CMD)."""
import fnmatch
import json
import os
import re
import shlex


class Stage:
    def __init__(self, base, name):
        self.base, self.name = base, name
        self.steps = []          # (instruction, argument string)
        self.env = {}
        self.entrypoint, self.cmd, self.user = [], [], "root"

    def runs(self):
        return [a for i, a in self.steps if i == "RUN"]

    def packages(self):
        """The packages of every `apt-get install` in the stage's RUN lines."""
        out = []
        for run in self.runs():
            for part in run.split("&&"):
                words = shlex.split(part)
                if words[:2] == ["apt-get", "install"]:
                    out += [w for w in words[2:] if not w.startswith("-")]
        return out


def instructions(path):
    """(INSTRUCTION, argument) pairs, continuation lines joined, comments dropped."""
    lines, cur = [], ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.lstrip().startswith("#"):
                continue  # a comment inside a continued instruction
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            lines.append(cur.strip())
            cur = ""
    out = []
    for ln in lines:
        ins, _, arg = ln.partition(" ")
        out.append((ins.upper(), arg.strip()))
    return out


def stages(path):
    result = []
    for ins, arg in instructions(path):
        if ins == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", arg, re.I)
            result.append(Stage(m.group(1), m.group(2)))
            continue
        st = result[-1]
        st.steps.append((ins, arg))
        if ins == "ENV":
            for w in shlex.split(arg):
                k, _, v = w.partition("=")
                st.env[k] = v
        elif ins == "USER":
            st.user = arg
        elif ins in ("ENTRYPOINT", "CMD"):
            val = json.loads(arg) if arg.startswith("[") else ["/bin/sh", "-c", arg]
            if ins == "ENTRYPOINT":
                st.entrypoint = val
            else:
                st.cmd = val
    return result


def copy_args(arg):
    """(from_stage or None, [sources], destination) of a COPY argument string."""
    words = shlex.split(arg)
    frm = None
    while words and words[0].startswith("--"):
        if words[0].startswith("--from="):
            frm = words[0][len("--from="):]
        words = words[1:]
    return frm, words[:-1], words[-1]


def ignore_patterns(context):
    path = os.path.join(context, ".dockerignore")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [ln.strip().rstrip("/") for ln in f
                if ln.strip() and not ln.lstrip().startswith("#")]


def ignored(rel, patterns):
    """Docker's rule, as far as our patterns go: a pattern matches the path or one of
    its parent directories; `**/` matches any number of directories."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pat in patterns:
        alts = [pat] + ([pat[3:]] if pat.startswith("**/") else [])
        for p in alts:
            for pre in prefixes:
                if fnmatch.fnmatchcase(pre, p) or (p.startswith("**/") and
                                                    fnmatch.fnmatchcase(pre.split("/")[-1],
                                                                        p[3:])):
                    return True
    return False


def context_files(context):
    """Every file of the build context after .dockerignore, relative paths."""
    pats = ignore_patterns(context)
    out = []
    for root, dirs, files in os.walk(context):
        rel_root = os.path.relpath(root, context)
        rel_root = "" if rel_root == "." else rel_root + "/"
        dirs[:] = [d for d in dirs if not ignored(rel_root + d, pats)]
        out += [rel_root + f for f in files if not ignored(rel_root + f, pats)]
    return out


def docker_run_example(path):
    """The `docker run` command line of the Dockerfile's header comment, as words."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"#\s+(docker run .*)$", line)
            if m:
                return shlex.split(m.group(1))
    return None
