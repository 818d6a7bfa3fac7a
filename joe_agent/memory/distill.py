"""The background distiller: corrections in, preference rules out, never blocking the prompt.

A correction (what the person asked, the diff /undo reverted, what they said they wanted
instead) is appended to `$JOE_HOME/corrections.jsonl` at once, already scrubbed, and a daemon
thread asks the model for a rule. If joe exits first, the correction stays in the queue and
`Distiller.resume()` picks it up at the next start. The queue is an append-only log: a
correction line, later a `{"done": id, ...}` line; a torn last line is repaired on open.
Only one process distils at a time (an inter-process lock beside the queue), so two sessions
never turn the same correction into two rules.

The model answers NONE or {"rule", "merge_with", "scope"}. The answer is checked, scrubbed
again and screened by the guard: flagged text is stored with a `[needs review]` marker and
never injected until confirmed. A rule that says the same as an existing one reinforces it
(its `seen` count, date and session move on; its wording, maybe the person's, is never
rewritten). The model's merge_with is taken when the two rules share some words; a
deterministic similarity check catches the near-duplicates it misses. When the target
rules.md cannot be parsed, the rule goes to rules.pending.md and the person is told.

A correction that names the skills its turn used (UndoFlow reads them from the ledger) is also
asked about once more: whether one of those skills needs a repair (memory/amend.py queues the
proposal for the person's review; nothing changes a skill here).

Note for callers: on a single-slot Ollama a distil request evicts the session's KV cache once;
/undo is rare enough that this is accepted rather than delaying rules to the session end.
"""
from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from joe_agent.errors import JoeError, StoreError
from joe_agent.memory import guard
from joe_agent.memory import rules as R
from joe_agent.memory.scrub import scrub
from joe_agent.memory.store import append_line, locked, repair_torn_tail
from joe_agent.messages import Message

QUEUE_NAME = "corrections.jsonl"
MAX_DIFF_CHARS = 6000  # what the model sees of the reverted diff
MAX_FIELD_CHARS = 20000  # what the queue keeps of any one field
DUPLICATE_AT = 0.6  # word-set overlap from which two rules are the same rule
MODEL_MERGE_MIN = 0.2  # the model's merge_with is believed only with this much word overlap
_STOP = {"a", "an", "the", "to", "of", "in", "on", "for", "and", "or", "with", "is", "are", "be",
         "it", "its", "this", "that", "these", "those", "than", "as", "at", "by", "from", "into", "so",
         "when", "if", "any", "all", "you", "your", "i", "me", "my", "we", "our", "should", "can"}


_NEGATIONS = {"not", "never", "don't", "dont", "no", "avoid", "without", "doesn't", "nor", "stop"}
_PIVOTS = {"over", "instead", "rather"}


@dataclass
class Correction:
    session: str
    turn: int
    root: str  # the project folder (routing only: never sent to the model)
    request: str
    diff: str
    answer: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    ts: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    skills: list[dict] = field(default_factory=list)  # {"name", "version", "how"}: what the turn used

    def scrubbed(self) -> "Correction":
        cap = MAX_FIELD_CHARS
        return Correction(self.session, self.turn, self.root, scrub(self.request)[:cap],
                          scrub(self.diff)[:cap], scrub(self.answer)[:cap], self.id, self.ts, list(self.skills))


@dataclass
class Decision:
    rule: str  # "" when the model answered NONE
    merge_with: int | None = None
    scope: str = "project"


@dataclass
class DistillResult:
    correction_id: str
    outcome: str  # added | merged | flagged | pending | none | unparsed | failed | amend-<outcome>
    rule: str = ""
    scope: str = ""
    message: str = ""  # one line for the person


# ---- the queue ----------------------------------------------------------------------------

