"""The pure text side of the history index (joe_agent/memory/history.py): transcript records
turned into the scrubbed, clipped rows it stores, and what a person types turned into FTS5
expressions that cannot be misread as FTS5 syntax. No database here, so all of it is testable
and reusable without SQLite.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from joe_agent.memory.scrub import scrub

MAX_TEXT = 16_000  # per entry: the head and tail of a huge tool output are what people search
MARK_OPEN, MARK_CLOSE, ELLIPSIS = "«", "»", "…"
MAX_TERMS = 32
_SURROGATE = re.compile(r"[\ud800-\udfff]")


@dataclass
class Entry:
    turn: int
    ts: str
    role: str
    name: str
    text: str


# ---- transcript records -> searchable entries ---------------------------------------------------

def _clean(text: str) -> str:
    """Scrubbed, and storable: lone surrogates (undecodable tool output) become U+FFFD."""
    return _SURROGATE.sub("\ufffd", scrub(text))


def _clip(text: str) -> str:
    text = text.replace(MARK_OPEN, "‹").replace(MARK_CLOSE, "›")  # « » are the highlight's
    half = MAX_TEXT // 2
    return text if len(text) <= MAX_TEXT else f"{text[:half]} {ELLIPSIS} {text[-half:]}"


def _call_text(call: dict[str, Any]) -> str:
    args = call.get("arguments")
    args = args.items() if isinstance(args, dict) else [("", args)]
    return " ".join([str(call.get("name") or "")] + [
        f"{k}={v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}" for k, v in args])


def record_entries(rec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(role, name, text) for what a record says worth finding again. `tool_call` records are
    skipped: the assistant message before them carries the same calls."""
    kind, msg = rec.get("type"), rec.get("message")
    parts: list[tuple[str, str, str]] = []
    if kind == "error":
        parts = [("error", str(rec.get("error_type") or ""), str(rec.get("message") or ""))]
    elif kind == "correction":
        parts = [("correction", "", str(rec.get("text") or ""))]
    elif kind == "message" and isinstance(msg, dict):
        role, content = msg.get("role"), str(msg.get("content") or "")
        if role == "user":  # `request` is what the person typed, before skill injections
            request = rec.get("request")
            parts = [("user", "", request if isinstance(request, str) else content)]
        elif role == "tool":
            parts = [("tool", str(msg.get("tool_name") or ""), content)]
        elif role == "assistant":
            parts = [("assistant", "", content)] + [
                ("tool_call", str(c.get("name") or ""), _call_text(c))
                for c in msg.get("tool_calls") or [] if isinstance(c, dict)]
    return [p for p in parts if p[2].strip()]


def parse_lines(data: bytes) -> tuple[list[Entry], str | None]:
    """Scrubbed entries from complete JSONL lines, and the project root when a session_start
    record is among them. Damaged lines are skipped, as transcript.read_records does."""
    entries, root = [], None
    for raw in data.split(b"\n"):
        try:
            rec = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, ValueError):
            continue
        if not isinstance(rec, dict):
            continue
        if rec.get("type") == "session_start":
            found = rec.get("project_root", rec.get("root"))
            root = _clean(found) if isinstance(found, str) else root
        turn = rec.get("turn") if type(rec.get("turn")) is int else 0
        for role, name, text in record_entries(rec):
            entries.append(Entry(turn, _clean(str(rec.get("ts") or "")), role, _clean(name), _clip(_clean(text))))
    return entries, root


# ---- queries ---------------------------------------------------------------------------------

_TERM = re.compile(r'"([^"]*)"|(\S+)')


def fts_query(text: str, mode: str = "AND", prefix: bool = False) -> str:
    """An FTS5 expression for plain words: each word becomes a quoted string, so `foo-bar`,
    `AND`, `col:x`, `NEAR(` or a stray `"` are just text; balanced "double quotes" keep a
    phrase. With `prefix`, a last word of 3+ characters also matches as a prefix (while typing).
    Empty when there is nothing to search for."""
    pieces = _TERM.findall(text) if text.count('"') % 2 == 0 else [("", w) for w in text.split()]
    terms, prefixable = [], False
    for quoted, word in pieces:
        term = "".join(c for c in (quoted or word) if c.isprintable()).replace('"', " ").strip()
        prefixable = bool(word) and len(term) >= 3 and term[-1].isalnum()
        if any(c.isalnum() for c in term):  # a phrase without tokens would match nothing at all
            terms.append(f'"{term}"')
        else:
            prefixable = False
    if terms and prefix and prefixable and not text[-1:].isspace():
        terms[-1] += "*"
    return f" {mode} ".join(terms[-MAX_TERMS:])  # a pasted page is not a query: its end is


def query_plans(query: str) -> tuple[list[str], str]:
    """The expressions to try in order (whole words, then the last word as a prefix) and the
    any-word fallback for when none of them matches anything."""
    exact, typing = fts_query(query), fts_query(query, prefix=True)
    loose = fts_query(query, "OR", prefix=True)
    return [e for e in dict.fromkeys((exact, typing)) if e], (loose if " OR " in loose else "")


def project_token(project: str) -> str:
    """The one-token stand-in for a project key in the `proj` column: keys hold characters
    the tokenizer would split on."""
    return "p" + hashlib.sha1(project.encode("utf-8", "surrogateescape")).hexdigest()[:16]
