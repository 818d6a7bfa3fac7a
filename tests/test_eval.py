"""`joe eval`: paired runs over task folders, through the real CLI, the real agent, real files,
real checks (bash), the real ledger, and the fake Ollama server over HTTP."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fake_ollama import FakeOllama, Reply
from joe_agent.cli import main
from joe_agent.eval.tasks import find_tasks, load_task, run_check
from joe_agent.memory.ledger import Ledger
from joe_agent.repl import render

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "tasks"

SKILL = """---
name: {name}
description: Fix off-by-one errors in Python slices and ranges. Use when a slice returns one item too few.
metadata:
  origin: hand
---
# Skill: {name}
## Triggers
- {trigger}
## Steps
1. The end of a slice is exclusive
"""


@pytest.fixture(autouse=True)
def _fresh_renderer():
    render.use(None)  # the next print makes a renderer on this test's (captured) stdout
    yield
    render.use(None)


def add_skill(home: Path, name: str, trigger: str = "one item too few") -> Path:
    path = home / "skills" / name / "SKILL.md"
    path.parent.mkdir(parents=True)
    path.write_text(SKILL.format(name=name, trigger=trigger))
    return path


def joe_eval(tmp_path: Path, *args: str, model: str = "scripted:auto") -> int:
    return main(["-C", str(tmp_path), "--model", model, "eval", *args])


def make_task(root: Path, name: str = "make-file", with_reply: list | None = None) -> Path:
    """A small task: create done.txt holding 'yes'. scripted.json solves it; an optional
    scripted.with.json replaces the replies of the with-skills arm."""
    task = root / name
    (task / "project").mkdir(parents=True)
    (task / "project" / "README").write_text("a project\n")
    (task / "task.md").write_text("Create done.txt containing yes.\n")
    # the check also proves the agent never saw the task's own files
    (task / "check.sh").write_text('[ ! -e check.sh ] && [ ! -e scripted.json ] && [ "$(cat done.txt)" = yes ]\n')
    solve = [{"tool_calls": [{"name": "write_file", "arguments": {"path": "done.txt", "content": "yes\n"}}]}, "Done."]
    (task / "scripted.json").write_text(json.dumps(solve))
    if with_reply is not None:
        (task / "scripted.with.json").write_text(json.dumps(with_reply))
    return task


# ---- the examples ---------------------------------------------------------------------------

def test_every_example_check_fails_on_the_starting_project(tmp_path):
    tasks = find_tasks([EXAMPLES])
    assert len(tasks) >= 8
    for task in tasks:
        project = tmp_path / task.name
        shutil.copytree(task.project, project) if task.project.is_dir() else project.mkdir()
        result = run_check(task, project)
        assert not result.passed, f"{task.name}: the check passes on the untouched project"
        assert result.exit_code not in (0, None), task.name
        assert (task.folder / "scripted.json").is_file(), task.name


def test_eval_over_the_examples_shows_both_arms_and_a_json_report(tmp_path, capsys, _isolated_home):
    skill = add_skill(_isolated_home, "slice-bounds")
    before = skill.read_bytes()
    report_path = tmp_path / "out" / "report.json"
    assert joe_eval(tmp_path, str(EXAMPLES), "--json-report", str(report_path)) == 0
    out = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    names = sorted(p.name for p in EXAMPLES.iterdir() if (p / "task.md").exists() or (p / "task.yaml").exists())
    assert [t["name"] for t in report["tasks"]] == names
    assert report["arm_names"] == ["without", "with"] and report["model"] == "scripted:auto"
    for task in report["tasks"]:
        for arm in ("without", "with"):
            s = task["arms"][arm]
            assert (s["runs"], s["passed"], s["pass_rate"]) == (1, 1, 1.0), (task["name"], arm, task["runs"])
            assert s["steps"] >= 2 and s["tokens_in"] > 0 and s["tokens_out"] > 0
        assert task["diff"]["with"]["pass_rate"] == 0
        assert {r["arm"] for r in task["runs"]} == {"without", "with"}
    runs = {(r["task"], r["arm"]): r for t in report["tasks"] for r in t["runs"]}
    # the library reaches the with-skills arm only, and costs prompt tokens there
    assert runs[("fix-off-by-one", "with")]["skills_used"] == {"slice-bounds": "injected"}
    assert runs[("fix-off-by-one", "without")]["skills_used"] == {}
    assert runs[("fix-off-by-one", "with")]["tokens_in"] > runs[("fix-off-by-one", "without")]["tokens_in"]
    assert report["total"]["arms"]["with"]["passed"] == len(names)
    assert "with − without" in out and "pass rate" in out and "fix-off-by-one" in out
    assert f"passed: without {len(names)}/{len(names)}, with {len(names)}/{len(names)}" in out
    # without --record the person's ledger and skill files are left alone
    assert not (_isolated_home / "ledger.db").exists() and skill.read_bytes() == before


# ---- arms that differ -----------------------------------------------------------------------

def test_a_failing_arm_is_reported_as_failing(tmp_path, capsys):
    task = make_task(tmp_path / "tasks", with_reply=["I will not do that."])
    report_path = tmp_path / "r.json"
    assert joe_eval(tmp_path, str(task), "--repeat", "2", "--json-report", str(report_path)) == 1
    out = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    arms = report["total"]["arms"]
    assert (arms["without"]["passed"], arms["without"]["runs"]) == (2, 2)
    assert (arms["with"]["passed"], arms["with"]["runs"]) == (0, 2)
    assert report["total"]["diff"]["with"]["pass_rate"] == -1.0
    failed = [r for r in report["tasks"][0]["runs"] if not r["passed"]]
    assert len(failed) == 2 and all(r["arm"] == "with" and r["check_exit"] == 1 for r in failed)
    assert out.count("FAIL  make-file  [with") == 2 and "-100 pts" in out


def test_scripted_file_replays_for_every_run_and_wrong_replies_fail(tmp_path, capsys):
    task = make_task(tmp_path / "tasks")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{"tool_calls": [{"name": "write_file", "arguments": {"path": "done.txt", "content": "no\n"}}]}, "ok"]))
    report_path = tmp_path / "r.json"
    assert joe_eval(tmp_path, str(task), "--json-report", str(report_path), model=f"scripted:{wrong}") == 1
    runs = json.loads(report_path.read_text())["tasks"][0]["runs"]
    assert [(r["arm"], r["passed"], r["tool_calls"]) for r in runs] == [("without", False, 1), ("with", False, 1)]


def test_single_skill_arm_has_only_that_skill(tmp_path, _isolated_home):
    add_skill(_isolated_home, "slice-bounds")
    add_skill(_isolated_home, "slice-helper", trigger="pagination off-by-one")
    report_path = tmp_path / "r.json"
    rc = joe_eval(tmp_path, str(EXAMPLES / "fix-off-by-one"), "--skill", "slice-helper", "--json-report", str(report_path))
    assert rc == 0
    report = json.loads(report_path.read_text())
    assert report["arm_names"] == ["without", "with", "skill:slice-helper"]
    used = {r["arm"]: r["skills_used"] for r in report["tasks"][0]["runs"]}
    assert used == {"without": {}, "with": {"slice-bounds": "injected", "slice-helper": "injected"},
                    "skill:slice-helper": {"slice-helper": "injected"}}
    assert "skill:slice-helper" in report["total"]["diff"]


# ---- --record -------------------------------------------------------------------------------

def test_record_writes_verified_rows_to_the_real_ledger(tmp_path, _isolated_home, capsys):
    add_skill(_isolated_home, "slice-bounds")
    good = EXAMPLES / "fix-off-by-one"
    bad = tmp_path / "tasks" / "fix-off-by-one-badly"
    shutil.copytree(good, bad)
    # the with-skills arm of this copy makes the wrong edit: the check fails
    (bad / "scripted.with.json").write_text(json.dumps([{"tool_calls": [{"name": "edit_file", "arguments": {
        "path": "pagination.py", "old_text": "size - 1]", "new_text": "size - 2]"}}]}, "done"]))
    assert joe_eval(tmp_path, str(good), str(bad), "--record") == 1
    assert "recorded 2 verified skill outcome(s)" in capsys.readouterr().out
    with Ledger(_isolated_home / "ledger.db") as ledger:
        rows = ledger.history("slice-bounds")
        stats = ledger.stats()["slice-bounds"]
    assert len(rows) == 2 and all(r["verified"] and r["how"] == "injected" for r in rows)
    assert sorted(r["outcome"] for r in rows) == ["accepted", "corrected"]
    assert all(r["session"].startswith("eval-") and r["model"] == "scripted:auto" for r in rows)
    assert (stats.accepted, stats.corrected) == (1, 1)
    # only with-skills runs are evidence: the without arm never touches the ledger
    assert all("-with-" in r["session"] for r in rows)
    assert "1/2 uses accepted" in (_isolated_home / "skills" / "slice-bounds" / "SKILL.md").read_text()


# ---- a real Ollama wire: the fake server over HTTP --------------------------------------------

def test_eval_against_an_ollama_server_counts_the_servers_tokens(tmp_path):
    def responder(body: dict) -> Reply:
        if any(m["role"] == "tool" for m in body["messages"]):
            return Reply(text="Fixed the slice end.")
        return Reply(tool_calls=[{"name": "edit_file", "arguments": {
            "path": "pagination.py", "old_text": "start + size - 1", "new_text": "start + size"}}])

    report_path = tmp_path / "r.json"
    with FakeOllama(responder=responder) as fake:
        rc = main(["-C", str(tmp_path), "--host", fake.url, "--model", "qwen2.5-coder:7b", "eval",
                   str(EXAMPLES / "fix-off-by-one"), "--json-report", str(report_path)])
        log = list(fake.chat_log)
    assert rc == 0
    runs = json.loads(report_path.read_text())["tasks"][0]["runs"]
    assert [r["passed"] for r in runs] == [True, True] and len(log) == 4
    assert sum(r["tokens_in"] for r in runs) == sum(rec.prompt_tokens for rec in log)
    assert all(r["requests"] == 2 and r["steps"] == 2 for r in runs)


# ---- mistakes are one line --------------------------------------------------------------------

@pytest.mark.parametrize("setup, words", [
    (lambda root: root / "missing", "no such task folder"),
    (lambda root: root, "holds no task folders"),
    (lambda root: _no_check(root), "has no check"),
    (lambda root: _no_replies(root), "scripted:auto needs"),
])
def test_bad_tasks_are_one_line(tmp_path, capsys, setup, words):
    root = tmp_path / "tasks"
    root.mkdir()
    assert joe_eval(tmp_path, str(setup(root))) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "Traceback" not in err


def _no_check(root: Path) -> Path:
    task = make_task(root)
    (task / "check.sh").unlink()
    return task


def _no_replies(root: Path) -> Path:
    task = make_task(root)
    (task / "scripted.json").unlink()
    return task


def test_unknown_skill_and_bad_repeat(tmp_path, capsys):
    task = make_task(tmp_path / "tasks")
    assert joe_eval(tmp_path, str(task), "--skill", "nope") == 2
    assert joe_eval(tmp_path, str(task), "--repeat", "0") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "no skill named 'nope'" in err[0] and "--repeat must be at least 1" in err[1]


def test_task_yaml_and_a_check_that_hangs(tmp_path):
    task_dir = tmp_path / "slow"
    task_dir.mkdir()
    (task_dir / "task.yaml").write_text("name: sleepy\ninstruction: wait\ncheck: sleep 30\ntimeout: 0.5\n")
    task = load_task(task_dir)
    assert (task.name, task.instruction, task.timeout_s) == ("sleepy", "wait\n", 0.5)
    result = run_check(task, tmp_path)
    assert not result.passed and result.exit_code is None and "timed out" in result.output
    assert result.seconds < 10
