"""Search across past sessions: a SQLite FTS5 index of every transcript, in `$JOE_HOME/history.db`.

The JSONL transcripts stay the source of truth; the index is derived from them and can be
deleted or rebuilt at any time. Per transcript it remembers how many bytes are indexed (the
offset is written in the same transaction as the rows) and reads only the complete lines after
that, so indexing after a turn costs what the turn wrote; a torn last line waits until it is
complete. Text is scrubbed again before it is stored. WAL, a busy timeout and BEGIN IMMEDIATE
let several sessions index at once: lines are read and scrubbed outside the transaction and the
offset is checked again inside it, so no line is lost or stored twice. A damaged database is
moved aside (`history.db.corrupt`) and rebuilt, never a crash. See docs/history.md.
Turning records into rows and queries into FTS5 expressions lives in history_text.py.
"""
from __future__ import annotations

import itertools
import os
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from joe_agent.errors import StoreError
from joe_agent.memory.history_text import (  # noqa: F401  (re-exported: the public names live on here)
    ELLIPSIS, MARK_CLOSE, MARK_OPEN, MAX_TERMS, MAX_TEXT, Entry, fts_query, parse_lines, project_token,
    query_plans, record_entries)

SCHEMA_VERSION = 1  # PRAGMA user_version
BUSY_TIMEOUT_S = 15.0
CHUNK_BYTES = 1 << 20  # one transaction per MiB of transcript keeps the write lock short
SNIPPET_TOKENS = 16
RANK_WINDOW = 2_000  # matches ranked per query at most (the newest): a bound on query time
_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_T = TypeVar("_T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS files(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,"
    " session TEXT NOT NULL, project TEXT NOT NULL, root TEXT NOT NULL, offset INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS files_session ON files(session)",
    "CREATE TABLE IF NOT EXISTS entries(id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL,"
    " turn INTEGER NOT NULL, ts TEXT NOT NULL, role TEXT NOT NULL, name TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS entries_file_turn ON entries(file_id, turn)",
    # `proj` holds one token per row, so "this project first" is an index lookup, not a scan
    "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(text, proj, tokenize='unicode61 remove_diacritics 2')",
    "INSERT INTO fts(fts, rank) VALUES('rank', 'bm25(1.0, 0.0)')",
)


@dataclass
class Hit:
    session: str  # the session id: `joe --resume <session>` continues it
    project: str  # the project key (the folder under transcripts/)
    turn: int
    ts: str  # when the matching record was written (ISO-8601 UTC)
    role: str  # user, assistant, tool_call, tool, error, correction
    snippet: str  # the match in context, matched words between « and »
    score: float  # BM25 relevance, higher is better
    root: str = ""  # the project's folder, scrubbed (~/work/app), when the transcript says
    name: str = ""  # the tool's name, for tool and tool_call hits


def _is_corrupt(e: sqlite3.DatabaseError) -> bool:
    if isinstance(e, sqlite3.OperationalError) and "malformed" not in str(e):
        return False  # locked, busy, read-only, disk full: not damage
    return (getattr(e, "sqlite_errorcode", 0) & 0xFF) in _CORRUPT_CODES or any(
        s in str(e) for s in ("malformed", "not a database", "corrupt"))


def _inode(path: Path) -> int:
    try:
        return os.stat(path).st_ino
    except OSError:
        return -1


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken up front, so a busy database waits (busy timeout) at the start
    instead of failing halfway. Nested use joins the open transaction."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # SQLite rolls back by itself after some errors (full disk, I/O)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# ---- the index -------------------------------------------------------------------------------

