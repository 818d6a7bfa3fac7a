"""The shadow git repository behind checkpoints: setup, snapshot commits, diffs, saved blobs.

Every command runs with GIT_DIR, GIT_WORK_TREE and GIT_INDEX_FILE pointing at our own git dir,
so the user's .git is never written. Snapshots chain on one ref, so none is ever unreachable.

Git runs through plain subprocess, not GitPython's Git.execute: that merges all of os.environ
into each command, so an inherited GIT_OBJECT_DIRECTORY or GIT_COMMON_DIR (joe started from a
git hook or `git rebase --exec`) would aim our commands at the user's repository.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from joe_agent.errors import StoreError
from joe_agent.memory.store import atomic_write
from joe_agent.paths import joe_home

# Large, generated folders; skipped unless the user's own git tracks them (then they are source).
HEAVY_DIRS = ("node_modules", ".venv", "venv", "__pycache__", "dist", "build", ".tox", "target",
              ".mypy_cache", ".pytest_cache", ".ruff_cache")
HEAD_REF = "refs/joe/head"  # every snapshot chains to this ref, so no snapshot is ever unreachable
ABSENT = "000000"  # the mode git reports for a path missing on one side of a diff
_IDENTITY = {"GIT_AUTHOR_NAME": "joe-agent", "GIT_AUTHOR_EMAIL": "joe-agent@localhost",
             "GIT_COMMITTER_NAME": "joe-agent", "GIT_COMMITTER_EMAIL": "joe-agent@localhost"}
# Own settings only: no hooks, no auto gc, no line-ending or filter rewriting, no global ignores.
_SETTINGS = ("core.hooksPath={null}", "core.excludesFile={null}", "core.attributesFile={null}",
             "core.autocrlf=false", "core.safecrlf=false", "core.symlinks=true", "core.quotePath=false",
             "core.fsmonitor=false", "core.logAllRefUpdates=false", "gc.auto=0", "maintenance.auto=false",
             "commit.gpgSign=false")
# Saved bytes are the file's bytes: the project's .gitattributes (eol, lfs) must not alter a restore.
_ATTRIBUTES = "* -text -filter -ident -working-tree-encoding\n"


@dataclass
class Snapshot:
    commit: str
    skipped: list[str]  # relative paths; folders end with "/"
    files: int
    seconds: float


class Change(NamedTuple):
    """One path that differs between two snapshots (modes are ABSENT on the missing side)."""
    path: str
    old_mode: str
    new_mode: str
    old_sha: str


class GitFailed(StoreError):
    def __init__(self, args: tuple[str, ...], stderr: bytes) -> None:
        super().__init__(f"checkpoints: git {args[0]} failed: {_last_line(stderr)}")
        self.stderr = stderr


class Damaged(Exception):
    """The shadow store cannot be read as it is; the reason is the message."""


class ShadowRepo:
    """The git dir `git_dir` snapshotting the work tree `root` (both paths, root resolved)."""

    def __init__(self, root: Path, git_dir: Path, max_file_bytes: int = 5_000_000,
                 skip_dirs: tuple[str, ...] = HEAVY_DIRS) -> None:
        self.root, self.git_dir = root, git_dir
        self.max_file_bytes, self.skip_dirs = max_file_bytes, tuple(skip_dirs)
        self._git_exe = shutil.which("git")
        if self._git_exe is None:
            raise StoreError("checkpoints need git, which is not on PATH: install git to use /undo")
        base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self._plain_env = dict(base, GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0")
        self._env = dict(base, **_IDENTITY, GIT_DIR=str(self.git_dir), GIT_WORK_TREE=str(self.root),
                         GIT_INDEX_FILE=str(self.git_dir / "index"), GIT_CONFIG_NOSYSTEM="1",
                         GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0", GIT_LITERAL_PATHSPECS="1",
                         LC_ALL="C")
        self._tracked_heavy: list[str] | None = None

    # ---- running git ----------------------------------------------------------------------
    def run(self, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([self._git_exe, *args], cwd=self.root, env=self._env, input=data,
                                  capture_output=True)
        except OSError as e:
            raise StoreError(f"checkpoints: could not run git: {e}") from e

    def git(self, *args: str, data: bytes | None = None) -> bytes:
        proc = self.run(*args, data=data)
        if proc.returncode != 0:
            raise GitFailed(args, proc.stderr)
        return proc.stdout

    # ---- setup ----------------------------------------------------------------------------
    def init(self) -> None:
        """Create the bare shadow repo with our own settings, under its real name only when whole."""
        tmp = self.git_dir.with_name(f".{self.git_dir.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        env = {k: v for k, v in self._env.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
        try:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run([self._git_exe, "init", "-q", "--bare", "--template=", str(tmp)],
                                  env=env, capture_output=True)
            if proc.returncode != 0:
                raise GitFailed(("init",), proc.stderr)
            settings = (re.split(r"[.=]", item.format(null=os.devnull), 2) for item in _SETTINGS)
            config = "".join(f"[{section}]\n\t{key} = {value}\n" for section, key, value in settings)
            atomic_write(tmp / "config", (tmp / "config").read_text("utf-8") + config)
            atomic_write(tmp / "info" / "attributes", _ATTRIBUTES)
            os.replace(tmp, self.git_dir)  # a half-made repo never carries the real name
        except OSError as e:
            raise StoreError(f"checkpoints: could not create {self.git_dir}: {e}") from e
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def has_head(self) -> bool:
        """Whether a snapshot exists; raises Damaged when the git dir is not a repository."""
        head = self.run("rev-parse", "--verify", "-q", HEAD_REF + "^{tree}")
        if head.returncode not in (0, 1):  # 1: no snapshot yet; 128: not a repository
            raise Damaged(_last_line(head.stderr))
        return head.returncode == 0

    def replace_damaged(self, reason: str) -> Path:
        """Move the damaged git dir aside and start a fresh one; returns where it went."""
        aside = self.git_dir.with_name(f"{self.git_dir.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(self.git_dir, aside)
        except OSError as err:
            raise StoreError(f"checkpoint store {self.git_dir} is damaged ({reason}) and could not be "
                             f"moved aside ({err.strerror}): move or delete it by hand") from err
        self.init()
        return aside

    # ---- snapshots ------------------------------------------------------------------------
    def snapshot(self, message: str) -> tuple[Snapshot, dict[str, list[int]]]:
        """Commit the work tree; also returns (size, mtime) of the files over the size cap."""
        start = time.perf_counter()
        self._sync_excludes()
        try:
            skipped, big = self._stage()
        except GitFailed as e:
            if b"index" not in e.stderr:
                raise
            (self.git_dir / "index").unlink(missing_ok=True)  # only a cache: rebuild it from disk
            skipped, big = self._stage()
        commit = self._commit(self.git("write-tree").decode().strip(), message)
        return Snapshot(commit, skipped, self._count_files(), time.perf_counter() - start), big

    def _stage(self) -> tuple[list[str], dict[str, list[int]]]:
        """Bring the shadow index in line with the work tree, touching only changed paths.
        Returns the skipped paths and, for files over the cap, their (size, mtime)."""
        listed = _split(self.git("ls-files", "-z", "-t", "-o", "-m", "-d", "--exclude-standard"))
        indexed = {p[2:] for p in listed if not p.startswith("? ")}
        skipped, big, add, drop = [], {}, [], []
        for path in sorted({p[2:] for p in listed}):
            if path.endswith("/"):  # a nested git repository: its own history, not ours
                skipped.append(path)
                continue
            try:
                st = os.lstat(self.root / path)
            except OSError:
                add.append(path)  # gone: --remove drops it
                continue
            unsaved = stat.S_ISREG(st.st_mode) and (st.st_size > self.max_file_bytes
                                                    or not os.access(self.root / path, os.R_OK))
            if unsaved:  # over the size cap (or unreadable)
                skipped.append(path)
                big[path] = [st.st_size, st.st_mtime_ns]
            (drop if unsaved or stat.S_ISDIR(st.st_mode) else add).append(path)
        newly_ignored = set(_split(self.git("ls-files", "-z", "-c", "-i", "--exclude-standard")))
        if remove := newly_ignored | (set(drop) & indexed):  # drop also holds untracked big files
            self.git("update-index", "-z", "--force-remove", "--stdin", data=_join(sorted(remove)))
        if add := [p for p in add if p not in newly_ignored]:
            self.git("update-index", "-z", "--add", "--remove", "--replace", "--stdin", data=_join(add))
        ignored = _split(self.git("ls-files", "-z", "-o", "-i", "--directory", "--exclude-standard"))
        skipped += [p for p in ignored if p.endswith("/") and p[:-1].rsplit("/", 1)[-1] in self.skip_dirs]
        return sorted(skipped), big

    def _commit(self, tree: str, message: str) -> str:
        out = self.run("rev-parse", HEAD_REF, HEAD_REF + "^{tree}").stdout.decode().split()
        parent = out[0] if len(out) == 2 else ""
        if parent and out[1] == tree:
            return parent  # nothing changed: reuse the previous snapshot
        commit = self.git("commit-tree", "--no-gpg-sign", tree, *(["-p", parent] if parent else []),
                          "-m", message).decode().strip()
        self.git("update-ref", HEAD_REF, commit)
        return commit

    def _sync_excludes(self) -> None:
        lines = ["# written by joe-agent: what checkpoints never snapshot", "/.joe/"]
        inner = {_relative(p, self.root) for p in (self.git_dir.parent, joe_home())}  # state inside the project
        lines += ["/" + _escape(rel) + "/" for rel in sorted(inner) if rel]
        lines += [f"{_escape(name)}/" for name in self.skip_dirs]
        lines += ["!/" + _escape(p) + "/" for p in self._user_tracked_heavy()]
        user_exclude = self.root / ".git" / "info" / "exclude"
        if user_exclude.is_file():
            lines += ["# from the project's .git/info/exclude", user_exclude.read_text("utf-8", "replace")]
        text, target = "\n".join(lines) + "\n", self.git_dir / "info" / "exclude"
        if not target.is_file() or target.read_text("utf-8", "replace") != text:
            atomic_write(target, text)

    def _user_tracked_heavy(self) -> list[str]:
        """Heavy-named folders the user's own git tracks (a read-only `git ls-files`)."""
        if self._tracked_heavy is None:
            specs = [f":(glob)**/{name}/**" for name in self.skip_dirs]
            try:  # the user's config applies, minus fsmonitor (it may start a daemon)
                proc = subprocess.run([self._git_exe, "-c", "core.fsmonitor=false", "ls-files", "-z", "--",
                                       *specs], cwd=self.root, env=self._plain_env, capture_output=True)
                listed = _split(proc.stdout) if proc.returncode == 0 else []
            except OSError:
                listed = []
            found = {"/".join(parts[:i + 1]) for parts in (p.split("/") for p in listed)
                     for i, part in enumerate(parts[:-1]) if part in self.skip_dirs}
            self._tracked_heavy = sorted(found)
        return self._tracked_heavy

    def _count_files(self) -> int:
        try:
            with open(self.git_dir / "index", "rb") as fh:
                head = fh.read(12)
        except FileNotFoundError:
            return 0
        return int.from_bytes(head[8:12], "big") if head[:4] == b"DIRC" else 0

    # ---- reading snapshots ----------------------------------------------------------------
    def diff(self, old: str, new: str) -> list[Change]:
        tokens = _split(self.git("diff-tree", "-r", "-z", "--no-renames", "--raw", old, new))
        metas = (meta.lstrip(":").split(" ") for meta in tokens[0::2])
        return [Change(path, m[0], m[1], m[2]) for m, path in zip(metas, tokens[1::2])]

    def text_diff(self, old: str, new: str, paths: list[str]) -> str:
        """The diff of just these paths (in chunks, so a large undo cannot overflow argv)."""
        out = b"".join(self.git("diff", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames",
                                old, new, "--", *paths[i:i + 256]) for i in range(0, len(paths), 256))
        return out.decode("utf-8", "replace")

    def blobs(self, shas: set[str]) -> dict[str, bytes]:
        """The saved bytes of these blobs, by sha."""
        if not shas:
            return {}
        out, blobs, pos = self.git("cat-file", "--batch", data="".join(s + "\n" for s in shas).encode()), {}, 0
        while pos < len(out):
            end = out.index(b"\n", pos)
            header = out[pos:end].decode().split()
            if len(header) != 3:
                raise StoreError(f"checkpoints: saved data {header[0]} is missing; the shadow repo "
                                 f"{self.git_dir} is damaged (move it aside to start afresh)")
            blobs[header[0]] = out[end + 1:end + 1 + int(header[2])]
            pos = end + 2 + int(header[2])
        return blobs


def _last_line(stderr: bytes) -> str:
    return (stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]


def _split(out: bytes) -> list[str]:
    return [os.fsdecode(p) for p in out.split(b"\0") if p]


def _join(paths: list[str]) -> bytes:
    return b"".join(os.fsencode(p) + b"\0" for p in paths)


def _escape(pattern: str) -> str:
    return re.sub(r"([\\*?\[\]!# ])", r"\\\1", pattern)


def _relative(inner: Path, root: Path) -> str:
    try:
        rel = Path(inner).resolve().relative_to(root).as_posix()
    except ValueError:
        return ""
    return "" if rel == "." else rel
