"""The interactive loop: read a line (prompt_toolkit), run a slash command or an agent turn,
render its events, ask for approvals, survive every Ctrl-C.

The PromptSession is injected (tests pass one on a pipe input); nothing here is a module
global. `ollama` is never imported here: the runtime builds the model client in a background
thread while the person types, and the first turn waits for it.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings

from joe_agent import __version__
from joe_agent.errors import JoeError
from joe_agent.repl import commands, render
from joe_agent.repl.completion import JoeCompleter, lazy_gitignore

PROMPT = "› "
APPROVE_QUESTION = "Allow? [y]es / [n]o / [a]lways this session / [e]xplain › "
ANSWERS = {"y": "y", "yes": "y", "n": "n", "no": "n", "a": "a", "always": "a", "e": "e", "explain": "e"}


# ---- input: history, keys, session --------------------------------------------------------------

class AppendHistory(FileHistory):
    """prompt_toolkit's history file, each entry written with one O_APPEND write so two
    sessions typing at once never interleave; a failing disk never breaks the prompt."""

    def store_string(self, string: str) -> None:
        entry = f"\n# {datetime.datetime.now()}\n" + "".join(f"+{ln}\n" for ln in string.split("\n"))
        try:
            fd = os.open(self.filename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, entry.encode("utf-8", errors="replace"))
            finally:
                os.close(fd)
        except OSError:
            pass


def open_history(home: Path) -> History:
    try:
        home.mkdir(parents=True, exist_ok=True)
        return AppendHistory(str(home / "history"))
    except OSError:
        return InMemoryHistory()


def build_key_bindings() -> KeyBindings:
    kb = KeyBindings()

    @kb.add("enter")
    def _send(event) -> None:
        buf = event.current_buffer
        state = buf.complete_state
        if state is not None and state.current_completion is not None:
            buf.apply_completion(state.current_completion)  # Enter picks the highlighted item
            return
        buf.validate_and_handle()

    @kb.add("escape", "enter")  # Alt+Enter arrives as Esc Enter in terminals
    def _newline(event) -> None:
        event.current_buffer.insert_text("\n")

    @kb.add("c-c")
    def _interrupt(event) -> None:
        buf = event.current_buffer
        if buf.text:
            buf.reset()  # like a shell: drop the line, stay here
        else:
            event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

    return kb


def build_session(runtime: Any, input: Any = None, output: Any = None,
                  history: History | None = None) -> PromptSession:
    """The PromptSession for `runtime` (input/output given by tests)."""
    completer = JoeCompleter(commands.help_lines(), runtime.root, lazy_gitignore(runtime.root))
    return PromptSession(
        history=history if history is not None else open_history(runtime.home),
        multiline=True, key_bindings=build_key_bindings(), completer=completer,
        complete_while_typing=True, prompt_continuation=lambda width, n, soft: " " * (width - 2) + "┊ ",
        reserve_space_for_menu=6, enable_history_search=False, input=input, output=output,
    )


# ---- the toolbar --------------------------------------------------------------------------------

def _short(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 and n % 1000 else (f"{n // 1000}k" if n >= 1000 else str(n))


def agent_if_ready(runtime: Any) -> Any:
    """The agent when the background start has finished well, else None (never blocks)."""
    if not runtime.ready() or runtime.error is not None:
        return None
    return runtime.agent


class Status:
    """What the toolbar shows, refreshed after each turn, never per keypress."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.usage: dict | None = None
        self.tps: float | None = None

    def refresh(self) -> None:
        agent = agent_if_ready(self.runtime)
        if agent is not None:
            self.usage = agent.context_usage()
            self.tps = agent.last_turn_tokens_per_s

    def toolbar(self) -> FormattedText:
        rt = self.runtime
        parts = [("class:bottom-toolbar.text", f" {rt.model_name()} "), ("", "│"),
                 ("", f" {rt.permissions.mode} "), ("", "│")]
        if self.usage is None:
            self.refresh()
        error = rt.error
        if error is not None:
            parts.append(("fg:ansired", f" ⚠ {str(error)[:70]} "))
        elif self.usage is None:
            parts.append(("", " connecting… "))
        else:
            used, num_ctx = int(self.usage.get("used", 0)), int(self.usage.get("num_ctx") or 0)
            pct = f" ({100 * used / num_ctx:.0f}%)" if num_ctx else ""
            parts.append(("", f" ctx {_short(used)}/{_short(num_ctx)}{pct} "))
            if self.tps:
                parts += [("", "│"), ("", f" {self.tps:.1f} tok/s ")]
        return FormattedText(parts)


# ---- approvals ----------------------------------------------------------------------------------

def make_approver(runtime: Any, ui: render.Renderer, ask: Callable[[str], str]) -> Callable[[Any], Any]:
    """The callable Permissions uses in `ask` mode: show what will happen, then y/n/a/e."""
    from joe_agent.tools.permissions import Approval, is_dangerous

    def approve(req: Any) -> Any:
        dangerous = req.action == "shell" and is_dangerous(req.target)
        ui.approval(req, cwd=str(runtime.root), dangerous=dangerous)
        while True:
            try:
                answer = ANSWERS.get(ask(APPROVE_QUESTION).strip().lower())
            except EOFError:
                answer = "n"
            if answer == "y":
                return Approval(True)
            if answer == "a":
                return Approval(True, always=True)
            if answer == "n":
                return Approval(False, "")
            if answer == "e":
                try:
                    why = ask("Tell the model why, or what to do instead › ").strip()
                except EOFError:
                    why = ""
                return Approval(False, why)
            ui.line("answer y, n, a or e", "yellow")

    return approve


# ---- the loop -----------------------------------------------------------------------------------

