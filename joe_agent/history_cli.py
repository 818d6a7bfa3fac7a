"""The ways into the session history index (memory/history.py): `joe sessions search|reindex`,
the REPL's `/search` (the same function), the model's `search_history` tool, and the background
indexer the runtime feeds after each turn.

Matched words come back between « and » (FTS5 snippet() markers); the renderer shows them in
bold, `--json` keeps them as they are. Nothing here imports rich or the model client.
"""
from __future__ import annotations

import json
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from joe_agent.errors import JoeError, StoreError
from joe_agent.memory.history import MARK_CLOSE, MARK_OPEN, Hit, HistoryIndex
from joe_agent.paths import project_key

SEARCH_HISTORY_HINT = (
    "When the user refers to earlier work (\"like we did before\", \"last time\", \"that bug again\") "
    "or an error looks familiar, call search_history with a few distinctive words (an error message, "
    "a file or feature name) to see how past sessions handled it.")
TOOL_OUTPUT_CAP = 4_000
CONTEXT_CHARS = 300  # of a hit's request and answer, for the model
CLI_LIMIT = 20
_ROLE_LABEL = {"user": "request", "assistant": "answer", "tool_call": "call", "tool": "output",
               "error": "error", "correction": "correction"}

OutTable = Callable[[str, list[str], list[list[str]]], None]
OutLine = Callable[[str], None]


def open_index(home: Path) -> HistoryIndex:
    """The index of every transcript under `home` (JOE_HOME)."""
    return HistoryIndex(Path(home) / "history.db", Path(home) / "transcripts")


def history_cli(action: str, query: str | None, as_json: bool, home: Path, root: Path,
                out_table: OutTable, out_line: OutLine) -> int:
    """`joe sessions search QUERY [--json]`, `joe sessions reindex`, and the REPL's /search.
    Exit status: 0 with matches, 1 without, 2 for a usage mistake. Raises StoreError (one
    line) only when JOE_HOME cannot hold the index at all."""
    if action not in ("search", "reindex"):
        out_line(f"unknown sessions action {action!r}: use `search QUERY` or `reindex`")
        return 2
    if action == "search" and not (query or "").strip():
        out_line('search needs words to look for, e.g. joe sessions search "connection refused"')
        return 2
    index = open_index(home)
    try:
        if action == "reindex":
            added = index.rebuild()
            for note in index.notices:
                out_line(note)
            sessions = len(list(index.transcripts_dir.glob("*/*.jsonl")))
            out_line(f"reindexed {sessions} sessions ({added} entries) into {index.db_path}")
            return 0
        try:
            index.update_all()  # cheap when nothing changed: one stat() per transcript
        except StoreError as e:  # busy (a reindex elsewhere): search what is there
            index.notices.append(f"searching without the newest lines: {e}")
        project = project_key(root)
        hits = index.search(query or "", project=project, limit=CLI_LIMIT)
    finally:
        index.close()
    if as_json:
        out_line(json.dumps({"query": query, "project": project, "hits": [asdict(h) for h in hits],
                             "notices": index.notices}, ensure_ascii=False))
    else:
        _print_hits(query or "", hits, project, index.notices, out_table, out_line)
    return 0 if hits else 1


def _print_hits(query: str, hits: list[Hit], project: str, notices: list[str],
                out_table: OutTable, out_line: OutLine) -> None:
    for note in notices:
        out_line(note)
    if not hits:
        out_line(f"no past session mentions {query.strip()!r}")
        return
    rows = [[h.session, h.ts[:16].replace("T", " "), _project_label(h, project), str(h.turn),
             _ROLE_LABEL.get(h.role, h.role) + (f" {h.name}" if h.name else ""), h.snippet] for h in hits]
    out_table(f"{len(hits)} matches for {query.strip()!r} (this project first)",
              ["session", "date", "project", "turn", "from", "match"], rows)
    out_line(f"continue one with: joe --resume {hits[0].session}")


def _project_label(hit: Hit, project: str) -> str:
    label = hit.root or hit.project
    return f"{label} (this)" if hit.project == project else label


# ---- the model's tool -------------------------------------------------------------------------

