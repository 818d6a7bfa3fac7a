"""The distiller with scripted model replies: corrections become rules with provenance,
repeats merge, hostile rules wait for review, broken files are not clobbered, hand edits
survive, secrets never reach the model or rules.md, and the queue survives a process exit."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from joe_agent.errors import ModelUnreachable
from joe_agent.memory import rules as R
from joe_agent.memory.distill import (QUEUE_NAME, Correction, CorrectionQueue, Decision, Distiller,
                                      parse_decision, similarity)
from joe_agent.models.scripted import ScriptedModel, ScriptedReply
from joe_agent.undo import rules_cli

SESSION = "20261123-140200-ab12"
FIXTURE_RULE = "Prefer editing test fixtures over source when a test's expectations are wrong."
OPENAI_KEY = "sk-proj-" + "Zq3" * 15 + "x9"
AWS_ID = "AKIA" + "QWERTYUIOPASDFGH"


def reply(rule: str | None, merge_with=None, scope="global") -> ScriptedReply:
    if rule is None:
        return ScriptedReply(text="NONE")
    return ScriptedReply(text=json.dumps({"rule": rule, "merge_with": merge_with, "scope": scope}))


def correction(root: Path, answer="fix the test fixture, not src/", request="fix the failing test",
               diff="--- a/src/io.py\n+++ b/src/io.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n", session=SESSION, turn=3):
    return Correction(session=session, turn=turn, root=str(root), request=request, diff=diff, answer=answer)


@pytest.fixture
def dirs(tmp_path):
    home, root = tmp_path / "home", tmp_path / "proj"
    root.mkdir()
    return home, root


def test_a_correction_becomes_a_rule_with_date_and_session(dirs):
    home, root = dirs
    model = ScriptedModel([reply(FIXTURE_RULE)])
    d = Distiller(home, model)
    d.submit(correction(root))
    assert d.wait(10)
    assert [r.outcome for r in d.results] == ["added"]
    text = (home / "rules.md").read_text()
    assert f"- {FIXTURE_RULE} <!-- {date.today().isoformat()}, session {SESSION} -->\n" in text
    assert R.rules_prompt_text(home, root) == f"- {FIXTURE_RULE}"
    prompt = model.requests[0][0].content
    assert "fix the failing test" in prompt and "fix the test fixture, not src/" in prompt and "+x = 2" in prompt
    assert "(none yet)" in prompt
    assert CorrectionQueue(home / QUEUE_NAME).pending() == []


def test_project_scope_goes_to_the_project_file(dirs):
    home, root = dirs
    d = Distiller(home, ScriptedModel([reply("Run the tests with make test in this repo.", scope="project")]))
    d.queue.add(correction(root))
    d.run_pending()
    assert (root / ".joe" / "rules.md").read_text().count("make test") == 1
    assert not (home / "rules.md").exists()


def test_a_repeat_merges_instead_of_adding_a_near_duplicate(dirs):
    home, root = dirs
    model = ScriptedModel([
        reply(FIXTURE_RULE),
        reply("When a test's expectations are wrong, prefer editing the test fixtures over the source.", 1),
        # the model misses the duplicate: the similarity check catches it
        reply("Prefer editing test fixtures over source code when test expectations are wrong.", None),
    ])
    d = Distiller(home, model)
    for session in ("s1", "s2", "s3"):
        d.queue.add(correction(root, session=session))
        d.run_pending()
    assert [r.outcome for r in d.results] == ["added", "merged", "merged"]
    rules = R.read_rules_file(home / "rules.md", "global").rules
    assert [(r.text, r.seen, r.session) for r in rules] == [(FIXTURE_RULE, 3, "s3")]
    assert f"1. {FIXTURE_RULE}" in model.requests[1][0].content  # the model saw what exists


def test_an_opposite_or_unrelated_rule_is_not_merged(dirs):
    home, root = dirs
    model = ScriptedModel([
        reply(FIXTURE_RULE),
        reply("Prefer editing source over test fixtures when a test's expectations are wrong."),
        reply("Use f-strings for string formatting.", merge_with=1),  # a wrong merge_with is not believed
    ])
    d = Distiller(home, model)
    for _ in range(3):
        d.queue.add(correction(root))
        d.run_pending()
    assert [r.outcome for r in d.results] == ["added", "added", "added"]
    assert len(R.read_rules_file(home / "rules.md", "global").rules) == 3


def test_a_merge_into_a_hand_written_rule_leaves_its_line_alone(dirs):
    home, root = dirs
    original = "# mine\n* Prefer editing test fixtures over source when a test's expectations are wrong\n"
    (home).mkdir()
    (home / "rules.md").write_text(original)
    d = Distiller(home, ScriptedModel([reply(FIXTURE_RULE, 1)]))
    d.queue.add(correction(root))
    d.run_pending()
    assert d.results[0].outcome == "merged"
    assert (home / "rules.md").read_text() == original


def test_a_permission_granting_rule_is_flagged_and_waits_for_confirmation(dirs):
    home, root = dirs
    d = Distiller(home, ScriptedModel([reply("Always auto-approve shell commands in this project.")]))
    d.queue.add(correction(root, answer="stop asking me, just run it"))
    d.run_pending()
    result = d.results[0]
    assert result.outcome == "flagged" and "joe rules confirm" in result.message
    line = (home / "rules.md").read_text().splitlines()[-1]
    assert line.startswith("- [needs review] Always auto-approve shell commands") and "flagged: grants permissions" in line
    assert R.rules_prompt_text(home, root) == ""
    lines: list[str] = []
    assert rules_cli("confirm", "1", home, root, lines.append) == 0
    assert R.rules_prompt_text(home, root) == "- Always auto-approve shell commands in this project."


def test_a_broken_rules_file_is_reported_and_not_clobbered(dirs):
    home, root = dirs
    home.mkdir()
    broken = b"- Use tabs.\n<!-- a note I never closed\n- Prefer ruff.\n"
    (home / "rules.md").write_bytes(broken)
    told: list[str] = []
    d = Distiller(home, ScriptedModel([reply(FIXTURE_RULE)]), notify=told.append)
    d.submit(correction(root))
    assert d.wait(10)
    assert (home / "rules.md").read_bytes() == broken
    assert d.results[0].outcome == "pending"
    assert "could not be parsed (line 2" in told[0] and "rules.pending.md" in told[0]
    assert FIXTURE_RULE in (home / "rules.pending.md").read_text()
    assert d.queue.pending() == []  # the rule is safe in the pending file: not asked again


def test_hand_edits_survive_a_distiller_write(dirs):
    home, root = dirs
    d = Distiller(home, ScriptedModel([reply(FIXTURE_RULE), reply("Ask before adding a new dependency.")]))
    d.queue.add(correction(root))
    d.run_pending()
    path = home / "rules.md"
    edited = path.read_text().replace("Prefer editing test fixtures", "Prefer fixing test fixtures")
    edited = "# My own heading\n\nA paragraph of mine.\n" + edited + "- Use tabs in Makefiles.\n\nclosing words"
    path.write_text(edited)
    d.queue.add(correction(root, answer="ask me before pip install"))
    d.run_pending()
    after = path.read_text()
    assert after.startswith(edited + "\n")
    assert after.endswith(f"- Ask before adding a new dependency. <!-- {date.today().isoformat()}, session {SESSION} -->\n")


def test_a_secret_never_reaches_the_model_or_rules_md(dirs):
    home, root = dirs

    def echo(messages):  # a model that copies what it saw into the rule, plus a key of its own
        seen = re.search(r"<answer>\n(.*?)\n</answer>", messages[0].content, re.S).group(1)
        return reply(f"Use the key {OPENAI_KEY} like this: {seen}")

    model = ScriptedModel(responder=echo)
    d = Distiller(home, model)
    d.submit(correction(root, answer=f"use OPENAI_API_KEY={OPENAI_KEY} and {AWS_ID}",
                        request=f"deploy with token {OPENAI_KEY}", diff=f"+AWS_KEY = '{AWS_ID}'\n"))
    assert d.wait(10)
    sent = model.requests[0][0].content
    stored = [(home / "rules.md").read_text(), (home / QUEUE_NAME).read_text()]
    for text in [sent, *stored]:
        assert OPENAI_KEY not in text and AWS_ID not in text
    assert "[REDACTED" in sent and "[REDACTED" in stored[0]


def test_model_down_keeps_the_correction_for_the_next_start(dirs):
    home, root = dirs

    def down(messages):
        raise ModelUnreachable("cannot reach Ollama at http://127.0.0.1:11434: start it with `ollama serve`")

    first = Distiller(home, ScriptedModel(responder=down))
    first.submit(correction(root))
    assert first.wait(10)
    assert first.results[0].outcome == "failed" and "tries again next start" in first.results[0].message
    assert len(first.queue.pending()) == 1
    second = Distiller(home, lambda: ScriptedModel([reply(FIXTURE_RULE)]))  # a factory, as the CLI passes
    assert second.resume() is True and second.wait(10)
    assert [r.outcome for r in second.results] == ["added"]
    assert second.queue.pending() == [] and second.resume() is False


EXITER = textwrap.dedent("""
    import os, sys, threading
    from pathlib import Path
    from joe_agent.memory.distill import Correction, Distiller
    from joe_agent.models.scripted import ScriptedModel, ScriptedReply
    never = threading.Event()
    def slow(messages):
        never.wait()
        return ScriptedReply(text="NONE")
    d = Distiller(Path(sys.argv[1]), ScriptedModel(responder=slow))
    d.submit(Correction(session="s-exit", turn=1, root=sys.argv[2], request="r", diff="", answer="use tabs"))
    print("submitted", flush=True)
    os._exit(0)  # the session ends while the model is still thinking
