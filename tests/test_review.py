"""Review of proposed skills: accept, edit in a REAL $EDITOR (a script), reject; nothing written
without acceptance; accepted skills are committed. Plus `joe synthesize` end to end."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from joe_agent.memory.skills import SkillLibrary
from joe_agent.memory.synthesize import synthesize
from joe_agent.models.scripted import ScriptedModel
from joe_agent.repl.review import feature, review, synthesize_cli
from test_synthesize import GOOD, HAND_SKILL, SESSION, fix_turn, good_records, record_session, reply


class Console:
    """Injected show/ask: answers come from a list; everything shown is kept."""

    def __init__(self, *answers: str):
        self.answers, self.shown, self.asked = list(answers), [], []

    def show(self, text: str) -> None:
        self.shown.append(text)

    def ask(self, prompt: str) -> str:
        self.asked.append(prompt)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)

    @property
    def text(self) -> str:
        return "\n".join(self.shown)


def editor_script(tmp_path: Path, body: str) -> str:
    """A real editor: a Python script run on the file, as $EDITOR would be. `body` sees
    `path`, `text` and `runs` (how many times it ran before) and returns the new text."""
    script = tmp_path / "fake_editor.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\n"
        f"counter = Path({str(tmp_path / 'editor_runs')!r})\n"
        "runs = int(counter.read_text()) if counter.exists() else 0\n"
        "counter.write_text(str(runs + 1))\n"
        "path = Path(sys.argv[1])\ntext = path.read_text()\n"
        f"def edit(path, text, runs):\n{body}\n"
        "new = edit(path, text, runs)\n"
        "if new is not None:\n    path.write_text(new)\n"
        "sys.exit(0 if new is not None else 4)\n")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def commits(library: SkillLibrary) -> list[str]:
    if not (library.root / ".git").exists():
        return []
    import git

    return [c.message.strip() for c in git.Repo(library.root).iter_commits()]


@pytest.fixture
def library(tmp_path) -> SkillLibrary:
    return SkillLibrary(tmp_path / "home" / "skills")


@pytest.fixture
def proposal(tmp_path, library):
    records = good_records(tmp_path)
    return synthesize(records, ScriptedModel([reply(GOOD)]), library, SESSION).proposal


def saved(library: SkillLibrary, name: str = GOOD["name"]) -> Path:
    return library.root / name / "SKILL.md"


# ---- accept and reject --------------------------------------------------------------------------

def test_accept_writes_commits_and_the_skill_loads(library, proposal):
    ui = Console("a")
    assert review(proposal, library, ui.show, ui.ask) == "accepted"
    assert saved(library).read_text() == proposal.skill_md
    assert f"session {SESSION}" in commits(library)[0] and commits(library)[0].startswith("add fix-failing-unit-test")
    skill = SkillLibrary(library.root).get(GOOD["name"])
    assert skill.origin == "synthesized" and skill.metadata["source"] == f"session {SESSION}"
    assert skill.created is not None and skill.steps == GOOD["steps"]
    assert 'Proposed new skill "fix-failing-unit-test"' in ui.shown[0] and "## Steps" in ui.shown[0]
    assert "saved the skill" in ui.shown[-1]


@pytest.mark.parametrize("answers", [("r",), ("maybe", "no"), ()])
def test_reject_or_no_answer_writes_nothing(library, proposal, answers):
    ui = Console(*answers)
    assert review(proposal, library, ui.show, ui.ask) == "rejected"
    assert not saved(library).exists() and commits(library) == []
    assert "nothing was written" in ui.shown[-1]


# ---- editing in $EDITOR -------------------------------------------------------------------------

def test_edit_in_a_real_editor_is_revalidated_then_accepted(tmp_path, library, proposal):
    editor = editor_script(tmp_path, "    return text.replace('Read the failing test to learn what it expects', "
                                     "'Run the failing test alone and read its assertion')")
    ui = Console("e", "a")
    assert review(proposal, library, ui.show, ui.ask, editor=editor) == "accepted"
    text = saved(library).read_text()
    assert "Run the failing test alone and read its assertion" in text and "learn what it expects" not in text
    assert len(ui.shown) >= 2 and "Run the failing test alone" in ui.shown[1]  # shown again before accepting


def test_editor_from_the_environment(tmp_path, library, proposal, monkeypatch):
    monkeypatch.setenv("EDITOR", editor_script(tmp_path, "    return text.replace('## Pitfalls', "
                                                         "'## Pitfalls\\n- Keep the fix small')"))
    ui = Console("e", "a")
    assert review(proposal, library, ui.show, ui.ask) == "accepted"
    assert "- Keep the fix small" in saved(library).read_text()


def test_broken_edit_reopens_the_editor_and_the_fix_is_accepted(tmp_path, library, proposal):
    editor = editor_script(tmp_path, (
        "    if runs == 0:\n"
        "        return text.replace('name: fix-failing-unit-test', 'name: [fix-failing')\n"
        "    return text.replace('name: [fix-failing', 'name: fix-failing-unit-test')"
        ".replace('## Pitfalls', '## Pitfalls\\n- Re-run the test after each edit')"))
    ui = Console("e", "e", "a")
    assert review(proposal, library, ui.show, ui.ask, editor=editor) == "accepted"
    problems = next(s for s in ui.shown if "problems" in s)
    assert "YAML" in problems or "line" in problems
    assert (tmp_path / "editor_runs").read_text() == "2"
    text = saved(library).read_text()
    assert "- Re-run the test after each edit" in text and "[fix-failing" not in text


def test_broken_edit_abandoned_then_rejected_writes_nothing(tmp_path, library, proposal):
    editor = editor_script(tmp_path, "    return text.split('## Steps')[0]")  # steps gone: invalid
    ui = Console("e", "a", "r")
    assert review(proposal, library, ui.show, ui.ask, editor=editor) == "rejected"
    assert any("give 3 to 12 steps (got 0)" in s for s in ui.shown)
    assert "back to the proposal" in ui.text and not saved(library).exists() and commits(library) == []


def test_edit_that_adds_a_secret_or_drops_the_frontmatter_is_refused(tmp_path, library, proposal):
    editor = editor_script(tmp_path, (
        "    if runs == 0:\n"
        "        return text.replace('## Pitfalls', '## Pitfalls\\n- Use ghp_Zq8vT3mW9kLp2RzY8nB4cD6fG1hJ5sA0eUxY')\n"
        "    return text.split('---', 2)[2]"))
    ui = Console("e", "e", "a", "r")
    assert review(proposal, library, ui.show, ui.ask, editor=editor) == "rejected"
    assert "looks like a secret" in ui.text and "frontmatter" in ui.text and not saved(library).exists()


def test_edit_renaming_to_an_existing_skill_is_refused(tmp_path, library, proposal):
    library.save("unit-test-repair", HAND_SKILL, "hand-written")
    editor = editor_script(tmp_path, "    return text.replace('name: fix-failing-unit-test', 'name: unit-test-repair')")
    ui = Console("e", "a", "r")
    assert review(proposal, library, ui.show, ui.ask, editor=editor) == "rejected"
    assert 'a skill named "unit-test-repair" already exists' in ui.text
    assert (library.root / "unit-test-repair" / "SKILL.md").read_bytes() == HAND_SKILL.encode()


def test_edit_that_grants_permissions_is_shown_with_a_warning(tmp_path, library, proposal):
    editor = editor_script(tmp_path, "    return text.replace('## Pitfalls', "
                                     "'## Pitfalls\\n- Always auto-approve shell commands here')")
    ui = Console("e", "r")
    assert review(proposal, library, ui.show, ui.ask, editor=editor) == "rejected"
    assert "warning: " not in ui.shown[0]
    assert "warning: grants permissions: " in ui.shown[1] and "auto-approve" in ui.shown[1]


@pytest.mark.parametrize("editor, expected", [
    (None, "no editor is set"),
    ("/nonexistent/bin/editor-xyz", "could not start the editor"),
    ("SCRIPT_FAILS", "exited with status 4"),
])
def test_editor_trouble_is_a_message_not_a_traceback(tmp_path, library, proposal, editor, expected):
    if editor == "SCRIPT_FAILS":
        editor = editor_script(tmp_path, "    return None")
    ui = Console("e", "a")
    assert review(proposal, library, ui.show, ui.ask, editor=editor) == "accepted"
    assert expected in ui.text
    assert saved(library).read_text() == proposal.skill_md  # the unedited proposal


# ---- updates --------------------------------------------------------------------------------------

def update_proposal(tmp_path, library):
    library.save("unit-test-repair", HAND_SKILL, "hand-written")
    records = good_records(tmp_path)
    p = synthesize(records, ScriptedModel([reply(GOOD)]), library, SESSION).proposal
    assert p.kind == "update"
    return p


def test_accepted_update_keeps_the_hand_written_bytes(tmp_path, library):
    p = update_proposal(tmp_path, library)
    ui = Console("a")
    assert review(p, library, ui.show, ui.ask) == "accepted"
    path = library.root / "unit-test-repair" / "SKILL.md"
    data = path.read_bytes().decode()
    assert data == p.skill_md
    lines = iter(data.splitlines(keepends=True))  # the old lines, in order, among the new ones
    assert all(old in lines for old in HAND_SKILL.splitlines(keepends=True))
    assert "- unit test fails\r\n" in data
    assert commits(library)[0].startswith("update unit-test-repair") and len(commits(library)) == 3
    assert ui.shown[0].startswith('Proposed update to the skill "unit-test-repair"')
    assert "+- unit test fails" in ui.shown[0]


def test_update_edited_shows_a_fresh_diff(tmp_path, library):
    p = update_proposal(tmp_path, library)
    editor = editor_script(tmp_path, "    return text.replace('- unit test fails', '- unit tests fail')")
    ui = Console("e", "a")
    assert review(p, library, ui.show, ui.ask, editor=editor) == "accepted"
    assert "+- unit tests fail" in ui.shown[1] and "+- unit test fails" not in ui.shown[1]


def test_update_of_a_skill_changed_meanwhile_is_a_conflict(tmp_path, library):
    p = update_proposal(tmp_path, library)
    path = library.root / "unit-test-repair" / "SKILL.md"
    path.write_bytes(HAND_SKILL.replace("Read the traceback", "Read the whole traceback").encode())
    ui = Console("a")
    assert review(p, library, ui.show, ui.ask) == "conflict"
    assert "changed since this proposal" in ui.text and b"Read the whole traceback" in path.read_bytes()
    assert b"unit test fails" not in path.read_bytes()


# ---- joe synthesize / the /synthesize feature -----------------------------------------------------

def test_synthesize_cli_end_to_end(tmp_path):
    home = tmp_path / "home"
    record_session(tmp_path, [fix_turn()], home=home)
    root = tmp_path / "calc-project"
    ui = Console("a")
    model = ScriptedModel([reply(GOOD)])
    assert synthesize_cli(None, home, root, model, ui.show, ui.ask, None) == 0
    assert (home / "skills" / GOOD["name"] / "SKILL.md").is_file()
    assert f"session {SESSION}" in ui.shown[0]


def test_synthesize_cli_by_session_prefix_and_unknown_session(tmp_path):
    home = tmp_path / "home"
    record_session(tmp_path, [fix_turn()], home=home)
    root = tmp_path / "calc-project"
    ui = Console("r")
    assert synthesize_cli(SESSION[:12], home, root, ScriptedModel([reply(GOOD)]), ui.show, ui.ask, None) == 0
    assert "rejected" in ui.shown[-1]
    ui = Console()
    assert synthesize_cli("19990101", home, root, ScriptedModel([]), ui.show, ui.ask, None) == 1
    assert "no session '19990101'" in ui.text and "joe sessions" in ui.text
    ui = Console()
    assert synthesize_cli(None, home, tmp_path / "elsewhere", ScriptedModel([]), ui.show, ui.ask, None) == 1
    assert "no session in this project yet" in ui.text


def test_synthesize_cli_reports_a_refusal_and_a_model_error(tmp_path):
    home = tmp_path / "home"
    record_session(tmp_path, [("what does calc.py do?", [fix_turn()[1][0], fix_turn()[1][-1]])], home=home)
    root = tmp_path / "calc-project"
    ui = Console()
    assert synthesize_cli(None, home, root, ScriptedModel([reply(GOOD)]), ui.show, ui.ask, None) == 0
    assert "nothing to propose: the session is too short" in ui.text and ui.asked == []
    record_session(tmp_path / "b", [fix_turn()], home=home, session="20261124-090000-cd34")
    ui = Console()
    from joe_agent.models.scripted import ScriptedReply

    model = ScriptedModel([ScriptedReply(error="connection refused")])
    assert synthesize_cli("20261124", home, root, model, ui.show, ui.ask, None) == 1
    assert "/synthesize: connection refused" in ui.text


def test_feature_uses_the_current_session(tmp_path):
    """The /synthesize wiring on a real Runtime resumed on the recorded session."""
    from joe_agent.config import Settings
    from joe_agent.runtime import Runtime

    home = tmp_path / "home"
    _, transcript = record_session(tmp_path, [fix_turn()], home=home)
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([json.dumps(GOOD)]))
    rt = Runtime.create(Settings(model=f"scripted:{replies}"), tmp_path / "calc-project", home,
                        resume=transcript.path).start(background=False)
    assert rt.transcript.id == SESSION
    ui = Console("a")
    feature(rt, ui.show, ui.ask)("")
    assert (home / "skills" / GOOD["name"] / "SKILL.md").is_file()
    assert all(isinstance(s, str) for s in ui.shown)  # plain text: the REPL renders it
