"""`joe skills review` and `/skills review`: the skill amendments waiting in the queue
(memory/amend.py), each shown as a diff with the correction that caused it; accept, edit in
$EDITOR, reject, or skip for later.

Nothing is written without acceptance. An accepted amendment is one commit in the skills repo
whose message names the correction, session and turn. The amendment is applied again to the
skill's current text right before it is shown, and the file is compared once more under the
queue's lock right before the commit, so an edit made meanwhile is never overwritten. The
$EDITOR launch is repl/review.py's; the edit is re-validated here (both skill formats).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable

from joe_agent.errors import JoeError, StoreError

Show = Callable[[str], None]
Ask = Callable[[str], str]
MENU = "[a]ccept  [e]dit in $EDITOR  [r]eject  [s]kip for now › "
CHOICES = {"a": "accept", "y": "accept", "e": "edit", "r": "reject", "n": "reject", "s": "skip"}
NOTHING = ("no skill amendments waiting (one is proposed when you /undo a turn that used a skill "
           "and say what should have happened)")


def notice_line(home: Path) -> str:
    """The REPL's one line at the idle prompt ("" when nothing waits)."""
    from joe_agent.memory.amend import pending_count

    n = pending_count(home)
    return f"{n} skill amendment{'s' if n != 1 else ''} waiting: /skills review" if n else ""


