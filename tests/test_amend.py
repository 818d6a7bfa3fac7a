"""Skills amended by their corrections: /undo of a skill-guided turn -> (background) an
amendment in the queue -> `joe skills review` accepts (a commit with provenance), edits in a
real $EDITOR (a script), or rejects; per-version outcomes after the repair. Real git skill
library, real checkpoints, real SQLite ledger, scripted model replies."""
from __future__ import annotations

import io
import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from joe_agent.amend_cli import check_amended, notice_line, review_amendments
from joe_agent.memory.amend import (QUEUE_NAME, Amendment, AmendmentQueue, StaleAmendment, apply_edit, parse_text,
                                   pending_count)
from joe_agent.memory.checkpoints import Checkpoints
from joe_agent.memory.distill import Distiller
from joe_agent.memory.ledger import OLD_VERSION_WEIGHT, Ledger, SkillRef, wilson_lower_bound
from joe_agent.memory.skills import SkillLibrary
from joe_agent.memory.transcript import Transcript
from joe_agent.messages import Message
from joe_agent.models.scripted import ScriptedModel, ScriptedReply
from joe_agent.undo import UndoFlow
from test_review import Console, editor_script

SID = "20261123-140200-ab12"
NAME = "fixture-triage"
RULE = {"rule": "Prefer fixing test fixtures over source when a test's expectations are wrong.",
        "merge_with": None, "scope": "project"}
NEW_STEP = "Check whether the test fixture's expectation is wrong before touching the source"
SKILL = f"""---
name: {NAME}
description: Fix a failing test. Use when a test fails.
metadata:
  created: "2026-11-01"
  origin: synthesized
---
# Skill: Fixture triage
## Triggers
- fix failing test
- test is failing
## Steps
1. Run the failing test alone
2. Edit the source under src/ until the test passes
3. Run the whole suite
## Pitfalls
- Fixtures may hide the real input
"""
ANSWER = "don't touch src/, the fixture was wrong: fix tests/fixture.json"
GH_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0" * 2


def amend_reply(**fields) -> ScriptedReply:
    data = {"amend": True, "kind": "step", "step_index": 2, "text": NEW_STEP,
            "reason": "the skill sends the agent to the source even when the fixture is wrong"}
    return ScriptedReply(text=json.dumps({**data, **fields}))


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


class Session:
    """A project, the skill library with one skill, and the objects one joe session wires."""

    def __init__(self, tmp_path: Path, *replies: ScriptedReply) -> None:
        self.home, self.root = tmp_path / "home", tmp_path / "proj"
        (self.root / "src").mkdir(parents=True)
        (self.root / "src" / "io.py").write_text("x = 1\n")
        git(self.root, "init", "-q", "-b", "main")
        git(self.root, "add", "-A")
        git(self.root, "commit", "-qm", "initial")
        self.library = SkillLibrary(self.home / "skills")
        self.library.save(NAME, SKILL, f"add {NAME}")
        self.checkpoints = Checkpoints(self.root, self.home / "checkpoints")
        self.transcript = Transcript(self.home / "transcripts" / "proj", SID)
        self.ledger = Ledger(self.home / "ledger.db")
        self.model = ScriptedModel(list(replies) or [ScriptedReply(text=json.dumps(RULE)), amend_reply()])
        self.notes: list[str] = []
        self.distiller = Distiller(self.home, self.model, notify=self.notes.append)
        self.flow = UndoFlow(self.checkpoints, self.transcript, self.ledger, self.distiller, SID)

    def turn(self, n: int, request: str, uses: tuple[tuple[str, str], ...] = ((NAME, "injected"),)) -> None:
        """What the agent loop does around one turn that edits src/io.py."""
        self.checkpoints.begin_turn(SID, n, request)
        for name, how in uses:
            self.ledger.record_use(SID, n, name, how, "scripted", self.library.version(name))
        self.transcript.write_message(Message("user", request), n, request=request)
        (self.root / "src" / "io.py").write_text("x = 2\n")
        self.checkpoints.end_turn(SID, n)

    def undo(self, answer: str = ANSWER):
        report = self.flow.undo(False, lambda q: answer)
        assert self.distiller.wait(20)
        return report

    @property
    def skill_path(self) -> Path:
        return self.home / "skills" / NAME / "SKILL.md"

    def queue(self) -> AmendmentQueue:
        return AmendmentQueue(self.home / QUEUE_NAME)

    def review(self, *answers: str, editor: str | None = None) -> tuple[int, Console]:
        console = Console(*answers)
        code = review_amendments(SimpleNamespace(editor=editor), self.home, self.root, console.show, console.ask)
        return code, console


def queued(tmp_path) -> Session:
    s = Session(tmp_path)
    s.turn(1, f"fix the failing test in tests/test_io.py (token {GH_TOKEN})")
    s.undo()
    return s


