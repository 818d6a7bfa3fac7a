"""Slash commands: one `cmd_*` function each; its docstring's first line is its /help line.

A command gets the parsed argument text and a CommandContext, prints through the renderer,
and returns EXIT to end the session (anything else keeps it going). Commands whose feature
lives in another module call `runtime.features[name](args)` and say "not available yet"
until that feature is wired in.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from joe_agent.errors import JoeError

EXIT = "exit"
MODES = ("ask", "auto-edit", "full-auto")
MODE_HELP = {
    "ask": "writes and commands need your yes (plain read-only commands run unasked)",
    "auto-edit": "file writes run unasked; commands still ask",
    "full-auto": "everything runs unasked, except destructive commands",
}


@dataclass
class CommandContext:
    runtime: Any  # joe_agent.runtime.Runtime
    ui: Any  # joe_agent.repl.render.Renderer
    run_turn: Callable[[str, Sequence[str]], None]  # send a request to the agent, rendered
    on_change: Callable[[], None] = lambda: None  # something the toolbar shows has changed


def _feature(ctx: CommandContext, name: str, args: str) -> None:
    fn = ctx.runtime.features.get(name)
    if fn is None:
        ctx.ui.line(f"/{name} is not available yet", "yellow")
        return
    ctx.ui.pause()
    fn(args)
    ctx.on_change()


# ---- the commands -------------------------------------------------------------------------------

def cmd_help(ctx: CommandContext, args: str) -> None:
    """show the commands."""
    rows = []
    for name, line in help_lines():
        usage, sep, what = line.partition("  ") if line[:1] in "[<" else ("", "", line)
        rows.append([f"/{name} {usage}".strip(), what.strip() if sep or not usage else line])
    ctx.ui.table("commands", ["command", "what it does"], rows)
    ctx.ui.line("Enter sends · Esc Enter (or Alt+Enter) adds a line · @path completes files · "
                "Ctrl-C stops the model · Ctrl-D exits", "dim")


def cmd_model(ctx: CommandContext, args: str) -> None:
    """[name]  list installed models, or switch to one (the conversation is kept)."""
    rt = ctx.runtime
    if not args:
        current = rt.model_name()
        names = rt.list_models()
        if not names:
            ctx.ui.line("no models installed; `ollama pull <model>` installs one", "yellow")
            return
        ctx.ui.table("models", ["", "model"], [["*" if n == current else "", n] for n in names])
        return
    rt.switch_model(args)
    ctx.ui.line(f"model: {rt.model_name()} (from the next request on)", "green")
    ctx.on_change()


def cmd_mode(ctx: CommandContext, args: str) -> None:
    """[ask|auto-edit|full-auto]  show or change the permission mode."""
    perms = ctx.runtime.permissions
    if not args:
        for mode in MODES:
            mark = "›" if mode == perms.mode else " "
            ctx.ui.line(f"{mark} {mode:<10} {MODE_HELP[mode]}", "bold" if mode == perms.mode else "")
        return
    if args not in MODES:
        near = difflib.get_close_matches(args, MODES, n=1)
        raise JoeError(f"unknown mode {args!r}; use {' | '.join(MODES)}" + (f" (did you mean {near[0]}?)" if near else ""))
    perms.mode = args
    ctx.runtime.settings.mode = args
    ctx.ui.line(f"mode: {args} ({MODE_HELP[args]})", "green")
    ctx.on_change()


def cmd_clear(ctx: CommandContext, args: str) -> None:
    """start a new conversation (same session log)."""
    ctx.runtime.agent.clear()
    ctx.ui.line("new conversation; the model no longer sees the earlier messages", "green")
    ctx.on_change()


def cmd_tokens(ctx: CommandContext, args: str) -> None:
    """show how much of the context window is used, and by what."""
    usage = ctx.runtime.agent.context_usage()
    used, num_ctx = int(usage.get("used", 0)), int(usage.get("num_ctx") or 0)
    parts = dict(usage.get("breakdown", {}))
    count = parts.pop("messages", None)  # a count of messages, not tokens
    ctx.ui.table("context", ["part", "tokens"], [[part, f"{n:,}"] for part, n in parts.items()])
    pct = f" ({100 * used / num_ctx:.0f}%)" if num_ctx else ""
    msgs = f", {count} messages in the conversation" if count is not None else ""
    ctx.ui.line(f"used ~{used:,} of {num_ctx:,} tokens{pct}{msgs}")


def cmd_undo(ctx: CommandContext, args: str) -> None:
    """revert the last turn's file changes (and say what to do instead)."""
    _feature(ctx, "undo", args)