class CorrectionQueue:
    """Append-only JSONL: correction lines and `done` lines."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def add(self, c: Correction) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        append_line(self.path, json.dumps({"v": 1, **asdict(c.scrubbed())}, ensure_ascii=False))

    def mark_done(self, cid: str, outcome: str) -> None:
        append_line(self.path, json.dumps({"v": 1, "done": cid, "outcome": outcome,
                                           "ts": datetime.now(timezone.utc).isoformat(timespec="seconds")}))

    def pending(self, everything: bool = False) -> list[Correction]:
        """Corrections without a done line (or all of them), oldest first (corrupt lines skipped)."""
        repair_torn_tail(self.path)
        try:
            text = self.path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as e:
            raise StoreError(f"could not read {self.path}: {e.strerror or e}") from e
        items: dict[str, Correction] = {}
        for line in text.splitlines():
            rec = _json(line)
            if "done" in rec and not everything:
                items.pop(str(rec["done"]), None)
            elif "id" in rec:
                try:  # a line from before `skills` existed still loads
                    items[str(rec["id"])] = Correction(**{k: rec[k] for k in Correction.__dataclass_fields__
                                                          if k in rec or k != "skills"})
                except (KeyError, TypeError):
                    continue
        return list(items.values())


def _json(line: str) -> dict[str, Any]:
    try:
        rec = json.loads(line)
    except ValueError:
        return {}
    return rec if isinstance(rec, dict) else {}


# ---- similarity ---------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    out = []
    for w in re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("\u2019", "'")):
        if w in _STOP:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                w = w[: -len(suffix)]
                break
        out.append(w)
    return out


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def word_overlap(a: str, b: str) -> float:
    return _jaccard(set(_words(a)), set(_words(b)))


def similarity(a: str, b: str) -> float:
    """How surely two rules say the same thing (0..1): their word-set overlap, except that a
    rule and its negation, or "prefer A over B" and "prefer B over A", are never the same."""
    wa, wb = _words(a), _words(b)
    if bool(_NEGATIONS & set(wa)) != bool(_NEGATIONS & set(wb)) or _swapped(wa, wb):
        return 0.0
    return _jaccard(set(wa), set(wb))


def _swapped(wa: list[str], wb: list[str]) -> bool:
    sa, sb = _sides(wa), _sides(wb)
    if sa is None or sb is None:
        return False
    return bool(sa[0] & sb[1]) and bool(sa[1] & sb[0])


def _sides(words: list[str]) -> tuple[set[str], set[str]] | None:
    """The two words before and after "over" / "instead (of)" / "rather (than)"."""
    for i, w in enumerate(words):
        if w in _PIVOTS:
            return set(words[max(0, i - 2):i]), set(words[i + 1:i + 3])
    return None


def find_duplicate(text: str, rules: list[R.Rule]) -> R.Rule | None:
    scored = [(similarity(text, r.text), r) for r in rules]
    best = max(scored, key=lambda s: s[0], default=(0.0, None))
    return best[1] if best[0] >= DUPLICATE_AT else None


# ---- the model's answer -------------------------------------------------------------------

def parse_decision(reply: str) -> Decision:
    """NONE -> Decision(""); a JSON object -> Decision; anything else raises ValueError."""
    from joe_agent.memory.jsonreply import first_object

    text = re.sub(r"```(?:json)?", "", reply or "").strip()
    if re.match(r"^\W*none\b", text, re.I):
        return Decision("")
    obj = first_object(text, "rule")
    if obj is not None:
        return _decision_from(obj)
    raise ValueError(f"no NONE and no JSON rule in the reply: {text[:80]!r}")


def _decision_from(obj: dict) -> Decision:
    rule = obj.get("rule")
    if rule is None or (isinstance(rule, str) and rule.strip().upper() in ("", "NONE")):
        return Decision("")
    merge = obj.get("merge_with")
    if isinstance(merge, str) and merge.strip().isdigit():
        merge = int(merge.strip())
    merge = merge if isinstance(merge, int) and not isinstance(merge, bool) else None
    scope = str(obj.get("scope") or "project").strip().lower()
    return Decision(R.clean_rule_text(str(rule)), merge, scope if scope in R.SCOPES else "project")


def build_messages(c: Correction, existing: list[R.Rule]) -> list[Message]:
    template = resources.files("joe_agent.prompts").joinpath("distill_rule.md").read_text("utf-8")
    listed = "\n".join(f"{i}. {r.text}" for i, r in enumerate(existing, 1)) or "(none yet)"
    c = c.scrubbed()  # again: the queue may have been written by an older joe or by hand
    diff = c.diff if len(c.diff) <= MAX_DIFF_CHARS else c.diff[:MAX_DIFF_CHARS] + "\n[... diff cut ...]"
    values = {"rules": listed, "request": c.request, "diff": diff or "(no text diff)",
              "answer": c.answer or "(no answer)"}
    prompt = re.sub(r"\{\{(\w+)\}\}", lambda m: values.get(m.group(1), m.group(0)), template)
    return [Message("user", prompt)]


# ---- the distiller ------------------------------------------------------------------------

class Distiller:
    """`model` is a ChatModel or a function returning one (called in the worker thread, so a
    model that is still connecting never delays the caller). `notify` gets one line per
    result, from the worker thread."""

    def __init__(self, home: Path, model: Any, notify: Callable[[str], None] | None = None,
                 lock_timeout: float = 600.0, amend: bool = True) -> None:
        self.home, self.amend = Path(home), amend  # amend: also propose fixes to the skills a turn used
        self.queue = CorrectionQueue(self.home / QUEUE_NAME)
        self._model, self.notify, self.lock_timeout = model, notify, lock_timeout
        self.results: list[DistillResult] = []
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again = False

    def submit(self, c: Correction) -> None:
        """Queue the correction (scrubbed) and distil it in the background. Returns at once."""
        self.queue.add(c)
        self._kick()

    def resume(self) -> bool:
        """At start-up: distil corrections (and skill fixes) an earlier session left. True if any."""
        if not self.queue.pending() and not self._amend_todo(check=True):
            return False
        self._kick()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background work (tests, a clean exit). True when it finished."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _kick(self) -> None:
        with self._guard:
            self._again = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="joe-distiller", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            with self._guard:
                if not self._again:
                    self._thread = None if self._thread is threading.current_thread() else self._thread
                    return
                self._again = False
            try:
                self.run_pending()
            except JoeError as e:  # the queue stays; the next start tries again
                self._tell(DistillResult("", "failed", message=f"rules: {e}"))
            except Exception as e:  # a bug must not kill the REPL from a thread
                self._tell(DistillResult("", "failed", message=f"rules: distiller failed: {type(e).__name__}: {e}"))

    def run_pending(self) -> list[DistillResult]:
        """Distil every pending correction, one process at a time. Stops at a model error
        (the rest stay queued)."""
        done: list[DistillResult] = []
        with locked(self.queue.path.with_name(QUEUE_NAME + ".work"), timeout=self.lock_timeout):
            for c in self.queue.pending():
                result = self.distill(c)
                self._tell(result)
                done.append(result)
                if result.outcome == "failed":
                    break
                self.queue.mark_done(c.id, result.outcome)
            if self.amend and not any(r.outcome == "failed" for r in done):
                done += self._amend_skills()
        return done

    def _amend_skills(self) -> list[DistillResult]:
        """The second question about each correction (memory/amend.py): did a skill it used
        lead the agent astray? Tracked apart from the rule, so a retry never re-adds a rule."""
        from joe_agent.memory.amend import amend_corrections

        out = []
        for r in amend_corrections(self.home, self._amend_todo(), self._get_model):
            out.append(DistillResult(r.correction_id, f"amend-{r.outcome}", message=r.message))
            self._tell(out[-1])
        return out

    def _amend_todo(self, check: bool = False) -> list[Correction]:
        todo = [c for c in self.queue.pending(everything=True) if c.skills] if self.amend else []
        if check and todo:  # the amendments queue is read only when some correction names a skill
            from joe_agent.memory.amend import unconsidered

            return [c for c, _ in unconsidered(self.home, todo)]
        return todo

    def _get_model(self) -> Any:
        return self._model() if callable(self._model) and not hasattr(self._model, "stream") else self._model

    def distill(self, c: Correction) -> DistillResult:
        root = Path(c.root) if c.root else None
        if root is not None and not root.is_dir():  # never recreate a deleted project for a rule
            return DistillResult(c.id, "none", message=f"rules: the project folder {root} is gone; nothing learned")
        files = R.load_rules(self.home, root)
        existing = [r for r in R.all_rules(files) if r.active]
        try:
            reply = "".join(ch.content for ch in self._get_model().stream(build_messages(c, existing), None))
        except JoeError as e:  # unreachable, not pulled, a broken stream: keep it queued
            return DistillResult(c.id, "failed", message=f"rules: no rule yet ({e}); joe tries again next start")
        try:
            decision = parse_decision(reply)
        except ValueError:
            return DistillResult(c.id, "unparsed", message="rules: the model's answer held no rule; nothing learned")
        text = R.clean_rule_text(scrub(decision.rule))
        if not text:
            return DistillResult(c.id, "none", message="rules: nothing general to learn from that correction")
        return self._store(c, text, decision, existing, R.all_rules(files), root)

    def _store(self, c: Correction, text: str, d: Decision, existing: list[R.Rule],
               every: list[R.Rule], root: Path | None) -> DistillResult:
        findings = guard.check_text(text)
        target = find_duplicate(text, [r for r in every if not r.active]) if findings else None
        if not findings:
            picked = existing[d.merge_with - 1] if d.merge_with and 1 <= d.merge_with <= len(existing) else None
            target = picked if picked and word_overlap(text, picked.text) >= MODEL_MERGE_MIN else None
            target = target or find_duplicate(text, every)
        scope = "project" if d.scope == "project" and root is not None else "global"
        scope = target.scope if target is not None else scope
        rule = R.Rule(text, scope, R.today(), c.session, flagged=guard.summary(findings), needs_review=bool(findings))
        try:
            if target is not None:
                return self._reinforce(c, target, root)
            return self._add(c, rule, R.rules_path(scope, self.home, root))
        except R.RulesFileBroken as e:
            pending = R.save_pending(R.rules_path(scope, self.home, root), rule)
            return DistillResult(c.id, "pending", text, scope,
                                 f"rules: {e}; the new rule was saved to {pending} and moves in once the file "
                                 f"parses (joe rules edit {scope})")

    def _add(self, c: Correction, rule: R.Rule, path: Path) -> DistillResult:
        R.drain_pending(path, rule.scope)
        R.append_rule(path, rule.scope, rule)
        if rule.needs_review:
            return DistillResult(c.id, "flagged", rule.text, rule.scope,
                                 f"rules: held back for your review ({rule.flagged}): {rule.text!r}; "
                                 "`joe rules` lists it, `joe rules confirm N` uses it")
        return DistillResult(c.id, "added", rule.text, rule.scope, f"rules: learned ({rule.scope}): {rule.text}")

    def _reinforce(self, c: Correction, target: R.Rule, root: Path | None) -> DistillResult:
        def update(r: R.Rule) -> R.Rule:
            r.seen, r.date, r.session = r.seen + 1, R.today(), c.session
            return r

        # a line the person wrote is reinforced by leaving it exactly as it is
        path = R.rules_path(target.scope, self.home, root)
        if target.by_joe and not R.replace_rule(path, target.scope, target.text, update):
            return self._add(c, R.Rule(target.text, target.scope, R.today(), c.session), path)
        return DistillResult(c.id, "merged", target.text, target.scope,
                             f"rules: already known, reinforced ({target.scope}): {target.text}")

    def _tell(self, result: DistillResult) -> None:
        self.results.append(result)
        if self.notify is not None and result.message:
            try:
                self.notify(result.message)
            except Exception:  # a broken notifier must not lose the queue's bookkeeping
                pass
