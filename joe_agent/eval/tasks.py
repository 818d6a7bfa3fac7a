"""Eval task folders: finding them, reading them, and running their checks.

A task is a folder holding
- `task.md` (the instruction is the whole file) or `task.yaml` (`instruction:`, and optionally
  `check:`, `timeout:` and `name:`),
- `check.sh`, or `check:` in task.yaml: a shell script whose exit status says pass (0) or fail,
  run with bash in the finished project; `$PYTHON` names the Python running joe,
- `project/`: the starting files (optional: a missing folder starts from an empty project),
- optionally `scripted.json` (and `scripted.<arm>.json`) for `--model scripted:auto`.
The check and the scripted replies stay outside the copied project, so the agent never sees them.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from joe_agent.errors import ConfigError

DEFAULT_CHECK_TIMEOUT_S = 120.0
OUTPUT_TAIL_CHARS = 2000  # of a check's output, kept in the report to say why it failed
_YAML_KEYS = {"instruction", "check", "timeout", "name"}


@dataclass
class Task:
    name: str
    folder: Path
    instruction: str
    check: str  # a bash script
    timeout_s: float = DEFAULT_CHECK_TIMEOUT_S

    @property
    def project(self) -> Path:
        return self.folder / "project"

    def scripted_replies(self, arm: str) -> Path:
        """The reply file `--model scripted:auto` uses for this arm ("skill:x" looks for
        scripted.skill.json): the arm's own file when there is one, else scripted.json."""
        own = self.folder / f"scripted.{arm.split(':', 1)[0]}.json"
        shared = self.folder / "scripted.json"
        if own.is_file():
            return own
        if shared.is_file():
            return shared
        raise ConfigError(f"task {self.name}: --model scripted:auto needs {shared}")


@dataclass
class CheckResult:
    passed: bool
    exit_code: int | None  # None: timed out
    seconds: float
    output: str  # the tail of stdout and stderr


def is_task(folder: Path) -> bool:
    return (folder / "task.md").is_file() or (folder / "task.yaml").is_file()


def find_tasks(paths: list[Path]) -> list[Task]:
    """Each path is a task folder or a folder of task folders (one level down, sorted)."""
    tasks: list[Task] = []
    for path in paths:
        path = Path(path).expanduser()
        if not path.is_dir():
            raise ConfigError(f"{path}: no such task folder")
        if is_task(path):
            tasks.append(load_task(path))
            continue
        found = [load_task(sub) for sub in sorted(path.iterdir()) if sub.is_dir() and is_task(sub)]
        if not found:
            raise ConfigError(f"{path}: not a task (no task.md or task.yaml) and holds no task folders")
        tasks += found
    names = [t.name for t in tasks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"two tasks are called {twice[0]}; give one a `name:` in its task.yaml")
    return tasks


def load_task(folder: Path) -> Task:
    folder = folder.resolve()
    data = _read_yaml(folder / "task.yaml") if (folder / "task.yaml").is_file() else {}
    instruction = data.get("instruction")
    if instruction is None and (folder / "task.md").is_file():
        instruction = _read(folder / "task.md")
    if not isinstance(instruction, str) or not instruction.strip():
        raise ConfigError(f"{folder}: the task has no instruction (task.md, or `instruction:` in task.yaml)")
    check = data.get("check")
    if check is None and (folder / "check.sh").is_file():
        check = _read(folder / "check.sh")
    if not isinstance(check, str) or not check.strip():
        raise ConfigError(f"{folder}: the task has no check (check.sh, or `check:` in task.yaml)")
    timeout = data.get("timeout", DEFAULT_CHECK_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"{folder / 'task.yaml'}: timeout must be a number of seconds")
    project = folder / "project"
    if project.exists() and not project.is_dir():
        raise ConfigError(f"{project}: must be a folder of starting files")
    return Task(str(data.get("name") or folder.name), folder, instruction.strip() + "\n", check, float(timeout))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read ({e})") from None


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(_read(path))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected `key: value` lines (instruction, check, timeout, name)")
    unknown = set(data) - _YAML_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(_YAML_KEYS))})")
    return data


def run_check(task: Task, project: Path) -> CheckResult:
    """Run the task's check in `project`. Its own process group, killed on timeout."""
    env = dict(os.environ, PYTHON=sys.executable, PYTHONDONTWRITEBYTECODE="1")
    began = time.monotonic()
    proc = subprocess.Popen(["bash", "-c", task.check, f"check:{task.name}"], cwd=project, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=task.timeout_s)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, _ = proc.communicate()
        code = None
    text = out.decode("utf-8", "replace")
    if code is None:
        text += f"\n[check timed out after {task.timeout_s:g} s]"
    return CheckResult(code == 0, code, time.monotonic() - began, text[-OUTPUT_TAIL_CHARS:])


def _kill_group(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
