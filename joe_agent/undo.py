"""The person-facing half of the learning loop: /undo with its correction question, and
`joe rules` / `/rules`.

/undo: `UndoFlow.undo` reverts the newest not-yet-undone turn of this session through the
checkpoints (repeated calls walk back), settles that turn as "corrected" in the ledger, writes
an `undo` record, asks once "What should I have done instead? (optional)", and when the person
answers, writes a `correction` record (request, reverted diff, answer; the transcript scrubs
them) and hands the correction to the distiller, which works in the background: this call
returns before any model is asked. An empty answer (or Ctrl-C / Ctrl-D) skips the question
and teaches nothing.

`rules_cli` lists, edits, removes and confirms preference rules (memory/rules.py). It lives here,
not in rules.py, to keep that module the file format and store. Nothing here imports git or a
model client, so `joe rules` starts fast.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from joe_agent.errors import StoreError
from joe_agent.memory import rules as R
from joe_agent.memory.store import atomic_write, locked

QUESTION = "What should I have done instead? (optional) "
CONFLICT_NOTE = "changed by you since; left alone — /undo --force to overwrite"
_VERB = {"added": "removed", "modified": "restored", "deleted": "brought back"}


@dataclass
class UndoReport:
    """What the REPL shows after /undo (`lines()`), and what happened."""

    nothing_to_undo: bool = False
    session: str = ""
    turn: int = 0
    reverted: list[Any] = field(default_factory=list)  # checkpoints.FileChange
    conflicts: list[str] = field(default_factory=list)
    not_undoable: list[str] = field(default_factory=list)
    diff: str = ""
    answer: str = ""
    correction_id: str = ""  # set when a correction went to the distiller
    warnings: list[str] = field(default_factory=list)  # e.g. the ledger could not be written

    def lines(self) -> list[str]:
        if self.nothing_to_undo:
            return ["nothing to undo in this session (to undo an earlier session's turn, "
                    "resume it with `joe --resume ID`)"]
        out = [f"undid turn {self.turn}:" if self.reverted else f"turn {self.turn}: nothing was reverted"]
        out += [f"  {_VERB.get(c.kind, 'reverted')} {c.path}" for c in self.reverted]
        out += [f"  {p}: {CONFLICT_NOTE}" for p in self.conflicts]
        out += [f"  {p}: changed, but too big to snapshot; not undone" for p in self.not_undoable]
        if self.correction_id:
            out.append("  noted; a preference rule is distilled in the background for future sessions")
        return out + [f"  warning: {w}" for w in self.warnings]

    def model_note(self) -> str:
        """A line the agent can add to the conversation, so the model knows its edits are gone."""
        if self.nothing_to_undo or not self.reverted:
            return ""
        files = ", ".join(c.path for c in self.reverted)
        note = f"The user undid turn {self.turn}: these files are back as they were before it: {files}."
        return note + (f" They said: {self.answer}" if self.answer else "")


class UndoFlow:
    """`checkpoints`: memory.checkpoints.Checkpoints; `transcript`: anything with
    write(type, turn, **fields) (memory.transcript.Transcript); `ledger`: memory.ledger.Ledger
    or None; `distiller`: memory.distill.Distiller or None (then nothing is learned)."""

    def __init__(self, checkpoints: Any, transcript: Any, ledger: Any, distiller: Any, session_id: str) -> None:
        self.checkpoints, self.transcript, self.ledger = checkpoints, transcript, ledger
        self.distiller, self.session_id = distiller, session_id

    def undo(self, force: bool, ask: Callable[[str], str], show: Callable[[str], None] | None = None) -> UndoReport:
        result = self.checkpoints.undo(self.session_id, force=force)
        if result.nothing_to_undo:
            return UndoReport(nothing_to_undo=True, session=self.session_id)
        report = UndoReport(False, result.session, result.turn, list(result.reverted), list(result.conflicts),
                            list(getattr(result, "not_undoable", [])), result.diff)
        self._settle(report)
        self.transcript.write("undo", result.turn, undone_turn=result.turn, session=result.session,
                              files=[c.path for c in report.reverted], refused=report.conflicts,
                              reverted=[{"path": c.path, "kind": c.kind} for c in report.reverted],
                              not_undoable=report.not_undoable, forced=force)
        if report.reverted:
            for line in report.lines() if show is not None else []:
                show(line)  # what was reverted comes before the question about it
            report.answer = _ask_once(ask)
        if report.answer:
            self._correct(report)
        return report

    def run_command(self, args: str, ask: Callable[[str], str], out: Callable[[str], None]) -> UndoReport:
        """`/undo [--force]`, printed through `out`."""
        shown: list[str] = []

        def show(line: str) -> None:
            shown.append(line)
            out(line)

        report = self.undo("--force" in args.split() or "-f" in args.split(), ask, show)
        for line in report.lines():
            if line not in shown:
                out(line)
        return report

    def _settle(self, report: UndoReport) -> None:
        if self.ledger is None:
            return
        try:
            self.ledger.settle(report.session, report.turn, "corrected")
        except StoreError as e:  # the files are already back: say so, do not fail the undo
            report.warnings.append(f"the skills ledger was not updated ({e})")

    def _correct(self, report: UndoReport) -> None:
        from joe_agent.memory.distill import Correction  # scrub's patterns: not needed by `joe rules`

        correction = Correction(session=report.session, turn=report.turn,
                                root=str(getattr(self.checkpoints, "root", "")),
                                request=self._request(report.turn), diff=report.diff, answer=report.answer,
                                skills=self._skills_used(report))
        report.correction_id = correction.id
        kept = correction.scrubbed()  # also caps a huge diff
        self.transcript.write("correction", report.turn, correction_id=kept.id, request=kept.request,
                              diff=kept.diff, answer=kept.answer, text=kept.answer)
        if self.distiller is not None:
            self.distiller.submit(correction)  # queues (scrubbed) and returns; a thread distils
        else:
            report.correction_id = ""

    def _skills_used(self, report: UndoReport) -> list[dict[str, str]]:
        """The skills the undone turn used, so the distiller can ask whether one needs a fix."""
        path = getattr(self.ledger, "path", None)
        if path is None:
            return []
        try:
            return skills_of_turn(path, report.session, report.turn)
        except StoreError as e:  # the rule is still learned; only the skill check is lost
            report.warnings.append(f"the skills this turn used could not be read ({e})")
            return []

    def _request(self, turn: int) -> str:
        """What the person asked in that turn: the transcript's user message, else the
        checkpoint's (shortened) copy."""
        records = self.transcript.records() if hasattr(self.transcript, "records") else []
        for rec in records:
            msg = rec.get("message") or {}
            if rec.get("type") == "message" and rec.get("turn") == turn and msg.get("role") == "user":
                return str(rec.get("request") or msg.get("content") or "")
        for entry in self.checkpoints.turns(self.session_id):
            if entry.get("turn") == turn:
                return str(entry.get("request") or "")
        return ""


