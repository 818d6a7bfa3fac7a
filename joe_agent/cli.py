"""`joe`: flags and subcommands. Parses, wires objects, dispatches; no logic of its own.

Kept import-light: `joe --version`, `--help`, `joe sessions` never import ollama or GitPython.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from joe_agent import __version__
from joe_agent.errors import JoeError

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_STEPS = 0, 1, 2, 3
SUBCOMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def subcommand(name: str):
    def register(fn):
        SUBCOMMANDS[name] = fn
        return fn
    return register


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="joe", description="A local-first coding agent on Ollama that learns from its runs.")
    p.add_argument("--version", action="version", version=f"joe {__version__}")
    p.add_argument("-p", "--prompt", metavar="TASK", help="run one task headless, print the final answer, exit")
    p.add_argument("--yes", action="store_true", help="headless: approve every write and command (full-auto)")
    p.add_argument("--json", action="store_true", help="headless: print events as JSON lines")
    p.add_argument("--model", help="model name (or scripted:FILE)")
    p.add_argument("--host", help="model server URL (default: OLLAMA_HOST, then config)")
    p.add_argument("--backend", choices=["ollama", "openai"], help="ollama (default) or an OpenAI-compatible server")
    p.add_argument("--mode", choices=["ask", "auto-edit", "full-auto"], help="permission mode")
    p.add_argument("--max-steps", type=int, help="model calls per turn before stopping")
    p.add_argument("--num-ctx", type=int, help="context size (kept constant for the session)")
    p.add_argument("-C", "--cwd", type=Path, help="project folder (default: the current folder)")
    p.add_argument("--continue", dest="continue_", action="store_true", help="resume the latest session here")
    p.add_argument("--resume", nargs="?", const="", metavar="ID", help="resume a session (a list when no id)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    s = sub.add_parser("sessions", help="list, search or reindex past sessions")
    s.add_argument("action", nargs="?", choices=["list", "search", "reindex"], default="list")
    s.add_argument("query", nargs="*", help="search words")
    s.add_argument("--all", action="store_true", help="sessions of every project")
    s.add_argument("--json", action="store_true", help="search results as JSON")
    d = sub.add_parser("doctor", help="check Ollama, the model, JOE_HOME, git and tokens")
    k = sub.add_parser("skills", help="the skill library: list, show, prune, restore, check, trust, sync, review")
    k.add_argument("action", nargs="?", help="list | show | prune | restore | check | trust | sync | review")
    k.add_argument("name", nargs="?", help="a skill name")
    k.add_argument("--dry-run", action="store_true", help="prune: show what would go and why")
    r = sub.add_parser("rules", help="preference rules: list, edit, rm N, confirm N")
    r.add_argument("action", nargs="?", help="list | edit | rm | confirm")
    r.add_argument("arg", nargs="?", help="rule number")
    sub.add_parser("trust", help="use this project's own skills (.joe/skills) from now on")
    y = sub.add_parser("synthesize", help="propose a skill from a session (default: the latest)")
    y.add_argument("--session", help="session id (see `joe sessions`)")
    e = sub.add_parser("eval", help="paired runs with and without skills over task folders")
    e.add_argument("tasks", nargs="+", type=Path, help="task folders, or folders of them")
    e.add_argument("--repeat", type=int, default=1, help="runs per task and arm")
    e.add_argument("--skill", help="also run an arm with only this skill")
    e.add_argument("--json-report", type=Path, help="write the report as JSON here")
    e.add_argument("--record", action="store_true", help="feed outcomes to the ledger as verified evidence")
    for sp in (e, y, k, d):  # `joe eval TASKS --model M` as well as `joe --model M eval TASKS`
        sp.add_argument("--model", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.add_argument("--host", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.add_argument("--backend", choices=["ollama", "openai"], default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


FLAG_FIELDS = ("model", "host", "backend", "mode", "max_steps", "num_ctx")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command:
            return SUBCOMMANDS[args.command](args)
        if args.prompt is not None:
            return run_headless(args)
        return run_interactive(args)
    except JoeError as e:
        print(f"joe: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("joe: interrupted", file=sys.stderr)
        return 130


def _root(args) -> Path:
    root = (args.cwd or Path.cwd()).resolve()
    if not root.is_dir():
        raise JoeError(f"project folder {root} does not exist")
    return root


def _settings(args, root: Path):
    from joe_agent.config import load_settings

    flags = {k: getattr(args, k, None) for k in FLAG_FIELDS}
    if getattr(args, "yes", False):
        flags["mode"] = "full-auto"
    return load_settings(root, flags)


def _home() -> Path:
    from joe_agent.paths import joe_home

    return joe_home()


def _resume_path(args, root: Path, home: Path, interactive: bool) -> Path | None:
    from joe_agent.memory.transcript import find_session, list_sessions
    from joe_agent.paths import project_key

    folder = home / "transcripts" / project_key(root)
    if args.continue_:
        sessions = list_sessions(folder)
        if not sessions:
            raise JoeError("no earlier session in this project to continue; start one with `joe`")
        return sessions[0].path
    if args.resume is None:
        return None
    if args.resume:
        path = find_session(folder, args.resume) or _find_any_project(home, args.resume)
        if path is None:
            raise JoeError(f"no session {args.resume!r}; `joe sessions` lists them")
        return path
    if not interactive:
        raise JoeError("--resume needs a session id in headless mode; `joe sessions` lists them")
    from joe_agent.repl.app import pick_session

    return pick_session(list_sessions(folder))


def _find_any_project(home: Path, prefix: str) -> Path | None:
    """A search hit may name a session of another project folder."""
    from joe_agent.memory.transcript import find_session

    base = home / "transcripts"
    for folder in sorted(base.iterdir()) if base.is_dir() else []:
        hit = find_session(folder, prefix)
        if hit is not None:
            return hit
    return None


def run_headless(args) -> int:
    from joe_agent.messages import ErrorEvent, Notice, ToolCallEvent, ToolResultEvent, TurnDone, event_to_dict
    from joe_agent.runtime import Runtime

    if not args.prompt.strip():
        raise JoeError("-p needs a task, e.g. joe -p \"add a --json flag to cli.py\"")
    root, home = _root(args), _home()
    settings = _settings(args, root)
    rt = Runtime.create(settings, root, home, headless=True, resume=_resume_path(args, root, home, False))
    rt.start(background=False)
    rt.wait()
    for note in rt.notes:
        print(f"  · {note}", file=sys.stderr)
    done, error = None, None
    try:
        for ev in rt.agent.run_turn(args.prompt):
            if args.json:
                print(json.dumps(event_to_dict(ev), default=str), flush=True)
            elif isinstance(ev, ToolCallEvent):
                print(f"→ {ev.call.name} {_target(ev.call.arguments)}", file=sys.stderr)
            elif isinstance(ev, ToolResultEvent) and not ev.result.ok:
                print(f"  ✗ {ev.result.content.splitlines()[0][:200] if ev.result.content else 'failed'}", file=sys.stderr)
            elif isinstance(ev, Notice):
                print(f"  · {ev.text}", file=sys.stderr)
            if isinstance(ev, ErrorEvent):
                error = ev.message
            if isinstance(ev, TurnDone):
                done = ev
    finally:
        rt.close()
    if done is not None and done.reason == "done":
        if not args.json:
            print(done.final_text.strip())
        return EXIT_OK
    reason = error or {"max_steps": f"stopped at the step limit ({settings.max_steps}); raise --max-steps",
                       "loop": "stopped: the model repeated a failing tool call",
                       "interrupted": "interrupted"}.get(done.reason if done else "", "the turn did not finish")
    print(f"joe: {reason}", file=sys.stderr)
    return EXIT_STEPS if done is not None and done.reason == "max_steps" else EXIT_FAIL


def _target(arguments: dict) -> str:
    for key in ("path", "command", "pattern", "name", "query"):
        if key in arguments:
            return str(arguments[key])[:120]
    return ""


def run_interactive(args) -> int:
    from joe_agent.repl.app import run_repl
    from joe_agent.runtime import Runtime

    root, home = _root(args), _home()
    settings = _settings(args, root)
    rt = Runtime.create(settings, root, home, headless=False, resume=_resume_path(args, root, home, True))
    rt.start(background=True)
    rt.distiller().resume()  # corrections an earlier session left undistilled
    return run_repl(rt)


@subcommand("sessions")
def cmd_sessions(args) -> int:
    if args.action in ("search", "reindex"):
        from joe_agent.history_cli import history_cli
        from joe_agent.repl import render

        query = " ".join(args.query)
        if args.action == "search" and not query.strip():
            raise JoeError("usage: joe sessions search WORDS")
        return history_cli(args.action, query, args.json, _home(), _root(args), render.table, render.print_line)
    from joe_agent.memory.transcript import list_sessions
    from joe_agent.paths import project_key
    from joe_agent.repl import render

    home, root = _home(), _root(args)
    base = home / "transcripts"
    folders = sorted(p for p in base.iterdir() if p.is_dir()) if args.all and base.is_dir() else [base / project_key(root)]
    rows = []
    for folder in folders:
        for s in list_sessions(folder):
            rows.append([s.id, s.started.strftime("%Y-%m-%d %H:%M"), str(s.turns), s.model, s.first_prompt[:60]])
    if not rows:
        render.print_line("no sessions yet in this project; start one with `joe`")
        return EXIT_OK
    render.table("sessions", ["id", "started", "turns", "model", "first prompt"], rows)
    return EXIT_OK


@subcommand("doctor")
def cmd_doctor(args) -> int:
    from joe_agent.doctor import run_checks
    from joe_agent.repl import render

    root = _root(args)
    checks = run_checks(_settings(args, root), _home(), root)
    render.doctor(checks)
    return EXIT_OK if all(c.ok is not False for c in checks) else EXIT_FAIL


@subcommand("skills")
def cmd_skills(args) -> int:
    from joe_agent.skills_cli import skills_main

    root = _root(args)
    if args.action == "review":
        from joe_agent.amend_cli import review_amendments

        return review_amendments(_settings(args, root), _home(), root)
    return skills_main(args.action, args.name, _settings(args, root), _home(), root, dry_run=args.dry_run)


@subcommand("rules")
def cmd_rules(args) -> int:
    from joe_agent.repl import render
    from joe_agent.undo import rules_cli

    root = _root(args)
    return rules_cli(args.action, args.arg, _home(), root, render.print_line)


@subcommand("trust")
def cmd_trust(args) -> int:
    from joe_agent.repl import render
    from joe_agent.trust import trust

    root = _root(args)
    folder = root / ".joe" / "skills"
    trust(_home(), root)
    count = sum(1 for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else 0
    render.print_line(f"trusted {root}: its {count} skill(s) in .joe/skills are used from the next session on "
                      "(each is still checked by the load guard)")
    return EXIT_OK


@subcommand("synthesize")
def cmd_synthesize(args) -> int:
    from joe_agent.memory.synthesize import synthesize_cli
    from joe_agent.repl import render
    from joe_agent.runtime import make_model

    root = _root(args)
    settings = _settings(args, root)
    return synthesize_cli(args.session, _home(), root, make_model(settings), render.print_line, render.ask, settings.editor)


@subcommand("eval")
def cmd_eval(args) -> int:
    from joe_agent.eval.runner import eval_main

    root = _root(args)
    return eval_main(args, _settings(args, root), _home())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
