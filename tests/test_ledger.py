"""The skills ledger: outcome attribution by turn, scores, pruning decisions, migrations,
concurrent writers and broken files. Real SQLite files in tmp folders, real processes."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from joe_agent.errors import StoreError
from joe_agent.memory.ledger import (Ledger, SkillRef, outcome_of_turn_end,
                                     wilson_lower_bound)
from joe_agent.memory.migrations import LEDGER_MIGRATIONS, migrate

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parents[1]


class Clock:
    """A settable clock, so 'last used' and ages are exact."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "ledger.db", clock=Clock())
    yield led
    led.close()


def outcomes(led: Ledger, skill: str) -> list[tuple[str, int, str]]:
    return [(h["session"], h["turn"], h["outcome"]) for h in led.history(skill)]


def run_uses(led: Ledger, skill: str, results: list[str], session: str = "s",
             version: str = "") -> None:
    """One turn per result, each settled as given."""
    start = len(led.history(skill)) + 1
    for turn, result in enumerate(results, start):
        led.record_use(f"{session}-{skill}", turn, skill, "injected", version=version)
        led.settle(f"{session}-{skill}", turn, result)


# ---- scores -------------------------------------------------------------------------------

def test_wilson_orders_by_evidence_not_just_rate():
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(1, 1) < wilson_lower_bound(9, 10)
    assert wilson_lower_bound(1, 1) == pytest.approx(0.2065, abs=1e-4)  # z²=3.8416, by hand
    assert wilson_lower_bound(90, 100) > wilson_lower_bound(9, 10)
    assert wilson_lower_bound(0, 10) == 0.0
    big = wilson_lower_bound(700_000, 1_000_000)
    assert 0.698 < big < 0.7  # a lower bound that tightens onto the rate
    with pytest.raises(ValueError):
        wilson_lower_bound(3, 2)


def test_stats_scores_one_of_one_below_nine_of_ten(ledger):
    run_uses(ledger, "lucky", ["accepted"])
    run_uses(ledger, "steady", ["accepted"] * 9 + ["corrected"])
    ledger.record_use("s", 1, "waiting", "injected")  # pending only: no evidence yet
    st = ledger.stats()
    assert st["lucky"].score < st["steady"].score
    assert st["waiting"].score == 0.0 and st["waiting"].pending == 1 and st["waiting"].uses == 1
    assert (st["steady"].accepted, st["steady"].corrected, st["steady"].uses) == (9, 1, 10)


def test_ignored_counts_against_the_score_but_less_than_undone(ledger):
    run_uses(ledger, "ignored-a-lot", ["accepted"] * 3 + ["ignored"] * 3)
    run_uses(ledger, "undone-a-lot", ["accepted"] * 3 + ["corrected"] * 3)
    run_uses(ledger, "clean", ["accepted"] * 3)
    st = ledger.stats()
    assert st["undone-a-lot"].score < st["ignored-a-lot"].score < st["clean"].score


# ---- attribution --------------------------------------------------------------------------

def test_moving_on_accepts_the_previous_turn(ledger):
    ledger.record_use("s1", 1, "pytest-triage", "injected", model="qwen", version="abc")
    assert ledger.pending_turns("s1") == [1]
    # the next request arrives: what the REPL does before running turn 2
    for turn in ledger.pending_turns("s1"):
        ledger.settle("s1", turn, "accepted")
    ledger.record_use("s1", 2, "pytest-triage", "read")
    assert ledger.pending_turns("s1") == [2]
    assert outcomes(ledger, "pytest-triage") == [("s1", 1, "accepted"), ("s1", 2, "pending")]
    row = ledger.history("pytest-triage")[0]
    assert (row["model"], row["version"], row["how"], row["verified"]) == ("qwen", "abc",
                                                                           "injected", False)
    assert row["used_at"].startswith("2026-06-10T12:00")


