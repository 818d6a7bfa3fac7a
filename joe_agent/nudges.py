"""When a reply without a tool call should not end the turn yet.

Small local models stop early in three regular ways (docs/live-model.md): an empty reply in the
middle of a task; a sentence announcing the next call ("I will now call edit_file to …")
instead of the call; and "Done." after changing one of the files the request names when it
named more ("rename X in a.py and b.py"). Each gets one reminder per turn, so a model that
really is finished says so again and the turn ends."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

_ANNOUNCE = re.compile(r"(?i)^\W*(i will|i'll|i am going to|i'm going to|let me|let's|next,? i|now i|i need to)\b")


@dataclass
class Progress:
    """What the current turn has done, as far as the reminders need to know."""

    named: list[str] = field(default_factory=list)  # files the request names (attached to it)
    changed: set[str] = field(default_factory=set)  # files written or edited this turn
    calls: int = 0  # tool calls run this turn
    given: set[str] = field(default_factory=set)  # reminders already given this turn

    def note_change(self, path: str) -> None:
        self.changed.add(os.path.normpath(path))


def nudge_for(text: str, progress: Progress, tool_names: set[str]) -> str | None:
    """The reminder for a reply `text` that has no tool call, or None to let it end the turn."""
    kind, message = _pick(text.strip(), progress, tool_names)
    if kind is None or kind in progress.given:
        return None
    progress.given.add(kind)
    return message


def _pick(text: str, p: Progress, tool_names: set[str]) -> tuple[str | None, str]:
    if not text:
        if not p.calls:
            return None, ""
        return "empty", ("Your reply was empty. If the task is not finished, write the next tool call now. "
                         "If it is finished, reply with one short sentence.")
    if _announces(text, tool_names):
        return "announce", ("You described a tool call but did not make it. Write the tool call itself "
                            "now; if nothing is left to do, reply with one short sentence.")
    missing = [f for f in p.named if os.path.normpath(f) not in p.changed]
    if p.changed and missing:
        return "unchanged", (f"You changed {', '.join(sorted(p.changed))}. The request also names "
                             f"{', '.join(missing)}, which you have not changed. If the request needs a "
                             "change there too, make it now with a tool call; if not, reply with one "
                             "short sentence.")
    return None, ""


def _announces(text: str, tool_names: set[str]) -> bool:
    """A short reply that says what it is about to do ("I will now call edit_file …")."""
    if len(text) > 300:
        return False
    first = text.splitlines()[0]
    return bool(_ANNOUNCE.match(first)) or any(re.search(rf"\b(call|use|run)\s+`?{re.escape(n)}\b", first)
                                               for n in tool_names)