@contextlib.contextmanager
def sigint_deferred():
    """Hold off a second Ctrl-C while the agent settles an interrupted turn, so the history
    it leaves behind is always complete."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def is_command(text: str) -> bool:
    """`/model x` is a command; `/usr/bin/python crashes` and `//x` are messages."""
    first = text.split(maxsplit=1)[0] if text.strip() else ""
    return first.startswith("/") and not first.startswith("//") and "/" not in first[1:]


class Repl:
    def __init__(self, runtime: Any, session: PromptSession, ui: render.Renderer) -> None:
        self.runtime, self.session, self.ui = runtime, session, ui
        self.status = Status(runtime)
        self._asker = PromptSession(input=session.input, output=session.output)  # no history
        self._exit_armed = False
        self._warmed = False
        self._amend_notice = ""

    def ask(self, question: str) -> str:
        self.ui.pause()
        return self._asker.prompt(question)

    def loop(self) -> int:
        ctx = commands.CommandContext(self.runtime, self.ui, self.run_turn, self.status.refresh)
        while True:
            self._idle_notes()
            try:
                waiting = agent_if_ready(self.runtime) is None and self.runtime.error is None
                text = self.session.prompt(PROMPT, bottom_toolbar=self.status.toolbar, pre_run=self._warm,
                                           refresh_interval=0.5 if waiting else 0)  # until "connecting…" ends
            except KeyboardInterrupt:
                if self._exit_armed:
                    return 0
                self._exit_armed = True
                self.ui.line("(press Ctrl-C again to exit, or Ctrl-D)", "dim")
                continue
            except EOFError:
                return 0
            self._exit_armed = False
            # a pasted multi-line block keeps its first line's indentation
            text = text.strip() if "\n" not in text.strip() else text.strip("\n").rstrip()
            if not text:
                continue
            if is_command(text):
                if commands.dispatch(text, ctx) == commands.EXIT:
                    return 0
                continue
            self.run_turn(text[1:] if text.startswith("//") else text)

    def _idle_notes(self) -> None:
        """Before each prompt: what background work said (runtime.notes, e.g. the distiller's
        lines), and, when the number changes, how many skill amendments wait for review."""
        from joe_agent.amend_cli import notice_line

        notes = getattr(self.runtime, "notes", None)
        while notes:
            self.ui.line(str(notes.pop(0)), "dim")
        line = notice_line(self.runtime.home)
        if line != self._amend_notice:
            self._amend_notice = line
            if line:
                self.ui.line(line, "yellow")

    def run_turn(self, text: str, forced_skills: Sequence[str] = ()) -> None:
        """One agent turn, rendered. Ctrl-C stops it; the agent keeps the partial reply."""
        self.ui.begin_turn("connecting to the model…" if agent_if_ready(self.runtime) is None else "thinking…")
        gen = None
        try:
            agent = self.runtime.agent  # waits for the background start the first time
            gen = agent.run_turn(text, forced_skills)
            for ev in gen:
                self.ui.event(ev)
        except KeyboardInterrupt:
            if gen is not None:
                with sigint_deferred():
                    gen.close()
            self.ui.end_turn(interrupted=True)
        except JoeError as e:  # e.g. the model server was not reachable at start-up
            self.ui.end_turn()
            self.ui.error(str(e))
        finally:
            self.ui.end_turn()
            self.ui.line("")  # air between a reply and the next prompt
            self.status.refresh()

    def _warm(self) -> None:
        """Once the prompt is up, load what the first reply will need (rich.markdown,
        pygments) in the background instead of after the person presses Enter."""
        if self._warmed or not self.ui.terminal:
            return
        self._warmed = True

        def load() -> None:
            import importlib

            for name in ("rich.live", "rich.spinner", "rich.markdown", "rich.syntax", "rich.table"):
                with contextlib.suppress(ImportError):
                    importlib.import_module(name)

        threading.Thread(target=load, name="joe-warm-render", daemon=True).start()


def run_repl(runtime: Any, session: PromptSession | None = None, out: TextIO | None = None) -> int:
    """The interactive session. Returns the exit code."""
    ui = render.Renderer(out if out is not None else sys.stdout, show_thinking=runtime.settings.show_thinking)
    render.use(ui)
    session = session if session is not None else build_session(runtime)
    repl = Repl(runtime, session, ui)
    render.set_asker(repl.ask)
    runtime.permissions.approver = make_approver(runtime, ui, repl.ask)
    ui.banner(__version__, runtime.model_name(), runtime.permissions.mode, str(runtime.root))
    if getattr(runtime, "resume_messages", None):
        ui.history(runtime.resume_messages)
    try:
        return repl.loop()
    finally:
        ui.pause()
        try:
            runtime.close()
        except JoeError as e:
            ui.error(str(e))
        render.set_asker(None)
        render.use(None)


def pick_session(sessions: Sequence[Any], input: Any = None, output: Any = None) -> Path | None:
    """`joe --resume` without an id: list the sessions and ask which one (None: a new one)."""
    if not sessions:
        render.print_line("no earlier sessions here; starting a new one", "dim")
        return None
    rows = [[str(i), s.id, s.started.strftime("%Y-%m-%d %H:%M"), str(s.turns), s.first_prompt[:60]]
            for i, s in enumerate(sessions[:20], 1)]
    render.table("sessions", ["#", "id", "started", "turns", "first prompt"], rows)
    asker = PromptSession(input=input, output=output)
    while True:
        try:
            answer = asker.prompt("resume which? (number, Enter for a new session) › ").strip()
        except (EOFError, KeyboardInterrupt):
            return None
        if not answer:
            return None
        if answer.isdigit() and 1 <= int(answer) <= len(rows):
            return sessions[int(answer) - 1].path
        render.print_line(f"type a number from 1 to {len(rows)}", "yellow")