def test_undo_corrects_only_that_turn(ledger):
    ledger.record_use("s1", 1, "a", "injected")
    ledger.record_use("s1", 2, "b", "injected")
    ledger.record_use("s2", 2, "a", "injected")  # same turn number, other session
    assert ledger.settle("s1", 2, "corrected") == 1
    assert outcomes(ledger, "b") == [("s1", 2, "corrected")]
    assert outcomes(ledger, "a") == [("s1", 1, "pending"), ("s2", 2, "pending")]


def test_undo_walking_back_two_turns_overrides_accepted(ledger):
    ledger.record_use("s", 1, "first", "injected")
    ledger.settle("s", 1, "accepted")  # moved on to turn 2
    ledger.record_use("s", 2, "second", "read")
    ledger.record_use("s", 2, "first", "read")
    # /undo twice: turn 2, then turn 1 again
    assert ledger.settle("s", 2, "corrected") == 2
    assert ledger.settle("s", 1, "corrected") == 1
    assert outcomes(ledger, "first") == [("s", 1, "corrected"), ("s", 2, "corrected")]
    st = ledger.stats()["first"]
    assert (st.accepted, st.corrected, st.pending) == (0, 2, 0)
    # settling again changes nothing, and accepted never overrides corrected
    assert ledger.settle("s", 1, "corrected") == 0
    assert ledger.settle("s", 1, "accepted") == 0


def test_interrupt_or_denial_ignores_and_a_later_accept_does_not_flip_it(ledger):
    assert outcome_of_turn_end("interrupted") == "ignored"
    assert outcome_of_turn_end("error") == "ignored"
    assert outcome_of_turn_end("done") is None  # waits for the next move
    ledger.record_use("s", 1, "k", "injected")
    assert ledger.settle("s", 1, outcome_of_turn_end("interrupted")) == 1
    ledger.record_use("s", 2, "k", "read")
    ledger.settle("s", 2, "ignored")  # its edit was denied
    assert ledger.settle("s", 1, "accepted") == 0
    assert outcomes(ledger, "k") == [("s", 1, "ignored"), ("s", 2, "ignored")]


def test_session_end_settles_pending_as_accepted_and_catalog_as_ignored(ledger):
    ledger.record_use("s", 1, "used", "injected")
    ledger.settle("s", 1, "corrected")
    ledger.record_use("s", 2, "used", "injected")
    ledger.record_use("s", 3, "used", "read")
    ledger.record_use("s", 3, "shown", "catalog")
    ledger.record_use("other", 1, "used", "injected")
    assert ledger.settle_session("s") == 3
    assert ledger.pending_turns("s") == []
    assert ledger.pending_turns("other") == [1]
    assert [o for _, _, o in outcomes(ledger, "used")] == ["corrected", "accepted", "accepted",
                                                          "pending"]
    assert outcomes(ledger, "shown") == [("s", 3, "ignored")]
    assert ledger.stats()["shown"].last_used is None  # a catalog line is not a use


def test_catalog_then_read_in_one_turn_is_one_real_use(ledger):
    ledger.record_use("s", 1, "k", "catalog", version="v1")
    ledger.record_use("s", 1, "k", "read", version="v1")
    ledger.record_use("s", 1, "k", "catalog", version="v1")  # does not downgrade
    ledger.settle("s", 1, "accepted", verified=True)
    [row] = ledger.history("k")
    assert (row["how"], row["outcome"], row["verified"]) == ("read", "accepted", True)
    st = ledger.stats()["k"]
    assert (st.uses, st.accepted, st.ignored) == (1, 1, 0)
    assert st.last_used == NOW


def test_bad_arguments_are_caught(ledger):
    with pytest.raises(ValueError):
        ledger.record_use("s", 1, "k", "glanced")
    with pytest.raises(ValueError):
        ledger.settle("s", 1, "great")  # type: ignore[arg-type]


def test_rename_carries_the_evidence(ledger):
    run_uses(ledger, "old-name", ["accepted", "corrected"])
    ledger.record_use("x", 1, "old-name", "injected")
    ledger.record_use("x", 1, "new-name", "injected")  # both in one turn: one survives
    ledger.rename("old-name", "new-name")
    st = ledger.stats()
    assert "old-name" not in st
    assert (st["new-name"].accepted, st["new-name"].corrected, st["new-name"].pending) == (1, 1, 1)
    assert ledger.history("old-name") == []


