"""Updating an existing skill from a /synthesize proposal: find the skill a proposal duplicates,
append only the triggers, steps and pitfalls it lacks (every other byte of a hand-edited file
kept), and show the change as a unified diff. Split from synthesize.py, which re-exports these
names; the result dataclasses live here so synthesize.py can import them without a cycle.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Literal

from joe_agent.memory.skillfile import Skill

TRIGGERS = (2, 8)  # (fewest, most) triggers a skill carries
COVER_THRESHOLD = 0.7  # retrieval strength at which a proposed trigger lands on an existing skill


@dataclass
class Proposal:
    kind: Literal["new", "update"]
    skill_md: str
    name: str
    diff: str = ""
    reason: str = ""
    session: str = ""  # the source session, for the commit message
    base: str = ""  # an update's starting text: the diff applies to it, and acceptance checks it


@dataclass
class SynthesisResult:
    proposal: Proposal | None
    refused: str = ""  # why nothing is proposed


# ---- an existing skill covering the same ground --------------------------------------------------


def find_covering(library: Any, name: str, triggers: list[str]) -> tuple[Skill | None, str]:
    """The skill this proposal duplicates: the same name, or one that at least two of the
    proposed triggers (or the name's words) retrieve."""
    from joe_agent.memory.retrieval import Retriever

    skills = library.load()
    by_name = {s.name: s for s in skills}
    if name in by_name:
        return by_name[name], f'a skill named "{name}" already exists'
    hits: dict[str, list[str]] = {}
    retriever = Retriever(skills)
    for phrase in [*triggers, name.replace("-", " ")]:
        for m in retriever.match(phrase, limit=3, threshold=COVER_THRESHOLD):
            hits.setdefault(m.skill.name, []).append(m.trigger)
    best = max(hits.items(), key=lambda kv: (len(kv[1]), kv[0]), default=None)
    if best is None or len(best[1]) < 2:
        return None, ""
    shown = ", ".join(f'"{t}"' for t in dict.fromkeys(best[1]))
    return by_name[best[0]], f"the proposed triggers match its triggers {shown}"


def read_skill_text(skill: Skill) -> str:
    """A skill file's exact text (CRLF kept), for diffs and change detection."""
    return skill.path.read_bytes().decode("utf-8", "surrogateescape")


def _update(existing: Skill, why: str, fields: dict[str, list[str]], session_id: str) -> SynthesisResult:
    from joe_agent.memory.retrieval import Retriever

    name = existing.name
    if existing.scope != "global":
        return SynthesisResult(None, f'the project skill "{name}" already covers this ({why}); edit it in .joe/skills')
    own = Retriever([existing])
    room = max(0, TRIGGERS[1] - len(existing.triggers))
    triggers = [t for t in fields["triggers"] if not own.match(t, limit=1, threshold=0.85)][:room]
    pitfalls = [p for p in fields["pitfalls"] if not any(_similar(p, q) for q in existing.pitfalls)]
    steps = [] if existing.steps else fields["steps"]
    base = text = read_skill_text(existing)
    text = add_items(text, "Triggers", [f"- {t}" for t in triggers])
    text = add_items(text, "Steps", [f"{i}. {s}" for i, s in enumerate(steps, 1)])
    text = add_items(text, "Pitfalls", [f"- {p}" for p in pitfalls])
    if text == base:
        return SynthesisResult(None, f'the existing skill "{name}" already covers what this session shows '
                                     f"({why}); nothing to add")
    added = ", ".join(f"{len(v)} {k}" for k, v in (("trigger(s)", triggers), ("step(s)", steps),
                                                   ("pitfall(s)", pitfalls)) if v)
    return SynthesisResult(Proposal("update", text, name, diff=skill_diff(base, text, name),
                                    reason=f"{why}; adds {added}", session=session_id, base=base))


def _similar(a: str, b: str) -> bool:
    from joe_agent.memory.retrieval import content, tokens

    sa, sb = ({s for _, _, s in content(tokens(x))} for x in (a, b))
    return bool(sa and sb) and len(sa & sb) / len(sa | sb) >= 0.6


_SECTION = re.compile(r"^ {0,3}##(?!#)\s*(.*?)[\s#]*$")
_ORDER = (("Triggers", ("trigger", "triggers")), ("Steps", ("steps", "step", "procedure")),
          ("Pitfalls", ("pitfalls", "pitfall", "gotchas")), ("", ("last used", "success rate")))


def add_items(text: str, section: str, items: list[str]) -> str:
    """Append list items to a section of a hand-edited file, every other byte kept; a missing
    section is created where the canonical layout puts it."""
    if not items:
        return text
    nl = "\r\n" if "\r\n" in text else "\n"
    lines, heads, fenced = text.splitlines(keepends=True), [], False
    for i, line in enumerate(lines):
        fenced ^= line.lstrip().startswith(("```", "~~~"))
        if not fenced and (m := _SECTION.match(line.rstrip("\r\n"))):
            heads.append((i, m.group(1).strip().rstrip(":").lower()))
    rank = next(k for k, (title, _) in enumerate(_ORDER) if title == section)
    later = {a for _, aliases in _ORDER[rank + 1:] for a in aliases}
    at = next((k for k, (_, title) in enumerate(heads) if title in _ORDER[rank][1]), None)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += nl
    new = [x + nl for x in items]
    if at is not None:
        end = heads[at + 1][0] if at + 1 < len(heads) else len(lines)
        while end - 1 > heads[at][0] and not lines[end - 1].strip():
            end -= 1
        lines[end:end] = new
    else:
        pos = next((i for i, title in heads if title in later), len(lines))
        lines[pos:pos] = [f"## {section}{nl}"] + new
    return "".join(lines)


def skill_diff(old: str, new: str, name: str) -> str:
    rel = f"{name}/SKILL.md"
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{rel}", f"b/{rel}")
    return "".join(x if x.endswith("\n") else x + "\n" for x in lines)
