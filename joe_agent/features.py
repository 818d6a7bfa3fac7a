"""The REPL's learning commands (/undo, /synthesize, /skills, /rules, /search, /good), each a
function of its argument string, wired to one session's Runtime. Output and questions go
through joe_agent.repl.render's module functions, which the REPL points at its terminal."""
from __future__ import annotations

import shlex
from typing import Any, Callable

from joe_agent.errors import JoeError


def install(rt: Any) -> None:
    rt.features.update({
        "undo": lambda args: _undo(rt, args),
        "synthesize": lambda args: _synthesize(rt, args),
        "skills": lambda args: _skills(rt, args),
        "rules": lambda args: _rules(rt, args),
        "search": lambda args: _search(rt, args),
        "good": lambda args: _good(rt),
        "review": lambda args: _review(rt),
    })


def _undo(rt, args: str) -> None:
    from joe_agent.repl import render

    report = undo_flow(rt).run_command(args, render.ask, render.print_line)
    note = report.model_note() if report is not None else ""
    if note and rt._agent is not None:
        rt._agent.add_note(note)  # the model hears it with the next request


def undo_flow(rt):
    """The session's UndoFlow (built once, after the agent exists)."""
    from joe_agent.undo import UndoFlow

    if getattr(rt, "_undo_flow", None) is None:
        rt.wait()
        learning = rt.learning
        if learning is None or learning.checkpoints is None:
            raise JoeError("/undo is off this session: checkpoints could not be set up (see `joe doctor`)")
        rt._undo_flow = UndoFlow(learning.checkpoints, rt.transcript, learning.ledger, rt.distiller(), rt.transcript.id)
    return rt._undo_flow


def _synthesize(rt, args: str) -> None:
    from joe_agent.repl import render
    from joe_agent.repl.review import feature

    feature(rt, render.print_line, render.ask)(args)


def _skills(rt, args: str) -> None:
    from joe_agent.skills_cli import skills_main

    words = shlex.split(args)
    dry = "--dry-run" in words
    words = [w for w in words if w != "--dry-run"]
    action = words[0] if words else None
    if action == "review":
        return _review(rt)
    skills_main(action, words[1] if len(words) > 1 else None, rt.settings, rt.home, rt.root, dry_run=dry)


def _rules(rt, args: str) -> None:
    from joe_agent.repl import render
    from joe_agent.undo import rules_cli

    words = shlex.split(args)
    rules_cli(words[0] if words else None, words[1] if len(words) > 1 else None, rt.home, rt.root, render.print_line)


def _search(rt, args: str) -> None:
    from joe_agent.history_cli import history_cli
    from joe_agent.repl import render

    history_cli("search", args, False, rt.home, rt.root, render.table, render.print_line)


def _good(rt) -> None:
    from joe_agent.repl import render

    advisor = rt.learning.advisor if rt.learning is not None else None
    n = advisor.mark_good() if advisor is not None else 0
    render.print_line(f"noted: the last turn was good ({n} skill use{'s' if n != 1 else ''} credited)" if n
                      else "noted (no skill was used in the last turn)")


def _review(rt) -> None:
    from joe_agent.amend_cli import review_amendments

    review_amendments(rt.settings, rt.home, rt.root)


Feature = Callable[[str], None]
