"""/synthesize: turn a finished session into a proposed skill for the person to review.

records -> refuse a session with nothing to learn -> scrub -> a digest within the token budget
(turns not undone, tool calls that succeeded, long outputs cut to head and tail) -> the model
says whether a generalizable procedure is there -> its JSON is validated, with one repair round
-> a new SKILL.md, or an update (a diff) to an existing skill covering the same ground.
Nothing is written here: repl/review.py saves a proposal only when the person accepts it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from joe_agent.memory.scrub import scrub, scrub_obj
# the update path lives in skillmerge.py; its names stay importable from here
from joe_agent.memory.skillmerge import (COVER_THRESHOLD, TRIGGERS, Proposal, SynthesisResult, _update, add_items,
                                         find_covering, read_skill_text, skill_diff)
from joe_agent.memory.skillfile import DESCRIPTION_MAX, Skill, render_skill, validate_name
from joe_agent.messages import Message
from joe_agent.tokens import estimate

__all__ = ["COVER_THRESHOLD", "FAILED", "LEVELS", "MAX_PITFALLS", "MIN_OK_CALLS", "READ_ONLY_TOOLS", "REPLY_RESERVE",
           "STEPS", "STEP_CHARS", "TITLE_CHARS", "TRIGGERS", "TRIGGER_WORDS", "Proposal", "SynthesisResult",
           "add_items", "clip", "content_problems", "digest", "find_covering", "fit_digest", "kept_turns",
           "parse_reply", "read_skill_text", "read_turns", "refusal", "skill_diff", "synthesize", "validate_fields"]

MIN_OK_CALLS = 2  # fewer successful tool calls than this is a chat, not a procedure
REPLY_RESERVE = 1000  # tokens of the budget kept for the model's answer
TRIGGER_WORDS, STEPS, MAX_PITFALLS = (2, 6), (3, 12), 8
STEP_CHARS, TITLE_CHARS = 200, 80
READ_ONLY_TOOLS = frozenset({"read_file", "list_files", "search", "read_skill"})
FAILED = frozenset({"error", "loop", "max_steps"})
# (tool output cap, argument cap) in characters: each level trades detail for room
LEVELS = ((1200, 400), (500, 200), (200, 100), (0, 60))

_SKILLS_BLOCK = re.compile(r"\n*<skills>.*?</skills>\s*$", re.S)
_RESULT_PREFIX = re.compile(r"^\[result of [^\]\n]*\]\n")
_HOME = re.compile(r"(?:/home/|/Users/|\b[A-Za-z]:\\Users\\)[A-Za-z0-9._-]+")
_TRIVIA = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{12,}\b|\b20\d\d-\d\d-\d\d[T ]\d\d:\d\d"
                     r"|\b\d{8}-\d{6}-[0-9a-f]{4}\b", re.I)
_TOOLS = r"\b(?:tools?|read_file|write_file|edit_file|list_files|run_shell|read_skill)\b[^.\n]{0,40}?"
_BROKEN = re.compile(_TOOLS + r"\b(?:(?:is|are|was|seems|looks)\s+(?:broken|buggy|unreliable|not working)"
                     r"|(?:does not|doesn't|do not|don't|never)\s+work)", re.I)


@dataclass
class _Step:
    name: str
    args: dict[str, Any]
    ok: bool | None = None
    output: str | None = None


@dataclass
class _Turn:
    n: int
    request: str = ""
    steps: list[_Step] = field(default_factory=list)
    final: str = ""
    reason: str = ""
    errors: list[str] = field(default_factory=list)
    undone: bool = False

    def ok_steps(self) -> list[_Step]:
        return [s for s in self.steps if s.ok]


# ---- reading the transcript ------------------------------------------------------------------


def read_turns(records: list[dict]) -> tuple[list[_Turn], dict]:
    """The session's turns (undone ones marked) and its session_start record."""
    turns: dict[int, _Turn] = {}
    undos: list[dict] = []
    start: dict = {}
    for rec in records:
        kind, n = rec.get("type"), _int(rec.get("turn"))
        if kind == "session_start":
            start = rec
        elif kind == "undo":
            undos.append(rec)
        elif n > 0:
            t = turns.setdefault(n, _Turn(n))
            if kind == "message" and isinstance(rec.get("message"), dict) and not rec.get("partial"):
                _on_message(t, rec["message"], rec)
            elif kind == "tool_result" and (step := _open(t, rec.get("name"), "ok")) is not None:
                step.ok = bool(rec.get("ok"))
            elif kind == "error":
                t.errors.append(str(rec.get("message") or "error"))
            elif kind == "turn_done":
                t.reason = str(rec.get("reason") or "")
    ordered = [turns[k] for k in sorted(turns)]
    for t in ordered:
        for s in t.steps:  # no tool_result record: judge by the result the model saw
            if s.ok is None:
                s.ok = s.output is not None and not s.output.startswith("ERROR")
    _apply_undos(ordered, undos)
    return ordered, start


