"""`joe eval`: paired runs of the headless agent over task folders, with and without skills.

Every run starts from a fresh copy of the task's project and a fresh temporary JOE_HOME, so
runs never see each other and the person's own state is only read:
- "without": config.yaml only, an empty skills folder;
- "with": the person's current library (skills/, trusted_skills.json) and a copy of the
  ledger, whose scores order equal matches as in a real session;
- "skill:NAME" (--skill): that one skill alone, with the same ledger copy.
No arm gets the global preference rules, so the difference between arms is the skills alone.
Runs interleave arms (task, repeat, arm), so a server warming up favours no arm.
With --record, the skills a with-skills run used are written to the person's real ledger as
verified evidence: the check passing settles them accepted, failing settles them corrected.
"""
from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from joe_agent.errors import ConfigError, StoreError
from joe_agent.eval.tasks import Task, find_tasks, run_check

WITHOUT, WITH = "without", "with"
SCRIPTED_AUTO = "scripted:auto"
_SKILL_COPY_IGNORE = shutil.ignore_patterns(".git", ".archive", ".cache", "*.lock", ".*.tmp")


@dataclass
class Arm:
    name: str  # "without" | "with" | "skill:NAME"
    skill: str = ""  # the one skill of a single-skill arm


@dataclass
class RunResult:
    task: str
    arm: str
    repeat: int
    passed: bool
    reason: str  # TurnDone.reason, or "error"
    steps: int = 0
    requests: int = 0
    tool_calls: int = 0
    tokens_in: int = 0  # prompt tokens summed over every request of the run
    tokens_out: int = 0
    wall_s: float = 0.0  # the agent's turn
    check_s: float = 0.0
    check_exit: int | None = None
    check_output: str = ""
    skills_used: dict[str, str] = field(default_factory=dict)  # name -> "injected" | "read"
    error: str = ""


class Meter:
    """Wraps the session's model to add up prompt and completion tokens over every request
    (TurnDone carries only the last prompt's size). Everything else passes through."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.requests = self.tokens_in = self.tokens_out = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def stream(self, messages, tools=None) -> Iterator[Any]:
        self.requests += 1
        for chunk in self._model.stream(messages, tools):
            if chunk.done:
                self.tokens_in += chunk.prompt_tokens or 0
                self.tokens_out += chunk.completion_tokens or 0
            yield chunk


# ---- the command --------------------------------------------------------------------------

def eval_main(args, settings, home: Path) -> int:
    """`joe eval TASKS... [--repeat K] [--skill NAME] [--json-report PATH] [--record]`.
    Exit 0 when every run passed its check, 1 otherwise; the report is made either way."""
    from joe_agent.eval.report import build_report, show, write_json
    from joe_agent.repl import render

    if args.repeat < 1:
        raise ConfigError("--repeat must be at least 1")
    tasks = find_tasks(list(args.tasks))
    if settings.model == SCRIPTED_AUTO:
        for task in tasks:
            task.scripted_replies(WITHOUT)  # a missing reply file stops the eval before any run
    arms, library_size = plan_arms(Path(home), args.skill)
    if library_size == 0:
        render.print_line(f"· your skill library ({Path(home) / 'skills'}) is empty: "
                          "the with-skills arm runs like the one without", "dim")
    started = datetime.now().astimezone()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    recorder = Recorder(Path(home), settings.model, stamp) if args.record else None
    runs = run_all(tasks, arms, args.repeat, settings, Path(home), recorder,
                   lambda r: render.print_line(progress_line(r), "" if r.passed else "yellow"))
    meta = {"model": settings.model, "backend": settings.backend, "repeat": args.repeat,
            "max_steps": settings.max_steps, "started": started.isoformat(timespec="seconds"),
            "skills_in_library": library_size, "recorded": recorder.count if recorder else None}
    report = build_report(runs, tasks, [a.name for a in arms], meta)
    show(report, render.table, render.print_line)
    if recorder is not None:
        render.print_line(f"recorded {recorder.count} verified skill outcome(s) in {Path(home) / 'ledger.db'}")
    if args.json_report:
        write_json(Path(args.json_report), report)
        render.print_line(f"report written to {args.json_report}")
    return 0 if runs and all(r.passed for r in runs) else 1


def plan_arms(home: Path, skill: str | None) -> tuple[list[Arm], int]:
    """The arms to run, and how many skills the person's library holds."""
    from joe_agent.memory.skills import SkillLibrary

    library = SkillLibrary(home / "skills")
    names = {s.name for s in library.load()}
    arms = [Arm(WITHOUT), Arm(WITH)]
    if skill:
        if skill not in names:
            raise ConfigError(f"no skill named {skill!r} in {home / 'skills'}; `joe skills` lists them")
        arms.append(Arm(f"skill:{skill}", skill))
    return arms, len(names)


