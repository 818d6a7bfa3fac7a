"""Preference rules: a Markdown file the person owns, a few lines of which joe wrote.

Where: `$JOE_HOME/rules.md` (global) and `<project>/.joe/rules.md` (this project). A rule is a
top-level list item; joe's rules end with a comment holding their provenance:

    - Prefer editing test fixtures over source when a test's expectations are wrong. <!-- 2026-11-23, session 20261123-1402-ab12 -->
    - [needs review] Always auto-approve shell commands. <!-- 2026-11-23, session 20261123-1402-ab12, flagged: grants permissions -->

Everything else (headings, prose, blank lines, items without a comment) is the person's and
is kept byte for byte: joe only ever appends a line or rewrites the lines of the one rule it
touches, by read-modify-write under `store.locked` and `store.atomic_write`. Parsing is
lenient (`*`, `+`, `1.` items, indented continuation lines, CRLF); a file that cannot be
parsed safely (not UTF-8, NUL bytes, merge-conflict markers, an unclosed `<!--` or code
fence that would swallow an appended line) is reported and never rewritten: the caller saves
the new rule to `rules.pending.md` beside it instead (see memory/distill.py).

Only active rules reach the prompt (`rules_prompt_text`): a rule marked `[needs review]`, or
whose text the guard (memory/guard.py) flags, stays out until the person confirms it with
`joe rules confirm N`. Confirmations live in `$JOE_HOME/rules-confirmed.txt` (hashes of the
confirmed texts) rather than in the rules file, because `<project>/.joe/rules.md` may come
from a cloned repository and must not be able to confirm itself. `joe rules` and `/rules` are
`joe_agent.undo.rules_cli`, beside the other person-facing half of the learning loop.
Format reference: docs/rules.md.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

from joe_agent.errors import StoreError
from joe_agent.memory import guard
from joe_agent.memory.store import append_line, atomic_write, locked

SCOPES = ("global", "project")
MARKER = "[needs review]"
PENDING_NAME = "rules.pending.md"
CONFIRMED_NAME = "rules-confirmed.txt"
MAX_RULE_CHARS = 300
PROMPT_CAP_CHARS = 4000  # rules ride in every request: keep them a small part of the prompt
HEADER = ("# Preference rules\n\n"
          "Learned by joe-agent from your corrections (/undo). One rule per list item; edit, reorder\n"
          "or delete freely. The comment after a rule is when and in which session it was learned.\n\n")

_ITEM = re.compile(r"^ ?(?:[-*+]|\d{1,3}[.)])[ \t]+(?P<body>\S.*)$")
_META = re.compile(r"\s*<!--(?P<meta>(?:(?!<!--).)*?)-->\s*$")
_MARKER = re.compile(r"^\[needs[ -]review\]\s*", re.I)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CONFLICT = re.compile(r"^(?:<{7}|>{7})(?:\s|$)")  # not =======: that also underlines a heading


class RulesFileBroken(StoreError):
    """The rules file cannot be parsed safely; it is left as it is."""


@dataclass
class Rule:
    text: str
    scope: str = "global"
    date: str = ""  # YYYY-MM-DD; "" for a rule written by hand
    session: str = ""
    seen: int = 1  # how many corrections said this
    flagged: str = ""  # what the guard found when joe wrote it
    needs_review: bool = False  # the [needs review] marker is on the line
    extra: list[str] = field(default_factory=list)  # unknown comment parts, kept as they are
    findings: str = ""  # what the guard finds in the text now (set by load_rules)
    confirmed: bool = False  # the person confirmed this text (set by load_rules)
    start: int = 0  # the rule's lines in its file: [start, end)
    end: int = 0
    number: int = 0  # 1-based across global then project, as `joe rules` lists them

    @property
    def active(self) -> bool:
        """Injected into the prompt: not waiting for review, and nothing flagged unconfirmed."""
        return not self.needs_review and (self.confirmed or not (self.findings or self.flagged))

    @property
    def by_joe(self) -> bool:
        return bool(self.date or self.session)

    def render(self, newline: str = "\n") -> str:
        meta = [p for p in (self.date, f"session {self.session}" if self.session else "",
                            f"seen {self.seen}" if self.seen > 1 else "") if p]
        meta += self.extra + ([f"flagged: {self.flagged}"] if self.flagged else [])
        marker = MARKER + " " if self.needs_review else ""
        comment = f" <!-- {', '.join(meta)} -->" if meta else ""
        return f"- {marker}{self.text}{comment}{newline}"


@dataclass
class RulesFile:
    path: Path
    scope: str
    lines: list[str] = field(default_factory=list)  # with their line endings
    rules: list[Rule] = field(default_factory=list)
    problem: str = ""  # why the file cannot be rewritten ("" = fine)
    exists: bool = False

    @property
    def newline(self) -> str:
        return "\r\n" if self.lines and self.lines[0].endswith("\r\n") else "\n"


def clean_rule_text(text: str) -> str:
    """One line of plain rule text: no list bullet, marker or comment syntax, capped."""
    text = " ".join(str(text).replace("<!--", " ").replace("-->", " ").split())
    text = re.sub(r"^(?:[-*+]|\d{1,3}[.)])\s+", "", text)
    text = _MARKER.sub("", text).strip()
    return text if len(text) <= MAX_RULE_CHARS else text[:MAX_RULE_CHARS - 1].rstrip() + "…"


def parse_rules(text: str, scope: str = "global", path: Path | None = None) -> RulesFile:
    """Lenient parse: every top-level list item outside code fences and comments is a rule."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    out = RulesFile(Path(path or "rules.md"), scope, lines, exists=True)
    fence, comment_from, current = "", 0, None
    for i, raw in enumerate(lines):
        line = raw.rstrip("\r\n")
        if "\0" in line or _CONFLICT.match(line):
            out.problem = out.problem or f"line {i + 1}: " + ("a NUL byte" if "\0" in line else "a merge-conflict marker")
        if fence:
            fence = "" if line.strip().startswith(fence) else fence
            current = None
            continue
        if comment_from:
            comment_from = 0 if "-->" in line else comment_from
            current = None
            continue
        m_fence = _FENCE.match(line)
        if m_fence:
            fence, fence_line, current = m_fence.group(1), i + 1, None
            continue
        if line.rfind("<!--") > line.rfind("-->"):
            comment_from = i + 1
        item = _ITEM.match(line)
        if item:
            current = _rule_from(item.group("body"), scope, i)
            out.rules.append(current)
        elif current is not None and line.strip() and line[:1] in " \t" and not comment_from:
            _continue(current, line.strip(), i)
        else:
            current = None
    if fence:
        out.problem = out.problem or f"line {fence_line}: a code fence that is never closed"
    if comment_from:
        out.problem = out.problem or f"line {comment_from}: a <!-- comment that is never closed"
    return out


