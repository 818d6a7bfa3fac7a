"""Small everyday coding tasks, end to end through headless joe against a real model.

Each task is a folder in tasks/: `prompt.txt` (what the user types), `files/` (the project
as it starts) and `check.py` (run in the project afterwards; exit 0 means the task is done).
The check lives outside the project, so the model never sees it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

TASKS = Path(__file__).parent / "tasks"
TASK_TIMEOUT_S = float(os.environ.get("JOE_LIVE_TASK_TIMEOUT", "900"))
MAX_STEPS = os.environ.get("JOE_LIVE_MAX_STEPS", "12")
MAX_REPLY_TOKENS = os.environ.get("JOE_LIVE_MAX_REPLY_TOKENS", "1024")  # a repetition loop ends there
TOOL_FORMAT = os.environ.get("JOE_LIVE_TOOL_FORMAT", "text")  # auto: native tools, as the server offers them
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.live


def _task_names() -> list[str]:
    return sorted(p.name for p in TASKS.iterdir() if (p / "prompt.txt").is_file())


def _project(task: Path, where: Path) -> Path:
    root = where / "project"
    shutil.copytree(task / "files", root)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "start"], cwd=root, check=True)
    return root


def _joe(run, root: Path, prompt: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "joe_agent", "--backend", run.backend, "--host", run.url, "--model", run.model,
           "--max-steps", MAX_STEPS, "-C", str(root), "-p", prompt, "--yes"]
    env = {**os.environ, "JOE_TEMPERATURE": run.temperature, "JOE_MAX_REPLY_TOKENS": MAX_REPLY_TOKENS, "JOE_TOOL_FORMAT": TOOL_FORMAT,
           "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=TASK_TIMEOUT_S)


def _check(task: Path, root: Path) -> tuple[bool, str]:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, str(task / "check.py")], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120)
    lines = (out.stderr or out.stdout).strip().splitlines()
    return out.returncode == 0, (lines[-1] if lines else "")


def _turn_stats(home: Path) -> tuple[int | None, int, str]:
    """(steps, tool calls, end reason) from the session transcript."""
    steps, calls, reason = None, 0, ""
    for log in (home / "transcripts").glob("*/*.jsonl"):
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            calls += event.get("type") == "tool_call"
            if event.get("type") == "turn_done":
                steps, reason = event.get("steps"), event.get("reason", "")
    return steps, calls, reason


@pytest.mark.timeout(TASK_TIMEOUT_S + 180)
@pytest.mark.parametrize("name", _task_names())
def test_live_task(name: str, live_run, tmp_path: Path) -> None:
    task = TASKS / name
    root = _project(task, tmp_path)
    began = time.monotonic()
    try:
        proc = _joe(live_run, root, (task / "prompt.txt").read_text(encoding="utf-8").strip())
        code, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, stderr = None, f"joe did not finish within {TASK_TIMEOUT_S:.0f} s"
    seconds = time.monotonic() - began
    passed, why = _check(task, root)
    steps, calls, reason = _turn_stats(Path(os.environ["JOE_HOME"]))
    note = why if not passed else reason
    live_run.record(task=name, passed=passed, seconds=round(seconds, 1), steps=steps, tool_calls=calls,
                    exit_code=code, why=note)
    assert passed, f"{name}: {why or 'check failed'} (joe exit {code}, end: {reason}; stderr: {stderr[-300:]})"
