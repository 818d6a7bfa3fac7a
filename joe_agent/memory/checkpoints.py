"""Checkpoints and /undo: a stack of agent turns over snapshots of the work tree.

Snapshots commit the work tree into `<store_dir>/<project_key>.git`, a shadow git dir of our own
(joe_agent/memory/shadow_repo.py; the user's .git is never written). begin_turn snapshots before
a turn, end_turn after it (which also catches what shell commands changed); undo puts back the
before-state of the changed paths, except paths changed since. The turn stack is a JSON log in
the shadow repo, so undo survives a restart.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from joe_agent.errors import StoreError
from joe_agent.memory.shadow_repo import ABSENT, HEAVY_DIRS, Change, Damaged, ShadowRepo, Snapshot
from joe_agent.memory.store import atomic_write, locked
from joe_agent.paths import project_key

__all__ = ["Checkpoints", "FileChange", "HEAVY_DIRS", "Snapshot", "UndoResult"]

LOG_NAME = "joe-turns.json"
MAX_ENTRIES = 500


@dataclass
class FileChange:
    path: str  # relative to the project root
    kind: Literal["added", "modified", "deleted"]


@dataclass
class UndoResult:
    session: str
    turn: int
    reverted: list[FileChange]  # what was put back (kind = what the agent had done)
    conflicts: list[str]  # changed by the user since the agent's turn: left alone
    diff: str  # unified diff of what was reverted (text files; "binary" noted)
    nothing_to_undo: bool = False
    not_undoable: list[str] = field(default_factory=list)  # changed while over the size cap


class Checkpoints:
    """`store_dir` holds the shadow repos (JOE_HOME/checkpoints); a path ending in `.git` is
    taken as the shadow git dir itself."""

    def __init__(self, project_root: Path, store_dir: Path, max_file_bytes: int = 5_000_000,
                 skip_dirs: tuple[str, ...] = HEAVY_DIRS) -> None:
        self.root = Path(project_root).resolve()
        if not self.root.is_dir():
            raise StoreError(f"checkpoints: project folder {self.root} does not exist")
        store = Path(store_dir).expanduser()
        self.git_dir = store if store.name.endswith(".git") else store / f"{project_key(self.root)}.git"
        self.max_file_bytes, self.skip_dirs = max_file_bytes, tuple(skip_dirs)
        self.repo = ShadowRepo(self.root, self.git_dir, self.max_file_bytes, self.skip_dirs)

    # ---- public API -----------------------------------------------------------------------
    def begin_turn(self, session: str, turn: int, request: str) -> Snapshot:
        """Snapshot the work tree before a turn and push the turn on the stack."""
        with locked(self.git_dir):
            entries = self._open()
            snap, big = self.repo.snapshot(f"joe: before {session} turn {turn}")
            entries.append({"id": max((e["id"] for e in entries), default=0) + 1, "session": session,
                            "turn": turn, "request": request[:200], "started": _now(), "ended": None,
                            "before": snap.commit, "after": None, "changes": [], "status": "active",
                            "conflicts": [], "big_before": big, "big_after": {}})
            self._save(entries)
        return snap

    def end_turn(self, session: str, turn: int) -> list[FileChange]:
        """Snapshot after the turn; returns what the turn changed."""
        with locked(self.git_dir):
            entries = self._open()
            entry = next((e for e in reversed(entries) if e["session"] == session and e["turn"] == turn), None)
            if entry is None:
                raise StoreError(f"checkpoints: no snapshot was taken before session {session} turn {turn}")
            snap, big = self.repo.snapshot(f"joe: after {session} turn {turn}")
            entry.update(after=snap.commit, ended=_now(), big_after=big)
            changes = [_file_change(c, entry) for c in self.repo.diff(entry["before"], snap.commit)]
            entry["changes"] = [[c.path, c.kind] for c in changes]
            self._save(entries)
        return changes

    def undo(self, session: str | None = None, force: bool = False) -> UndoResult:
        """Revert the newest not-yet-undone turn (of `session` if given) that changed files."""
        with locked(self.git_dir):
            entries = self._open()
            current, big_now = self.repo.snapshot("joe: before undo")
            picked = self._pick(entries, session, force, current.commit)
            if picked is None:
                return UndoResult(session or "", 0, [], [], "", nothing_to_undo=True)
            entry, after, changes = picked
            todo, conflicts, blind = self._triage(entry, after, changes, current.commit, big_now, force)
            reverted, failed = self._apply(todo, entry)
            conflicts = sorted(set(conflicts) | set(failed))
            final, _ = self.repo.snapshot(f"joe: undo {entry['session']} turn {entry['turn']}")
            diff = self.repo.text_diff(current.commit, final.commit, [c.path for c in reverted])
            entry.update(status="partial" if conflicts else "undone", conflicts=conflicts,
                         undone=_now(), undo_commit=final.commit)
            self._save(entries)
        return UndoResult(entry["session"], entry["turn"], reverted, conflicts, diff, not_undoable=blind)

    def turns(self, session: str | None = None) -> list[dict]:
        """The turn stack, newest first (internal stat records left out)."""
        with locked(self.git_dir):
            entries = self._open()
        return [{k: v for k, v in e.items() if k not in ("big_before", "big_after")}
                for e in reversed(entries) if session is None or e["session"] == session]

    # ---- the turn log ---------------------------------------------------------------------
    def _open(self) -> list[dict]:
        """Create the shadow repo on first use; a damaged one is moved aside and replaced."""
        if not self.git_dir.exists():
            self.repo.init()
            return []
        try:
            entries = self._load()
            if not self.repo.has_head() and entries:
                raise Damaged("its snapshot history is missing")
            return entries
        except Damaged as e:
            aside = self.repo.replace_damaged(str(e))
            raise StoreError(f"checkpoint store {self.git_dir} was damaged ({e}); moved it to {aside.name} "
                             "and started a fresh one, so earlier turns cannot be undone") from e

    def _load(self) -> list[dict]:
        try:
            data = json.loads((self.git_dir / LOG_NAME).read_text("utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as e:
            raise Damaged(f"turn log unreadable: {e}") from e
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise Damaged("turn log has no entry list")
        return data["entries"]

    def _save(self, entries: list[dict]) -> None:
        payload = {"version": 1, "entries": entries[-MAX_ENTRIES:]}
        atomic_write(self.git_dir / LOG_NAME, json.dumps(payload, indent=1))  # ascii: names may be non-UTF-8

    # ---- undo -----------------------------------------------------------------------------
    def _pick(self, entries: list[dict], session: str | None, force: bool,
              current: str) -> tuple[dict, str, list[Change]] | None:
        """The newest turn to undo, its after-state and its changes. A turn that never ended
        (a crash) ends where the next turn began, or at the current tree if it is the last."""
        for i in range(len(entries) - 1, -1, -1):
            e = entries[i]
            if (session is not None and e["session"] != session) or e["status"] == "undone":
                continue
            if e["status"] == "partial" and not force:
                continue  # its conflicts were reported; /undo with force takes them
            after = e["after"] or (entries[i + 1]["before"] if i + 1 < len(entries) else current)
            changes = self.repo.diff(e["before"], after)
            if e["status"] == "partial":
                changes = [c for c in changes if c.path in e["conflicts"]]
            if changes:
                return e, after, changes
        return None

    def _triage(self, entry: dict, after: str, changes: list[Change], current: str,
                big_now: dict[str, list[int]], force: bool) -> tuple[list[Change], list[str], list[str]]:
        """Split into what to revert, what the user changed since, and what was never saved."""
        since = {c.path for c in self.repo.diff(after, current)}
        big_before, big_after = entry.get("big_before", {}), entry.get("big_after", {})
        todo, conflicts = [], []
        for c in changes:
            if c.path in big_before:
                continue  # it existed too big to save: removing it would lose the user's data
            # absent from the after-state yet on disk now (too big, or ignored): a user edit
            # would be invisible, so only an unchanged over-cap file counts as the agent's
            unsaved = c.new_mode == ABSENT and os.path.lexists(self.root / c.path)
            changed = c.path in since or (unsaved and (c.path not in big_after
                                                       or big_now.get(c.path) != big_after[c.path]))
            if changed and not force:
                conflicts.append(c.path)
            else:
                todo.append(c)
        revertable = {c.path for c in changes if c.path not in big_before}
        blind = [p for p in set(big_before) | set(big_after)
                 if big_before.get(p) != big_after.get(p) and p not in revertable]
        return todo, conflicts, sorted(blind)

    def _apply(self, todo: list[Change], entry: dict) -> tuple[list[FileChange], list[str]]:
        """Removals first (deepest first), then writes; a path that fails is reported, not raised."""
        blobs = self.repo.blobs({c.old_sha for c in todo if c.old_mode != ABSENT})
        removals = sorted((c for c in todo if c.old_mode == ABSENT), key=lambda c: -c.path.count("/"))
        reverted, failed = [], []
        for c in removals + [c for c in todo if c.old_mode != ABSENT]:
            target = self.root / c.path
            try:
                if not self._inside(c.path):
                    raise OSError("a parent folder leads out of the project")
                if c.old_mode == ABSENT:
                    if target.is_dir() and not target.is_symlink():
                        raise OSError("a folder now stands where the agent's file was")
                    target.unlink(missing_ok=True)
                    self._prune(target.parent)
                else:
                    _restore(target, blobs[c.old_sha], c.old_mode)
            except (OSError, StoreError):
                failed.append(c.path)
                continue
            reverted.append(_file_change(c, entry))
        return sorted(reverted, key=lambda f: f.path), failed

    def _inside(self, rel: str) -> bool:
        """True when no parent folder of the path leads out of the project, or into its .git,
        through a symlink."""
        parent, root = os.path.realpath(self.root / os.path.dirname(rel)) + os.sep, str(self.root) + os.sep
        return parent.startswith(root) and not parent.startswith(root + ".git" + os.sep)

    def _prune(self, folder: Path) -> None:
        """Remove the folders the undo emptied, up to the project root."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent


def _restore(target: Path, data: bytes, mode: str) -> None:
    if target.is_dir() and not target.is_symlink():
        target.rmdir()  # an empty folder where the file was; a full one raises and is reported
    if mode == "120000":
        target.unlink(missing_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.fsdecode(data), target)
        return
    # git keeps only the executable bit: keep the file's other permission bits as they are
    perm = target.lstat().st_mode & 0o7777 if target.exists() and not target.is_symlink() else 0o644
    atomic_write(target, data, perm | ((perm & 0o444) >> 2) if mode == "100755" else perm & ~0o111)


def _file_change(c: Change, entry: dict) -> FileChange:
    if c.old_mode == ABSENT and c.path not in entry.get("big_before", {}):
        return FileChange(c.path, "added")
    if c.new_mode == ABSENT and c.path not in entry.get("big_after", {}):
        return FileChange(c.path, "deleted")
    return FileChange(c.path, "modified")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