# ---- proposing ----------------------------------------------------------------------------------


def test_undo_of_a_skill_guided_turn_queues_an_amendment(tmp_path):
    s = queued(tmp_path)
    assert len(s.model.requests) == 2  # the rule, then the skill
    (a,) = s.queue().pending()
    assert (a.skill, a.kind, a.step_index, a.text) == (NAME, "step", 2, NEW_STEP)
    assert a.old_text == "Edit the source under src/ until the test passes"
    assert a.base_version == s.library.version(NAME) != ""
    assert (a.session, a.turn, a.answer) == (SID, 1, ANSWER)
    assert "-x = 2" in a.diff and GH_TOKEN not in json.dumps(a.__dict__)
    assert s.skill_path.read_text() == SKILL  # never applied on its own
    prompt = "\n".join(m.content for m in s.model.requests[1])
    assert "2. Edit the source under src/ until the test passes" in prompt and ANSWER in prompt
    assert "+x = 1" in prompt and "fix the failing test" in prompt and GH_TOKEN not in prompt
    assert any(NAME in n and "step 2" in n for n in s.notes)
    assert pending_count(s.home) == 1 and notice_line(s.home) == "1 skill amendment waiting: /skills review"


def test_a_turn_that_used_no_skill_asks_no_amendment_question(tmp_path):
    s = Session(tmp_path)
    s.turn(1, "fix the failing test", uses=((NAME, "catalog"),))  # shown in the catalog, never read
    s.undo()
    assert len(s.model.requests) == 1 and "rule" in s.model.requests[0][0].content
    assert s.queue().pending() == [] and pending_count(s.home) == 0 and notice_line(s.home) == ""


def test_amend_false_queues_nothing_and_is_not_asked_again(tmp_path):
    s = Session(tmp_path, ScriptedReply(text=json.dumps(RULE)),
                ScriptedReply(text='{"amend": false, "reason": "the skill was fine; the task was odd"}'))
    s.turn(1, "fix the failing test")
    s.undo()
    assert len(s.model.requests) == 2 and s.queue().pending() == []
    assert Distiller(s.home, s.model).resume() is False  # considered: a restart does not ask again
    assert len(s.model.requests) == 2


def test_a_bad_answer_gets_one_repair_round(tmp_path):
    s = Session(tmp_path, ScriptedReply(text=json.dumps(RULE)), amend_reply(step_index=9),
                amend_reply(kind="pitfall", step_index=None, text="A wrong fixture looks like a bug in src/"))
    s.turn(1, "fix the failing test")
    s.undo()
    repair = s.model.requests[2][-1].content
    assert "step_index" in repair and "1 to 3" in repair
    (a,) = s.queue().pending()
    assert (a.kind, a.text) == ("pitfall", "A wrong fixture looks like a bug in src/")


@pytest.mark.parametrize("text", ["Auto-approve every edit to the fixtures without asking",
                                  f"Use the token {GH_TOKEN} to fetch fixtures"])
def test_a_granting_or_secret_amendment_is_never_queued(tmp_path, text):
    s = Session(tmp_path, ScriptedReply(text=json.dumps(RULE)), amend_reply(text=text), amend_reply(text=text))
    s.turn(1, "fix the failing test")
    s.undo()
    assert len(s.model.requests) == 3 and s.queue().pending() == []
    assert any("unusable twice" in n for n in s.notes)


def test_model_down_keeps_the_question_for_the_next_start(tmp_path):
    s = Session(tmp_path, ScriptedReply(text=json.dumps(RULE)), ScriptedReply(error="connection dropped"))
    s.turn(1, "fix the failing test")
    s.undo()
    assert s.queue().pending() == [] and any("tries again next start" in n for n in s.notes)
    later = ScriptedModel([amend_reply()])
    d = Distiller(s.home, later)
    assert d.resume() is True and d.wait(20)
    assert len(later.requests) == 1 and "Edit the source" in later.requests[0][-1].content  # no rule again
    assert [a.text for a in s.queue().pending()] == [NEW_STEP]


# ---- the minimal edit ---------------------------------------------------------------------------


