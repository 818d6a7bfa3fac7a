"""Skill amendments: a correction of a turn that used a skill may repair the skill itself.

The background distiller hands each correction that names the skills its turn used (UndoFlow
reads them from the ledger) to `amend_corrections`, which asks the model whether a skill is
wrong or incomplete. A usable answer becomes an Amendment: one step rewritten or one Pitfalls
bullet added, every other byte of SKILL.md unchanged. Nothing is applied here: amendments wait
in `$JOE_HOME/amendments.jsonl` (append-only: amendment, status and "considered" lines; format
in docs/amendments.md) until the person accepts, edits or rejects them (amend_cli.py). An
amendment is an edit, not a file: review applies it again to the skill's current text, so a
skill changed meanwhile still takes it while the step it rewrites reads as before, and
refuses it as stale when not.
"""
from __future__ import annotations

import contextlib
import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from joe_agent.errors import JoeError, StoreError
from joe_agent.memory.store import append_line, repair_torn_tail

QUEUE_NAME = "amendments.jsonl"
KINDS = ("step", "pitfall")
TEXT_CHARS = (8, 300)  # a step or pitfall is one line a person reads at a glance
REASON_CHARS = 200
SKILL_CHARS = 8000  # what the model sees of SKILL.md
DIFF_CHARS = 4000  # ... of the reverted diff
KEEP_CHARS = 2000  # what the queue keeps of the request and the answer, for the review


class StaleAmendment(ValueError):
    """The amendment does not apply to the skill's current text (said in one line)."""


@dataclass
class Amendment:
    skill: str
    kind: str  # "step" | "pitfall"
    text: str  # the new step, or the new pitfall
    step_index: int | None = None  # 1-based, for a step
    old_text: str = ""  # the step as it read when proposed: how a moved or changed step is found
    reason: str = ""
    base_version: str = ""  # the skill's commit when proposed
    correction_id: str = ""
    session: str = ""
    turn: int = 0
    request: str = ""
    answer: str = ""
    diff: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    ts: str = field(default_factory=lambda: _now())

    def describe(self) -> str:
        return f"step {self.step_index} rewritten" if self.kind == "step" else "a new pitfall"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _one_line(text: str, cap: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= cap else text[:cap - 1] + "…"


# ---- the queue ------------------------------------------------------------------------------


@dataclass
class QueueState:
    amendments: dict[str, Amendment]
    statuses: dict[str, str]  # amendment id -> its last status
    considered: set[tuple[str, str]]  # (correction id, skill) pairs already asked about

    def pending(self) -> list[Amendment]:
        return [a for aid, a in self.amendments.items() if aid not in self.statuses]


class AmendmentQueue:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def add(self, a: Amendment) -> None:
        self._append({"v": 1, **asdict(a)})

    def mark(self, amendment_id: str, status: str, commit: str = "") -> None:
        self._append({"v": 1, "of": amendment_id, "status": status, "commit": commit, "ts": _now()})

    def considered(self, correction_id: str, skill: str, outcome: str) -> None:
        self._append({"v": 1, "considered": correction_id, "skill": skill, "outcome": outcome, "ts": _now()})

    def pending(self) -> list[Amendment]:
        """Amendments without a status line, oldest first."""
        return self.read().pending()

    def read(self) -> QueueState:
        try:
            repair_torn_tail(self.path)
        except OSError:
            pass  # a read-only home: a torn last line is skipped as unparsable below
        try:
            text = self.path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        except OSError as e:
            raise StoreError(f"could not read {self.path}: {e.strerror or e}") from e
        state = QueueState({}, {}, set())
        for line in text.splitlines():
            with contextlib.suppress(ValueError, TypeError, AttributeError):  # a damaged line is skipped
                rec = json.loads(line)
                if "of" in rec:
                    state.statuses[str(rec["of"])] = str(rec.get("status") or "")
                elif "considered" in rec:
                    state.considered.add((str(rec["considered"]), str(rec.get("skill") or "")))
                elif "id" in rec:
                    a = Amendment(**{k: v for k, v in rec.items() if k in Amendment.__dataclass_fields__})
                    state.amendments[a.id] = a
                    state.considered.add((a.correction_id, a.skill))
        return state

    def _append(self, rec: dict) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            repair_torn_tail(self.path)
        except OSError as e:
            raise StoreError(f"could not write {self.path}: {e.strerror or e}") from e
        append_line(self.path, json.dumps(rec, ensure_ascii=False))


def pending_count(home: Path) -> int:
    """How many amendments wait for review (0 when the queue cannot be read: this runs before
    every REPL prompt and must never break it)."""
    try:
        return len(AmendmentQueue(Path(home) / QUEUE_NAME).pending())
    except StoreError:
        return 0


# ---- the minimal edit ------------------------------------------------------------------------


def apply_edit(text: str, a: Amendment) -> str:
    """The skill's text with the amendment made, every other byte kept (line endings too).
    Raises StaleAmendment when it no longer applies."""
    from joe_agent.memory.skillmerge import add_items

    before = parse_text(text, a.skill)
    if a.kind == "pitfall":
        if _norm(a.text) in {_norm(p) for p in before.pitfalls}:
            raise StaleAmendment("the skill already has this pitfall")
        new = add_items(text, "Pitfalls", [f"- {a.text}"])
        if parse_text(new, a.skill).pitfalls != [*before.pitfalls, a.text]:
            raise StaleAmendment("the new pitfall would not read back as written")
        return new
    if a.kind != "step":
        raise StaleAmendment(f"unknown kind of amendment {a.kind!r}")
    return _replace_step(text, a, before.steps)


def _replace_step(text: str, a: Amendment, steps: list[str]) -> str:
    from joe_agent.memory.skillfile import _ITEM_RE

    index = _locate(steps, a)
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)  # joining them gives every byte back
    spans = _step_spans([x.rstrip("\r\n") for x in lines])
    if len(spans) != len(steps):
        raise StaleAmendment("its steps could not be told apart")
    start, end = spans[index]
    first = lines[start].rstrip("\r\n")
    m = _ITEM_RE.match(first)
    prefix = first[:m.start(1)] if m else first[:len(first) - len(first.lstrip())]
    ending = lines[end - 1][len(lines[end - 1].rstrip("\r\n")):]
    lines[start:end] = [prefix + a.text + ending]
    new = "".join(lines)
    after = parse_text(new, a.skill).steps
    if len(after) != len(steps) or after[index] != a.text:
        raise StaleAmendment("the new step would not read back as written")
    return new