def run_all(tasks: list[Task], arms: list[Arm], repeat: int, settings, home: Path,
            recorder: "Recorder | None", progress: Callable[[RunResult], None]) -> list[RunResult]:
    runs: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="joe-eval-") as tmp:
        work = Path(tmp)
        templates = {arm.name: make_home(home, work / "homes" / _safe(arm.name), arm) for arm in arms}
        for task in tasks:
            for rep in range(1, repeat + 1):
                for arm in arms:
                    # same path length in every arm: the root is part of the system prompt
                    run_dir = work / "runs" / f"{len(runs):05d}"
                    result = run_once(task, arm, rep, settings, templates[arm.name], run_dir)
                    if recorder is not None and arm.name != WITHOUT:
                        recorder.record(result)
                    runs.append(result)
                    progress(result)
                    shutil.rmtree(run_dir, ignore_errors=True)  # big projects × many runs add up
    return runs


# ---- one arm's JOE_HOME -------------------------------------------------------------------

def make_home(real: Path, dest: Path, arm: Arm) -> Path:
    """A JOE_HOME for the arm, copied from the person's: config always; skills, skill trust
    and the ledger (for its scores) only for the arms that use skills."""
    dest.mkdir(parents=True)
    (dest / "skills").mkdir()
    if (real / "config.yaml").is_file():
        shutil.copy2(real / "config.yaml", dest / "config.yaml")
    if arm.name == WITHOUT:
        return dest
    for name in ("trusted_skills.json",):
        if (real / name).is_file():
            shutil.copy2(real / name, dest / name)
    _copy_ledger(real / "ledger.db", dest / "ledger.db")
    if arm.skill:
        _copy_one_skill(real / "skills", arm.skill, dest / "skills")
    elif (real / "skills").is_dir():
        shutil.rmtree(dest / "skills")
        shutil.copytree(real / "skills", dest / "skills", ignore=_SKILL_COPY_IGNORE, symlinks=True)
    return dest


def _copy_one_skill(library_root: Path, name: str, dest: Path) -> None:
    from joe_agent.memory.skills import SkillLibrary

    skill = SkillLibrary(library_root).get(name)
    if skill is None:
        raise ConfigError(f"no skill named {name!r} in {library_root}; `joe skills` lists them")
    path = Path(skill.path)
    if path.name == "SKILL.md":
        shutil.copytree(path.parent, dest / path.parent.name, ignore=_SKILL_COPY_IGNORE, symlinks=True)
    else:  # the seed's single-file format
        shutil.copy2(path, dest / path.name)


def _copy_ledger(src: Path, dest: Path) -> None:
    """A consistent copy through SQLite's backup API (the ledger is in WAL mode, and another
    session may be writing it). The person's file is opened read-only."""
    if not src.is_file():
        return
    try:
        with closing(sqlite3.connect(src.resolve().as_uri() + "?mode=ro", uri=True)) as a, \
                closing(sqlite3.connect(str(dest))) as b:
            a.backup(b)
    except sqlite3.Error:
        dest.unlink(missing_ok=True)  # scores only order equal matches; the arm still runs


# ---- one run ------------------------------------------------------------------------------

def run_once(task: Task, arm: Arm, rep: int, settings, template: Path, run_dir: Path) -> RunResult:
    """Copy the project and the arm's home, run the agent headless on the instruction, then
    the check. A model that cannot start (unreachable, not pulled) stops the whole eval."""
    home, project = run_dir / "home", run_dir / _safe(task.name)
    shutil.copytree(template, home, symlinks=True)
    if task.project.is_dir():
        shutil.copytree(task.project, project, symlinks=True)
    else:
        project.mkdir(parents=True)
    result = RunResult(task.name, arm.name, rep, passed=False, reason="error")
    _run_agent(task, arm, _run_settings(settings, task, arm), project, home, result)
    check = run_check(task, project)
    result.passed = check.passed  # the check is the judge, whatever the agent said
    result.check_exit, result.check_s, result.check_output = check.exit_code, round(check.seconds, 3), check.output
    return result