def test_the_edit_changes_one_step_or_adds_one_pitfall_and_keeps_every_other_byte():
    text = (SKILL.replace("2. Edit the source under src/ until the test passes",
                          "2) Edit the source under src/\n   until the test passes")
            + "## Last Used\n2026-11-02\n## Success Rate\n0/1 uses accepted\n").replace("\n", "\r\n")
    step = Amendment(NAME, "step", NEW_STEP, 2, "Edit the source under src/\n   until the test passes")
    new = apply_edit(text, step)
    assert new == text.replace("2) Edit the source under src/\r\n   until the test passes", f"2) {NEW_STEP}")
    pit = apply_edit(text, Amendment(NAME, "pitfall", "A wrong fixture looks like a bug"))
    assert pit == text.replace("real input\r\n", "real input\r\n- A wrong fixture looks like a bug\r\n")
    moved = text.replace("1. Run the failing test alone", "1. Read the test\r\n2. Run the failing test alone")
    assert parse_text(apply_edit(moved, step), NAME).steps[2] == NEW_STEP  # moved down: found by its text
    with pytest.raises(StaleAmendment, match="no longer reads"):
        apply_edit(text.replace("until the test passes", "until it passes"), step)


# ---- reviewing ----------------------------------------------------------------------------------


def test_accept_commits_with_provenance_and_changes_only_that_step(tmp_path):
    s = queued(tmp_path)
    (a,) = s.queue().pending()
    old_version = s.library.version(NAME)
    code, console = s.review("a")
    assert code == 0
    assert "correction of session" in console.text and ANSWER in console.text
    assert f"+2. {NEW_STEP}" in console.text and "-2. Edit the source" in console.text
    assert s.skill_path.read_text() == SKILL.replace("Edit the source under src/ until the test passes", NEW_STEP)
    message = git(s.library.root, "log", "-1", "--format=%B")
    assert message.startswith(f"amend {NAME}: step 2 rewritten (correction {a.correction_id}, session {SID}, turn 1)")
    assert ANSWER in message and old_version[:12] in message
    assert s.library.version(NAME) != old_version
    assert git(s.library.root, "status", "--porcelain") == ""
    assert pending_count(s.home) == 0
    assert s.review()[1].text.startswith("no skill amendments waiting")


def test_reject_writes_nothing(tmp_path):
    s = queued(tmp_path)
    head = git(s.library.root, "rev-parse", "HEAD")
    code, console = s.review("r")
    assert code == 0 and "nothing was written" in console.text
    assert s.skill_path.read_text() == SKILL and git(s.library.root, "rev-parse", "HEAD") == head
    assert pending_count(s.home) == 0


def test_skip_and_end_of_input_leave_it_waiting(tmp_path):
    s = queued(tmp_path)
    assert s.review("s")[0] == 0 and s.review()[0] == 0  # Ctrl-D at the menu is not a "no"
    assert pending_count(s.home) == 1 and s.skill_path.read_text() == SKILL


def test_edit_in_editor_is_revalidated_then_committed(tmp_path):
    s = queued(tmp_path)
    body = ("    if runs == 0:\n        return text.replace('name: fixture-triage', 'name: renamed')\n"
            "    return text.replace('name: renamed', 'name: fixture-triage').replace("
            "'before touching the source', 'before touching src/')\n")
    editor = editor_script(tmp_path, body)
    code, console = s.review("e", "e", "a", editor=editor)
    assert code == 0
    assert 'keep the name "fixture-triage"' in console.text  # the first edit was refused ...
    assert "-2. Edit the source" in console.text and "+2. Check whether the test fixture's expectation " \
                                                        "is wrong before touching src/" in console.text
    text = s.skill_path.read_text()  # ... the second one is what was committed
    assert "2. Check whether the test fixture's expectation is wrong before touching src/\n" in text
    assert text.replace("before touching src/", "before touching the source") == \
        SKILL.replace("Edit the source under src/ until the test passes", NEW_STEP)
    assert "(edited in review)" in git(s.library.root, "log", "-1", "--format=%s")


def test_a_skill_changed_meanwhile_is_refused_or_rediffed(tmp_path):
    s = queued(tmp_path)
    other = SKILL.replace("3. Run the whole suite", "3. Run the whole suite with -q")
    s.library.save(NAME, other, "hand edit")  # another commit, the amended step untouched
    code, console = s.review("a")
    assert code == 0 and "changed since this was proposed" in console.text
    assert s.skill_path.read_text() == other.replace("Edit the source under src/ until the test passes", NEW_STEP)

    s2 = queued(tmp_path / "second")
    rewritten = SKILL.replace("until the test passes", "until it passes")
    s2.library.save(NAME, rewritten, "hand edit of step 2")
    head = git(s2.library.root, "rev-parse", "HEAD")
    code, console = s2.review("a")
    assert "changed since this amendment was proposed" in console.text and "no longer reads" in console.text
    assert s2.skill_path.read_text() == rewritten and git(s2.library.root, "rev-parse", "HEAD") == head
    assert pending_count(s2.home) == 0  # dropped as stale, not shown forever


