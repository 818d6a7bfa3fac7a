"""A scripted week of sessions through the real Runtime against the fake Ollama server: the
ledger's evidence matches what happened turn by turn, the losers and only the losers are pruned
with their reason, and everything is restorable."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from fake_ollama import FakeOllama, Reply
from joe_agent.config import load_settings
from joe_agent.messages import TextDelta
from joe_agent.memory.skills import SkillLibrary
from joe_agent.repl import render
from joe_agent.runtime import Runtime
from joe_agent.skills_cli import SkillsAdmin


def skill_md(name, trigger, origin="synthesized", created=None):
    created = created or date.today().isoformat()
    return f"""---
name: {name}
description: {trigger.capitalize()}. Use when asked to {trigger}.
metadata:
  created: "{created}"
  origin: {origin}
---
# Skill: {trigger.capitalize()}
## Triggers
- {trigger}
## Steps
1. Look at the code first
2. Make the change
3. Run the checks
"""


@pytest.fixture
def world(tmp_path, _isolated_home):
    home = _isolated_home
    lib = SkillLibrary(home / "skills")
    lib.save("triage-tests", skill_md("triage-tests", "fix failing test"), "add")
    lib.save("add-cli-flag", skill_md("add-cli-flag", "add a command line flag"), "add")
    lib.save("hand-notes", skill_md("hand-notes", "write release notes", origin="hand",
                                    created=(date.today() - timedelta(days=200)).isoformat()), "add")
    lib.save("stale-skill", skill_md("stale-skill", "migrate the database schema",
                                     created=(date.today() - timedelta(days=100)).isoformat()), "add")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "cli.py").write_text("import argparse\n")
    with FakeOllama() as fake:
        yield home, project, fake


def session(world, mode="full-auto"):
    home, project, fake = world
    settings = load_settings(project, {"host": fake.url, "mode": mode}, env={}, home=home)
    return Runtime.create(settings, project, home, headless=True).start(background=False)


def turn(rt, fake, text, *replies):
    fake.queue(*replies)
    return list(rt.agent.run_turn(text))


def write(path, content):
    return Reply(tool_calls=[{"name": "write_file", "arguments": {"path": path, "content": content}}])


def undo(rt):
    render.set_asker(lambda q: "")
    try:
        rt.features["undo"]("")
    finally:
        render.set_asker(None)


class Screen:
    """Everything render prints, as plain text."""

    def __init__(self):
        import io

        self.buf = io.StringIO()
        render.use(render.Renderer(self.buf, terminal=False, color=False))

    def take(self) -> str:
        text = self.buf.getvalue()
        self.buf.seek(0)
        self.buf.truncate()
        return text


@pytest.fixture
def screen():
    s = Screen()
    yield s
    render.use(None)


def test_a_week_of_sessions(world, screen):
    home, project, fake = world

    # Monday: triage used, person moves on -> accepted
    rt = session(world)
    turn(rt, fake, "please fix failing test in test_cli", write("fix1.txt", "1"), Reply(text="fixed"))
    turn(rt, fake, "thanks, what time is it", Reply(text="no idea"))
    rt.close()

    # Tuesday: the flag skill misleads; undone, then two more tries walked back by two /undo
    rt = session(world)
    turn(rt, fake, "add a command line flag --json", write("flag1.txt", "1"), Reply(text="added"))
    undo(rt)
    turn(rt, fake, "add a command line flag --json again", write("flag2.txt", "2"), Reply(text="added"))
    turn(rt, fake, "now add a command line flag --yaml", write("flag3.txt", "3"), Reply(text="added"))
    undo(rt)
    undo(rt)
    assert not any((project / f"flag{i}.txt").exists() for i in (1, 2, 3))
    rt.close()

    # Wednesday: triage interrupted (ignored); flag skill denied in ask mode (ignored)
    rt = session(world)
    fake.queue(Reply(text="a long explanation " * 20))
    gen = rt.agent.run_turn("fix failing test quickly")
    for ev in gen:
        if isinstance(ev, TextDelta):
            gen.close()
            break
    rt.close()
    rt = session(world, mode="ask")
    turn(rt, fake, "add a command line flag --csv", write("flag4.txt", "4"), Reply(text="could not"))
    rt.close()

    # Thursday and Friday: the flag skill is undone twice more; triage accepted at session end
    for i in (5, 6):
        rt = session(world)
        turn(rt, fake, f"add a command line flag --opt{i}", write(f"flag{i}.txt", "x"), Reply(text="added"))
        undo(rt)
        rt.close()
    rt = session(world)
    turn(rt, fake, "fix failing test test_b", write("fix2.txt", "2"), Reply(text="fixed"))
    rt.close()

    admin = SkillsAdmin(load_settings(project, {}, env={}, home=home), home, project)
    stats = admin.ledger.stats()
    triage, flag = stats["triage-tests"], stats["add-cli-flag"]
    assert (triage.accepted, triage.corrected, triage.ignored, triage.pending) == (2, 0, 1, 0)
    assert (flag.accepted, flag.corrected, flag.ignored, flag.pending) == (0, 5, 1, 0)
    assert triage.score > flag.score
    assert "stale-skill" not in stats and "hand-notes" not in stats

    screen.take()
    admin.list()
    table = screen.take()
    assert "triage-tests" in table and "add-cli-flag" in table

    # dry run: shows the losers and why, changes nothing
    admin.prune(dry_run=True)
    out = screen.take()
    assert "would archive add-cli-flag" in out and "would archive stale-skill" in out
    assert "triage-tests" not in out and "hand-notes" not in out
    assert {s.name for s in admin.library.load()} == {"triage-tests", "add-cli-flag", "hand-notes", "stale-skill"}

    admin.prune()
    out = screen.take()
    assert "archived add-cli-flag" in out and "archived stale-skill" in out
    assert {s.name for s in admin.library.load()} == {"triage-tests", "hand-notes"}
    assert sorted(admin.library.archived()) == ["add-cli-flag", "stale-skill"]

    admin.restore("add-cli-flag")
    assert admin.library.get("add-cli-flag") is not None
    assert admin.ledger.stats()["add-cli-flag"].corrected == 5  # its history came back with it
    messages = [m for _, _, m in admin.library.log("add-cli-flag", limit=10)]
    assert any("restore" in m.lower() for m in messages) and any("archive" in m.lower() or "prune" in m.lower() for m in messages)

    # A restore is a new version (a commit): its old failures weigh a quarter, so the person's
    # choice to bring it back gives it a fresh chance. A restored skill that is still unused
    # and old is archived again by auto_prune at session start, which says so.
    admin.restore("stale-skill")
    settings = load_settings(project, {"host": fake.url, "auto_prune": True}, env={}, home=home)
    rt = Runtime.create(settings, project, home, headless=True).start(background=False)
    assert any("archived skill stale-skill" in n and "never used in the 100 days" in n for n in rt.notes), rt.notes
    assert not any("add-cli-flag" in n for n in rt.notes)
    assert {s.name for s in rt.learning.advisor.skills} == {"triage-tests", "add-cli-flag", "hand-notes"}
    rt.close()
