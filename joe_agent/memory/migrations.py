"""Numbered schema migrations for joe's SQLite files.

A schema is an append-only tuple of SQL scripts; step N (1-based) moves the file from
`PRAGMA user_version = N-1` to `N`. Never edit or reorder a shipped step: a file in the
field may already be past it. To change the schema, append a step.

Each step runs in one IMMEDIATE transaction together with its user_version bump, so a crash
mid-migration leaves the file at the previous version, never half-migrated. The caller holds an
inter-process file lock around `migrate`, so two joe processes opening a fresh file do not
both try to create the same tables.
"""
from __future__ import annotations

import sqlite3
from typing import Sequence

from joe_agent.errors import StoreError

# The ledger's schema. One row per (session, turn, skill): a skill offered in a turn is one
# use, however many times it was read in that turn. `outcome` NULL means the turn has not
# settled yet. Times are ISO-8601 UTC strings, so they sort as text.
LEDGER_MIGRATIONS: tuple[str, ...] = (
    # 1: uses and their outcomes
    """
    CREATE TABLE uses (
        id         INTEGER PRIMARY KEY,
        skill      TEXT    NOT NULL,
        session    TEXT    NOT NULL,
        turn       INTEGER NOT NULL,
        how        TEXT    NOT NULL CHECK (how IN ('injected', 'read', 'catalog')),
        model      TEXT    NOT NULL DEFAULT '',
        version    TEXT    NOT NULL DEFAULT '',
        used_at    TEXT    NOT NULL,
        outcome    TEXT    CHECK (outcome IN ('accepted', 'corrected', 'ignored')),
        settled_at TEXT,
        verified   INTEGER NOT NULL DEFAULT 0,
        UNIQUE (session, turn, skill)
    );
    CREATE INDEX uses_by_skill ON uses (skill, version);
    CREATE INDEX uses_pending ON uses (session, turn) WHERE outcome IS NULL;
    """,
)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, steps: Sequence[str], label: str) -> int:
    """Apply the steps this file has not seen yet; return how many ran.

    `conn` must be in autocommit mode (isolation_level=None) so the explicit BEGIN here is the
    only transaction. `label` names the file in error messages."""
    current = schema_version(conn)
    if current > len(steps):
        raise StoreError(
            f"{label} has schema version {current}, newer than this joe-agent knows "
            f"({len(steps)}); upgrade joe-agent, or move the file aside to start a fresh one")
    ran = 0
    for number in range(current + 1, len(steps) + 1):
        # executescript would COMMIT an open transaction first, so BEGIN travels inside it
        script = f"BEGIN IMMEDIATE;\n{steps[number - 1]}\nPRAGMA user_version = {number};\nCOMMIT;"
        try:
            conn.executescript(script)
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        ran += 1
    return ran