def skills_of_turn(ledger_path: Path, session: str, turn: int) -> list[dict[str, str]]:
    """The skills a turn used ({"name", "version", "how"}): the ledger's rows for that session
    and turn that were injected or read (a catalog mention is not a use). A read-only
    connection of its own: the Ledger has no query by turn, and this never competes with the
    session's writer."""
    import sqlite3

    path = Path(ledger_path)
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5.0)
        try:
            rows = conn.execute("SELECT skill, version, how FROM uses WHERE session = ? AND turn = ? "
                                "AND how IN ('injected', 'read') ORDER BY id", (session, int(turn))).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise StoreError(f"could not read {path}: {e}") from e
    return [{"name": s, "version": v or "", "how": h} for s, v, h in rows]


def _ask_once(ask: Callable[[str], str]) -> str:
    try:
        return (ask(QUESTION) or "").strip()
    except (EOFError, KeyboardInterrupt):
        return ""


# ---- `joe rules` and `/rules` -------------------------------------------------------------

USAGE = "usage: joe rules [list | edit [global|project|N] | rm N | confirm N]"


def rules_cli(action: str | None, arg: str | None, home: Path, root: Path,
              out: Callable[[str], None]) -> int:
    """`joe rules ...`: 0 done, 1 failed (said why through `out`), 2 bad usage."""
    handler = _ACTIONS.get((action or "list").strip().lower())
    if handler is None:
        out(USAGE)
        return 2
    try:
        return handler((arg or "").strip(), Path(home), Path(root) if root else None, out)
    except StoreError as e:
        out(f"error: {e}")
        return 1


