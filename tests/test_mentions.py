"""Files a request names are read into it (mentions.py), through the real tools."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from joe_agent.mentions import MAX_BYTES, MAX_FILES, attacher, mentioned_paths, render
from joe_agent.tools.permissions import Permissions
from joe_agent.tools.registry import Registry, ToolContext
from joe_agent.tools.workspace import Workspace


@pytest.fixture
def proj(tmp_path):
    root = tmp_path / "proj"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "config.json").write_text('{"port": 8000}\n')
    (root / "src" / "pkg" / "util.py").write_text("X = 1\n")
    (root / "Makefile").write_text("all:\n\techo hi\n")
    return root


def make(root: Path):
    registry = Registry(ToolContext(Workspace(root), Permissions("full-auto")))
    return registry, attacher(registry.ctx.workspace, registry.run)


def test_candidates_in_a_request():
    text = ("Fix calc.py, then config.json and src/pkg/util.py; see @Makefile and @docs/x.md. "
            "Version 1.5 is fine, e.g. this. Not https://example.com/a.py.")
    paths = [p for p, _ in mentioned_paths(text)]
    assert paths[:2] == ["Makefile", "docs/x.md"]  # @ mentions first, as written
    assert {"calc.py", "config.json", "src/pkg/util.py"} <= set(paths)
    assert "example.com/a.py" not in paths and "https" not in paths
    assert dict(mentioned_paths("read @calc.py.")) == {"calc.py": True}


def test_named_files_are_attached_with_their_contents(proj):
    registry, attach = make(proj)
    got = attach("Fix the bug in calc.py and set the port in config.json to 9090.")
    assert [(a.path, a.attached) for a in got] == [("calc.py", True), ("config.json", True)]
    block = render(got)
    assert "--- calc.py ---\ndef add(a, b):\n    return a - b\n--- end of calc.py ---" in block
    assert '{"port": 8000}' in block
    # read through the tool: the stale-edit check now knows the model has seen calc.py
    assert (proj / "calc.py").resolve() in registry.ctx.seen


def test_words_that_are_no_files_are_left_alone(proj):
    _, attach = make(proj)
    assert attach("Use version 1.5 of requests.get, as in e.g. the docs (missing.py).") == []
    assert render([]) == ""


def test_at_mention_without_extension_and_a_missing_one(proj):
    _, attach = make(proj)
    got = attach("What does @Makefile do, and @nothere.txt?")
    assert [(a.path, a.attached) for a in got] == [("Makefile", True), ("nothere.txt", False)]
    assert "echo hi" in got[0].text and "no such file" in got[1].text


def test_paths_outside_the_project_and_folders_are_not_read(proj, tmp_path):
    (tmp_path / "secret.txt").write_text("s3cret")
    os.symlink(tmp_path / "secret.txt", proj / "link.txt")
    _, attach = make(proj)
    got = attach(f"look at {tmp_path}/secret.txt, ../secret.txt, link.txt and src/pkg and @src")
    assert all("s3cret" not in a.text for a in got)
    assert [a.path for a in got if a.attached] == []


def test_big_files_are_named_not_attached_and_the_count_is_capped(proj):
    (proj / "big.py").write_text("x = 1\n" * (MAX_BYTES // 6 + 10))
    for i in range(MAX_FILES + 2):
        (proj / f"m{i}.py").write_text(f"M = {i}\n")
    _, attach = make(proj)
    got = attach("big.py " + " ".join(f"m{i}.py" for i in range(MAX_FILES + 2)))
    assert len(got) == MAX_FILES
    assert not got[0].attached and "too big to attach" in got[0].text and "read_file" in got[0].text
    assert all(a.attached for a in got[1:])


def test_binary_file_is_described_not_dumped(proj):
    (proj / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0binary")
    _, attach = make(proj)
    (a,) = attach("what is logo.png?")
    assert "binary" in a.text.lower() and "\0" not in a.text


def test_attachments_share_one_budget(proj):
    for name in ("a.py", "b.py", "c.py"):
        (proj / name).write_text("x = 1\n" * 100)  # 600 bytes each
    registry = Registry(ToolContext(Workspace(proj), Permissions("full-auto")))
    got = attacher(registry.ctx.workspace, registry.run, budget=1300)("a.py b.py c.py")
    assert [a.attached for a in got] == [True, True, False] and "too big to attach" in got[2].text