def _locate(steps: list[str], a: Amendment) -> int:
    i = (a.step_index or 0) - 1
    if 0 <= i < len(steps) and steps[i] == a.old_text:
        return i
    hits = [k for k, s in enumerate(steps) if s == a.old_text]
    if len(hits) == 1:  # moved (a step was added before it) but unchanged
        return hits[0]
    raise StaleAmendment(f"step {a.step_index} no longer reads {_one_line(a.old_text, 60)!r}")


def _step_spans(bare: list[str]) -> list[tuple[int, int]]:
    """(first line, line after the last) of each step item. The parser's own section scanner
    and item rules (skillfile), so step N here is step N there; the caller re-parses anyway."""
    from joe_agent.memory.skillfile import _HEADING_RE, _ITEM_RE, SECTION_FIELDS, _frontmatter_end, _key, _sections

    end = _frontmatter_end(bare)
    spans: list[tuple[int, int]] = []
    for sec in _sections(bare, end + 1 if end > 0 else 0)[1]:
        if SECTION_FIELDS.get(_key(sec.title)) != "steps":
            continue
        own: list[list[int]] = []
        for i in range(sec.start + 1, sec.end):
            line = bare[i]
            if not line.strip():
                continue
            if _ITEM_RE.match(line) or not own or not (line[:1].isspace() or not _HEADING_RE.match(line)):
                own.append([i, i + 1])
            else:
                own[-1][1] = i + 1  # a continuation line belongs to the step before it
        spans += [(s, e) for s, e in own]
    return spans