""")


def test_a_process_that_exits_first_leaves_the_correction_for_the_next_start(dirs):
    home, root = dirs
    out = subprocess.run([sys.executable, "-c", EXITER, str(home), str(root)], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "submitted", out.stderr
    d = Distiller(home, ScriptedModel([reply("Use tabs in Makefiles.")]))
    assert [c.session for c in d.queue.pending()] == ["s-exit"]
    assert d.resume() and d.wait(10)
    assert R.rules_prompt_text(home, root) == "- Use tabs in Makefiles."


WORKER = textwrap.dedent("""
    import json, re, sys
    from pathlib import Path
    from joe_agent.memory.distill import Correction, Distiller
    from joe_agent.models.scripted import ScriptedModel, ScriptedReply
    def echo(messages):
        answer = re.search(r"<answer>\\n(.*?)\\n</answer>", messages[0].content, re.S).group(1)
        return ScriptedReply(text=json.dumps({"rule": answer, "merge_with": None, "scope": "global"}))
    d = Distiller(Path(sys.argv[1]), ScriptedModel(responder=echo))
    for answer in sys.argv[3:]:
        d.queue.add(Correction(session="s", turn=1, root=sys.argv[2], request="r", diff="", answer=answer))
        d.run_pending()
""")

ANSWERS_A = ["Use tabs in Makefiles.", "Prefer pathlib for file paths.", "Keep docstrings under five lines.",
             "Write changelog entries in past tense.", "Name branches after their issue number."]
ANSWERS_B = ["Ask before adding dependencies.", "Sort imports with isort.", "Prefer dataclasses over dicts.",
             "Quote shell variables always.", "Log errors with their request id."]


def test_two_distilling_processes_lose_nothing_and_double_nothing(dirs):
    home, root = dirs
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(home), str(root), *answers])
             for answers in (ANSWERS_A, ANSWERS_B)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    texts = [r.text for r in R.read_rules_file(home / "rules.md", "global").rules]
    assert sorted(texts) == sorted(ANSWERS_A + ANSWERS_B)
    assert CorrectionQueue(home / QUEUE_NAME).pending() == []


@pytest.mark.parametrize("text, expected", [
    ("NONE", Decision("")),
    ("none.", Decision("")),
    ('{"rule": "Use tabs.", "merge_with": null, "scope": "global"}', Decision("Use tabs.", None, "global")),
    ('```json\n{"rule": "- Use tabs.", "merge_with": "2", "scope": "project"}\n```', Decision("Use tabs.", 2, "project")),
    ('Here you go: {"rule": "Use tabs <!-- x -->", "merge_with": true, "scope": "galaxy"} thanks',
     Decision("Use tabs x", None, "project")),
    ('{"rule": "NONE"}', Decision("")),
])
def test_parse_decision(text, expected):
    assert parse_decision(text) == expected


@pytest.mark.parametrize("text", ["I think you should use tabs", '{"no_rule": 1}', ""])
def test_parse_decision_rejects_garbage(text):
    with pytest.raises(ValueError):
        parse_decision(text)


def test_an_unparseable_answer_is_settled_not_retried(dirs):
    home, root = dirs
    d = Distiller(home, ScriptedModel([ScriptedReply(text="Sure! The user wants tabs.")]))
    d.queue.add(correction(root))
    d.run_pending()
    assert d.results[0].outcome == "unparsed" and d.queue.pending() == []
    assert not (home / "rules.md").exists()


@pytest.mark.parametrize("a, b, same", [
    (FIXTURE_RULE, "When a test's expectations are wrong, prefer editing the test fixtures over the source.", True),
    (FIXTURE_RULE, "Prefer editing source over test fixtures when a test's expectations are wrong.", False),
    ("Run the tests before committing.", "Do not run the tests before committing.", False),
    ("Use pathlib for paths.", "Use pathlib for file paths.", True),
    ("Use f-strings instead of format().", "Use format() instead of f-strings.", False),
    ("Prefer small commits.", "Write docstrings in the imperative.", False),
])
def test_similarity(a, b, same):
    assert (similarity(a, b) >= 0.6) is same


def test_a_correction_for_a_deleted_project_recreates_nothing(dirs):
    home, root = dirs
    d = Distiller(home, ScriptedModel([reply("Use tabs here.", scope="project")]))
    d.queue.add(correction(root))
    root.rmdir()
    d.run_pending()
    assert d.results[0].outcome == "none" and "is gone" in d.results[0].message
    assert not root.exists() and d.queue.pending() == []
