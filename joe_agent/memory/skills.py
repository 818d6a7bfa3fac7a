"""The skill library: load every skill (cached), and keep the folder a git repository.

`<root>/<name>/SKILL.md`, the seed's `<root>/<name>.md` and a trusted project's `.joe/skills/`
load; a broken file is reported by `problems()` / `check()` and skipped. An index cache keyed
by mtime and size means 10,000 unchanged skills cost stat calls, not YAML. Every accept, edit,
archive and restore is a git commit (GitPython, imported only for history and writes);
`update_stats` edits in place without one. One lock serialises all writers.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from joe_agent.errors import StoreError
from joe_agent.memory.skillfile import (NotASkill, Skill, SkillParseError, SkillProblem, parse_skill,  # noqa: F401
                                        parse_skill_checked, render_skill, set_stats, validate_name)
from joe_agent.memory.store import atomic_write, locked

ARCHIVE = ".archive"
CACHE_FILE = Path(".cache") / "index.json"
CACHE_VERSION = 2
GITIGNORE = ".cache/\n*.lock\n.*.tmp\n"
IDENTITY = ("joe-agent", "joe-agent@localhost")


@dataclass
class _Entry:
    """One skill file as last seen: its stat key, and what parsing it gave."""

    key: list[int]
    dirs: dict[str, int]  # sub-folder -> mtime_ns: a file added under references/ changes it
    skill: Skill | None
    problems: list[SkillProblem] = field(default_factory=list)

    def to_json(self) -> list[Any]:
        problems = [[p.line, p.message, p.severity] for p in self.problems]
        return [self.key, self.dirs, self.skill.to_row() if self.skill else None, problems]

    @classmethod
    def from_json(cls, path: str, row: list[Any]) -> "_Entry":
        skill = Skill.from_row(row[2]) if row[2] else None
        return cls(row[0], row[1], skill, [SkillProblem(Path(path), *p) for p in row[3]])


class SkillLibrary:
    def __init__(self, root: Path, project_dir: Path | None = None, trust_project: bool = False) -> None:
        self.root = Path(root)
        # a project's skills come from its repository: used only when the caller trusts it
        self.project_root = Path(project_dir) / ".joe" / "skills" if project_dir and trust_project else None
        self._entries: dict[str, _Entry] = {}
        self._disk_read, self._repo, self._writable = False, None, False  # writable: init + identity done
        self._skills: dict[str, Skill] | None = None
        self._problems: list[SkillProblem] = []
        self._logs: dict[tuple[str, int], tuple[str, list[tuple[str, str, str]]]] = {}  # per HEAD

    # ---- loading ------------------------------------------------------------------------
    def load(self) -> list[Skill]:
        """Every loadable skill, sorted by name. Never raises for a bad file."""
        if not self._disk_read:
            self._read_cache()
        seen: dict[str, _Entry] = {}
        skills: dict[str, Skill] = {}
        problems: list[SkillProblem] = []
        changed = False
        for folder, scope in ((self.root, "global"), (self.project_root, "project")):
            for path, key, dir_path in _candidates(folder):
                entry = self._entries.get(path)
                if entry is None or entry.key != key or not _dirs_unchanged(entry.dirs, dir_path):
                    entry, changed = _parse_entry(path, key, dir_path, scope), True
                seen[path] = entry
                problems += entry.problems
                if entry.skill is not None:
                    _add(skills, entry.skill, problems)
        changed = changed or seen.keys() != self._entries.keys()
        self._entries, self._skills, self._problems = seen, skills, problems
        if changed:
            self._write_cache()
        return sorted(skills.values(), key=lambda s: s.name)

    def problems(self) -> list[SkillProblem]:
        """What the last load found wrong (errors were skipped; warnings and hints loaded)."""
        return list(self._problems)

    def check(self) -> list[SkillProblem]:
        """Parse every file again, ignoring the cache, and report."""
        self._entries, self._disk_read = {}, True
        self.load()
        return self.problems()

    def get(self, name: str) -> Skill | None:
        if self._skills is None:
            self.load()
        return (self._skills or {}).get(name)

    def body(self, name: str) -> str:
        """The full text of a skill's file."""
        try:
            return self._require(name).path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise StoreError(f"could not read skill {name!r}: {e}") from e

    def _require(self, name: str) -> Skill:
        skill = self.get(name) or next((s for s in self.load() if s.name == name), None)  # maybe new
        if skill is None:
            raise StoreError(f"no skill named {name!r} (`joe skills` lists them)")
        return skill

    def _read_cache(self) -> None:
        self._disk_read = True
        try:
            data = json.loads((self.root / CACHE_FILE).read_text(encoding="utf-8"))
            if data.get("version") == CACHE_VERSION:
                self._entries = {p: _Entry.from_json(p, e) for p, e in data["entries"].items()}
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            self._entries = {}  # a missing or damaged cache only costs one full parse

    def _write_cache(self) -> None:
        data = {"version": CACHE_VERSION, "entries": {p: e.to_json() for p, e in self._entries.items()}}
        with contextlib.suppress(StoreError):  # a read-only home still loads skills
            atomic_write(self.root / CACHE_FILE, json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    # ---- writing ------------------------------------------------------------------------
    def save(self, name: str, text: str, message: str) -> str:
        """Validate, write atomically and commit. Returns the commit sha."""
        if (err := validate_name(name)) is not None:
            raise SkillParseError(err)
        skill = parse_skill(text, Path(f"{name}.md"))  # frontmatter name or, without one, this stem
        if skill.name != name:
            raise SkillParseError(f"the skill's frontmatter says name {skill.name!r}; it must be {name!r}")
        with self._writing():
            target = self._live_path(name) or self.root / name / "SKILL.md"
            atomic_write(target, text)
            sha = self._commit([self._rel(target)], message or f"edit {name}")
        return sha or self.version(name)

    def archive(self, name: str, reason: str) -> None:
        """Move a skill to .archive/<name>/ and commit; an older archive of it stays in history."""
        with self._writing():
            src = self._live_path(name)
            if src is None:
                raise StoreError(f"no skill named {name!r} in {self.root}")
            dest, item = self._archive_dir(name), src.parent if src.name == "SKILL.md" else src
            if dest.exists():
                shutil.rmtree(dest)
            (dest if item is src else dest.parent).mkdir(parents=True, exist_ok=True)
            shutil.move(str(item), str(dest / src.name if item is src else dest))
            self._commit([self._rel(item), f"{ARCHIVE}/{name}"], f"archive {name}: {reason}".strip(": "))

    def restore(self, name: str) -> None:
        """Bring an archived skill back and commit."""
        with self._writing():
            src = self._archive_dir(name)
            if not src.is_dir():
                raise StoreError(f"no archived skill named {name!r} (`joe skills` lists them)")
            if (src / "SKILL.md").is_file():
                item, dest = src, self.root / name
            else:  # an archived plain-format file: .archive/<name>/<file>.md
                files = [p for p in src.iterdir() if p.suffix == ".md"]
                if len(files) != 1:
                    raise StoreError(f"{src} holds no SKILL.md; restore it by hand")
                item, dest = files[0], self.root / files[0].name
            if dest.exists() or self._live_path(name):
                raise StoreError(f"a skill named {name!r} already exists; archive or rename it first")
            shutil.move(str(item), str(dest))
            if src.exists() and not any(src.iterdir()):
                src.rmdir()
            self._commit([self._rel(dest), f"{ARCHIVE}/{name}"], f"restore {name}")

    def archived(self) -> list[str]:
        folder = self.root / ARCHIVE
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def update_stats(self, name: str, last_used: str, success_rate: str) -> None:
        """Rewrite only the Last Used and Success Rate bodies, atomically, without a commit.
        A project's skills belong to its repository and are left alone."""
        skill = self._require(name)
        if skill.scope == "project":
            return
        with locked(self.root / ".library"):
            try:
                text = skill.path.read_bytes().decode("utf-8", "surrogateescape")
            except OSError as e:
                raise StoreError(f"could not read skill {name!r}: {e}") from e
            new = set_stats(text, last_used, success_rate)
            if new != text:
                atomic_write(skill.path, new.encode("utf-8", "surrogateescape"))

    # ---- history ------------------------------------------------------------------------
    def version(self, name: str) -> str:
        return next((sha for sha, _, _ in self.log(name, limit=1)), "")  # "" before any commit

    def log(self, name: str, limit: int = 20) -> list[tuple[str, str, str]]:
        """(sha, ISO date, message) of the commits touching the skill, newest first. Memoised
        per HEAD: the ledger asks for a version every time a skill is used."""
        if not (self.root / ".git").exists():
            return []
        ref = self._git(write=False).head  # GitPython reads refs from files: no git process here
        if not ref.is_valid():
            return []
        head = ref.commit.hexsha
        if self._logs.get((name, limit), ("",))[0] != head:
            specs = [name, f"{name}.md", f"{ARCHIVE}/{name}"]
            with _git_errors(self.root, "log"):
                out = self._git(write=False).git.log(f"-n{limit}", "--format=%H%x1f%cI%x1f%s", "--", *specs)
            rows = [tuple(line.split("\x1f", 2)) for line in out.splitlines() if line]
            self._logs[(name, limit)] = (head, rows)  # type: ignore[assignment]
        return list(self._logs[(name, limit)][1])

    def sync(self) -> str:
        """Pull --rebase from the library's remote, then push. Raises StoreError without one."""
        from git import GitCommandError

        with self._writing() as repo:
            if not repo.remotes:
                raise StoreError(f"the skills library has no git remote: `git -C {self.root} remote add origin URL`")
            remote = "origin" if "origin" in [r.name for r in repo.remotes] else repo.remotes[0].name
            branch = repo.active_branch.name
            with _git_errors(self.root, "pull"):
                if repo.git.ls_remote("--heads", remote, branch).strip():
                    try:
                        repo.git.pull("--rebase", "--autostash", remote, branch)
                    except GitCommandError:  # a conflict: leave the library as it was before the pull
                        with contextlib.suppress(GitCommandError):
                            repo.git.rebase("--abort")
                        raise
            with _git_errors(self.root, "push"):
                repo.git.push("-u", remote, f"HEAD:{branch}")
            return f"synced with {remote}/{branch} at {repo.head.commit.hexsha[:8]}"

    # ---- git plumbing -------------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self) -> Iterator[Any]:
        """The library lock, the repository ready for commits, and a fresh load afterwards."""
        with locked(self.root / ".library"):
            try:
                yield self._git()
            finally:
                self._skills = None

    def _git(self, write: bool = True) -> Any:
        """The library's Repo; for a writer, created (with .gitignore and a first commit) and
        given an identity on first use."""
        if self._repo is not None and (self._writable or not write):
            return self._repo
        import git  # GitPython costs ~100 ms: only writers and history pay it

        with _git_errors(self.root, "init"):
            fresh = write and not (self.root / ".git").exists()
            if fresh:
                self.root.mkdir(parents=True, exist_ok=True)
            repo = self._repo or (git.Repo.init(self.root) if fresh else git.Repo(self.root))
            if write:
                _ensure_identity(repo)
            if fresh:
                repo.git.symbolic_ref("HEAD", "refs/heads/main")
                if not (self.root / ".gitignore").exists():
                    atomic_write(self.root / ".gitignore", GITIGNORE)
                repo.git.add("-A")
                repo.git.commit("-m", "start the skills library", "--allow-empty")
        self._repo, self._writable = repo, self._writable or write
        return repo

    def _commit(self, paths: list[str], message: str) -> str:
        """Stage exactly these paths (so nobody's other edits ride along) and commit them."""
        repo = self._git()
        with _git_errors(self.root, "commit"):
            specs = [p for p in dict.fromkeys(paths) if (self.root / p).exists() or repo.git.ls_files("--", p)]
            if specs:
                repo.git.add("-A", "--", *specs)
            if not repo.git.diff("--cached", "--name-only"):
                return ""
            repo.git.commit("-m", message)
            return repo.head.commit.hexsha

    def _live_path(self, name: str) -> Path | None:
        for path in (self.root / name / "SKILL.md", self.root / f"{name}.md"):
            if path.is_file():
                return path
        skill = next((s for s in self.load() if s.name == name and s.scope == "global"), None)
        return skill.path if skill else None

    def _archive_dir(self, name: str) -> Path:
        if not name or name.startswith(".") or "/" in name or "\\" in name:  # stays inside the library
            raise StoreError(f"{name!r} is not a skill name")
        return self.root / ARCHIVE / name

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

# ---- helpers --------------------------------------------------------------------------------


def _candidates(folder: Path | None) -> Iterator[tuple[str, list[int], str | None]]:
    """(skill file, stat key, skill folder or None) for each skill-looking entry. Plain strings:
    at 10,000 skills, building Path objects here would cost more than the stat calls."""
    if folder is None or not folder.is_dir():
        return
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            if e.is_dir():
                path = os.path.join(e.path, "SKILL.md")
                st, dst = os.stat(path), e.stat()
                yield path, [st.st_mtime_ns, st.st_size, dst.st_mtime_ns], e.path
            elif e.name.endswith(".md") and e.is_file():
                st = e.stat()
                yield e.path, [st.st_mtime_ns, st.st_size, 0], None
        except FileNotFoundError:
            continue  # a folder without SKILL.md is not a skill


def _dirs_unchanged(dirs: dict[str, int], folder: str | None) -> bool:
    try:  # no folder, no dirs: all() of nothing
        return all(os.stat(os.path.join(folder or "", rel)).st_mtime_ns == m for rel, m in dirs.items())
    except OSError:
        return False


def _parse_entry(file: str, key: list[int], folder: str | None, scope: str) -> _Entry:
    path = Path(file)
    files, dirs = _extra_files(Path(folder)) if folder else ([], {})
    try:
        skill, problems = parse_skill_checked(path.read_text(encoding="utf-8"), path)
    except SkillParseError as e:
        severity = "hint" if isinstance(e, NotASkill) else "error"
        return _Entry(key, dirs, None, [SkillProblem(path, e.line, f"{e} (skipped)", severity)])
    except (OSError, UnicodeDecodeError) as e:
        return _Entry(key, dirs, None, [SkillProblem(path, None, f"cannot read: {e} (skipped)", "error")])
    skill.files, skill.scope = files, scope
    return _Entry(key, dirs, skill, problems)


def _extra_files(folder: Path) -> tuple[list[str], dict[str, int]]:
    """Files beside SKILL.md (references/, scripts/, assets/ ...) and the sub-folders' mtimes."""
    files, dirs = [], {}
    for base, subdirs, names in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        rel = Path(base).relative_to(folder)
        if base != str(folder):
            dirs[rel.as_posix()] = os.stat(base).st_mtime_ns
        files += [(rel / n).as_posix() for n in sorted(names)
                  if not n.startswith(".") and not n.endswith(".lock") and (base != str(folder) or n != "SKILL.md")]
    return files, dirs


def _add(skills: dict[str, Skill], skill: Skill, problems: list[SkillProblem]) -> None:
    """First of a name wins, except that a trusted project's skill overrides a global one."""
    old = skills.get(skill.name)
    if old is None or (skill.scope == "project" and old.scope == "global"):
        skills[skill.name] = skill
        if old is not None:
            problems.append(SkillProblem(skill.path, None, f"overrides {old.path}", "hint"))
    else:
        problems.append(SkillProblem(skill.path, None, f"skipped: {old.path} has the same name", "warning"))


def _ensure_identity(repo: Any) -> None:
    """Commits must work on a machine with no git identity: set one for this repo if needed."""
    from git import GitCommandError

    try:  # asks git itself, so environment, global and system config all count
        repo.git.var("GIT_AUTHOR_IDENT")
        repo.git.var("GIT_COMMITTER_IDENT")
    except GitCommandError:
        with repo.config_writer() as cw:
            cw.set_value("user", "name", IDENTITY[0])
            cw.set_value("user", "email", IDENTITY[1])


@contextlib.contextmanager
def _git_errors(root: Path, what: str) -> Iterator[None]:
    from git import GitCommandError, InvalidGitRepositoryError

    try:
        yield
    except GitCommandError as e:
        detail = (str(e.stderr or "").strip().splitlines() or [str(e)])[-1].strip().strip("'")
        raise StoreError(f"git {what} failed in {root}: {detail}") from e
    except InvalidGitRepositoryError as e:
        raise StoreError(f"{root} has a .git that is not a git repository; move it aside") from e