def parse_text(text: str, name: str) -> Any:
    """The Skill a text parses to (SkillParseError when it does not)."""
    from joe_agent.memory.skillfile import parse_skill

    return parse_skill(text, Path(f"{name}.md"))


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


# ---- asking the model --------------------------------------------------------------------------


@dataclass
class AmendResult:
    correction_id: str
    skill: str
    outcome: str  # queued | none | unparsed | skipped | failed
    message: str = ""  # one line for the person ("" when there is nothing to say)
    amendment: Amendment | None = None


def amend_corrections(home: Path, corrections: list[Any], get_model: Callable[[], Any]) -> Iterator[AmendResult]:
    """Ask about each (correction, skill it used) pair not asked about yet and queue usable
    amendments; `get_model()` gives the ChatModel, called only when a question is due. Stops
    at a model failure: that pair stays unconsidered, so the next start asks again."""
    from joe_agent.memory.skills import SkillLibrary

    queue, library = AmendmentQueue(Path(home) / QUEUE_NAME), SkillLibrary(Path(home) / "skills")
    for c, name in unconsidered(home, corrections):
        result = consider(c, name, library, get_model, queue)
        if result.outcome == "failed":
            yield result
            return
        queue.considered(c.id, name, result.outcome)
        yield result


def unconsidered(home: Path, corrections: list[Any]) -> list[tuple[Any, str]]:
    """The (correction, skill name) pairs not asked about yet."""
    todo = [(c, str(u.get("name") or "")) for c in corrections for u in (getattr(c, "skills", None) or [])]
    seen = AmendmentQueue(Path(home) / QUEUE_NAME).read().considered if todo else set()
    return [(c, name) for c, name in todo if name and (c.id, name) not in seen]


def consider(c: Any, name: str, library: Any, get_model: Callable[[], Any], queue: AmendmentQueue) -> AmendResult:
    """Ask whether the skill `name` needs a repair after correction `c`; queue the amendment."""
    from joe_agent.memory.skillmerge import read_skill_text

    library.load()
    skill = library.get(name)
    if skill is None or skill.scope != "global":  # gone since, or a project's (its repo's to change)
        return AmendResult(c.id, name, "skipped")
    text = read_skill_text(skill)
    try:
        data, errors = _ask_with_repair(c, name, text, skill, get_model)
    except JoeError as e:  # unreachable, not pulled, a broken stream: asked again next start
        return AmendResult(c.id, name, "failed", f"skills: {name} not checked for a fix yet ({e}); "
                                                 "joe tries again next start")
    if errors:
        return AmendResult(c.id, name, "unparsed", f"skills: the model's fix for {name} was unusable twice "
                                                   f"({errors[0]}); nothing proposed")
    if data is None:
        return AmendResult(c.id, name, "none")
    version = ""
    with contextlib.suppress(StoreError):  # an unreadable history only loses the "changed since" note
        version = library.version(name)
    a = _amendment(c, skill, data, version)
    try:
        apply_edit(text, a)
    except StaleAmendment as e:
        return AmendResult(c.id, name, "unparsed", f"skills: the fix for {name} could not be applied ({e})")
    queue.add(a)
    return AmendResult(c.id, name, "queued", f'skills: proposed a fix to "{name}" ({a.describe()}) '
                                             "from your correction", a)


def _ask_with_repair(c: Any, name: str, text: str, skill: Any,
                     get_model: Callable[[], Any]) -> tuple[dict | None, list[str]]:
    from joe_agent.memory.scrub import scrub
    from joe_agent.messages import Message

    messages = [Message("system", _prompt(0, {})), Message("user", _prompt(1, _values(c, name, text, skill)))]
    reply = _ask(model := get_model(), messages)
    data, errors = parse_amendment(reply, skill, c.session)
    if errors:  # one repair round: the model sees exactly what was wrong
        bullets = "\n".join(f"- {e}" for e in errors)
        messages += [Message("assistant", scrub(reply)), Message("user", _prompt(2, {"errors": bullets}))]
        data, errors = parse_amendment(_ask(model, messages), skill, c.session)
    return data, errors