def _on_message(t: _Turn, msg: dict, rec: dict) -> None:
    role, content = msg.get("role"), str(msg.get("content") or "")
    if role == "user" and not msg.get("tool_name"):
        t.request = t.request or str(rec.get("request") or _SKILLS_BLOCK.sub("", content))
    elif role == "assistant":
        t.final = content.strip() or t.final
        for c in msg.get("tool_calls") or []:
            if isinstance(c, dict):
                args = c.get("arguments") if isinstance(c.get("arguments"), dict) else {}
                t.steps.append(_Step(str(c.get("name") or ""), args, False if c.get("arguments_error") else None))
    elif role in ("tool", "user") and (step := _open(t, msg.get("tool_name"), "output")) is not None:
        step.output = _RESULT_PREFIX.sub("", content)


def _open(t: _Turn, name: Any, attr: str) -> _Step | None:
    """The first call of the turn still waiting for this attribute (by name when we have one)."""
    waiting = [s for s in t.steps if getattr(s, attr) is None]
    return next((s for s in waiting if s.name == name), waiting[0] if waiting else None)


def _apply_undos(turns: list[_Turn], undos: list[dict]) -> None:
    """An undo names the turn it reverted (`undone_turn`); without that it reverted, like
    /undo does, the newest turn not yet undone that changed something."""
    for u in undos:
        target = _int(u.get("undone_turn") or u.get("target_turn"))
        if target:
            pick = [t for t in turns if t.n == target]
        else:
            limit = _int(u.get("turn")) or 1 << 30
            live = [t for t in turns if not t.undone and t.n <= limit]
            changed = [t for t in live if any(s.ok and s.name not in READ_ONLY_TOOLS for s in t.steps)]
            pick = (changed or live)[-1:]
        for t in pick:
            t.undone = True


def refusal(turns: list[_Turn]) -> str:
    """Why the session holds nothing to learn from, or ""."""
    worked = [t for t in turns if t.request or t.steps]
    if not worked:
        return "the session has no turns yet; work on something first"
    live = [t for t in worked if not t.undone]
    if not live:
        return "every turn of the session was undone (/undo): nothing there worked to learn from"
    last = live[-1]
    if last.reason in FAILED or (last.errors and last.reason != "done"):
        why = last.errors[-1] if last.errors else f"its last turn stopped: {last.reason}"
        return f"the session ended in errors ({why}); skills come from runs that worked"
    if last.steps and not last.steps[-1].ok:
        return (f"the session ended in errors (its last tool call, {last.steps[-1].name}, failed); "
                "skills come from runs that worked")
    ok = sum(len(t.ok_steps()) for t in kept_turns(turns))
    if ok < MIN_OK_CALLS:
        return (f"the session is too short to learn from ({ok} successful tool call{'s' * (ok != 1)}); "
                "a skill needs a procedure that worked")
    return ""


def kept_turns(turns: list[_Turn]) -> list[_Turn]:
    return [t for t in turns if not t.undone and t.reason not in FAILED | {"interrupted"} and t.ok_steps()]


# ---- the digest the model reads ---------------------------------------------------------------


def digest(turns: list[_Turn], level: int) -> str:
    out_cap, arg_cap = LEVELS[level]
    lines: list[str] = []
    for t in turns:
        lines.append(f"## Turn {t.n}\nRequest: {clip(t.request, 800 if out_cap else 200)}")
        for s in t.ok_steps():
            lines.append(f"- {s.name} {_args(s.args, arg_cap)} -> ok")
            if out_cap and s.output:
                lines.append("  | " + clip(s.output.strip("\n"), out_cap).replace("\n", "\n  | "))
        if t.final:
            lines.append(f"Answer: {clip(t.final, 500 if out_cap else 150)}")
    return "\n".join(lines)


def fit_digest(turns: list[_Turn], budget: int) -> str:
    """The most detailed digest within `budget` tokens; then the newest turns that fit."""
    for level in range(len(LEVELS)):
        text = digest(turns, level)
        if estimate(text) <= budget:
            return text
    while len(turns) > 1:
        turns = turns[1:]
        text = "(earlier turns left out)\n" + digest(turns, len(LEVELS) - 1)
        if estimate(text) <= budget:
            return text
    return clip(text, max(300, budget * 3))


