"""The skills ledger: which skills were offered in which turn, how each turn settled, the score
that follows, and which skills have earned pruning.

Storage: SQLite at the path the caller passes (the CLI passes $JOE_HOME/ledger.db), WAL mode
and a busy timeout so concurrent joe sessions both write and nothing is lost; the schema
changes only through numbered migrations (joe_agent/memory/migrations.py).

Attribution is by turn (session id + turn number), never by clock time. A use is one row per
(session, turn, skill); it stays pending until its turn settles:

- accepted: the person moved on (a next request, or the session ended) without undoing, or
  said so with /good.
- corrected: the turn was undone by /undo, also when a later /undo walks back over it; this
  overrides an earlier 'accepted'.
- ignored: offered but the turn was abandoned (interrupted, failed, its actions denied). A
  "catalog" use (shown in the catalog and matched, never read) always settles as ignored: the
  skill neither helped an accepted turn nor caused a corrected one.

Score: the lower bound of the Wilson score interval on the acceptance rate,

    p = s / n,   score = (p + z²/2n - z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n),   z = 1.96

and 0 when n = 0. Being a lower bound, thin evidence scores low: 1/1 -> 0.21, 9/10 -> 0.60.
The counts are weighted: s = Σ w·accepted and n = Σ w·(accepted + corrected + ½·ignored),
where an ignored turn is half a failure (weak evidence: the skill did not help, but did not
cause a wrong result either).

Versions: every use records the skill's version (the git commit of its file, maybe ""). The
weight w is 1 for the current version (the one given by the caller, else the one seen in the
most recent use) and 0.25 for older versions, so a repaired skill is not pruned for failures
its repair fixed: its old failures still count, at a quarter, until new uses speak for it.

Pruning (the move to skills/.archive is the skills library's job): a skill is a loser only
with enough evidence, either (a) at least `min_uses` settled uses (counted with the same
version weights) and a score under `threshold`, or (b) never used (injected or read) in the
`unused_days` since its creation date. Only skills whose origin is "synthesized" are judged
unless include_hand=True: what a person wrote is never pruned behind their back.
"""
from __future__ import annotations

import math
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Literal, Mapping, Sequence

from joe_agent.errors import StoreError
from joe_agent.memory.migrations import LEDGER_MIGRATIONS, migrate, schema_version
from joe_agent.memory.store import locked

Outcome = Literal["accepted", "corrected", "ignored"]
OUTCOMES: tuple[str, ...] = ("accepted", "corrected", "ignored")
HOWS: tuple[str, ...] = ("injected", "read", "catalog")

Z = 1.96
OLD_VERSION_WEIGHT = 0.25
IGNORED_WEIGHT = 0.5
BUSY_TIMEOUT_S = 30.0
# TurnDone.reason values after which the turn is abandoned; "done" waits for the next move
_ABANDONED = ("interrupted", "error", "loop", "max_steps")


def wilson_lower_bound(successes: float, total: float, z: float = Z) -> float:
    """Lower bound of the Wilson score interval for successes/total (weights allowed)."""
    if total <= 0:
        return 0.0
    if successes < 0 or successes > total * (1 + 1e-9):
        raise ValueError(f"successes must be within 0..total, got {successes}/{total}")
    p = min(successes / total, 1.0)
    z2 = z * z
    centre = p + z2 / (2 * total)
    margin = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return max(0.0, (centre - margin) / (1 + z2 / total))


def outcome_of_turn_end(reason: str) -> Outcome | None:
    """What a turn's end (TurnDone.reason) settles right away: abandoned turns are 'ignored';
    a finished turn stays pending until the next request, /good, /undo or the session end."""
    return "ignored" if reason in _ABANDONED else None


@dataclass
class SkillStats:
    name: str
    uses: int  # every recorded use, settled or pending
    accepted: int
    corrected: int
    ignored: int
    pending: int
    score: float
    last_used: datetime | None  # last time it was injected or read (catalog shows excluded)
    by_version: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # (acc, corr, ign)
    current_version: str = ""
    evidence: float = 0.0  # settled uses with older versions discounted; compared to min_uses

    @property
    def settled(self) -> int:
        return self.accepted + self.corrected + self.ignored

    def summary_lines(self) -> dict[str, str]:
        """The values of the SKILL.md sections the ledger owns (Last Used, Success Rate)."""
        last = self.last_used.date().isoformat() if self.last_used else "never"
        rate = (f"{self.accepted}/{self.settled} uses accepted "
                f"({self.corrected} undone, {self.ignored} ignored; score {self.score:.2f})")
        return {"Last Used": last, "Success Rate": rate}


@dataclass
class PruneDecision:
    name: str
    reason: str


@dataclass
class SkillRef:
    """What pruning needs to know about a skill in the library."""

    name: str
    origin: str
    created: date | None
    version: str = ""  # its current version, when the caller knows it ("" = latest seen)