class HistoryIndex:
    """The FTS5 index of the transcripts under `transcripts_dir` (`<project>/<session>.jsonl`).
    Thread-safe: one connection used under a lock; reading and scrubbing happen outside it.
    `notices` collects what a person should hear (index missing, damaged, rebuilt); `on_notice`
    also gets each as it happens. Database trouble other than damage is a StoreError."""

    def __init__(self, db_path: Path, transcripts_dir: Path, on_notice: Callable[[str], None] | None = None):
        self.db_path, self.transcripts_dir = Path(db_path), Path(transcripts_dir)
        self.notices: list[str] = []
        self._on_notice = on_notice
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._inode = -1
        self._empty = False  # a new database file: it must be filled from the transcripts

    def _notice(self, text: str) -> None:
        self.notices.append(text)
        if self._on_notice is not None:
            self._on_notice(text)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and _inode(self.db_path) != self._inode:
            self.close()  # deleted, or moved aside and rebuilt by another process: follow the path
        if self._conn is None:
            try:
                self.db_path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"could not create {self.db_path.parent}: {e.strerror or e}") from e
            self._empty = self._empty or not self.db_path.exists()
            conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            self._inode = _inode(self.db_path)  # which file a damage report is about
            try:
                self._prepare(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        ready = (conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
                 and conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION)
        if not ready:
            # Switching to WAL can answer "database is locked" at once, without waiting out the
            # busy timeout, while another process creates the file: one process sets it up.
            from joe_agent.memory.store import locked

            with locked(self.db_path):
                conn.execute("PRAGMA journal_mode=WAL")
                self._ensure_schema(conn)
        conn.execute("PRAGMA synchronous=NORMAL")  # a derived index: a lost commit is re-read

    def _ensure_schema(self, conn: sqlite3.Connection, wipe: bool = False) -> None:
        if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION and not wipe:
            return
        with _immediate(conn):
            found = conn.execute("PRAGMA user_version").fetchone()[0]  # again, under the write lock
            if found == SCHEMA_VERSION and not wipe:
                return
            if found:  # a rebuild, or another layout: the index is derived, so start over
                for table in ("fts", "entries", "files"):
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
                if found != SCHEMA_VERSION:
                    self._notice(f"history index format changed; rebuilding {self.db_path.name}")
                    self._empty = True
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """`fn(connection)`; a damaged database is moved aside and `fn` tried once more."""
        for attempt in (1, 2):
            try:
                with self._lock:
                    return fn(self._connect())
            except sqlite3.DatabaseError as e:
                if attempt == 2 or not _is_corrupt(e):
                    raise StoreError(f"history index {self.db_path}: {e} (`joe sessions reindex` "
                                     "rebuilds it)") from e
                self._recover(str(e))
        raise AssertionError("unreachable")

    def _recover(self, why: str) -> None:
        from joe_agent.memory.store import locked

        with self._lock, locked(self.db_path):
            self.close()
            if _inode(self.db_path) != self._inode:  # another process replaced it meanwhile
                return
            aside = self.db_path.with_name(self.db_path.name + ".corrupt")
            try:
                for suffix in ("", "-wal", "-shm"):  # a stale WAL must not replay into the new file
                    if os.path.exists(f"{self.db_path}{suffix}"):
                        os.replace(f"{self.db_path}{suffix}", f"{aside}{suffix}")
            except OSError as e:
                raise StoreError(f"history index {self.db_path} is damaged and could not be moved "
                                 f"aside: {e.strerror or e}") from e
            self._notice(f"history index was damaged ({why}); moved it aside to {aside.name}")
            self._empty = True

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ---- indexing ---------------------------------------------------------------------------
    def update_file(self, path: Path) -> int:
        """Index the complete lines `path` gained since it was last indexed; returns how many
        entries were added. Safe from any thread or process at any time."""
        path, total = Path(path), 0
        key = f"{path.parent.name}/{path.name}"  # transcripts/<project>/<session>.jsonl
        while True:
            added, more = self._step(path, key)
            total += added
            if not more:
                return total

    def _step(self, path: Path, key: str) -> tuple[int, bool]:
        """Index up to one chunk: (entries added, whether more may follow)."""
        row = self._run(lambda c: c.execute("SELECT offset, root FROM files WHERE path=?", (key,)).fetchone())
        start, root = row or (0, "")
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                start, root = (0, "") if size < start else (start, root)  # rewritten: index afresh
                fh.seek(start)
                data = fh.read(CHUNK_BYTES)
                if len(data) == CHUNK_BYTES and b"\n" not in data:
                    data += fh.read()  # a single line longer than a chunk
        except FileNotFoundError:
            if row is not None:
                self._run(lambda c: self._forget(c, key))
            return 0, False
        except OSError as e:
            raise StoreError(f"could not read transcript {path}: {e.strerror or e}") from e
        end = start + data.rfind(b"\n") + 1  # a torn last line waits until it is complete
        if row is not None and end == start == row[0]:
            return 0, False
        entries, found = parse_lines(data[:end - start])
        info = (key, path.name.removesuffix(".jsonl"), path.parent.name, found or root)
        if not self._run(lambda c: self._commit(c, info, row, start, end, entries)):
            return 0, True  # another process indexed these lines first: carry on from there
        return len(entries), end < size and end > start

    def _commit(self, conn: sqlite3.Connection, info: tuple[str, str, str, str], before: tuple | None,
                start: int, end: int, entries: list[Entry]) -> bool:
        key, session, project, root = info
        with _immediate(conn):
            now = conn.execute("SELECT id, offset, root FROM files WHERE path=?", (key,)).fetchone()
            if (now and now[1:]) != before:
                return False
            if start == 0:  # new, or rewritten: whatever was indexed from it goes
                self._forget(conn, key)
                file_id = conn.execute("INSERT INTO files(path, session, project, root, offset) VALUES(?,?,?,?,?)",
                                       (key, session, project, root, end)).lastrowid
            else:
                file_id = now[0]
                conn.execute("UPDATE files SET offset=?, root=? WHERE id=?", (end, root, file_id))
            proj = project_token(project)
            for e in entries:
                rowid = conn.execute("INSERT INTO entries(file_id, turn, ts, role, name) VALUES(?,?,?,?,?)",
                                     (file_id, e.turn, e.ts, e.role, e.name)).lastrowid
                conn.execute("INSERT INTO fts(rowid, text, proj) VALUES(?,?,?)", (rowid, e.text, proj))
        return True

    @staticmethod
    def _forget(conn: sqlite3.Connection, key: str) -> None:
        with _immediate(conn):
            ids = "SELECT e.id FROM entries e JOIN files f ON f.id = e.file_id WHERE f.path = ?"
            conn.execute(f"DELETE FROM fts WHERE rowid IN ({ids})", (key,))
            conn.execute(f"DELETE FROM entries WHERE id IN ({ids})", (key,))
            conn.execute("DELETE FROM files WHERE path = ?", (key,))

    def _transcripts(self) -> list[tuple[str, str, int]]:
        """(file name, key, size) of every transcript, oldest session first (ids start with the
        time): rowids then follow time, which the rank window relies on. Plain strings: building
        a Path per file would cost more than the stat."""
        found: list[tuple[str, str, int]] = []
        try:
            folders = [d for d in os.scandir(self.transcripts_dir) if d.is_dir()]
        except OSError:
            return []
        for d in folders:
            try:
                with os.scandir(d.path) as files:
                    found += [(f.name, f"{d.name}/{f.name}", f.stat().st_size)
                              for f in files if f.name.endswith(".jsonl") and f.is_file()]
            except OSError:
                continue  # a folder or file vanished meanwhile: the next update sees the rest
        return sorted(found)

    def update_all(self) -> int:
        """Bring the index up to date with every transcript: new lines, new files, and deleted
        transcripts forgotten. A file that did not grow costs one stat()."""
        known = dict(self._run(lambda c: c.execute("SELECT path, offset FROM files").fetchall()))
        files = self._transcripts()
        if self._empty and files:
            self._notice(f"building the history index from {len(files)} transcripts")
        self._empty, total = False, 0
        for _, key, size in files:
            if known.pop(key, None) != size:
                total += self.update_file(self.transcripts_dir / key)
        for key in known:  # transcripts deleted by the person: their text leaves the index too
            self._run(lambda c: self._forget(c, key))
        return total

    def rebuild(self) -> int:
        """Forget everything and index every transcript again (`joe sessions reindex`)."""
        self._run(lambda c: self._ensure_schema(c, wipe=True))  # dropping beats deleting row by row
        self._empty = False
        total = self.update_all()
        self._run(lambda c: c.execute("INSERT INTO fts(fts) VALUES('optimize')"))
        return total

    # ---- searching --------------------------------------------------------------------------
    def search(self, query: str, project: str | None = None, limit: int = 20,
               exclude_session: str | None = None) -> list[Hit]:
        """Best matches first (BM25): `project`'s sessions (a project key) before all others, whole
        words before a prefix of the last one; all words must match, and when nothing does,
        any of them may. A query matching more than RANK_WINDOW entries is ranked among its
        newest RANK_WINDOW matches, which bounds its cost (docs/history.md)."""
        limit, (plans, loose) = max(1, min(int(limit), 500)), query_plans(query)
        for _ in (1, 2):  # twice when the database was found damaged (and replaced) meanwhile
            self._fill()
            hits = self._run(lambda c: _search(c, plans, project, limit, exclude_session))
            if not hits and loose:
                hits = self._run(lambda c: _search(c, [loose], project, limit, exclude_session))
            if not self._empty:
                break
        return hits

    def _fill(self) -> None:
        """Index every transcript when the database is new: missing, or replaced after damage."""
        self._run(lambda c: None)
        if self._empty:
            self.update_all()

    def turn_context(self, session: str, turn: int) -> dict:
        """The request of that turn and its final answer (as indexed: scrubbed, clipped)."""
        self._fill()
        rows = self._run(lambda c: c.execute(
            "SELECT e.role, fts.text, e.ts, f.project, f.root FROM files f JOIN entries e ON e.file_id = f.id"
            " JOIN fts ON fts.rowid = e.id WHERE f.session = ? AND e.turn = ?"
            " AND e.role IN ('user', 'assistant') ORDER BY e.id", (session, int(turn))).fetchall())
        first = rows[0] if rows else ("", "", "", "", "")
        return {"session": session, "turn": int(turn), "project": first[3], "root": first[4], "ts": first[2],
                "request": next((r[1] for r in rows if r[0] == "user"), ""),
                "answer": next((r[1] for r in reversed(rows) if r[0] == "assistant"), "")}


def _search(conn: sqlite3.Connection, plans: list[str], project: str | None, limit: int,
            exclude: str | None) -> list[Hit]:
    rows: dict[int, tuple] = {}
    scopes = [f' AND proj : "{project_token(project)}"'] if project else []
    for scope, expr in itertools.product(scopes + [""], plans):
        for r in _matches(conn, f"{{text}} : ({expr}){scope}", limit + len(rows), exclude):
            if len(rows) < limit:
                rows.setdefault(r[0], r)
        if len(rows) >= limit:
            break
    return [Hit(session=r[7], project=r[8], turn=r[3], ts=r[4], role=r[5], snippet=" ".join(r[2].split()),
                score=-r[1], root=r[9], name=r[6]) for r in rows.values()]


def _matches(conn: sqlite3.Connection, match: str, limit: int, exclude: str | None) -> list[tuple]:
    # ranking costs ~2 us per matching row: beyond the window, only the newest matches compete
    cutoff = conn.execute("SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
                          (match, RANK_WINDOW - 1)).fetchone()
    # FTS5 consumes ORDER BY rank itself, so snippets are made only for the rows returned
    return conn.execute(
        "SELECT fts.rowid, rank, snippet(fts, 0, ?, ?, ?, ?), e.turn, e.ts, e.role, e.name, f.session,"
        " f.project, f.root FROM fts JOIN entries e ON e.id = fts.rowid JOIN files f ON f.id = e.file_id"
        " WHERE fts MATCH ? AND fts.rowid >= ? AND f.session IS NOT ? ORDER BY rank LIMIT ?",
        (MARK_OPEN, MARK_CLOSE, ELLIPSIS, SNIPPET_TOKENS, match, cutoff[0] if cutoff else 0, exclude,
         limit)).fetchall()
