"""Tab completion for the prompt: slash commands (with their help line) and project paths
after `@` (relative to the project root, never outside it, .gitignore respected)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

MAX_PATHS = 200  # a huge folder should not stall a keypress
ARG_CHOICES = {"mode": ("ask", "auto-edit", "full-auto")}


class JoeCompleter(Completer):
    def __init__(self, commands: Sequence[tuple[str, str]], root: Path,
                 ignored: Callable[[str], bool] | None = None) -> None:
        self.commands = list(commands)  # (name, help line)
        self.root = Path(root).resolve()
        self.ignored = ignored  # rel path ("dir/" for folders) -> True when git ignores it

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        before = document.text_before_cursor
        if before.startswith("/") and not any(ch.isspace() for ch in before):
            yield from self._commands(before[1:])
            return
        if before.startswith("/") and "\n" not in before:
            name, _, arg = before[1:].partition(" ")
            if name in ARG_CHOICES and " " not in arg:
                yield from (Completion(c, -len(arg)) for c in ARG_CHOICES[name] if c.startswith(arg))
                return
        if not before or before[-1].isspace():
            return
        word = before.split()[-1]
        if word.startswith("@"):
            yield from self._paths(word[1:])

    def _commands(self, typed: str) -> Iterator[Completion]:
        typed = typed.lower()
        for name, line in self.commands:
            if name.startswith(typed):
                yield Completion("/" + name, -len(typed) - 1, display_meta=line)

    def _paths(self, partial: str) -> Iterator[Completion]:
        folder_part, _, name_part = partial.rpartition("/")
        folder = (self.root / folder_part).resolve() if folder_part else self.root
        if not folder.is_relative_to(self.root) or not folder.is_dir():
            return
        prefix = folder.relative_to(self.root).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        entries = self._entries(folder, name_part)
        exact = [e for e in entries if e[0].startswith(name_part)]
        chosen = exact or [e for e in entries if e[0].lower().startswith(name_part.lower())]
        for name, is_dir in chosen[:MAX_PATHS]:
            shown = name + ("/" if is_dir else "")
            if self.ignored is not None and self.ignored(prefix + shown):
                continue
            yield Completion(shown, -len(name_part), display=shown, display_meta="dir" if is_dir else "")

    def _entries(self, folder: Path, name_part: str) -> list[tuple[str, bool]]:
        show_hidden = name_part.startswith(".")
        out = []
        try:
            with os.scandir(folder) as it:
                for e in it:
                    if e.name == ".git" or (e.name.startswith(".") and not show_hidden):
                        continue
                    try:
                        out.append((e.name, e.is_dir()))
                    except OSError:
                        continue
        except OSError:
            return []
        return sorted(out, key=lambda e: (not e[1], e[0].lower()))


def lazy_gitignore(root: Path) -> Callable[[str], bool]:
    """An `ignored` test built on first use (pathspec loads then, not at startup)."""
    state: dict[str, Callable[[str], bool] | None] = {}

    def ignored(rel: str) -> bool:
        if "fn" not in state:
            try:
                from joe_agent.tools.workspace import Workspace

                state["fn"] = Workspace(root).ignored
            except ImportError:
                state["fn"] = None
        fn = state["fn"]
        return fn(rel) if fn is not None else False

    return ignored