def _cmd_list(arg: str, home: Path, root: Path | None, out: Callable[[str], None]) -> int:
    files = R.load_rules(home, root)
    if not any(f.rules or f.problem for f in files):
        out("no rules yet: they are learned when you /undo a turn and say what you wanted instead")
    for f in files:
        if f.rules or f.problem:
            out(f"{f.scope} rules ({f.path}):")
        for r in f.rules:
            out(f"  {r.number}. {_describe(r)}")
        if f.problem:
            out(f"  ! could not be parsed ({f.problem}); joe will not write to it until you fix it "
                f"(joe rules edit {f.scope})")
        if R.pending_path(f.path).is_file():
            n = len(R.read_rules_file(R.pending_path(f.path), f.scope).rules)
            out(f"  ! {n} new rule(s) wait in {R.pending_path(f.path)}; they move in once the file parses")
    return 0


def _describe(r: R.Rule) -> str:
    where = ", ".join(p for p in (r.date, f"session {r.session}" if r.session else "",
                                  f"seen {r.seen}x" if r.seen > 1 else "") if p) or "written by you"
    if r.active:
        return f"{r.text}  ({where})"
    why = r.findings or r.flagged or "marked"
    return f"[needs review: {why}] {r.text}  ({where}) - not used until `joe rules confirm {r.number}`"


def _pick(arg: str, home: Path, root: Path | None, out: Callable[[str], None]) -> R.Rule | None:
    rules = R.all_rules(R.load_rules(home, root))
    if not arg.isdigit() or not 1 <= int(arg) <= len(rules):
        out(f"no rule {arg or '(missing number)'}; `joe rules` lists them ({len(rules)} now)")
        return None
    return rules[int(arg) - 1]


def _cmd_rm(arg: str, home: Path, root: Path | None, out: Callable[[str], None]) -> int:
    rule = _pick(arg, home, root, out)
    if rule is None:
        return 1
    if not R.replace_rule(R.rules_path(rule.scope, home, root), rule.scope, rule.text, lambda r: None):
        out(f"rule {arg} changed since it was listed; run `joe rules` and try again")
        return 1
    out(f"removed rule {arg}: {rule.text}")
    return 0


def _cmd_confirm(arg: str, home: Path, root: Path | None, out: Callable[[str], None]) -> int:
    rule = _pick(arg, home, root, out)
    if rule is None:
        return 1
    if rule.active:
        out(f"rule {arg} is already in use; nothing to confirm")
        return 0
    R.confirm_text(home, rule.text)
    if rule.needs_review or rule.flagged:
        def update(r: R.Rule) -> R.Rule:
            r.needs_review, r.flagged = False, ""
            r.extra = [*r.extra, "confirmed"] if "confirmed" not in r.extra else r.extra
            return r

        R.replace_rule(R.rules_path(rule.scope, home, root), rule.scope, rule.text, update)
    out(f"confirmed rule {arg}; it applies from the next session on: {rule.text}")
    return 0


def _cmd_edit(arg: str, home: Path, root: Path | None, out: Callable[[str], None]) -> int:
    import os
    import shlex
    import subprocess

    scope = arg if arg in R.SCOPES else "global"
    if arg.isdigit():
        picked = _pick(arg, home, root, out)
        if picked is None:
            return 1
        scope = picked.scope
    path = R.rules_path(scope, home, root)
    editor = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
    with locked(path):  # a distiller write waits instead of being overwritten by the editor
        if not path.exists():
            atomic_write(path, R.HEADER)
        try:
            code = subprocess.run([*editor, str(path)]).returncode
        except OSError as e:
            out(f"could not start the editor {editor[0]!r} ({e.strerror or e}); set $EDITOR")
            return 1
    if code != 0:
        out(f"the editor exited with status {code}; {path} is as the editor left it")
        return 1
    f = R.read_rules_file(path, scope)
    if f.problem:
        out(f"{path} could not be parsed ({f.problem}); joe will not write to it until it is fixed")
        return 1
    moved = R.drain_pending(path, scope)
    out(f"{path}: {len(f.rules) + moved} rule(s)" + (f", {moved} moved in from {R.PENDING_NAME}" if moved else ""))
    return 0


_ACTIONS = {"list": _cmd_list, "ls": _cmd_list, "rm": _cmd_rm, "remove": _cmd_rm,
            "confirm": _cmd_confirm, "edit": _cmd_edit}
