"""Path confinement for the tools: every path the model names resolves (symlinks included)
inside the project root, protected places are never written, and walks honour .gitignore.

Decisions are made on the resolved target, never on the string the model sent, because a
symlink inside the project may point anywhere (FIELD-NOTES §3.1-3.5).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

from joe_agent.paths import joe_home

# Folders a walk skips even without a .gitignore: version-control internals and the usual
# dependency and cache piles, which drown small models in noise. Naming one explicitly
# (list_files path="node_modules/x") still works.
NOISE_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv",
                        ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox"})


class PathRefused(Exception):
    """A path the tools will not touch. The message is shown to the model and the person."""


class Workspace:
    """The project root plus the places under it (or elsewhere) that are never written."""

    def __init__(self, root: Path, protected: list[Path] | None = None) -> None:
        self.root = Path(root).resolve()
        self._protected = [Path(p) for p in (protected or [])]
        self._specs: dict[Path, tuple[int, Any]] = {}  # dir -> (mtime_ns, patterns)

    # ---- resolving ------------------------------------------------------------------------
    def resolve(self, path: str, for_write: bool = False) -> Path:
        """The real absolute path for `path` (relative to the root, or absolute).
        Raises PathRefused when it leaves the project or, for writes, is protected."""
        text = str(path if path is not None else "").strip()
        if "\0" in text:
            raise PathRefused("path contains a NUL byte")
        if not text:
            text = "."
        raw = Path(text).expanduser()
        candidate = raw if raw.is_absolute() else self.root / raw
        try:
            # strict=False resolves every existing component (the deepest existing parent of a
            # new file included) and appends the rest, so a new file under a symlinked folder
            # is judged by where that folder really is.
            real = Path(os.path.realpath(candidate))
        except (OSError, RuntimeError, ValueError) as e:
            raise PathRefused(f"cannot resolve {text}: {e}") from e
        if not real.is_relative_to(self.root):  # whole components: /proj-evil is not /proj
            raise PathRefused(f"{text} is outside the project ({self.root}); only paths inside it are allowed")
        if for_write:
            self._check_writable(text, real)
        return real

    def _check_writable(self, text: str, real: Path) -> None:
        parts = real.relative_to(self.root).parts
        if any(p.casefold() == ".git" for p in parts):  # casefold: .GIT is .git on macOS
            raise PathRefused(f"{text} is inside .git/; the repository's internals are never written")
        for prot in self._protected_paths():
            if real == prot or real.is_relative_to(prot):
                raise PathRefused(f"{text} is inside joe's own state ({prot}); it is never written by tools")
        if real.is_dir():
            raise PathRefused(f"{text} is a directory; give a file path")

    def _protected_paths(self) -> list[Path]:
        # JOE_HOME is read at call time: it may be relocated after the workspace was built.
        out = []
        for p in [*self._protected, joe_home()]:
            try:
                out.append(Path(os.path.realpath(p.expanduser())))
            except (OSError, ValueError):
                continue
        return out

    def rel(self, p: Path) -> str:
        """`p` relative to the root, with forward slashes ('.' for the root itself)."""
        try:
            r = Path(p).relative_to(self.root)
        except ValueError:
            return str(p)
        return r.as_posix() if r.parts else "."

    # ---- .gitignore -----------------------------------------------------------------------
    def ignored(self, rel_path: str) -> bool:
        """True when git would ignore `rel_path` (root and nested .gitignore files,
        .git/info/exclude), or it lies in .git/. A trailing '/' marks a directory."""
        is_dir = rel_path.endswith("/")
        parts = [p for p in rel_path.strip("/").split("/") if p and p != "."]
        if not parts:
            return False
        if ".git" in parts:
            return True
        # git cannot re-include a file whose parent folder is excluded: check each ancestor
        for i in range(1, len(parts) + 1):
            if self._decide(parts[:i], is_dir or i < len(parts)):
                return True
        return False

    def _decide(self, parts: list[str], is_dir: bool) -> bool:
        verdict = None
        # deeper .gitignore files override shallower ones, as in git
        for depth in range(len(parts)):
            folder = self.root.joinpath(*parts[:depth])
            sub = "/".join(parts[depth:]) + ("/" if is_dir else "")
            for patterns in self._patterns_for(folder, depth == 0):
                for pat in patterns:
                    if pat.include is not None and pat.match_file(sub) is not None:
                        verdict = pat.include
        return bool(verdict)

    def _patterns_for(self, folder: Path, is_root: bool) -> list[list[Any]]:
        found = []
        files = [folder / ".gitignore"]
        if is_root:
            files.insert(0, self.root / ".git" / "info" / "exclude")
        for f in files:
            pats = self._load_spec(f)
            if pats:
                found.append(pats)
        return found

    def _load_spec(self, f: Path) -> list[Any]:
        try:
            mtime = f.stat().st_mtime_ns
        except OSError:
            return []
        cached = self._specs.get(f)
        if cached and cached[0] == mtime:
            return cached[1]
        import pathspec  # off the startup path

        try:
            lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        pats = list(pathspec.GitIgnoreSpec.from_lines(lines).patterns)
        self._specs[f] = (mtime, pats)
        return pats

    # ---- walking --------------------------------------------------------------------------
    def walk(self, start: Path) -> Iterator[Path]:
        """Files under `start` (an absolute, resolved path inside the root), sorted, skipping
        ignored and noise folders. Symlinks are yielded only when they resolve inside."""
        stack = [start]
        while stack:
            folder = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            subdirs = []
            for entry in entries:
                path = Path(entry.path)
                rel = self.rel(path)
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    is_link = entry.is_symlink()
                except OSError:
                    continue
                if is_dir:
                    if entry.name not in NOISE_DIRS and not self.ignored(rel + "/"):
                        subdirs.append(path)
                    continue
                if self.ignored(rel):
                    continue
                if is_link and not self._link_inside(path):
                    continue
                yield path
            stack.extend(reversed(subdirs))

    def _link_inside(self, path: Path) -> bool:
        try:
            real = Path(os.path.realpath(path))
        except (OSError, RuntimeError, ValueError):
            return False
        return real.is_relative_to(self.root) and real.is_file()