def cmd_synthesize(ctx: CommandContext, args: str) -> None:
    """propose a reusable skill from this session for you to review."""
    _feature(ctx, "synthesize", args)


def cmd_skills(ctx: CommandContext, args: str) -> None:
    """list the skills in the library, with their scores."""
    _feature(ctx, "skills", args)


def cmd_rules(ctx: CommandContext, args: str) -> None:
    """list the preference rules learned from your corrections."""
    _feature(ctx, "rules", args)


def cmd_sessions(ctx: CommandContext, args: str) -> None:
    """list this project's earlier sessions (resume one with `joe --resume ID`)."""
    if "sessions" in ctx.runtime.features:
        return _feature(ctx, "sessions", args)
    from joe_agent.memory.transcript import list_sessions

    rows = [[s.id, s.started.strftime("%Y-%m-%d %H:%M"), str(s.turns), s.model, s.first_prompt[:60]]
            for s in list_sessions(ctx.runtime.transcript.path.parent)]
    if not rows:
        ctx.ui.line("no sessions yet in this project")
        return
    ctx.ui.table("sessions", ["id", "started", "turns", "model", "first prompt"], rows)


def cmd_search(ctx: CommandContext, args: str) -> None:
    """<words>  search past sessions of every project."""
    if not args:
        raise JoeError("usage: /search <words>")
    _feature(ctx, "search", args)


def cmd_good(ctx: CommandContext, args: str) -> None:
    """mark the last turn as a success (evidence for the skills it used)."""
    _feature(ctx, "good", args)


def cmd_skill(ctx: CommandContext, args: str) -> None:
    """<name> <request>  run a request with that skill in the prompt."""
    name, _, request = args.partition(" ")
    if not name or not request.strip():
        raise JoeError("usage: /skill <name> <request>")
    if "skills" not in ctx.runtime.features:
        ctx.ui.line("/skill is not available yet", "yellow")
        return
    ctx.run_turn(request.strip(), (name,))


def cmd_exit(ctx: CommandContext, args: str) -> str:
    """end the session (Ctrl-D does too)."""
    return EXIT


# ---- dispatch -----------------------------------------------------------------------------------

def commands() -> dict[str, Callable[[CommandContext, str], Any]]:
    return {name[4:]: fn for name, fn in globals().items() if name.startswith("cmd_") and callable(fn)}


def help_lines() -> list[tuple[str, str]]:
    return [(name, (fn.__doc__ or "").strip().splitlines()[0]) for name, fn in commands().items()]


def suggest(name: str) -> str | None:
    def score(cand: str) -> float:  # a transposed pair of letters ("modle") is the likeliest typo
        return difflib.SequenceMatcher(None, name, cand).ratio() + (0.2 if sorted(name) == sorted(cand) else 0)

    best = max(commands(), key=score)
    if score(best) >= 0.6:
        return best
    starts = [c for c in commands() if c.startswith(name)] if name else []
    return starts[0] if len(starts) == 1 else None


def dispatch(line: str, ctx: CommandContext) -> str | None:
    """Run one `/command args` line. Returns EXIT when the session should end.
    A JoeError becomes one line; the REPL goes on."""
    word, _, args = line.strip()[1:].partition(" ")
    name = word.lower()
    fn = commands().get(name)
    if fn is None:
        hint = suggest(name)
        ctx.ui.error(f"unknown command /{word}" + (f"; did you mean /{hint}?" if hint else "; /help lists them"))
        return None
    try:
        return fn(ctx, " ".join(args.split()) if name != "skill" else args.strip())
    except JoeError as e:
        ctx.ui.error(str(e))
    except KeyboardInterrupt:
        ctx.ui.pause()
        ctx.ui.line("interrupted", "yellow")
    return None