# ---- pruning ------------------------------------------------------------------------------

def synth(name: str, days_old: int = 0, version: str = "") -> SkillRef:
    return SkillRef(name, "synthesized", NOW.date() - timedelta(days=days_old), version)


def test_brand_new_skill_is_never_pruned(ledger):
    run_uses(ledger, "fresh-and-unlucky", ["corrected"] * 2)
    skills = [synth("fresh"), synth("fresh-and-unlucky")]
    assert ledger.losers(skills, now=NOW) == []


def test_skill_undone_five_of_six_times_is_pruned_with_a_reason(ledger):
    run_uses(ledger, "bad", ["corrected"] * 5 + ["accepted"])
    run_uses(ledger, "good", ["accepted"] * 5 + ["corrected"])
    run_uses(ledger, "bad-but-thin", ["corrected"] * 4)
    decisions = ledger.losers([synth("bad", 10), synth("good", 10), synth("bad-but-thin", 10)],
                              now=NOW)
    assert [d.name for d in decisions] == ["bad"]
    reason = decisions[0].reason
    assert "6 settled uses" in reason and "5 undone" in reason and "under 0.30" in reason


def test_unused_old_synthesized_skill_pruned_but_hand_written_kept(ledger):
    hand = SkillRef("hand-made", "hand", NOW.date() - timedelta(days=100))
    old = synth("old-unused", 100)
    young = synth("young-unused", 89)
    used = synth("old-used", 100)
    ledger.record_use("s", 1, "old-used", "injected")
    ledger.settle("s", 1, "accepted")
    shown_only = synth("only-shown", 100)
    ledger.record_use("s", 1, "only-shown", "catalog")
    decisions = {d.name: d.reason for d in ledger.losers([hand, old, young, used, shown_only],
                                                         now=NOW)}
    assert set(decisions) == {"old-unused", "only-shown"}
    assert "100 days" in decisions["old-unused"] and "never used" in decisions["old-unused"]
    with_hand = ledger.losers([hand, old], now=NOW, include_hand=True)
    assert {d.name for d in with_hand} == {"hand-made", "old-unused"}
    # no creation date: age unknown, so never pruned for disuse
    assert ledger.losers([SkillRef("dateless", "synthesized", None)], now=NOW) == []


def test_hand_written_loser_needs_include_hand(ledger):
    run_uses(ledger, "mine", ["corrected"] * 6)
    ref = SkillRef("mine", "user", NOW.date())
    assert ledger.losers([ref], now=NOW) == []
    assert [d.name for d in ledger.losers([ref], now=NOW, include_hand=True)] == ["mine"]


def test_thresholds_are_parameters(ledger):
    run_uses(ledger, "meh", ["accepted"] * 2 + ["corrected"])
    ref = synth("meh", 5)
    assert ledger.losers([ref], now=NOW) == []  # 3 uses < min_uses 5
    assert [d.name for d in ledger.losers([ref], now=NOW, min_uses=3, threshold=0.5)] == ["meh"]
    assert ledger.losers([synth("never", 10)], now=NOW, unused_days=11) == []
    assert len(ledger.losers([synth("never", 10)], now=NOW, unused_days=10)) == 1


# ---- versions -----------------------------------------------------------------------------

def test_repaired_skill_is_not_pruned_for_failures_its_repair_fixed(ledger):
    run_uses(ledger, "fixed", ["corrected"] * 6, version="v1")
    run_uses(ledger, "unfixed", ["corrected"] * 6, version="v1")
    assert {d.name for d in ledger.losers([synth("fixed", 30), synth("unfixed", 30)],
                                          now=NOW)} == {"fixed", "unfixed"}
    run_uses(ledger, "fixed", ["accepted"] * 3, session="t", version="v2")
    st = ledger.stats()["fixed"]
    assert st.by_version == {"v1": (0, 6, 0), "v2": (3, 0, 0)}
    assert st.current_version == "v2"
    assert st.evidence == pytest.approx(3 + 6 * 0.25)
    assert st.score == pytest.approx(wilson_lower_bound(3, 3 + 6 * 0.25))
    assert st.score > wilson_lower_bound(3, 9)  # what equal weighting would give
    assert {d.name for d in ledger.losers([synth("fixed", 30), synth("unfixed", 30)],
                                          now=NOW)} == {"unfixed"}


