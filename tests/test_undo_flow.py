"""/undo end to end in real temp git repos: Checkpoints, a real Transcript, a real Ledger and
the background distiller with a scripted model."""
from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from joe_agent.memory import rules as R
from joe_agent.memory.checkpoints import Checkpoints
from joe_agent.memory.distill import QUEUE_NAME, Distiller
from joe_agent.memory.ledger import Ledger
from joe_agent.memory.transcript import Transcript
from joe_agent.messages import Message
from joe_agent.models.scripted import ScriptedModel, ScriptedReply
from joe_agent.undo import CONFLICT_NOTE, QUESTION, UndoFlow

SID = "20261123-140200-ab12"
RULE = "Prefer editing test fixtures over source when a test's expectations are wrong."
GH_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0" * 2


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


class Session:
    """A project in a git repo with the objects one joe session wires together."""

    def __init__(self, tmp_path: Path, model: ScriptedModel | None = None) -> None:
        self.home = tmp_path / "home"
        self.root = tmp_path / "proj"
        (self.root / "src").mkdir(parents=True)
        (self.root / "src" / "io.py").write_text("x = 1\n")
        (self.root / "tests").mkdir()
        (self.root / "tests" / "fixture.json").write_text('{"x": 1}\n')
        git(self.root, "init", "-q", "-b", "main")
        git(self.root, "add", "-A")
        git(self.root, "commit", "-qm", "initial")
        self.checkpoints = Checkpoints(self.root, self.home / "checkpoints")
        self.transcript = Transcript(self.home / "transcripts" / "proj", SID)
        self.ledger = Ledger(self.home / "ledger.db")
        self.model = model or ScriptedModel([ScriptedReply(text=json.dumps(
            {"rule": RULE, "merge_with": None, "scope": "project"}))])
        self.distiller = Distiller(self.home, self.model)
        self.flow = UndoFlow(self.checkpoints, self.transcript, self.ledger, self.distiller, SID)

    def turn(self, n: int, request: str, edits: dict[str, str], skill: str = "fixture-triage") -> None:
        """What the agent loop does around one turn that edits files."""
        self.checkpoints.begin_turn(SID, n, request)
        self.ledger.record_use(SID, n, skill, "injected")
        self.transcript.write_message(Message("user", request), n, request=request)
        for rel, text in edits.items():
            (self.root / rel).write_text(text)
        self.checkpoints.end_turn(SID, n)

    def records(self, type_: str) -> list[dict]:
        return [r for r in self.transcript.records() if r["type"] == type_]


class Asker:
    def __init__(self, answer: str = "") -> None:
        self.answer, self.questions = answer, []

    def __call__(self, question: str) -> str:
        self.questions.append(question)
        return self.answer


def test_undo_reverts_records_undo_and_correction_and_settles_the_ledger(tmp_path):
    s = Session(tmp_path)
    s.turn(1, "fix the failing test in tests/test_io.py", {"src/io.py": "x = 2\n"})
    ask = Asker("don't touch src/, fix the test fixture")
    report = s.flow.undo(False, ask)

    assert (s.root / "src" / "io.py").read_text() == "x = 1\n"
    assert ask.questions == [QUESTION]
    assert [(c.path, c.kind) for c in report.reverted] == [("src/io.py", "modified")]
    assert report.lines()[:2] == ["undid turn 1:", "  restored src/io.py"]
    (undo,) = s.records("undo")
    assert undo["turn"] == 1 and undo["files"] == ["src/io.py"] and undo["refused"] == []
    (corr,) = s.records("correction")
    assert corr["request"] == "fix the failing test in tests/test_io.py"
    assert corr["answer"] == "don't touch src/, fix the test fixture"
    assert "-x = 2" in corr["diff"] and "+x = 1" in corr["diff"]
    assert corr["correction_id"] == report.correction_id != ""
    stats = s.ledger.stats()["fixture-triage"]
    assert (stats.corrected, stats.accepted) == (1, 0)

    assert s.distiller.wait(10)
    assert R.rules_prompt_text(s.home, s.root) == f"- {RULE}"
    assert "don't touch src/, fix the test fixture" in s.model.requests[0][0].content
    assert "undid turn 1" in report.lines()[0] and "background" in report.lines()[-1]
    assert "src/io.py" in report.model_note() and "fix the test fixture" in report.model_note()


def test_repeated_undo_walks_back_and_settles_each_turn(tmp_path):
    s = Session(tmp_path)
    s.turn(1, "first", {"src/io.py": "x = 2\n"}, skill="one")
    s.ledger.settle(SID, 1, "accepted")  # the person moved on...
    s.turn(2, "second", {"tests/fixture.json": '{"x": 2}\n'}, skill="two")
    first, second = s.flow.undo(False, Asker()), s.flow.undo(False, Asker())
    assert (first.turn, second.turn) == (2, 1)
    assert (s.root / "src" / "io.py").read_text() == "x = 1\n"
    assert (s.root / "tests" / "fixture.json").read_text() == '{"x": 1}\n'
    stats = s.ledger.stats()
    assert stats["two"].corrected == 1 and stats["one"].corrected == 1 and stats["one"].accepted == 0
    assert [r["turn"] for r in s.records("undo")] == [2, 1]
    third = s.flow.undo(False, Asker("x"))
    assert third.nothing_to_undo and "nothing to undo" in third.lines()[0]


