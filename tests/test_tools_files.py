"""The file tools on real files through the real Registry: reads, caps, binary and
non-UTF-8 files, edits (0 / 2 matches, CRLF, byte-exact round trips), stale-read detection,
symlinks and protected places, and .gitignore in list_files and search."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from joe_agent.messages import ToolCall, ToolResult
from joe_agent.tools.files import MAX_LIST, MAX_MATCHES, MAX_READ_LINES
from joe_agent.tools.permissions import Approval, ApprovalRequest, Permissions
from joe_agent.tools.registry import Registry, ToolContext
from joe_agent.tools.workspace import Workspace


@pytest.fixture()
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def main():\n    return 1\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("s3cret\n")
    return root


def make(root: Path, mode: str = "full-auto", answers: list[Approval] | None = None):
    asked: list[ApprovalRequest] = []

    def approver(req: ApprovalRequest) -> Approval:
        asked.append(req)
        return answers.pop(0) if answers else Approval(False, "no scripted answer")

    reg = Registry(ToolContext(Workspace(root), Permissions(mode, approver=approver)))
    return reg, asked


def call(reg: Registry, name: str, **args) -> ToolResult:
    return reg.run(ToolCall(name, args))


# ---- read_file ------------------------------------------------------------------------------

def test_read_whole_and_range(proj: Path) -> None:
    reg, _ = make(proj)
    (proj / "n.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    assert call(reg, "read_file", path="src/app.py").content == "def main():\n    return 1"
    r = call(reg, "read_file", path="n.txt", start_line=3, end_line=5)
    assert r.ok and r.content.splitlines()[:3] == ["line 3", "line 4", "line 5"]
    assert "of 10" in r.content
    assert not call(reg, "read_file", path="n.txt", start_line=11).ok


def test_read_caps_lines_and_says_how_to_continue(proj: Path) -> None:
    reg, _ = make(proj)
    (proj / "big.txt").write_text("".join(f"{i}\n" for i in range(1, 5001)))
    r = call(reg, "read_file", path="big.txt")
    body = r.content.splitlines()
    assert body[MAX_READ_LINES - 1] == str(MAX_READ_LINES) and str(MAX_READ_LINES + 1) not in body
    assert f"start_line={MAX_READ_LINES + 1}" in r.content
    r2 = call(reg, "read_file", path="big.txt", start_line=MAX_READ_LINES + 1)
    assert r2.content.splitlines()[0] == str(MAX_READ_LINES + 1)


def test_read_caps_bytes(proj: Path) -> None:
    reg, _ = make(proj)
    (proj / "wide.txt").write_text(("x" * 999 + "\n") * 500)  # 500 KB in 500 lines
    r = call(reg, "read_file", path="wide.txt")
    assert len(r.content.encode()) < 110_000 and "start_line=" in r.content


def test_read_missing_suggests_close_names(proj: Path) -> None:
    reg, _ = make(proj)
    r = call(reg, "read_file", path="src/ap.py")
    assert not r.ok and "No such file" in r.content and "src/app.py" in r.content


def test_binary_file_is_described_not_sent(proj: Path) -> None:
    reg, _ = make(proj)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    (proj / "logo.png").write_bytes(png)
    r = call(reg, "read_file", path="logo.png")
    assert r.ok and "binary" in r.content and f"{len(png):,} bytes" in r.content and "PNG" in r.content
    assert "\x00" not in r.content and len(r.content) < 200


def test_non_utf8_read_and_edit_round_trip_byte_exact(proj: Path) -> None:
    reg, _ = make(proj)
    original = b"caf\xe9 = 1\n# \xff\xfe odd bytes\nvalue = 2\n"
    (proj / "latin.py").write_bytes(original)
    r = call(reg, "read_file", path="latin.py")
    assert r.ok and "caf\ufffd = 1" in r.content and "not valid UTF-8" in r.content
    r = call(reg, "edit_file", path="latin.py", old_text="value = 2", new_text="value = 3")
    assert r.ok, r.content
    assert (proj / "latin.py").read_bytes() == original.replace(b"value = 2", b"value = 3")


def test_edit_next_to_undecodable_bytes_keeps_them(proj: Path) -> None:
    reg, _ = make(proj)
    (proj / "latin.txt").write_bytes(b"caf\xe9 noir\n")
    r = call(reg, "edit_file", path="latin.txt", old_text="caf\ufffd noir", new_text="caf\ufffd au lait")
    assert r.ok, r.content
    assert (proj / "latin.txt").read_bytes() == b"caf\xe9 au lait\n"


def test_crlf_file_keeps_its_line_endings(proj: Path) -> None:
    reg, _ = make(proj)
    (proj / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    assert call(reg, "read_file", path="win.txt").content == "one\ntwo\nthree"
    r = call(reg, "edit_file", path="win.txt", old_text="one\ntwo", new_text="one\n2\nmore")
    assert r.ok, r.content
    assert (proj / "win.txt").read_bytes() == b"one\r\n2\r\nmore\r\nthree\r\n"
    assert call(reg, "write_file", path="win.txt", content="a\nb\n").ok
    assert (proj / "win.txt").read_bytes() == b"a\r\nb\r\n"


# ---- edit_file ------------------------------------------------------------------------------

def test_edit_zero_matches_shows_closest_lines(proj: Path) -> None:
    reg, _ = make(proj)
    r = call(reg, "edit_file", path="src/app.py", old_text="def main():\n  return 1", new_text="x")
    assert not r.ok and "0 matches" in r.content
    assert "    2|     return 1" in r.content and "whitespace" in r.content
    assert (proj / "src" / "app.py").read_text() == "def main():\n    return 1\n"


def test_edit_two_matches_says_how_many_and_where(proj: Path) -> None:
    reg, _ = make(proj)
    (proj / "dup.py").write_text("x = 1\ny = 0\nx = 1\n")
    r = call(reg, "edit_file", path="dup.py", old_text="x = 1", new_text="x = 2")
    assert not r.ok and "matches 2 times" in r.content
    assert "line 1" in r.content and "line 3" in r.content
    assert (proj / "dup.py").read_text() == "x = 1\ny = 0\nx = 1\n"


def test_edit_success_has_diff_meta(proj: Path) -> None:
    reg, _ = make(proj)
    r = call(reg, "edit_file", path="src/app.py", old_text="return 1", new_text="return 2")
    assert r.ok and r.meta["path"] == "src/app.py" and r.meta["created"] is False
    assert "-    return 1" in r.meta["diff"] and "+    return 2" in r.meta["diff"]
    assert (proj / "src" / "app.py").read_text() == "def main():\n    return 2\n"


def test_edit_after_file_changed_on_disk_asks_to_reread(proj: Path) -> None:
    reg, _ = make(proj)
    assert call(reg, "read_file", path="src/app.py").ok
    (proj / "src" / "app.py").write_text("def main():\n    return 1  # edited by the person\n")
    r = call(reg, "edit_file", path="src/app.py", old_text="return 1", new_text="return 5")
    assert not r.ok and "changed on disk" in r.content and "read_file" in r.content
    assert "edited by the person" in (proj / "src" / "app.py").read_text()
    assert not call(reg, "write_file", path="src/app.py", content="gone\n").ok
    assert call(reg, "read_file", path="src/app.py").ok  # a fresh read clears the way
    assert call(reg, "edit_file", path="src/app.py", old_text="return 1", new_text="return 5").ok


def test_own_edits_do_not_count_as_outside_changes(proj: Path) -> None:
    reg, _ = make(proj)
    call(reg, "read_file", path="src/app.py")
    assert call(reg, "edit_file", path="src/app.py", old_text="return 1", new_text="return 2").ok
    assert call(reg, "edit_file", path="src/app.py", old_text="return 2", new_text="return 3").ok


def test_edit_binary_refused(proj: Path) -> None:
    reg, _ = make(proj)
    (proj / "b.bin").write_bytes(b"ab\x00cd")
    r = call(reg, "edit_file", path="b.bin", old_text="ab", new_text="xy")
    assert not r.ok and "binary" in r.content and (proj / "b.bin").read_bytes() == b"ab\x00cd"


# ---- write_file -----------------------------------------------------------------------------

def test_write_creates_folders_and_reports(proj: Path) -> None:
    reg, _ = make(proj)
    r = call(reg, "write_file", path="pkg/new/mod.py", content="X = 1\n")
    assert r.ok and r.meta == {"path": "pkg/new/mod.py", "diff": r.meta["diff"], "created": True}
    assert "+X = 1" in r.meta["diff"]
    assert (proj / "pkg" / "new" / "mod.py").read_text() == "X = 1\n"


def test_write_keeps_file_mode(proj: Path) -> None:
    reg, _ = make(proj)
    script = proj / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert call(reg, "write_file", path="run.sh", content="#!/bin/sh\necho hi\n").ok
    assert script.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("target", ["../outside/x.txt", "../../etc/evil", "/tmp/joe-evil.txt"])
def test_write_outside_refused_before_any_io(proj: Path, tmp_path: Path, target: str) -> None:
    reg, asked = make(proj)
    r = call(reg, "write_file", path=target, content="pwned")
    assert not r.ok and "outside the project" in r.content and asked == []
    assert not (tmp_path / "outside" / "x.txt").exists() and not Path("/tmp/joe-evil.txt").exists()


def test_write_through_symlinks(proj: Path, tmp_path: Path) -> None:
    reg, _ = make(proj)
    os.symlink(tmp_path / "outside", proj / "out")
    os.symlink(tmp_path / "outside" / "secret.txt", proj / "secret_link")
    assert not call(reg, "write_file", path="out/new.txt", content="x").ok
    assert not call(reg, "write_file", path="out/sub/new.txt", content="x").ok
    assert not call(reg, "edit_file", path="secret_link", old_text="s3cret", new_text="x").ok
    assert not call(reg, "read_file", path="secret_link").ok
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["secret.txt"]
    assert (tmp_path / "outside" / "secret.txt").read_text() == "s3cret\n"
    os.symlink(proj / "src", proj / "alias")  # a symlinked folder inside is fine
    assert call(reg, "write_file", path="alias/b.py", content="B = 2\n").ok
    assert (proj / "src" / "b.py").read_text() == "B = 2\n"


def test_sibling_prefix_project_refused(proj: Path, tmp_path: Path) -> None:
    reg, _ = make(proj)
    (tmp_path / "proj-evil").mkdir()
    r = call(reg, "write_file", path=str(tmp_path / "proj-evil" / "x.py"), content="x")
    assert not r.ok and "outside the project" in r.content and not (tmp_path / "proj-evil" / "x.py").exists()


def test_git_and_joe_home_writes_refused(proj: Path, monkeypatch) -> None:
    (proj / ".git" / "hooks").mkdir(parents=True)
    home = proj / "state"
    home.mkdir()
    monkeypatch.setenv("JOE_HOME", str(home))
    reg, _ = make(proj)
    for target in (".git/hooks/pre-commit", ".git/config", "state/rules.md"):
        r = call(reg, "write_file", path=target, content="#!/bin/sh\nid\n")
        assert not r.ok, target
        assert not (proj / target).exists()


def test_write_denied_in_ask_mode_leaves_file_and_tells_model(proj: Path) -> None:
    reg, asked = make(proj, mode="ask", answers=[Approval(False, "use the config module instead")])
    r = call(reg, "write_file", path="src/app.py", content="nope\n")
    assert not r.ok and r.meta["denied"] is True
    assert r.content.startswith("The user denied write_file") and "use the config module" in r.content
    assert asked[0].action == "write" and asked[0].target == "src/app.py" and "+nope" in asked[0].detail
    assert asked[0].abs_path == str((proj / "src" / "app.py").resolve())
    assert (proj / "src" / "app.py").read_text() == "def main():\n    return 1\n"


def test_write_approved_in_ask_mode(proj: Path) -> None:
    reg, asked = make(proj, mode="ask", answers=[Approval(True)])
    assert call(reg, "write_file", path="ok.txt", content="fine\n").ok and len(asked) == 1


# ---- list_files and search ------------------------------------------------------------------

@pytest.fixture()
def tree(proj: Path) -> Path:
    (proj / ".gitignore").write_text("*.log\nbuild/\n")
    (proj / "build").mkdir()
    (proj / "build" / "out.py").write_text("TODO in build\n")
    (proj / "debug.log").write_text("TODO in log\n")
    (proj / "src" / "util.py").write_text("# TODO: tidy\nx = 1\n")
    (proj / "README.md").write_text("TODO docs\n")
    (proj / "blob.bin").write_bytes(b"TODO\x00binary")
    (proj / ".git").mkdir()
    (proj / ".git" / "notes").write_text("TODO in git\n")
    return proj


def test_list_files_respects_gitignore(tree: Path) -> None:
    reg, _ = make(tree)
    got = call(reg, "list_files").content.splitlines()
    assert got == [".gitignore", "README.md", "blob.bin", "src/app.py", "src/util.py"]
    assert call(reg, "list_files", path="src", pattern="u*.py").content == "src/util.py"
    assert call(reg, "list_files", pattern="src/*.py").content.splitlines() == ["src/app.py", "src/util.py"]
    assert "No files" in call(reg, "list_files", pattern="*.rs").content


def test_list_files_capped(proj: Path) -> None:
    reg, _ = make(proj)
    many = proj / "many"
    many.mkdir()
    for i in range(MAX_LIST + 20):
        (many / f"f{i:04}.txt").write_text("")
    r = call(reg, "list_files", path="many")
    assert len(r.content.splitlines()) == MAX_LIST + 1 and f"of {MAX_LIST + 20} files" in r.content


def test_search_respects_gitignore_and_skips_binary(tree: Path) -> None:
    reg, _ = make(tree)
    r = call(reg, "search", pattern="TODO")
    assert r.ok and r.content.splitlines() == ["README.md:1: TODO docs", "src/util.py:1: # TODO: tidy"]
    assert call(reg, "search", pattern="todo", glob="*.py").content.startswith("No matches")
    assert call(reg, "search", pattern="(?i)todo", glob="*.py").content == "src/util.py:1: # TODO: tidy"
    assert call(reg, "search", pattern=r"x = \d", path="src/util.py").content == "src/util.py:2: x = 1"


def test_search_bad_regex_and_cap(proj: Path) -> None:
    reg, _ = make(proj)
    r = call(reg, "search", pattern="(unclosed")
    assert not r.ok and "invalid regular expression" in r.content
    (proj / "hits.txt").write_text("hit\n" * (MAX_MATCHES * 3))
    r = call(reg, "search", pattern="hit")
    assert len(r.content.splitlines()) == MAX_MATCHES + 1 and "stopped at" in r.content


def test_search_does_not_follow_links_outside(proj: Path, tmp_path: Path) -> None:
    reg, _ = make(proj)
    os.symlink(tmp_path / "outside" / "secret.txt", proj / "leak.txt")
    os.symlink(tmp_path / "outside", proj / "leakdir")
    assert call(reg, "search", pattern="s3cret").content.startswith("No matches")
    assert not call(reg, "search", pattern="s3cret", path="leakdir").ok


def test_an_edit_that_renames_says_where_the_old_name_is_still_used(proj: Path) -> None:
    reg, _ = make(proj)
    (proj / "app.py").write_text("from shop import calc_total\n\n\ndef main():\n    print(calc_total([1, 2]))\n")
    r = call(reg, "edit_file", path="app.py", old_text="from shop import calc_total",
             new_text="from shop import compute_total")
    assert r.ok and r.content.startswith("Edited app.py at line 1.")
    assert "calc_total still appears in app.py at line 5: print(calc_total([1, 2]))" in r.content
    r = call(reg, "edit_file", path="app.py", old_text="print(calc_total(", new_text="print(compute_total(")
    assert r.content == "Edited app.py at line 5."  # nothing left: nothing said
    # a changed value, or a keyword taken out, is no rename
    (proj / "c.py").write_text("def f(a, b):\n    return a - b\n\n\ndef g():\n    return 2\n")
    assert call(reg, "edit_file", path="c.py", old_text="return a - b", new_text="a + b").content == "Edited c.py at line 2."


def test_an_edit_already_made_says_so(proj: Path) -> None:
    reg, _ = make(proj)
    (proj / "s.py").write_text("def fits(items):\n    return len(items) <= MAX_ITEMS\n")
    r = call(reg, "edit_file", path="s.py", old_text="return len(items) <= MAX_SIZE",
             new_text="return len(items) <= MAX_ITEMS")
    assert not r.ok and "already made" in r.content and "line 2" in r.content