def test_current_version_from_the_caller_discounts_before_any_new_use(ledger):
    run_uses(ledger, "k", ["corrected"] * 6, version="v1")
    assert [d.name for d in ledger.losers([synth("k", 30, version="v1")], now=NOW)] == ["k"]
    assert ledger.losers([synth("k", 30, version="v2")], now=NOW) == []
    assert ledger.stats({"k": "v2"})["k"].evidence == pytest.approx(1.5)


# ---- storage ------------------------------------------------------------------------------

def test_migrates_an_empty_file_and_reopens_idempotently(tmp_path):
    path = tmp_path / "ledger.db"
    path.write_bytes(b"")
    with Ledger(path, clock=Clock()) as led:
        led.record_use("s", 1, "k", "injected")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(LEDGER_MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert migrate(conn, LEDGER_MIGRATIONS, "again") == 0
    conn.close()
    for _ in range(2):
        with Ledger(path) as led:
            assert led.pending_turns("s") == [1]


def test_migrate_runs_only_new_steps_and_refuses_a_newer_file(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    steps = ["CREATE TABLE a (x);"]
    assert migrate(conn, steps, "x.db") == 1
    steps.append("CREATE TABLE b (y); INSERT INTO b VALUES (1);")
    assert migrate(conn, steps, "x.db") == 1  # step 1 would fail if it ran twice
    assert conn.execute("SELECT y FROM b").fetchall() == [(1,)]
    broken = steps + ["CREATE TABLE c (z); INSERT INTO nowhere VALUES (1);"]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken, "x.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2  # the failed step left no trace
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'c'").fetchall() == []
    with pytest.raises(StoreError, match="newer than this joe-agent"):
        migrate(conn, steps[:1], "x.db")
    conn.close()


@pytest.mark.parametrize("content", [b"this is not sqlite at all\n" * 200,
                                     b"SQLite format 3\x00" + b"\xff" * 4000])
def test_broken_ledger_file_gives_one_clear_line(tmp_path, content):
    path = tmp_path / "ledger.db"
    path.write_bytes(content)
    with pytest.raises(StoreError) as info:
        Ledger(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and "move it aside" in msg
    assert path.read_bytes() == content  # never "repaired" by overwriting the person's file


def test_a_folder_in_the_way_gives_store_error(tmp_path):
    (tmp_path / "ledger.db").mkdir()
    with pytest.raises(StoreError, match="ledger.db"):
        Ledger(tmp_path / "ledger.db")


def test_closed_ledger_says_so(tmp_path):
    led = Ledger(tmp_path / "ledger.db")
    led.close()
    led.close()
    with pytest.raises(StoreError, match="closed"):
        led.stats()


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from joe_agent.memory.ledger import Ledger
    path, who, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.005)
    led = Ledger(path)
    for turn in range(1, 1001):
        led.record_use(who, turn, "shared-skill", "injected", version=who)
        if turn % 2 == 0:
            led.settle(who, turn, "accepted")
    led.close()
""")


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path, go = tmp_path / "ledger.db", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), who, str(go)], env=env,
                              stderr=subprocess.PIPE) for who in ("p1", "p2")]
    go.touch()  # both are waiting: they open the fresh file and write at the same time
    for proc in procs:
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err.decode()
    with Ledger(path) as led:
        st = led.stats()["shared-skill"]
        assert (st.uses, st.accepted, st.pending) == (2000, 1000, 1000)
        assert st.by_version == {"p1": (500, 0, 0), "p2": (500, 0, 0)}
        assert led.pending_turns("p1") == list(range(1, 1001, 2))
