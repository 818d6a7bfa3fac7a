"""Path confinement: escapes via .., absolute paths, symlinks, name-prefix siblings, protected
places, and .gitignore awareness, all on real folders and real symlinks."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from joe_agent.paths import joe_home
from joe_agent.tools.workspace import PathRefused, Workspace


@pytest.fixture()
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("s3cret\n")
    return root


def test_relative_and_absolute_inside(proj: Path) -> None:
    ws = Workspace(proj)
    assert ws.resolve("src/app.py") == (proj / "src" / "app.py").resolve()
    assert ws.resolve(str(proj / "src" / "app.py")) == (proj / "src" / "app.py").resolve()
    assert ws.resolve("") == proj.resolve()
    assert ws.resolve("src/../src/app.py") == (proj / "src" / "app.py").resolve()


@pytest.mark.parametrize("path", ["../outside/secret.txt", "../../etc/passwd", "src/../../outside/x", "/etc/passwd", "~/.bashrc"])
def test_escapes_refused(proj: Path, path: str) -> None:
    ws = Workspace(proj)
    with pytest.raises(PathRefused, match="outside the project"):
        ws.resolve(path)
    with pytest.raises(PathRefused, match="outside the project"):
        ws.resolve(path, for_write=True)


def test_sibling_with_same_name_prefix_refused(proj: Path, tmp_path: Path) -> None:
    evil = tmp_path / "proj-evil"
    evil.mkdir()
    (evil / "x.txt").write_text("x")
    ws = Workspace(proj)
    for p in (str(evil / "x.txt"), "../proj-evil/x.txt"):
        with pytest.raises(PathRefused):
            ws.resolve(p)


def test_symlinked_file_pointing_outside_refused(proj: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside" / "secret.txt", proj / "link.txt")
    ws = Workspace(proj)
    with pytest.raises(PathRefused):
        ws.resolve("link.txt")
    with pytest.raises(PathRefused):
        ws.resolve("link.txt", for_write=True)


def test_symlinked_folder_outside_refused_for_new_file(proj: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside", proj / "out")
    ws = Workspace(proj)
    with pytest.raises(PathRefused):
        ws.resolve("out/secret.txt")
    with pytest.raises(PathRefused):  # a file that does not exist yet, under the symlinked folder
        ws.resolve("out/new/deeper/file.txt", for_write=True)


def test_symlink_inside_project_is_followed(proj: Path) -> None:
    os.symlink(proj / "src", proj / "alias")
    os.symlink(proj / "src" / "app.py", proj / "app_link.py")
    ws = Workspace(proj)
    assert ws.resolve("alias/new.py", for_write=True) == (proj / "src" / "new.py").resolve()
    assert ws.resolve("app_link.py") == (proj / "src" / "app.py").resolve()


def test_dangling_symlink_to_outside_refused(proj: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside" / "not-yet.txt", proj / "dangling")
    with pytest.raises(PathRefused):
        Workspace(proj).resolve("dangling", for_write=True)


def test_root_itself_symlinked(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "via")
    ws = Workspace(tmp_path / "via")
    assert ws.resolve("a.txt", for_write=True) == real.resolve() / "a.txt"


@pytest.mark.parametrize("path", [".git/config", ".git/hooks/pre-commit", "sub/.git/HEAD", ".GIT/config"])
def test_git_internals_never_written(proj: Path, path: str) -> None:
    (proj / ".git" / "hooks").mkdir(parents=True)
    ws = Workspace(proj)
    with pytest.raises(PathRefused, match=r"\.git"):
        ws.resolve(path, for_write=True)
    if path == ".git/config":
        (proj / ".git" / "config").write_text("[core]\n")
        assert ws.resolve(path) == (proj / ".git" / "config").resolve()  # reading is fine


def test_git_reached_through_symlink_refused(proj: Path) -> None:
    (proj / ".git").mkdir()
    os.symlink(proj / ".git", proj / "innocent")
    with pytest.raises(PathRefused, match=r"\.git"):
        Workspace(proj).resolve("innocent/config", for_write=True)


def test_joe_home_inside_project_never_written(proj: Path, monkeypatch) -> None:
    home = proj / ".joe-home"
    home.mkdir()
    monkeypatch.setenv("JOE_HOME", str(home))
    ws = Workspace(proj)
    with pytest.raises(PathRefused, match="joe's own state"):
        ws.resolve(".joe-home/rules.md", for_write=True)
    assert ws.resolve("src/ok.py", for_write=True).name == "ok.py"


def test_explicit_protected_paths(proj: Path) -> None:
    ws = Workspace(proj, protected=[proj / "vendor"])
    with pytest.raises(PathRefused):
        ws.resolve("vendor/lib.py", for_write=True)
    assert joe_home() != proj  # conftest gives JOE_HOME its own folder


def test_directory_is_not_a_write_target(proj: Path) -> None:
    with pytest.raises(PathRefused, match="directory"):
        Workspace(proj).resolve("src", for_write=True)


def test_rel(proj: Path) -> None:
    ws = Workspace(proj)
    assert ws.rel(ws.resolve("src/app.py")) == "src/app.py"
    assert ws.rel(ws.root) == "."


def test_gitignore_root_nested_and_negation(proj: Path) -> None:
    (proj / ".gitignore").write_text("*.log\n!keep.log\nbuild/\n/only-root.txt\n")
    (proj / "pkg").mkdir()
    (proj / "pkg" / ".gitignore").write_text("generated.py\n")
    (proj / ".git" / "info").mkdir(parents=True)
    (proj / ".git" / "info" / "exclude").write_text("local-notes.md\n")
    ws = Workspace(proj)
    assert ws.ignored("debug.log") and ws.ignored("deep/dir/debug.log")
    assert not ws.ignored("keep.log")
    assert ws.ignored("build/") and ws.ignored("build/out.bin") and ws.ignored("src/build/x.o")
    assert ws.ignored("only-root.txt") and not ws.ignored("src/only-root.txt")
    assert ws.ignored("pkg/generated.py") and not ws.ignored("generated.py")
    assert ws.ignored("local-notes.md")
    assert ws.ignored(".git/config")
    assert not ws.ignored("src/app.py")


def test_gitignore_change_is_picked_up(proj: Path) -> None:
    ws = Workspace(proj)
    assert not ws.ignored("src/app.py")
    gi = proj / ".gitignore"
    gi.write_text("src/\n")
    os.utime(gi, ns=(1, 1))  # a distinct mtime even on coarse-clock filesystems
    assert ws.ignored("src/app.py")


def test_walk_skips_ignored_noise_and_outside_links(proj: Path, tmp_path: Path) -> None:
    (proj / ".gitignore").write_text("*.tmp\n")
    (proj / "a.tmp").write_text("x")
    (proj / "node_modules" / "lib").mkdir(parents=True)
    (proj / "node_modules" / "lib" / "index.js").write_text("x")
    (proj / ".git").mkdir()
    (proj / ".git" / "HEAD").write_text("ref")
    os.symlink(tmp_path / "outside" / "secret.txt", proj / "leak.txt")
    os.symlink(tmp_path / "outside", proj / "leakdir")
    os.symlink(proj / "src" / "app.py", proj / "inner_link.py")
    ws = Workspace(proj)
    got = sorted(ws.rel(p) for p in ws.walk(ws.root))
    assert got == [".gitignore", "inner_link.py", "src/app.py"]