def test_empty_answer_skips_the_correction(tmp_path):
    s = Session(tmp_path)
    s.turn(1, "do it", {"src/io.py": "x = 3\n"})
    ask = Asker("   ")
    report = s.flow.undo(False, ask)
    assert ask.questions == [QUESTION] and report.answer == "" and report.correction_id == ""
    assert s.records("undo") and not s.records("correction")
    assert not (s.home / QUEUE_NAME).exists() and s.model.requests == []


def test_ctrl_d_at_the_question_skips_it(tmp_path):
    s = Session(tmp_path)
    s.turn(1, "do it", {"src/io.py": "x = 3\n"})

    def eof(question: str) -> str:
        raise EOFError

    assert s.flow.undo(False, eof).answer == ""
    assert not s.records("correction")


def test_nothing_to_undo_asks_nothing(tmp_path):
    s = Session(tmp_path)
    ask = Asker("x")
    report = s.flow.undo(False, ask)
    assert report.nothing_to_undo and ask.questions == [] and s.records("undo") == []


def test_a_file_changed_since_is_left_alone_unless_forced(tmp_path):
    s = Session(tmp_path)
    s.turn(1, "edit both", {"src/io.py": "x = 2\n", "tests/fixture.json": '{"x": 2}\n'})
    (s.root / "src" / "io.py").write_text("x = 'mine'\n")  # the person edits after the agent
    lines: list[str] = []
    report = s.flow.run_command("", Asker("leave io alone"), lines.append)
    assert report.conflicts == ["src/io.py"]
    assert (s.root / "src" / "io.py").read_text() == "x = 'mine'\n"
    assert (s.root / "tests" / "fixture.json").read_text() == '{"x": 1}\n'
    assert f"  src/io.py: {CONFLICT_NOTE}" in lines
    assert "/undo --force" in CONFLICT_NOTE
    assert s.records("undo")[0]["refused"] == ["src/io.py"]


def test_the_undo_returns_before_a_slow_model_finishes(tmp_path):
    started, release = threading.Event(), threading.Event()

    def slow(messages):
        started.set()
        release.wait(30)
        return ScriptedReply(text=json.dumps({"rule": RULE, "merge_with": None, "scope": "global"}))

    s = Session(tmp_path, ScriptedModel(responder=slow))
    s.turn(1, "fix it", {"src/io.py": "x = 2\n"})
    try:
        report = s.flow.undo(False, Asker("fix the fixture instead"))
        # the undo is back while the model is still busy: nothing learned yet
        assert report.correction_id and started.wait(10)
        assert not release.is_set() and not (s.home / "rules.md").exists()
        assert len(s.distiller.queue.pending()) == 1
    finally:
        release.set()
    assert s.distiller.wait(10)
    assert R.rules_prompt_text(s.home, s.root) == f"- {RULE}"
    assert s.distiller.queue.pending() == []


def test_a_secret_in_the_correction_stays_out_of_the_model_transcript_and_queue(tmp_path):
    s = Session(tmp_path)
    s.turn(1, f"push with GITHUB_TOKEN={GH_TOKEN}", {"src/io.py": f"TOKEN = '{GH_TOKEN}'\n"})
    s.flow.undo(False, Asker(f"never hardcode {GH_TOKEN}, read it from the environment"))
    assert s.distiller.wait(10)
    assert GH_TOKEN not in s.model.requests[0][0].content
    assert "[REDACTED" in s.model.requests[0][0].content
    for path in (s.transcript.path, s.home / QUEUE_NAME, s.home / "rules.md", s.root / ".joe" / "rules.md"):
        if path.exists():
            assert GH_TOKEN not in path.read_text(), path


def test_without_ledger_or_distiller_the_undo_still_works(tmp_path):
    s = Session(tmp_path)
    s.turn(1, "fix it", {"src/io.py": "x = 2\n"})
    flow = UndoFlow(s.checkpoints, s.transcript, None, None, SID)
    report = flow.undo(False, Asker("something else"))
    assert report.reverted and report.correction_id == ""
    assert s.records("correction")[0]["answer"] == "something else"
    assert not (s.home / QUEUE_NAME).exists()


@pytest.mark.parametrize("args, forced", [("--force", True), ("-f", True), ("", False)])
def test_run_command_parses_force(tmp_path, args, forced):
    s = Session(tmp_path)
    s.turn(1, "edit", {"src/io.py": "x = 2\n"})
    (s.root / "src" / "io.py").write_text("x = 'mine'\n")
    report = s.flow.run_command(args, Asker(), lambda line: None)
    assert (report.conflicts == []) is forced
    assert ((s.root / "src" / "io.py").read_text() == "x = 1\n") is forced