def _run_settings(settings, task: Task, arm: Arm):
    model = settings.model
    if model == SCRIPTED_AUTO:
        model = f"scripted:{task.scripted_replies(arm.name)}"
    return replace(settings, model=model, mode="full-auto")


def _run_agent(task: Task, arm: Arm, settings, project: Path, home: Path, result: RunResult) -> None:
    from joe_agent.messages import ErrorEvent, Notice, ToolCallEvent, ToolResultEvent, TurnDone
    from joe_agent.runtime import Runtime

    rt = Runtime.create(settings, project, home, headless=True)
    try:
        rt.start(background=False)
        agent = rt.agent  # raises the JoeError of a model that could not start
        meter = agent.model = Meter(agent.model)
        began = time.monotonic()
        for ev in agent.run_turn(task.instruction):
            if isinstance(ev, ToolCallEvent):
                result.tool_calls += 1
            elif isinstance(ev, ToolResultEvent) and ev.call.name == "read_skill" and ev.result.ok:
                result.skills_used.setdefault(str(ev.call.arguments.get("name", "")), "read")
            elif isinstance(ev, Notice) and ev.topic == "skills" and ev.data.get("skill"):
                result.skills_used[str(ev.data["skill"])] = "injected"
            elif isinstance(ev, ErrorEvent):
                result.error = ev.message
            elif isinstance(ev, TurnDone):
                result.reason, result.steps = ev.reason, ev.steps
        result.wall_s = round(time.monotonic() - began, 3)
        if result.reason == "interrupted":  # Ctrl-C ends the turn quietly; here it ends the eval
            raise KeyboardInterrupt
        result.requests, result.tokens_in, result.tokens_out = meter.requests, meter.tokens_in, meter.tokens_out
    finally:
        rt.close()


# ---- --record -----------------------------------------------------------------------------

class Recorder:
    """Writes with-skills runs into the person's ledger as verified evidence, one session per
    run ("eval-<stamp>-<task>-<arm>-<repeat>", turn 1), each skill at its current version."""

    def __init__(self, home: Path, model: str, stamp: str) -> None:
        from joe_agent.memory.skills import SkillLibrary

        self.home, self.model, self.stamp = home, model, stamp
        self.library = SkillLibrary(home / "skills")
        self.count = 0
        self.touched: set[str] = set()

    def record(self, run: RunResult) -> None:
        from joe_agent.memory.ledger import Ledger

        if not run.skills_used:
            return
        session = f"eval-{self.stamp}-{_safe(run.task)}-{_safe(run.arm)}-{run.repeat}"
        outcome = "accepted" if run.passed else "corrected"
        with Ledger(self.home / "ledger.db") as ledger:
            for name, how in sorted(run.skills_used.items()):
                ledger.record_use(session, 1, name, how, self.model, self._version(name))
            self.count += ledger.settle(session, 1, outcome, verified=True)
            self._refresh(ledger, run.skills_used)

    def _version(self, name: str) -> str:
        try:
            return self.library.version(name) if self.library.get(name) is not None else ""
        except StoreError:
            return ""

    def _refresh(self, ledger, names) -> None:
        """Last Used / Success Rate in the skill files follow the ledger, as after a session."""
        stats = ledger.stats()
        for name in names:
            st = stats.get(name)
            if st is None or self.library.get(name) is None:
                continue
            lines = st.summary_lines()
            try:
                self.library.update_stats(name, lines["Last Used"], lines["Success Rate"])
            except (StoreError, OSError):
                pass  # a read-only skill file keeps its old numbers; the ledger is the truth


# ---- helpers ------------------------------------------------------------------------------

def progress_line(r: RunResult) -> str:
    verdict = "pass" if r.passed else "FAIL"
    extra = "" if r.reason == "done" else f"  ({r.error or r.reason})"
    used = f"  skills: {', '.join(sorted(r.skills_used))}" if r.skills_used else ""
    return (f"{verdict}  {r.task}  [{r.arm} #{r.repeat}]  {r.steps} steps  "
            f"{r.tokens_in:,} tok in / {r.tokens_out:,} out  {r.wall_s:.1f} s{extra}{used}")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"
