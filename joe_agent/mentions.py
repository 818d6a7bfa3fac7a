"""Files a request names, read and attached to it. "Fix the bug in calc.py" arrives with
calc.py's current contents, so the model edits text it has seen instead of guessing at it (a
small model's most common failure), and `@path` works as in other terminal agents.

A mention is `@path`, or a word with a file extension or a slash that is an existing file of
the project. Files are read through the read_file tool, so confinement, binary and size
handling, and the stale-edit check are the tools' own."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from joe_agent.messages import ToolCall, ToolResult

MAX_FILES = 4  # more named files than this: the model reads the rest itself
# MAX_BYTES: one attachment at most; all of them share a budget (about a quarter of num_ctx)
MAX_BYTES = 24_000  # one attachment; a bigger file is named, not attached
_AT = re.compile(r"(?<![\w@])@([^\s@`'\"]+)")
_BARE = re.compile(r"(?<![\w@/.-])((?:[\w.-]+/)*[\w-][\w.-]*\.[A-Za-z][A-Za-z0-9]{0,7}|(?:[\w.-]+/)+[\w.-]+)")
_TRAILING = ".,;:!?)]}>'\""


@dataclass
class Attachment:
    path: str
    text: str  # what read_file returned, or why the file was not attached
    attached: bool


def mentioned_paths(text: str) -> list[tuple[str, bool]]:
    """Candidate paths in a request, in order, each once: (path, written with @)."""
    found: dict[str, bool] = {}
    for m in _AT.finditer(text):
        found.setdefault(m.group(1).rstrip(_TRAILING), True)
    for m in _BARE.finditer(_AT.sub(" ", text)):
        word = m.group(1).rstrip(_TRAILING)
        if "://" not in text[max(0, m.start() - 3):m.start()] and word not in found:
            found[word] = False
    return [(p, at) for p, at in found.items() if p and p not in (".", "..")]


def attach_mentions(text: str, size: Callable[[str], int | None], read: Callable[[ToolCall], ToolResult],
                    budget: int = MAX_FILES * MAX_BYTES) -> list[Attachment]:
    """Read the project files `text` names. `size(path)` is the size in bytes of a regular file
    of the project (None: no such file), `read` runs a read_file call; together the files take
    at most `budget` bytes. An `@path` that is no file is reported; a bare word that is no file
    is just a word."""
    out: list[Attachment] = []
    for path, at in mentioned_paths(text):
        if len(out) >= MAX_FILES:
            break
        n = size(path)
        if n is None:
            if at:
                out.append(Attachment(path, f"@{path}: no such file in this project", False))
            continue
        if n > min(MAX_BYTES, budget):
            out.append(Attachment(path, f"{path} is {n:,} bytes, too big to attach: "
                                        "read the part you need with read_file", False))
            continue
        budget -= n
        result = read(ToolCall("read_file", {"path": path}))
        out.append(Attachment(path, result.content, result.ok))
    return out


def render(attachments: list[Attachment]) -> str:
    """The block appended to the user message (empty when nothing was named)."""
    if not attachments:
        return ""
    parts = ["The files this request names, as they are now (no need to read them again):"]
    for a in attachments:
        if a.attached:
            parts.append(f"--- {a.path} ---\n{a.text.rstrip()}\n--- end of {a.path} ---")
        else:
            parts.append(f"({a.text})")
    return "\n\n".join(parts)


def attacher(workspace, run: Callable[[ToolCall], ToolResult],
             budget: int = MAX_FILES * MAX_BYTES) -> Callable[[str], list[Attachment]]:
    """`attach_mentions` for a project: paths resolved (and confined) by its Workspace."""

    def size(path: str) -> int | None:
        try:
            p = workspace.resolve(path)
            return p.stat().st_size if p.is_file() else None
        except Exception:  # outside the project, unresolvable or unreadable: not a mention of ours
            return None

    return lambda text: attach_mentions(text, size, run, budget)