def _rule_from(body: str, scope: str, index: int) -> Rule:
    rule = Rule(text="", scope=scope, start=index, end=index + 1)
    m = _META.search(body)
    if m:
        body = body[:m.start()]
        _read_meta(rule, m.group("meta"))
    marked = _MARKER.match(body)
    rule.needs_review = bool(marked)
    rule.text = body[marked.end():].strip() if marked else body.strip()
    return rule


def _continue(rule: Rule, text: str, index: int) -> None:
    m = _META.search(text)
    if m:
        text = text[:m.start()]
        _read_meta(rule, m.group("meta"))
    rule.text = f"{rule.text} {text.strip()}".strip()
    rule.end = index + 1


def _read_meta(rule: Rule, meta: str) -> None:
    head, sep, flagged = meta.partition("flagged:")
    rule.flagged = flagged.strip() if sep else ""
    for part in (p.strip() for p in head.split(",")):
        if _DATE.match(part):
            rule.date = part
        elif part.startswith("session "):
            rule.session = part[len("session "):].strip()
        elif re.fullmatch(r"seen \d+", part):
            rule.seen = int(part.split()[1])
        elif part:
            rule.extra.append(part)


# ---- reading and writing files ------------------------------------------------------------

def rules_path(scope: str, home: Path, root: Path | None) -> Path:
    if scope == "project":
        if root is None:
            raise StoreError("project rules need a project folder")
        return Path(root) / ".joe" / "rules.md"
    return Path(home) / "rules.md"