def review_amendments(settings: Any, home: Path, root: Path, show: Show | None = None,
                      ask: Ask | None = None, editor: str | None = None) -> int:
    """Review every waiting amendment. 0 when the review ended, 1 when something could not be
    read or saved. Only the global library is amended (a project's skills are its repo's), so
    `root` is not used."""
    from joe_agent.memory.amend import QUEUE_NAME, AmendmentQueue
    from joe_agent.memory.skills import SkillLibrary
    from joe_agent.repl import render

    show, ask = show or render.print_line, ask or render.ask
    editor = editor if editor is not None else getattr(settings, "editor", None)
    queue = AmendmentQueue(Path(home) / QUEUE_NAME)
    try:
        waiting = queue.pending()
    except StoreError as e:
        show(f"error: {e}")
        return 1
    if not waiting:
        show(NOTHING)
        return 0
    library = SkillLibrary(Path(home) / "skills")
    outcomes = [_review_one(a, f"{i}/{len(waiting)}", library, queue, show, ask, editor)
                for i, a in enumerate(waiting, 1)]
    counts = {k: outcomes.count(k) for k in ("accepted", "rejected", "skipped", "stale", "failed") if k in outcomes}
    show("reviewed: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return 1 if "failed" in outcomes else 0


def _review_one(a: Any, position: str, library: Any, queue: Any, show: Show, ask: Ask, editor: str | None) -> str:
    from joe_agent.repl.review import choose

    current, proposed, note = _prepare(a, library)
    if current is None:
        show(note)
        return "stale" if _settle(queue, a, "stale") else "skipped"
    text, edited = proposed, False
    while True:
        show(render_amendment(a, position, current, text, note))
        choice = choose(ask, MENU, CHOICES)
        if choice == "accept":
            return _accept(a, current, text, edited, library, queue, show)
        if choice == "reject":
            show("rejected: nothing was written" if _settle(queue, a, "rejected") else _SETTLED)
            return "rejected"
        if choice != "edit":  # skip, an unclear answer, or Ctrl-D: it keeps waiting
            show("left for later: `joe skills review` shows it again")
            return "skipped"
        got = _edit(a, text, current, show, ask, editor)
        if got is None:
            show("back to the amendment as it was")
        else:
            text, edited = got, got != proposed


def _prepare(a: Any, library: Any) -> tuple[str | None, str, str]:
    """(the skill's current text, the amended text, a note); current None: it cannot apply."""
    from joe_agent.memory.amend import StaleAmendment, apply_edit
    from joe_agent.memory.skillmerge import read_skill_text

    library.load()
    skill = library.get(a.skill)
    if skill is None or skill.scope != "global":
        return None, "", f'the skill "{a.skill}" is gone (archived, renamed or deleted); its amendment was dropped'
    current = read_skill_text(skill)
    try:
        proposed = apply_edit(current, a)
    except StaleAmendment as e:
        return None, "", (f'the skill "{a.skill}" changed since this amendment was proposed ({e}); '
                          "nothing was written and the amendment was dropped")
    version = ""
    with contextlib.suppress(StoreError):
        version = library.version(a.skill)
    note = "" if not a.base_version or version == a.base_version else (
        f"note: {a.skill} changed since this was proposed ({a.base_version[:8]} -> {version[:8] or 'uncommitted'}); "
        "the amendment is shown against its current text")
    return current, proposed, note


def render_amendment(a: Any, position: str, current: str, text: str, note: str = "") -> str:
    """What the person reads: which skill, why, the correction behind it, then the diff."""
    from joe_agent.memory.skillmerge import skill_diff

    lines = [f'Skill amendment {position} to "{a.skill}": {a.describe()}']
    if a.reason:
        lines.append(f"why: {a.reason}")
    lines.append(f"from your correction of session {a.session}, turn {a.turn}:")
    if a.request:
        lines.append(f"  you asked: {_line(a.request, 200)}")
    lines.append(f"  you said:  {_line(a.answer, 300) or '(nothing)'}")
    lines += [note] if note else []
    lines += ["", skill_diff(current, text, a.skill).rstrip("\n")]
    warnings = check_amended(text, a.skill, current, a.session)[1]
    lines += [f"warning: {w}" for w in warnings]
    if warnings:
        lines.append(f"(kept as written, the skill is held back from the model until `joe skills trust {a.skill}`)")
    return "\n".join(lines)


def _line(text: str, cap: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= cap else text[:cap - 1] + "…"


# ---- deciding -------------------------------------------------------------------------------------

_SETTLED = "this amendment was settled in another session meanwhile; nothing was written"


def _settle(queue: Any, a: Any, status: str, commit: str = "") -> bool:
    """Mark the amendment, unless another session settled it first (False then)."""
    from joe_agent.memory.store import locked

    with locked(queue.path):
        if a.id in queue.read().statuses:
            return False
        queue.mark(a.id, status, commit)
        return True


def _accept(a: Any, current: str, text: str, edited: bool, library: Any, queue: Any, show: Show) -> str:
    from joe_agent.memory.skillmerge import read_skill_text
    from joe_agent.memory.store import locked

    problems = check_amended(text, a.skill, current, a.session)[0]
    if problems:  # validated when proposed and when edited: this guards a hand-written queue line
        show("cannot save: " + "; ".join(problems))
        return "failed"
    with locked(queue.path):  # one reviewer at a time decides about the queue
        if a.id in queue.read().statuses:
            show(_SETTLED)
            return "skipped"
        library.load()
        skill = library.get(a.skill)
        if skill is None or read_skill_text(skill) != current:
            show(f'the skill "{a.skill}" changed while you were reviewing; nothing was written '
                 "(`joe skills review` shows the amendment against its new text)")
            return "skipped"
        try:
            sha = library.save(a.skill, text, commit_message(a, edited))
        except JoeError as e:
            show(f"could not save the skill: {e}")
            return "failed"
        queue.mark(a.id, "accepted", sha)
    show(f'amended "{a.skill}" (commit {sha[:8]}); its outcomes from now on count for this version')
    return "accepted"


def commit_message(a: Any, edited: bool = False) -> str:
    """Provenance: the correction, session and turn the change came from."""
    how = " (edited in review)" if edited else ""
    lines = [f"amend {a.skill}: {a.describe()}{how} (correction {a.correction_id}, "
             f"session {a.session}, turn {a.turn})", "",
             f"Amendment {a.id}, proposed against {a.base_version[:12] or 'an uncommitted file'}."]
    if a.answer:
        lines.append("Correction: " + _line(a.answer, 300))
    return "\n".join(lines)


# ---- editing and checking -------------------------------------------------------------------------


def _edit(a: Any, text: str, current: str, show: Show, ask: Ask, editor: str | None) -> str | None:
    """The edited text once it validates; None when the edit is abandoned or failed."""
    from joe_agent.repl.review import edit_until_valid

    return edit_until_valid(a.skill, text, lambda t: check_amended(t, a.skill, current, a.session)[0],
                            show, ask, editor)


def check_amended(text: str, name: str, base: str, session: str = "") -> tuple[list[str], list[str]]:
    """(problems, warnings) of an amended SKILL.md: it must parse, keep its name and
    frontmatter, and add no secrets, home paths or session trivia. Guard findings in what was
    added are warnings: the person may keep them (the load guard then holds the skill back
    until `joe skills trust`)."""
    from joe_agent.memory.amend import parse_text
    from joe_agent.memory.guard import check_text
    from joe_agent.memory.skillfile import DESCRIPTION_MAX, SkillParseError
    from joe_agent.memory.synthesize import content_problems

    try:
        skill = parse_text(text, name)
    except SkillParseError as e:
        return [f"line {e.line}: {e}" if e.line else str(e)], []
    problems = [] if skill.name == name else [f'keep the name "{name}": this is an amendment to that skill']
    if base.lstrip("\ufeff").startswith("---") and not text.lstrip("\ufeff").startswith("---"):
        problems.append("the frontmatter (--- name, description, metadata ---) is missing; put it back")
    if len(skill.description) > DESCRIPTION_MAX:
        problems.append(f"description is {len(skill.description)} characters; the limit is {DESCRIPTION_MAX}")
    old = set(base.splitlines())
    added = [x for x in text.splitlines() if x not in old]
    return problems + content_problems(added, session), [f.describe() for f in check_text("\n".join(added))]
