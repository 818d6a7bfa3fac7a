"""Checkpoints and /undo on real folders: temp git repos and plain folders, a real shadow repo."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from joe_agent.errors import StoreError
from joe_agent.memory.checkpoints import Checkpoints, FileChange

BINARY = bytes(range(256)) * 4


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def tree_state(root: Path) -> dict[str, tuple[bytes, int] | str]:
    """Every file (bytes and mode) and symlink under root, except .git."""
    state: dict[str, tuple[bytes, int] | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = Path(dirpath, name)
            rel = full.relative_to(root).as_posix()
            state[rel] = "-> " + os.readlink(full) if full.is_symlink() else (full.read_bytes(), full.stat().st_mode & 0o777)
    return state


def folders(root: Path) -> set[str]:
    return {Path(d).relative_to(root).as_posix() for d, _, _ in os.walk(root) if ".git" not in Path(d).parts}


@pytest.fixture(params=["git", "plain"])
def project(request, tmp_path) -> Path:
    root = tmp_path / "proj"
    write(root, "src/app.py", "def main():\n    return 1\n")
    write(root, "README.md", "hello\n")
    write(root, "data/blob.bin", BINARY)
    write(root, ".gitignore", "*.log\nsecret/\n")
    if request.param == "git":
        git(root.parent, "init", "-q", "-b", "main", str(root))
        git(root, "add", "-A")
        git(root, "commit", "-qm", "initial")
    return root


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "store"


def turn(cp: Checkpoints, n: int, act, session: str = "s1") -> list[FileChange]:
    cp.begin_turn(session, n, f"request {n}")
    act()
    return cp.end_turn(session, n)


def shadow_paths(cp: Checkpoints, commit: str) -> set[str]:
    env = {**os.environ, "GIT_DIR": str(cp.git_dir)}
    out = subprocess.run(["git", "ls-tree", "-r", "--name-only", "-z", commit], env=env, check=True,
                         capture_output=True).stdout
    return {p.decode() for p in out.split(b"\0") if p}


# ---- each kind of change is reverted -----------------------------------------------------------
def test_undo_edit_restores_bytes_and_shows_diff(project, store):
    cp = Checkpoints(project, store)
    before = tree_state(project)
    changes = turn(cp, 1, lambda: write(project, "src/app.py", "def main():\n    return 2\n"))
    assert changes == [FileChange("src/app.py", "modified")]
    result = cp.undo()
    assert (result.session, result.turn, result.conflicts) == ("s1", 1, [])
    assert result.reverted == [FileChange("src/app.py", "modified")]
    assert "-    return 2" in result.diff and "+    return 1" in result.diff
    assert tree_state(project) == before


def test_undo_removes_created_file_and_nested_new_folders(project, store):
    cp = Checkpoints(project, store)
    before, dirs = tree_state(project), folders(project)
    changes = turn(cp, 1, lambda: (write(project, "new.txt", "n\n"), write(project, "pkg/sub/deep/mod.py", "x = 1\n")))
    assert {(c.path, c.kind) for c in changes} == {("new.txt", "added"), ("pkg/sub/deep/mod.py", "added")}
    result = cp.undo()
    assert {c.path for c in result.reverted} == {"new.txt", "pkg/sub/deep/mod.py"}
    assert tree_state(project) == before
    assert folders(project) == dirs  # pkg/sub/deep, pkg/sub and pkg are gone


def test_undo_keeps_a_new_folder_that_holds_other_files(project, store):
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: write(project, "pkg/a.py", "a\n"))
    write(project, "pkg/mine.py", "the user's\n")  # appeared after the turn: not the agent's
    cp.undo()
    assert not (project / "pkg/a.py").exists()
    assert (project / "pkg/mine.py").read_text() == "the user's\n"


def test_odd_file_names_round_trip(project, store):
    odd = ["dir with space/naïve file.txt", "tab\tname.md", os.fsdecode(b"latin1-caf\xe9.txt")]
    cp = Checkpoints(project, store)
    before = tree_state(project)
    changes = turn(cp, 1, lambda: [write(project, name, "x\n") for name in odd] + [(project / "README.md").unlink()])
    assert {c.path for c in changes} == set(odd) | {"README.md"}
    result = Checkpoints(project, store).undo()  # the stack on disk holds the names too
    assert {c.path for c in result.reverted} == set(odd) | {"README.md"}
    assert tree_state(project) == before


def test_nested_git_repository_is_skipped_and_left_alone(project, store):
    inner = project / "vendor" / "lib"
    git(project, "init", "-q", str(inner))
    write(inner, "code.c", "int x;\n")
    cp = Checkpoints(project, store)
    snap = cp.begin_turn("s1", 1, "r")
    assert "vendor/lib/" in snap.skipped
    write(inner, "code.c", "int y;\n")
    write(project, "README.md", "agent\n")
    cp.end_turn("s1", 1)
    assert cp.undo().reverted == [FileChange("README.md", "modified")]
    assert (inner / "code.c").read_text() == "int y;\n"


def test_undo_restores_deleted_file(project, store):
    cp = Checkpoints(project, store)
    before = tree_state(project)
    assert turn(cp, 1, lambda: (project / "README.md").unlink()) == [FileChange("README.md", "deleted")]
    assert cp.undo().reverted == [FileChange("README.md", "deleted")]
    assert tree_state(project) == before


def test_undo_reverts_a_rename(project, store):
    cp = Checkpoints(project, store)
    before = tree_state(project)

    def rename():
        (project / "lib").mkdir()
        os.rename(project / "src/app.py", project / "lib/main.py")

    changes = turn(cp, 1, rename)
    assert {(c.path, c.kind) for c in changes} == {("src/app.py", "deleted"), ("lib/main.py", "added")}
    cp.undo()
    assert tree_state(project) == before
    assert not (project / "lib").exists()


def test_undo_restores_binary_file_byte_for_byte(project, store):
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: write(project, "data/blob.bin", b"\x00\xff" * 100))
    result = cp.undo()
    assert (project / "data/blob.bin").read_bytes() == BINARY
    assert "Binary files" in result.diff


def test_undo_reverts_changes_made_by_a_shell_command(project, store):
    cp = Checkpoints(project, store)
    before = tree_state(project)
    script = "printf 'gen\\n' > gen.txt && rm README.md && printf 'tail\\n' >> src/app.py && mkdir -p out/x && touch out/x/y"

    def run_shell():
        subprocess.run(["sh", "-c", script], cwd=project, check=True)

    changes = turn(cp, 1, run_shell)
    assert {c.path for c in changes} == {"gen.txt", "README.md", "src/app.py", "out/x/y"}
    cp.undo()
    assert tree_state(project) == before
    assert not (project / "out").exists()


def test_file_modes_are_kept(project, store):
    tool = write(project, "tool.sh", "#!/bin/sh\necho hi\n")
    tool.chmod(0o750)
    cp = Checkpoints(project, store)

    def act():
        tool.write_text("#!/bin/sh\necho changed\n")
        tool.chmod(0o640)  # the agent dropped the executable bit
        write(project, "run.sh", "#!/bin/sh\n").chmod(0o755)

    turn(cp, 1, act)
    cp.undo()
    assert tool.read_text() == "#!/bin/sh\necho hi\n"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o750
    assert not (project / "run.sh").exists()


def test_symlinks_are_restored_as_links(project, store):
    os.symlink("src/app.py", project / "link")
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: ((project / "link").unlink(), os.symlink("README.md", project / "link")))
    cp.undo()
    assert os.readlink(project / "link") == "src/app.py"


# ---- what undo must leave alone ----------------------------------------------------------------
def test_unrelated_dirty_user_files_stay_untouched(project, store):
    write(project, "notes.txt", "draft 1\n")
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: write(project, "src/app.py", "agent\n"))
    write(project, "notes.txt", "draft 2, typed while the agent worked\n")
    write(project, "scratch.txt", "new user file\n")
    cp.undo()
    assert (project / "notes.txt").read_text() == "draft 2, typed while the agent worked\n"
    assert (project / "scratch.txt").read_text() == "new user file\n"
    assert (project / "src/app.py").read_text() == "def main():\n    return 1\n"


def test_file_changed_by_user_since_is_refused_then_forced(project, store):
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: (write(project, "src/app.py", "agent\n"), write(project, "README.md", "agent readme\n")))
    write(project, "src/app.py", "user edit after the agent\n")
    result = cp.undo()
    assert result.conflicts == ["src/app.py"]
    assert result.reverted == [FileChange("README.md", "modified")]
    assert (project / "src/app.py").read_text() == "user edit after the agent\n"
    assert (project / "README.md").read_text() == "hello\n"
    assert cp.undo().nothing_to_undo  # conflicts were reported; plain /undo does not loop on them
    forced = cp.undo(force=True)
    assert (forced.turn, forced.reverted, forced.conflicts) == (1, [FileChange("src/app.py", "modified")], [])
    assert (project / "src/app.py").read_text() == "def main():\n    return 1\n"


def test_user_recreating_a_file_the_agent_deleted_is_a_conflict(project, store):
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: (project / "README.md").unlink())
    write(project, "README.md", "rewritten by the user\n")
    assert cp.undo().conflicts == ["README.md"]
    assert (project / "README.md").read_text() == "rewritten by the user\n"


def test_users_git_state_is_identical_before_and_after(tmp_path, store):
    root = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    write(root, "a.txt", "1\n")
    git(root, "add", "a.txt")
    git(root, "commit", "-qm", "one")
    git(root, "branch", "feature")
    write(root, "a.txt", "stashed\n")
    git(root, "stash", "-q")
    write(root, "a.txt", "dirty, unstaged\n")
    write(root, "b.txt", "staged\n")
    git(root, "add", "b.txt")

    def fingerprint():
        files = {n: hashlib.sha256((root / ".git" / n).read_bytes()).hexdigest() for n in ("index", "config", "HEAD")}
        return (git(root, "rev-parse", "HEAD"), git(root, "stash", "list"), git(root, "branch", "-a"),
                git(root, "status", "--porcelain"), files, sorted(os.listdir(root / ".git" / "refs" / "heads")))

    before = fingerprint()
    cp = Checkpoints(root, store)
    turn(cp, 1, lambda: (write(root, "a.txt", "agent\n"), write(root, "c.txt", "new\n"), (root / "b.txt").unlink()))
    cp.undo()
    assert fingerprint() == before
    assert (root / "a.txt").read_text() == "dirty, unstaged\n"


def test_inherited_git_environment_does_not_reach_the_users_repo(tmp_path, store, monkeypatch):
    root = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(root))
    write(root, "a.txt", "1\n")
    git(root, "add", "a.txt")
    git(root, "commit", "-qm", "one")
    index, head = (root / ".git" / "index").read_bytes(), git(root, "rev-parse", "HEAD")
    monkeypatch.setenv("GIT_DIR", str(root / ".git"))  # as inside a git hook
    monkeypatch.setenv("GIT_INDEX_FILE", str(root / ".git" / "index"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(root / ".git" / "objects"))
    cp = Checkpoints(root, store)
    turn(cp, 1, lambda: write(root, "new.py", "x\n"))
    cp.undo()
    assert (root / ".git" / "index").read_bytes() == index
    assert git(root, "rev-parse", "HEAD") == head
    assert not (root / "new.py").exists()


@pytest.mark.parametrize("elsewhere", ["outside", ".git/info"])
def test_undo_never_writes_through_a_symlinked_folder(project, store, tmp_path, elsewhere):
    outside = tmp_path / "outside" if elsewhere == "outside" else project / elsewhere
    outside.mkdir(parents=True, exist_ok=True)
    write(outside, "app.py", "outside file\n")
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: (project / "src" / "app.py").unlink())
    # after the turn, the folder that held the file becomes a link to a folder elsewhere
    (project / "src").rmdir()
    os.symlink(outside, project / "src")
    assert cp.undo().conflicts == ["src/app.py"]
    result = Checkpoints(project, store).undo(force=True)
    assert result.conflicts == ["src/app.py"] and result.reverted == []
    assert (outside / "app.py").read_text() == "outside file\n"


# ---- the stack -------------------------------------------------------------------------------
def test_repeated_undo_walks_back_turn_by_turn(project, store):
    cp = Checkpoints(project, store)
    v0 = tree_state(project)
    turn(cp, 1, lambda: write(project, "src/app.py", "v1\n"))
    v1 = tree_state(project)
    turn(cp, 2, lambda: (write(project, "src/app.py", "v2\n"), write(project, "two.txt", "2\n")))
    first, second = cp.undo(), cp.undo()
    assert (first.turn, second.turn) == (2, 1)
    assert tree_state(project) == v0 != v1
    assert cp.undo().nothing_to_undo
    assert [t["status"] for t in cp.turns()] == ["undone", "undone"]


def test_turn_without_changes_is_recorded_but_skipped(project, store):
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: write(project, "src/app.py", "v1\n"))
    assert turn(cp, 2, lambda: None) == []
    assert [t["turn"] for t in cp.turns()] == [2, 1]
    result = cp.undo()
    assert result.turn == 1 and result.reverted == [FileChange("src/app.py", "modified")]


def test_undo_after_restart_uses_the_stack_on_disk(project, store):
    cp = Checkpoints(project, store)
    before = tree_state(project)
    turn(cp, 1, lambda: write(project, "made.txt", "x\n"))
    del cp
    result = Checkpoints(project, store).undo()
    assert result.reverted == [FileChange("made.txt", "added")]
    assert tree_state(project) == before


def test_crash_mid_turn_is_undone_from_the_current_tree(project, store):
    cp = Checkpoints(project, store)
    before = tree_state(project)
    cp.begin_turn("s1", 1, "write things")
    write(project, "half.txt", "written before the crash\n")  # end_turn never ran
    result = Checkpoints(project, store).undo(session="s1")
    assert (result.turn, result.reverted) == (1, [FileChange("half.txt", "added")])
    assert tree_state(project) == before


def test_unfinished_turn_ends_where_the_next_began(project, store):
    cp = Checkpoints(project, store)
    cp.begin_turn("s1", 1, "crashed")
    write(project, "one.txt", "1\n")
    turn(cp, 2, lambda: write(project, "two.txt", "2\n"))
    assert cp.undo().reverted == [FileChange("two.txt", "added")]
    assert cp.undo().reverted == [FileChange("one.txt", "added")]


def test_undo_by_session(project, store):
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: write(project, "a.txt", "a\n"), session="alpha")
    turn(cp, 1, lambda: write(project, "b.txt", "b\n"), session="beta")
    result = cp.undo(session="alpha")
    assert (result.session, result.reverted) == ("alpha", [FileChange("a.txt", "added")])
    assert (project / "b.txt").exists()
    assert [t["session"] for t in cp.turns("beta")] == ["beta"]
    assert cp.undo(session="gamma").nothing_to_undo


# ---- what is snapshotted -----------------------------------------------------------------------
def test_ignored_and_heavy_folders_are_neither_snapshotted_nor_touched(project, store):
    write(project, "app.log", "log 1\n")
    write(project, "secret/key.txt", "k\n")
    write(project, "pkg/.gitignore", "local.cfg\n")  # a nested .gitignore
    write(project, "pkg/local.cfg", "nested ignore\n")
    write(project, "node_modules/lib/index.js", "module.exports = 1\n")
    write(project, "src/__pycache__/app.cpython-311.pyc", b"\x00pyc")
    cp = Checkpoints(project, store)
    snap = cp.begin_turn("s1", 1, "r")
    saved = shadow_paths(cp, snap.commit)
    assert saved == {".gitignore", "README.md", "data/blob.bin", "src/app.py", "pkg/.gitignore"}
    assert snap.files == len(saved)
    assert {"node_modules/", "src/__pycache__/"} <= set(snap.skipped)
    write(project, "app.log", "log 2\n")
    write(project, "secret/key.txt", "k2\n")
    write(project, "pkg/local.cfg", "changed\n")
    write(project, "node_modules/lib/index.js", "module.exports = 2\n")
    write(project, "README.md", "agent\n")
    assert cp.end_turn("s1", 1) == [FileChange("README.md", "modified")]
    cp.undo()
    assert (project / "app.log").read_text() == "log 2\n"
    assert (project / "secret/key.txt").read_text() == "k2\n"
    assert (project / "pkg/local.cfg").read_text() == "changed\n"
    assert (project / "node_modules/lib/index.js").read_text() == "module.exports = 2\n"
    assert (project / "README.md").read_text() == "hello\n"


def test_file_the_user_starts_ignoring_leaves_the_snapshot(project, store):
    write(project, "notes.txt", "v1\n")
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: write(project, "README.md", "one\n"))
    write(project, ".gitignore", "*.log\nsecret/\nnotes.txt\n")  # between turns
    snap = cp.begin_turn("s1", 2, "r")
    assert "notes.txt" not in shadow_paths(cp, snap.commit)
    write(project, "notes.txt", "v2\n")
    assert cp.end_turn("s1", 2) == []
    assert cp.undo().turn == 1
    assert (project / "notes.txt").read_text() == "v2\n"


def test_file_the_agent_hides_behind_gitignore_is_not_overwritten_unasked(project, store):
    write(project, "notes.txt", "v1\n")
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: (write(project, ".gitignore", "notes.txt\n"), write(project, "notes.txt", "v2\n")))
    result = cp.undo()
    assert result.conflicts == ["notes.txt"]  # unsaved now, so a later user edit could not be seen
    assert "b/notes.txt" not in result.diff  # the diff shows only what was reverted
    assert (project / "notes.txt").read_text() == "v2\n"
    assert (project / ".gitignore").read_text() == "*.log\nsecret/\n"
    assert cp.undo(force=True).reverted == [FileChange("notes.txt", "deleted")]
    assert (project / "notes.txt").read_text() == "v1\n"


def test_heavy_folder_tracked_by_the_users_git_is_snapshotted(tmp_path, store):
    root = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(root))
    write(root, "tools/build/make.py", "print('build')\n")
    write(root, "build/out.o", b"\x7fELF")
    git(root, "add", "tools")
    git(root, "commit", "-qm", "tools")
    cp = Checkpoints(root, store)
    snap = cp.begin_turn("s1", 1, "r")
    assert "tools/build/make.py" in shadow_paths(cp, snap.commit)
    assert snap.skipped == ["build/"]


def test_file_over_the_size_cap_is_reported_as_skipped(project, store):
    write(project, "huge.bin", b"\x01" * 2048)
    cp = Checkpoints(project, store, max_file_bytes=1024)
    snap = cp.begin_turn("s1", 1, "r")
    assert "huge.bin" in snap.skipped and "huge.bin" not in shadow_paths(cp, snap.commit)
    write(project, "huge.bin", b"\x02" * 4096)  # the agent changes it: that cannot be undone
    write(project, "README.md", "agent\n")
    cp.end_turn("s1", 1)
    result = cp.undo()
    assert result.not_undoable == ["huge.bin"]
    assert (project / "huge.bin").read_bytes() == b"\x02" * 4096
    assert result.reverted == [FileChange("README.md", "modified")]


def test_file_that_was_too_big_to_save_is_never_deleted_by_undo(project, store):
    write(project, "big.dat", b"\x01" * 2048)
    cp = Checkpoints(project, store, max_file_bytes=1024)
    assert turn(cp, 1, lambda: write(project, "big.dat", b"small now")) == [FileChange("big.dat", "modified")]
    result = cp.undo()
    assert (project / "big.dat").read_bytes() == b"small now"
    assert result.not_undoable == ["big.dat"] and result.reverted == []


def test_file_grown_past_the_cap_is_put_back(project, store):
    cp = Checkpoints(project, store, max_file_bytes=2000)
    changes = turn(cp, 1, lambda: write(project, "data/blob.bin", b"\x03" * 5000))
    assert changes == [FileChange("data/blob.bin", "modified")]
    assert cp.undo().reverted == [FileChange("data/blob.bin", "modified")]
    assert (project / "data/blob.bin").read_bytes() == BINARY


def test_joe_state_inside_the_project_is_not_snapshotted(project, monkeypatch):
    monkeypatch.setenv("JOE_HOME", str(project / ".joe-home"))
    write(project, ".joe-home/transcripts/s1.jsonl", "{}\n")
    write(project, ".joe/rules.md", "- rule one\n")
    cp = Checkpoints(project, project / ".joe-home" / "checkpoints")
    snap = cp.begin_turn("s1", 1, "r")
    assert not [p for p in shadow_paths(cp, snap.commit) if p.startswith((".joe/", ".joe-home/"))]
    write(project, ".joe/rules.md", "- rule one\n- learned while the turn ran\n")
    write(project, ".joe-home/transcripts/s1.jsonl", "{}\n{}\n")
    write(project, "README.md", "agent\n")
    assert cp.end_turn("s1", 1) == [FileChange("README.md", "modified")]
    cp.undo()
    assert (project / ".joe/rules.md").read_text() == "- rule one\n- learned while the turn ran\n"
    assert (project / ".joe-home/transcripts/s1.jsonl").read_text() == "{}\n{}\n"


def test_state_lives_under_the_store_dir_only(project, store):
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: write(project, "x.txt", "x\n"))
    assert cp.git_dir.parent == store and cp.git_dir.name.endswith(".git")
    assert not (project / ".git" / "joe").exists()
    log = json.loads((cp.git_dir / "joe-turns.json").read_text())
    assert log["entries"][0]["request"] == "request 1"
    assert not list(cp.git_dir.glob("hooks/*"))


# ---- failures ----------------------------------------------------------------------------------
def test_damaged_shadow_repo_is_moved_aside_and_recreated(project, store):
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: write(project, "x.txt", "x\n"))
    (cp.git_dir / "HEAD").write_text("garbage\n")
    with pytest.raises(StoreError, match="damaged.*moved it to"):
        cp.undo()
    assert len(list(store.glob("*.damaged-*"))) == 1
    assert cp.undo().nothing_to_undo  # the fresh store works
    assert (project / "x.txt").exists()


def test_damaged_shadow_index_is_rebuilt_silently(project, store):
    cp = Checkpoints(project, store)
    cp.begin_turn("s1", 1, "r")
    (cp.git_dir / "index").write_bytes(b"not an index at all")
    write(project, "README.md", "agent\n")
    assert cp.end_turn("s1", 1) == [FileChange("README.md", "modified")]
    assert cp.undo().reverted == [FileChange("README.md", "modified")]


def test_torn_turn_log_is_a_store_error_not_a_traceback(project, store):
    cp = Checkpoints(project, store)
    turn(cp, 1, lambda: write(project, "x.txt", "x\n"))
    (cp.git_dir / "joe-turns.json").write_text('{"version": 1, "entr')
    with pytest.raises(StoreError, match="turn log unreadable"):
        cp.turns()
    assert cp.turns() == []


def test_end_turn_without_begin_is_a_store_error(project, store):
    with pytest.raises(StoreError, match="no snapshot"):
        Checkpoints(project, store).end_turn("s1", 7)


def test_missing_git_is_a_store_error(project, store, monkeypatch):
    monkeypatch.setenv("PATH", str(project))
    with pytest.raises(StoreError, match="git"):
        Checkpoints(project, store)