def clip(text: str, cap: int) -> str:
    """Head and tail of a long text, cut at line ends where it can."""
    if len(text) <= cap:
        return text
    head, tail = text[:cap * 2 // 3], text[len(text) - cap // 3:]
    if "\n" in head[len(head) // 2:]:
        head = head[:head.rindex("\n")]
    if "\n" in tail[:len(tail) // 2]:
        tail = tail[tail.index("\n") + 1:]
    return f"{head}\n[… {len(text) - len(head) - len(tail)} characters cut …]\n{tail}"


def _args(args: dict[str, Any], cap: int) -> str:
    return json.dumps({k: clip(v, cap) if isinstance(v, str) else v for k, v in args.items()},
                      ensure_ascii=False, default=str)


# ---- validating a proposal -----------------------------------------------------------------------


def validate_fields(d: dict[str, Any], session_id: str = "", root: str = "", human: bool = False) -> list[str]:
    """Problems with a proposal (name, description, triggers, steps, pitfalls), as lines the
    model (or the person) can act on. `human` relaxes the one-line/length rules for edits."""
    errs: list[str] = []
    name = d.get("name")
    if (err := validate_name(name if isinstance(name, str) else "")) is not None:
        errs.append(err)
    desc, title = d.get("description"), d.get("title") or ""
    if not isinstance(desc, str) or not desc.strip():
        errs.append("description is missing: say what the skill does and when to use it")
    elif len(desc) > DESCRIPTION_MAX:
        errs.append(f"description is {len(desc)} characters; the limit is {DESCRIPTION_MAX}")
    if not isinstance(title, str) or len(title) > TITLE_CHARS or "\n" in title:
        errs.append(f"title must be one line of at most {TITLE_CHARS} characters")
    triggers, steps = _strings(d, "triggers", errs, human), _strings(d, "steps", errs, human)
    pitfalls = _strings(d, "pitfalls", errs, human)
    if not TRIGGERS[0] <= len(triggers) <= TRIGGERS[1]:
        errs.append(f"give {TRIGGERS[0]} to {TRIGGERS[1]} triggers (got {len(triggers)})")
    for t in triggers:
        if not TRIGGER_WORDS[0] <= len(t.split()) <= TRIGGER_WORDS[1]:
            errs.append(f'trigger "{t}" has {len(t.split())} words; use {TRIGGER_WORDS[0]} to {TRIGGER_WORDS[1]}')
    if not STEPS[0] <= len(steps) <= STEPS[1]:
        errs.append(f"give {STEPS[0]} to {STEPS[1]} steps (got {len(steps)})")
    if len(pitfalls) > MAX_PITFALLS:
        errs.append(f"give at most {MAX_PITFALLS} pitfalls (got {len(pitfalls)})")
    for s in steps + pitfalls:
        if len(s) > STEP_CHARS and not human:
            errs.append(f'"{s[:40]}…" is {len(s)} characters; keep each step and pitfall under {STEP_CHARS}')
    texts = [x for x in (name, desc, title) if isinstance(x, str)] + triggers + steps + pitfalls
    if not human:  # the person may keep such text after seeing the warning; the model may not
        from joe_agent.memory.guard import check_text

        errs += [f"{f.kind}: {f.excerpt!r}; a skill must not widen what the agent may do"
                 for f in check_text("\n".join(texts))]
    return errs + content_problems(texts, session_id, root)


def _strings(d: dict[str, Any], key: str, errs: list[str], human: bool) -> list[str]:
    value = d.get(key)
    if value is None and key == "pitfalls":
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        errs.append(f"{key} must be a list of non-empty strings")
        return [x.strip() for x in value if isinstance(x, str) and x.strip()] if isinstance(value, list) else []
    if not human and any("\n" in x.strip() for x in value):
        errs.append(f"each item of {key} must be one line")
    return [x.strip() for x in value]


def content_problems(texts: list[str], session_id: str = "", root: str = "") -> list[str]:
    """What must never be in a skill: secrets, home paths, this session's trivia, and claims
    that a tool is broken (a lesson about the agent's own failure, not about the problem)."""
    joined, out = "\n".join(texts), []
    if "[REDACTED" in joined:
        out.append("it copies a [REDACTED] marker from the session; describe the step without that value")
    kinds = sorted(set(re.findall(r"\[REDACTED:([\w-]+)\]", scrub(joined))) -
                   set(re.findall(r"\[REDACTED:([\w-]+)\]", joined)))
    if kinds:
        out.append(f"it contains what looks like a secret or personal data ({', '.join(kinds)}); "
                   "never put those in a skill")
    if _HOME.search(joined) or scrub(joined).count("~") > joined.count("~"):
        out.append("it contains an absolute home path; use a path relative to the project or a placeholder")
    if session_id and session_id in joined:
        out.append("it mentions this session's id; leave session details out")
    if len(root) > 3 and "/" in root and root in joined:
        out.append(f"it mentions this project's path ({root}); use paths relative to the project")
    if (m := _TRIVIA.search(joined)) is not None:
        out.append(f'"{m.group(0)}" is session-specific (an id, hash or timestamp); leave it out')
    if (m := _BROKEN.search(joined)) is not None:
        out.append(f'"{m.group(0)}" claims a tool is broken; skills hold lessons about the problem, not the tools')
    return out


def parse_reply(text: str, session_id: str = "", root: str = "") -> tuple[dict | None, list[str]]:
    """The model's JSON object and its problems ([] when usable)."""
    cleaned = re.sub(r"```(?:json)?", "", text)
    decoder, start = json.JSONDecoder(), cleaned.find("{")
    while start >= 0:
        try:
            obj, _ = decoder.raw_decode(cleaned, start)
            if isinstance(obj, dict):
                break
        except ValueError:
            pass
        start = cleaned.find("{", start + 1)
    else:
        return None, ["the answer is not a JSON object; answer with one JSON object only"]
    if _falsy(obj.get("worth_keeping", "name" not in obj)):
        return obj, []
    return obj, validate_fields(obj, session_id, root)


def _falsy(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() in ("false", "no"))


# ---- the whole step ------------------------------------------------------------------------------


def synthesize(records: list[dict], model: Any, library: Any, session_id: str,
               budget_tokens: int = 6000) -> SynthesisResult:
    """Read a session's records and propose a skill (or say why not). Writes nothing.
    Model errors propagate as ModelError (a JoeError with a user-facing line)."""
    turns, start = read_turns(scrub_obj(records))
    why = refusal(turns)
    if why:
        return SynthesisResult(None, why)
    system, request, repair = _prompt_parts()
    budget = min(budget_tokens, getattr(model, "num_ctx", None) or budget_tokens)
    budget -= min(REPLY_RESERVE, budget // 4) + estimate(system) + estimate(request)
    request = request.replace("{digest}", fit_digest(kept_turns(turns), budget))
    root = str(start.get("root") or start.get("project_root") or "")
    messages = [Message("system", system), Message("user", request)]
    reply = _ask(model, messages)
    data, errors = parse_reply(reply, session_id, root)
    if errors:  # one repair round: the model sees exactly what was wrong
        bullets = "\n".join(f"- {e}" for e in errors)
        messages += [Message("assistant", scrub(reply)), Message("user", repair.replace("{errors}", bullets))]
        data, errors = parse_reply(_ask(model, messages), session_id, root)
        if errors:
            return SynthesisResult(None, f"the model's proposal was malformed twice ({errors[0]}); nothing proposed")
    assert data is not None
    if _falsy(data.get("worth_keeping", "name" not in data)):
        reason = " ".join(scrub(str(data.get("reason") or "no reason given")).split())
        return SynthesisResult(None, f"the model found nothing worth keeping: {reason}")
    return _to_proposal(data, library, session_id)


def _prompt_parts() -> tuple[str, str, str]:
    text = resources.files("joe_agent.prompts").joinpath("synthesize.md").read_text(encoding="utf-8")
    system, rest = text.split("<!-- request -->", 1)
    request, repair = rest.split("<!-- repair -->", 1)
    return system.strip(), request.strip(), repair.strip()


def _ask(model: Any, messages: list[Message]) -> str:
    return "".join(chunk.content for chunk in model.stream(messages, None))


def _to_proposal(d: dict[str, Any], library: Any, session_id: str) -> SynthesisResult:
    name, today = d["name"], date.today()
    fields = {k: [" ".join(x.split()) for x in d.get(k) or []] for k in ("triggers", "steps", "pitfalls")}
    existing, why = find_covering(library, name, fields["triggers"])
    if existing is not None:
        return _update(existing, why, fields, session_id)
    title = " ".join(str(d.get("title") or name.replace("-", " ").capitalize()).split())
    skill = Skill(name=name, description=" ".join(d["description"].split()), title=title,
                  metadata={"created": today.isoformat(), "source": f"session {session_id}"},
                  origin="synthesized", path=Path(name) / "SKILL.md", fmt="agent-skills", files=[],
                  created=today, **fields)
    return SynthesisResult(Proposal("new", render_skill(skill), name, reason=f"a new skill: {skill.description}",
                                    session=session_id))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