class Ledger:
    def __init__(self, path: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._mutex = threading.RLock()  # one connection, possibly shared by REPL threads
        self._conn: sqlite3.Connection | None = self._open()

    # ---- recording --------------------------------------------------------------------------
    def record_use(self, session: str, turn: int, skill: str, how: str, model: str = "",
                   version: str = "") -> None:
        """Note that `skill` was offered in this turn. how: "injected" | "read" | "catalog".
        A second record for the same turn only upgrades a pending catalog use to a real one."""
        if how not in HOWS:
            raise ValueError(f"how must be one of {HOWS}, got {how!r}")
        with self._write("record a skill use in") as conn:
            conn.execute(
                """INSERT INTO uses (skill, session, turn, how, model, version, used_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (session, turn, skill) DO UPDATE SET
                       how = excluded.how, model = excluded.model, version = excluded.version
                   WHERE uses.how = 'catalog' AND excluded.how != 'catalog'
                     AND uses.outcome IS NULL""",
                (skill, session, int(turn), how, model, version, self._now()))

    def settle(self, session: str, turn: int, outcome: Outcome, verified: bool = False) -> int:
        """Settle every pending use of that turn; 'corrected' also overrides a settled
        'accepted'. Returns the number of rows changed."""
        return self._settle("session = ? AND turn = ?", (session, int(turn)), outcome, verified,
                            override=outcome == "corrected")

    def settle_session(self, session: str, outcome: Outcome = "accepted") -> int:
        """At session end: settle every still-pending use of the session."""
        return self._settle("session = ?", (session,), outcome, False, override=False)

    def _settle(self, where: str, params: tuple, outcome: str, verified: bool,
                override: bool) -> int:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        stamp = (self._now(), int(verified))
        settleable = "(outcome IS NULL OR outcome = 'accepted')" if override else "outcome IS NULL"
        with self._write("settle a turn in") as conn:
            shown = conn.execute(
                f"UPDATE uses SET outcome = 'ignored', settled_at = ?, verified = ? "
                f"WHERE {where} AND how = 'catalog' AND outcome IS NULL", stamp + params).rowcount
            used = conn.execute(
                f"UPDATE uses SET outcome = ?, settled_at = ?, verified = ? "
                f"WHERE {where} AND how != 'catalog' AND {settleable}",
                (outcome,) + stamp + params).rowcount
        return shown + used

    def rename(self, old: str, new: str) -> None:
        """Carry a skill's evidence over to its new name (a use of both in one turn keeps one)."""
        with self._write("rename a skill in") as conn:
            conn.execute(
                """DELETE FROM uses WHERE skill = ? AND EXISTS (
                       SELECT 1 FROM uses AS u WHERE u.skill = ? AND u.session = uses.session
                       AND u.turn = uses.turn)""", (old, new))
            conn.execute("UPDATE uses SET skill = ? WHERE skill = ?", (new, old))

    # ---- reading ----------------------------------------------------------------------------
    def pending_turns(self, session: str) -> list[int]:
        rows = self._read("read pending turns from",
                          "SELECT DISTINCT turn FROM uses WHERE session = ? AND outcome IS NULL "
                          "ORDER BY turn", (session,))
        return [r[0] for r in rows]

    def stats(self, current_versions: Mapping[str, str] | None = None) -> dict[str, SkillStats]:
        """Per-skill counts and scores. current_versions (name -> version) overrides the
        'latest version seen' rule for the skills it names."""
        rows = self._read(
            "read scores from",
            """SELECT skill, version, how, outcome, COUNT(*), MAX(id),
                      MAX(CASE WHEN how != 'catalog' THEN used_at END)
               FROM uses GROUP BY skill, version, how, outcome""")
        grouped: dict[str, list[tuple]] = {}
        for row in rows:
            grouped.setdefault(row[0], []).append(row[1:])
        current = current_versions or {}
        return {name: _summarise(name, group, current.get(name))
                for name, group in grouped.items()}

    def history(self, skill: str) -> list[dict]:
        """Every use of a skill, oldest first, as JSON-ready dicts (times are ISO-8601 UTC;
        outcome is "pending" until the turn settles)."""
        rows = self._read(
            "read history from",
            """SELECT session, turn, how, model, version, used_at,
                      COALESCE(outcome, 'pending'), settled_at, verified
               FROM uses WHERE skill = ? ORDER BY used_at, id""", (skill,))
        keys = ("session", "turn", "how", "model", "version", "used_at", "outcome",
                "settled_at", "verified")
        return [dict(zip(keys, row[:-1] + (bool(row[-1]),))) for row in rows]

    def losers(self, skills: list[SkillRef], now: datetime | None = None, min_uses: int = 5,
               threshold: float = 0.3, unused_days: int = 90,
               include_hand: bool = False) -> list[PruneDecision]:
        """The skills that earned pruning, each with a reason a person can read."""
        now = _as_utc(now) if now is not None else _as_utc(self._clock())
        table = self.stats({s.name: s.version for s in skills if s.version})
        decisions = []
        for ref in skills:
            if ref.origin != "synthesized" and not include_hand:
                continue
            reason = _judge(ref, table.get(ref.name), now, min_uses, threshold, unused_days)
            if reason:
                decisions.append(PruneDecision(ref.name, reason))
        return decisions

    # ---- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing ---------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"could not create {self.path.parent}: {e.strerror or e}") from e
        with self._guard("open"):
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
        try:
            with self._guard("open"):
                self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # the first read of the header is what tells a ledger from any other file
        ready = (schema_version(conn) == len(LEDGER_MIGRATIONS)
                 and conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal")
        if not ready:
            with locked(self.path):  # one process migrates; the other then finds it done
                conn.execute("PRAGMA journal_mode = WAL")
                migrate(conn, LEDGER_MIGRATIONS, str(self.path))
        # NORMAL under WAL: a power cut may drop the last commits, never corrupt the file
        conn.execute("PRAGMA synchronous = NORMAL")

    def _now(self) -> str:
        return _as_utc(self._clock()).isoformat()

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the ledger {self.path} was already closed")
        return self._conn

    def _read(self, doing: str, sql: str, params: tuple = ()) -> list[tuple]:
        with self._mutex, self._guard(doing):
            return self._live().execute(sql, params).fetchall()

    @contextmanager
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so the busy timeout applies instead of a
        # deadlock when two processes would both upgrade a read lock
        with self._mutex, self._guard(doing):
            conn = self._live()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError, sqlite3.IntegrityError):
            raise  # our bug, not the user's file: keep the traceback
        except sqlite3.DatabaseError as e:
            raise StoreError(_explain(self.path, doing, e)) from e


def _explain(path: Path, doing: str, err: sqlite3.Error) -> str:
    msg = str(err)
    if "not a database" in msg or "malformed" in msg:
        return (f"{path} is not a readable skills ledger ({msg}); move it aside "
                f"(mv {path} {path}.bad) and joe will start a fresh one")
    if "locked" in msg or "busy" in msg:
        return (f"{path} is busy: another joe process held it for over "
                f"{BUSY_TIMEOUT_S:.0f}s; try again")
    if "unable to open" in msg or "readonly" in msg:
        return f"could not {doing} {path}: {msg}; check that it is a writable file"
    return f"could not {doing} {path}: {msg}"


def _as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC, so stored times always compare as text."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _summarise(name: str, rows: Sequence[tuple], current: str | None) -> SkillStats:
    counts = dict.fromkeys(OUTCOMES, 0)
    by_version: dict[str, tuple[int, int, int]] = {}
    pending, latest_id, latest_version, last = 0, -1, "", None
    for version, _how, outcome, n, max_id, used_at in rows:
        if max_id > latest_id:
            latest_id, latest_version = max_id, version
        if used_at is not None and (last is None or used_at > last):
            last = used_at
        if outcome is None:
            pending += n
            continue
        counts[outcome] += n
        a, c, i = by_version.get(version, (0, 0, 0))
        by_version[version] = (a + n * (outcome == "accepted"), c + n * (outcome == "corrected"),
                               i + n * (outcome == "ignored"))
    current = latest_version if current is None else current
    wins = trials = evidence = 0.0
    for version, (a, c, i) in by_version.items():
        w = 1.0 if version == current else OLD_VERSION_WEIGHT
        wins += w * a
        trials += w * (a + c + IGNORED_WEIGHT * i)
        evidence += w * (a + c + i)
    return SkillStats(
        name=name, uses=sum(counts.values()) + pending, accepted=counts["accepted"],
        corrected=counts["corrected"], ignored=counts["ignored"], pending=pending,
        score=wilson_lower_bound(wins, trials), last_used=_parse(last), by_version=by_version,
        current_version=current, evidence=evidence)


def _parse(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp) if stamp else None


def _judge(ref: SkillRef, st: SkillStats | None, now: datetime, min_uses: int,
           threshold: float, unused_days: int) -> str | None:
    if st is not None and st.evidence >= min_uses and st.score < threshold:
        older = (f"; older versions' evidence counted at {OLD_VERSION_WEIGHT:g}"
                 if len(st.by_version) > 1 else "")
        return (f"score {st.score:.2f} is under {threshold:.2f} after {st.settled} settled uses "
                f"({st.accepted} accepted, {st.corrected} undone, {st.ignored} ignored){older}")
    if (st is None or st.last_used is None) and ref.created is not None:
        age = (now.date() - ref.created).days
        if age >= unused_days:
            return (f"never used in the {age} days since it was created on "
                    f"{ref.created.isoformat()}")
    return None