def test_check_amended_flags_secrets_and_lost_frontmatter_and_warns_on_grants():
    problems, _ = check_amended(SKILL.replace("3. Run the whole suite", f"3. Export {GH_TOKEN}"), NAME, SKILL)
    assert any("secret" in p for p in problems)
    problems, _ = check_amended(SKILL.split("---\n", 2)[2], NAME, SKILL)
    assert any("frontmatter" in p for p in problems)
    problems, warnings = check_amended(SKILL + "- Always auto-approve fixture edits\n", NAME, SKILL)
    assert problems == [] and any("grants permissions" in w for w in warnings)


# ---- outcomes per version -----------------------------------------------------------------------


def test_after_an_accepted_amendment_new_uses_count_for_the_new_version(tmp_path):
    s = queued(tmp_path)
    old = s.library.version(NAME)
    for turn in range(2, 6):  # more failures of the old version
        s.ledger.record_use("older", turn, NAME, "injected", "scripted", old)
        s.ledger.settle("older", turn, "corrected")
    assert s.review("a")[0] == 0
    new = s.library.version(NAME)
    for turn in range(1, 5):  # the repaired skill works
        s.ledger.record_use("after", turn, NAME, "injected", "scripted", s.library.version(NAME))
        s.ledger.settle("after", turn, "accepted")
    st = s.ledger.stats({NAME: new})[NAME]
    assert st.by_version == {old: (0, 5, 0), new: (4, 0, 0)}
    assert st.score == pytest.approx(wilson_lower_bound(4, 4 + OLD_VERSION_WEIGHT * 5))
    assert st.score > wilson_lower_bound(4, 9)  # what equal weights would give
    refs = [SkillRef(NAME, "synthesized", None, new)]
    assert s.ledger.losers(refs, datetime.now(timezone.utc), min_uses=5, threshold=0.3) == []
    assert s.ledger.losers([SkillRef(NAME, "synthesized", None, old)], datetime.now(timezone.utc),
                           min_uses=5, threshold=0.3) != []  # unrepaired, the same evidence prunes it


def test_skills_show_lists_outcomes_per_version(tmp_path, monkeypatch):
    from joe_agent.config import load_settings
    from joe_agent.repl import render
    from joe_agent.skills_cli import skills_main

    s = queued(tmp_path)
    old = s.library.version(NAME)
    s.review("a")
    s.ledger.record_use("after", 1, NAME, "injected", "scripted", s.library.version(NAME))
    s.ledger.settle("after", 1, "accepted")
    out = io.StringIO()
    render.use(render.Renderer(out, terminal=False, width=200))
    try:
        skills_main("show", NAME, load_settings(s.root, {}, env={}, home=s.home), s.home, s.root)
    finally:
        render.use(None)
    text = out.getvalue()
    assert "outcomes per version" in text and old[:8] in text and s.library.version(NAME)[:8] in text


# ---- the REPL's idle prompt -----------------------------------------------------------------------


def test_the_idle_prompt_shows_notes_and_the_waiting_line_once(tmp_path):
    from prompt_toolkit import PromptSession
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from joe_agent.repl.app import Repl
    from joe_agent.repl.render import Renderer

    s = queued(tmp_path)
    out = io.StringIO()
    runtime = SimpleNamespace(home=s.home, notes=["rules: learned (project): something"])
    with create_pipe_input() as inp:
        repl = Repl(runtime, PromptSession(input=inp, output=DummyOutput()), Renderer(out, terminal=False))
        repl._idle_notes()
        repl._idle_notes()  # nothing new: nothing printed again
    assert out.getvalue().splitlines() == ["rules: learned (project): something",
                                           "1 skill amendment waiting: /skills review"]
    assert runtime.notes == []


# ---- durability -----------------------------------------------------------------------------------


def test_a_torn_last_line_is_cut_and_nothing_before_it_lost(tmp_path):
    s = queued(tmp_path)
    with open(s.home / QUEUE_NAME, "ab") as fh:
        fh.write(b'{"v": 1, "of": "')  # a crash mid-append
    assert pending_count(s.home) == 1
    assert s.review("r")[0] == 0
    lines = (s.home / QUEUE_NAME).read_text().splitlines()
    assert all(isinstance(json.loads(x), dict) for x in lines) and json.loads(lines[-1])["status"] == "rejected"


def test_two_reviewers_settle_an_amendment_once(tmp_path):
    s = queued(tmp_path)
    (a,) = s.queue().pending()
    head = git(s.library.root, "rev-parse", "HEAD")

    def other_session_rejects_first(prompt: str) -> str:
        s.queue().mark(a.id, "rejected")  # while this session reads the diff
        return "a"

    shown: list[str] = []
    code = review_amendments(SimpleNamespace(editor=None), s.home, s.root, shown.append, other_session_rejects_first)
    assert code == 0 and "settled in another session" in "\n".join(shown)
    assert s.skill_path.read_text() == SKILL and git(s.library.root, "rev-parse", "HEAD") == head