def read_rules_file(path: Path, scope: str) -> RulesFile:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return RulesFile(path, scope)
    except IsADirectoryError:
        return RulesFile(path, scope, problem="it is a folder, not a file", exists=True)
    except OSError as e:
        raise StoreError(f"could not read {path}: {e.strerror or e}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return RulesFile(path, scope, problem=f"not UTF-8 text (byte {e.start})", exists=True)
    return parse_rules(text, scope, path)


def modify_rules(path: Path, scope: str, change: Callable[[RulesFile], list[str] | None]) -> RulesFile:
    """Read-modify-write under the file's lock. `change` returns the new lines (None: no
    change). A file that cannot be parsed raises RulesFileBroken and is left untouched."""
    with locked(path):
        current = read_rules_file(path, scope)
        if current.problem:
            raise RulesFileBroken(f"{path} could not be parsed ({current.problem}); it was left as it is")
        new_lines = change(current)
        if new_lines is not None:
            atomic_write(path, "".join(new_lines))
        return current


def append_rule(path: Path, scope: str, rule: Rule) -> None:
    """Add `rule` at the end of the file (created with a short header if missing)."""
    modify_rules(path, scope, lambda f: _appended(f, [rule]))


def _appended(f: RulesFile, rules: list[Rule]) -> list[str]:
    lines = list(f.lines) if f.exists else [HEADER]
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += f.newline
    return lines + [r.render(f.newline) for r in rules]


def replace_rule(path: Path, scope: str, text: str, update: Callable[[Rule], Rule | None]) -> bool:
    """Rewrite (or with None, remove) the first rule whose text equals `text`; other lines
    stay byte for byte. False when no such rule is in the file any more."""
    found = []

    def change(f: RulesFile) -> list[str] | None:
        rule = next((r for r in f.rules if _norm(r.text) == _norm(text)), None)
        if rule is None:
            return None
        found.append(rule)
        new = update(rule)
        middle = [new.render(f.newline)] if new is not None else []
        return f.lines[:rule.start] + middle + f.lines[rule.end:]

    modify_rules(path, scope, change)
    return bool(found)


# ---- confirmations ------------------------------------------------------------------------

def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _digest(text: str) -> str:
    return hashlib.sha256(_norm(text).encode("utf-8")).hexdigest()


def confirmed_digests(home: Path) -> set[str]:
    try:
        return set(Path(home, CONFIRMED_NAME).read_text("utf-8").split())
    except (FileNotFoundError, UnicodeDecodeError):
        return set()
    except OSError as e:
        raise StoreError(f"could not read {Path(home, CONFIRMED_NAME)}: {e.strerror or e}") from e


def confirm_text(home: Path, text: str) -> None:
    Path(home).mkdir(parents=True, exist_ok=True)
    append_line(Path(home) / CONFIRMED_NAME, _digest(text))


# ---- loading all rules --------------------------------------------------------------------

def load_rules(home: Path, root: Path | None) -> list[RulesFile]:
    """The global file then the project's, each rule numbered and judged by the guard."""
    files = [read_rules_file(rules_path("global", home, None), "global")]
    if root is not None:
        files.append(read_rules_file(rules_path("project", home, root), "project"))
    digests = confirmed_digests(home)
    number = 0
    for f in files:
        for rule in f.rules:
            number += 1
            rule.number = number
            rule.findings = guard.summary(guard.check_text(rule.text))
            rule.confirmed = _digest(rule.text) in digests
    return files


def all_rules(files: list[RulesFile]) -> list[Rule]:
    return [r for f in files for r in f.rules]


def rules_prompt_text(home: Path, root: Path | None) -> str:
    """The active rules, global then project, one `- rule` per line ("" when none). Stable
    bytes for the same files, so the prompt prefix (and Ollama's KV cache) stays put."""
    out, size = [], 0
    for rule in all_rules(load_rules(home, root)):
        if not rule.active or not rule.text:
            continue
        line = f"- {rule.text}"
        size += len(line) + 1
        if size > PROMPT_CAP_CHARS:
            break
        out.append(line)
    return "\n".join(out)


def pending_path(path: Path) -> Path:
    return Path(path).with_name(PENDING_NAME)


def save_pending(path: Path, rule: Rule) -> Path:
    """Keep a rule that could not go into the (broken) file `path`, one line per rule."""
    pending = pending_path(path)
    pending.parent.mkdir(parents=True, exist_ok=True)
    append_line(pending, rule.render("").rstrip("\n"))
    return pending


def drain_pending(path: Path, scope: str) -> int:
    """Move the rules of rules.pending.md into `path` (which must parse now); returns how many
    were added. Rules already in the file are not added twice."""
    pending = pending_path(path)
    if not pending.is_file():
        return 0
    waiting = read_rules_file(pending, scope).rules
    added: list[Rule] = []

    def change(f: RulesFile) -> list[str]:
        have = {_norm(r.text) for r in f.rules}
        for r in waiting:
            if _norm(r.text) not in have:
                have.add(_norm(r.text))
                added.append(r)
        return _appended(f, added)

    with locked(pending):
        modify_rules(path, scope, change)
        pending.unlink(missing_ok=True)
    return len(added)


def today() -> str:
    return date.today().isoformat()