def search_history_tool(index: HistoryIndex, root: Path, exclude_session: str | None = None):
    """The `search_history(query, limit?)` tool (kind "read"). `exclude_session` is the running
    session: its text is already in the model's context."""
    from joe_agent.tools.registry import ToolFailure, tool

    project = project_key(root)

    @tool(kind="read", name="search_history")
    def search_history(ctx, query: str, limit: int = 5) -> str:
        """Search past sessions (requests, answers, commands and their output) for words, e.g. an
        error message or a feature name. Returns matches with the request and final answer of
        their turn, this project's sessions first.

        Args:
            query: plain words to look for, e.g. "connection refused" or "migrate to hooks"
            limit: how many turns to show (1-10, default 5)
        """
        if not query.strip():
            raise ToolFailure('search_history needs words to look for, e.g. {"query": "connection refused"}')
        try:
            index.update_all()  # sessions that ended since; a busy index is searched as it is
        except JoeError:
            pass
        turns = max(1, min(int(limit), 10))
        hits = index.search(query, project=project, limit=turns * 4, exclude_session=exclude_session)
        return format_for_model(index, query, hits, project, turns)

    return search_history


def format_for_model(index: HistoryIndex, query: str, hits: list[Hit], project: str, turns: int,
                     cap: int = TOOL_OUTPUT_CAP) -> str:
    """Hits grouped by turn (at most `turns`), each with the request and final answer of that
    turn, cut to `cap` characters at a group boundary."""
    if not hits:
        return f"No past session mentions {query.strip()!r}. Try other words (an error message, a file name)."
    groups: dict[tuple[str, int], list[Hit]] = {}
    for h in hits:
        if (h.session, h.turn) in groups or len(groups) < turns:
            groups.setdefault((h.session, h.turn), []).append(h)
    out = f"Past sessions matching {query.strip()!r} (this project first; {MARK_OPEN}…{MARK_CLOSE} marks the match):"
    for n, ((session, turn), group) in enumerate(groups.items(), 1):
        block = _group_text(n, index.turn_context(session, turn), group, project)
        if len(out) + len(block) + 1 > cap:
            out += f"\n({len(groups) - n + 1} more not shown; use more specific words)"
            break
        out += "\n" + block
    return out[:cap]


def _group_text(n: int, ctx: dict, group: list[Hit], project: str) -> str:
    first = group[0]
    where = "this project" if first.project == project else f"project {first.root or first.project}"
    lines = [f"{n}. session {first.session}, turn {first.turn}, {first.ts[:10]}, {where}"]
    if ctx.get("request"):
        lines.append(f"   request: {_short(ctx['request'])}")
    for h in group[:2]:
        label = _ROLE_LABEL.get(h.role, h.role) + (f" {h.name}" if h.name else "")
        lines.append(f"   match ({label}): {h.snippet}")
    if ctx.get("answer"):
        lines.append(f"   answer: {_short(ctx['answer'])}")
    return "\n".join(lines)


def _short(text: str, limit: int = CONTEXT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ---- background indexing ----------------------------------------------------------------------

class IndexerThread:
    """Indexes transcripts in a daemon thread: the runtime calls `submit(transcript.path)` after
    each turn and the turn never waits on SQLite. Requests for the same file coalesce. A failure
    (busy or unwritable index) is reported to `on_error` and retried at the next submit."""

    def __init__(self, index: HistoryIndex, on_error: Callable[[str], None] | None = None):
        self.index = index
        self.on_error = on_error
        self.errors: list[str] = []
        self._pending: dict[str, Path] = {}
        self._busy = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, path: Path) -> None:
        with self._cond:
            if self._closed:
                return
            self._pending[str(path)] = Path(path)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="joe-history-index", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted is indexed; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Finish what is queued (up to `timeout`), then stop. The index stays open."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return
                path = self._pending.pop(next(iter(self._pending)))
                self._busy = True
            try:
                self.index.update_file(path)
            except JoeError as e:  # a derived index: the next update catches up
                self.errors.append(str(e))
                if self.on_error is not None:
                    self.on_error(str(e))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