def _values(c: Any, name: str, text: str, skill: Any) -> dict[str, str]:
    from joe_agent.memory.scrub import scrub
    from joe_agent.memory.synthesize import clip

    c = c.scrubbed() if hasattr(c, "scrubbed") else c  # again: the queue may be old or hand-written
    steps = "\n".join(f"{i}. {s}" for i, s in enumerate(skill.steps, 1)) or "(no steps: propose a pitfall)"
    return {"name": name, "skill": clip(scrub(text), SKILL_CHARS), "steps": scrub(steps),
            "request": clip(c.request, KEEP_CHARS) or "(unknown)", "diff": clip(c.diff, DIFF_CHARS) or "(no text diff)",
            "answer": clip(c.answer, KEEP_CHARS) or "(no answer)"}


def _prompt(part: int, values: dict[str, str]) -> str:
    """Part 0 (system), 1 (request) or 2 (repair) of amend_skill.md, placeholders filled."""
    from importlib import resources

    text = resources.files("joe_agent.prompts").joinpath("amend_skill.md").read_text(encoding="utf-8")
    chosen = re.split(r"<!-- (?:request|repair) -->", text)[part].strip()
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values.get(m.group(1), m.group(0)), chosen)


def _ask(model: Any, messages: list) -> str:
    return "".join(chunk.content for chunk in model.stream(messages, None))


def _amendment(c: Any, skill: Any, data: dict, version: str) -> Amendment:
    from joe_agent.memory.synthesize import clip

    index = data["step_index"]
    return Amendment(skill.name, data["kind"], data["text"], index, skill.steps[index - 1] if index else "",
                     data["reason"], version, c.id, c.session, int(c.turn), clip(c.request, KEEP_CHARS),
                     clip(c.answer, KEEP_CHARS), clip(c.diff, DIFF_CHARS))


def parse_amendment(reply: str, skill: Any, session: str = "") -> tuple[dict | None, list[str]]:
    """The model's decision and its problems. (None, []) means "no amendment" (it said
    false, or its change is already in the skill)."""
    from joe_agent.memory.guard import check_text
    from joe_agent.memory.scrub import scrub
    from joe_agent.memory.synthesize import content_problems

    obj = _first_object(reply or "")
    if obj is None:
        return None, ["the answer is not a JSON object with an \"amend\" key; answer with one JSON object only"]
    amend = str(obj.get("amend")).strip().lower()
    if amend in ("false", "no", "none", "0"):
        return None, []
    errors = [] if amend in ("true", "yes", "1") else ['"amend" must be true or false']
    kind = str(obj.get("kind") or "").strip().lower()
    text = " ".join(str(obj.get("text") or "").split())
    index = _index(obj.get("step_index"))
    if kind not in KINDS:
        errors.append('"kind" must be "step" or "pitfall"')
    elif kind == "step" and not skill.steps:
        errors.append('this skill has no steps; give "kind": "pitfall"')
    elif kind == "step" and not (index and 1 <= index <= len(skill.steps)):
        errors.append(f'"step_index" must be a step number from 1 to {len(skill.steps)}')
    if not TEXT_CHARS[0] <= len(text) <= TEXT_CHARS[1]:
        errors.append(f'"text" must be {TEXT_CHARS[0]} to {TEXT_CHARS[1]} characters (got {len(text)})')
    errors += [f"{f.kind}: {f.excerpt!r}; a skill must not widen what the agent may do" for f in check_text(text)]
    errors += content_problems([text], session)
    if errors:
        return None, errors
    same = skill.steps[index - 1] if kind == "step" else None
    if (same is not None and _norm(same) == _norm(text)) or (kind == "pitfall" and _norm(text) in
                                                              {_norm(p) for p in skill.pitfalls}):
        return None, []
    reason = _one_line(scrub(str(obj.get("reason") or "")), REASON_CHARS)
    return {"kind": kind, "step_index": index if kind == "step" else None, "text": scrub(text), "reason": reason}, []


def _first_object(text: str) -> dict | None:
    from joe_agent.memory.jsonreply import first_object

    return first_object(text, "amend")


def _index(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value if isinstance(value, int) and not isinstance(value, bool) else None
