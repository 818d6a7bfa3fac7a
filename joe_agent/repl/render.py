"""All terminal output: streamed replies, thinking, tool lines, diffs, tables, approvals.

The only module that imports rich, and only when something is drawn on a terminal: importing
this module is free, plain output (a pipe, a file, TERM=dumb) never loads rich, and
Markdown/Syntax (markdown-it, pygments) load with the first reply or diff.

Streaming keeps flicker away by printing each finished Markdown block once and keeping only
the unfinished tail in a small transient Live area (see `split_markdown`).
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Iterable, Sequence, TextIO

from joe_agent.messages import (ErrorEvent, Message, Notice, TextDelta, ThinkingDelta, ToolCall,
                                ToolCallEvent, ToolResult, ToolResultEvent, TurnDone)
from joe_agent.repl.text import split_markdown, summarize, tool_target

CODE_THEME = "monokai"
_SGR = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
REFRESH_PER_S = 8  # enough to look live; each refresh re-renders only the short tail


def _is_terminal(file: TextIO) -> bool:
    try:
        return file.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


# ---- the renderer -------------------------------------------------------------------------------

class Renderer:
    """Draws one session's output on `file`. Plain text when `file` is not a terminal;
    no colour when NO_COLOR is set (https://no-color.org)."""

    def __init__(self, file: TextIO | None = None, *, terminal: bool | None = None,
                 color: bool | None = None, show_thinking: str = "collapse", width: int | None = None) -> None:
        self.file = file if file is not None else sys.stdout
        self.terminal = _is_terminal(self.file) if terminal is None else terminal
        self.color = (self.terminal and not os.environ.get("NO_COLOR")) if color is None else color
        self.show_thinking = show_thinking
        self.width = width
        self._console: Any = None
        self._live: Any = None
        self._text = ""  # unfinished reply text shown in the live tail
        self._blocks = 0  # blocks printed in the current reply segment
        self._thinking, self._think_t0 = "", 0.0
        self._plain_open = False  # plain mode: the streamed reply line has no newline yet
        self._shown_diffs: set[str] = set()
        self.interrupt_shown = False

    # ---- low level ------------------------------------------------------------------------
    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.file, force_terminal=self.terminal, no_color=not self.color,
                                    highlight=False, markup=False, emoji=False, width=self.width)
        return self._console

    def _write(self, text: str) -> None:
        if self._plain_open:
            self.file.write("\n")
            self._plain_open = False
        self.file.write(text + "\n")
        self.file.flush()

    def _text_obj(self, *parts: tuple[str, str]):
        from rich.text import Text

        return Text.assemble(*parts)

    def _live_show(self, renderable) -> None:
        if not self.terminal:
            return
        if self._live is None:
            from rich.live import Live

            self._live = Live(renderable, console=self.console, refresh_per_second=REFRESH_PER_S,
                              transient=True, redirect_stdout=False, redirect_stderr=False,
                              vertical_overflow="crop")
            self._live.start()
        else:
            self._live.update(renderable)

    def _spinner(self, label: str) -> None:
        if self.terminal:
            from rich.spinner import Spinner

            self._live_show(Spinner("dots", self._text_obj((label, "dim"))))

    def pause(self) -> None:
        """Stop any live display (before asking the person something)."""
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()

    def _tail_lines(self) -> int:
        return max(5, self.console.size.height - 6) if self.terminal else 10**9

    # ---- generic output (also used by other rooms through the module functions) -----------
    def line(self, text: str, style: str = "") -> None:
        if not self.terminal:
            self._write(text)
        elif self._live is not None:  # the live area must stay below what is printed
            self.console.print(self._text_obj((text, style)))
        else:  # a styled line needs no rich: keeps rich off the path to the first prompt
            codes = ";".join(_SGR[w] for w in style.split() if w in _SGR and (self.color or int(_SGR[w]) < 30))
            self._write(f"\x1b[{codes}m{text}\x1b[0m" if codes else text)

    def notice(self, text: str) -> None:
        self.line(f"· {text}", "dim")

    def error(self, message: str) -> None:
        self.line(f"✗ {message}", "bold red")

    def markdown(self, text: str) -> None:
        if self.terminal:
            from rich.markdown import Markdown

            self.console.print(Markdown(text, code_theme=CODE_THEME, hyperlinks=False))
        else:
            self._write(text.rstrip("\n"))

    def diff(self, diff: str, path: str = "") -> None:
        if not diff.strip():
            return
        if path:
            self.line(f"  {path}", "bold")
        if self.terminal:
            from rich.syntax import Syntax

            self.console.print(Syntax(diff.rstrip("\n"), "diff", theme=CODE_THEME, background_color="default"))
        else:
            self._write(diff.rstrip("\n"))

    def table(self, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        rows = [["" if c is None else str(c) for c in r] for r in rows]
        if not self.terminal:
            widths = [max([len(c)] + [len(r[i]) for r in rows if i < len(r)]) for i, c in enumerate(columns)]
            fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
            self._write("\n".join([title, fmt(columns)] + [fmt(r) for r in rows]) if title else
                        "\n".join([fmt(columns)] + [fmt(r) for r in rows]))
            return
        from rich.table import Table

        t = Table(title=title or None, title_justify="left", header_style="bold", show_edge=False)
        for c in columns:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*[_cell(c) for c in r])  # plain text: "[REDACTED:…]" is not markup
        self.console.print(t)

    def doctor(self, checks: Sequence[Any]) -> None:
        marks = {True: ("✓", "green"), False: ("✗", "bold red"), None: ("!", "yellow")}
        for c in checks:
            mark, style = marks[c.ok]
            if self.terminal:
                self.console.print(self._text_obj((f"{mark} ", style), (f"{c.name}: ", "bold"), (c.detail, "")))
            else:
                self._write(f"{mark} {c.name}: {c.detail}")
            if c.fix and c.ok is not True:
                self.line(f"    fix: {c.fix}", "yellow")

    def banner(self, version: str, model: str, mode: str, root: str) -> None:
        self.line(f"joe {version} · {model} · mode {mode} · {root}", "bold")
        self.line("Enter sends, Esc Enter adds a line, @ completes paths, /help lists commands, Ctrl-D exits.", "dim")

    def history(self, messages: Sequence[Message], limit: int = 30) -> None:
        """Show a resumed conversation compactly."""
        shown = [m for m in messages if m.role != "system"]
        if len(shown) > limit:
            self.notice(f"{len(shown) - limit} earlier messages not shown")
            shown = shown[-limit:]
        for m in shown:
            if m.role == "user" and not m.tool_name:
                self.line(f"› {m.content.strip()}", "bold cyan")
            elif m.role == "assistant":
                if m.content.strip():
                    self.markdown(m.content.strip())
                for call in m.tool_calls:
                    self.line(f"  → {call.name} {tool_target(call)}", "dim")
            else:
                first = next((ln for ln in m.content.splitlines() if ln.strip()), "")
                self.line(f"    {first[:100]}", "dim")
        self.line("─── resumed ───", "dim")

    # ---- approvals ------------------------------------------------------------------------
    def approval(self, req: Any, cwd: str = "", dangerous: bool = False) -> None:
        """Show exactly what a write or command would do, before the question."""
        self.pause()
        self._flush_text()
        if req.action == "write":
            self.line(f"✎ {req.tool} wants to write {req.target}", "bold yellow")
            if req.abs_path:
                self.line(f"  {req.abs_path}", "dim")
            self.diff(req.detail)
            self._shown_diffs.add(req.detail)
        else:
            self.line(f"$ {req.target}", "bold yellow")
            self.line(f"  {req.tool} in {cwd}" if cwd else f"  {req.tool}", "dim")
        if dangerous:
            self.line("  ⚠ a destructive command: it is asked every time", "bold red")

    # ---- a streamed turn ------------------------------------------------------------------
    def begin_turn(self, label: str = "thinking…") -> None:
        self._text, self._blocks, self.interrupt_shown = "", 0, False
        self._spinner(label)

    def event(self, ev: Any) -> None:
        if isinstance(ev, TextDelta):
            self._on_text(ev.text)
        elif isinstance(ev, ThinkingDelta):
            self._on_thinking(ev.text)
        elif isinstance(ev, ToolCallEvent):
            self._end_thinking()
            self._flush_text()
            self._spinner(f"{ev.call.name} {tool_target(ev.call)}")
        elif isinstance(ev, ToolResultEvent):
            self._on_result(ev.call, ev.result)
        elif isinstance(ev, Notice):
            self._end_thinking()
            self._flush_text()
            self.interrupt_shown |= ev.topic == "interrupt"
            self.line(f"📎 {ev.text}" if ev.topic == "skills" else f"· {ev.text}", "dim")
        elif isinstance(ev, ErrorEvent):
            self._end_thinking()
            self._flush_text()
            self.error(ev.message + (" (the partial reply was kept)" if ev.partial else ""))
        elif isinstance(ev, TurnDone):
            self.end_turn(interrupted=ev.reason == "interrupted")

    def end_turn(self, interrupted: bool = False) -> None:
        self._end_thinking()
        self._flush_text()
        self.pause()
        if interrupted and not self.interrupt_shown:
            self.interrupt_shown = True
            self.line("⏹ interrupted", "yellow")

    def _on_text(self, delta: str) -> None:
        self._end_thinking()
        if not self.terminal:
            self.file.write(delta)
            self.file.flush()
            self._plain_open = not delta.endswith("\n")
            return
        from rich.markdown import Markdown

        self._text += delta
        blocks, self._text = split_markdown(self._text, self._tail_lines())
        for block in blocks:
            self._print_block(block)
        if self._text.strip():
            self._live_show(Markdown(self._text, code_theme=CODE_THEME, hyperlinks=False))

    def _print_block(self, block: str) -> None:
        if self._blocks:
            self.console.print()
        self._blocks += 1
        self.markdown(block)

    def _flush_text(self) -> None:
        if self._plain_open:
            self.file.write("\n")
            self.file.flush()
            self._plain_open = False
        if self._text.strip():
            self.pause()
            self._print_block(self._text.strip("\n"))
        self._text, self._blocks = "", 0

    def _on_thinking(self, delta: str) -> None:
        if not self._thinking:
            self._think_t0 = time.monotonic()
            if not self.terminal and self.show_thinking == "show":
                self._write("thinking:")
        self._thinking += delta
        if not self.terminal:
            if self.show_thinking == "show":
                self.file.write(delta)
                self.file.flush()
                self._plain_open = not delta.endswith("\n")
        elif self.show_thinking != "hide":
            tail = "\n".join(self._thinking.splitlines()[-max(3, self._tail_lines() // 2):])
            self._live_show(self._text_obj((tail, "dim italic")))

    def _end_thinking(self) -> None:
        if not self._thinking:
            return
        text, self._thinking = self._thinking.strip(), ""
        seconds, words = time.monotonic() - self._think_t0, len(text.split())
        if self.show_thinking == "show":
            if self.terminal:
                self.console.print(self._text_obj((text, "dim italic")))
            elif self._plain_open:
                self._write("")
        elif self.show_thinking == "collapse":
            self.line(f"▸ thought for {seconds:.1f}s ({words} words)", "dim")
        self._spinner("thinking…")

    def _on_result(self, call: ToolCall, result: ToolResult) -> None:
        self.pause()
        meta = result.meta or {}
        mark, style = ("✓", "green") if result.ok else (("⊘", "yellow") if meta.get("denied") else ("✗", "red"))
        target = tool_target(call)
        summary = summarize(call, result)
        if self.terminal:
            self.console.print(self._text_obj((f"{mark} ", style), (call.name, "bold"),
                                              (f" {target}" if target else "", ""), (f" · {summary}", "dim")))
        else:
            self._write(f"{mark} {call.name}{' ' + target if target else ''} · {summary}")
        diff = meta.get("diff")
        if diff and diff not in self._shown_diffs:
            self.diff(diff)
        self._spinner("thinking…")


# ---- module-level access for other rooms (`joe sessions`, `joe doctor`, features) ---------------

_current: Renderer | None = None
_asker: Callable[[str], str] | None = None


def current() -> Renderer:
    """The renderer in use: the REPL's, or one for stdout made on first use."""
    global _current
    if _current is None:
        _current = Renderer()
    return _current


def use(renderer: Renderer | None) -> None:
    global _current
    _current = renderer


def set_asker(fn: Callable[[str], str] | None) -> None:
    """The REPL installs its prompt here so features can ask through the same input."""
    global _asker
    _asker = fn


def ask(question: str) -> str:
    """Ask the person one line (e.g. /undo's "what should I have done instead?").
    Raises EOFError when there is no one to answer."""
    current().pause()
    if _asker is not None:
        return _asker(question)
    return input(question)


def print_line(text: str, style: str = "") -> None:
    current().line(text, style)


def print_markdown(text: str) -> None:
    current().markdown(text)


def print_diff(diff: str, path: str = "") -> None:
    current().diff(diff, path)


def print_error(message: str) -> None:
    current().error(message)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    current().table(title, columns, rows)


def _cell(text: str):
    """A table cell as rich Text: no markup parsing; «matched words» from search in bold."""
    from rich.text import Text

    out = Text()
    for i, part in enumerate(text.replace("»", "«").split("«")):
        out.append(part, style="bold" if i % 2 else "")
    return out


def doctor(checks: Sequence[Any]) -> None:
    current().doctor(checks)
