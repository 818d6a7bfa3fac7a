"""Session transcripts: round trips, concurrent appends, damaged files, scrubbing, listing."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from joe_agent.errors import StoreError
from joe_agent.memory.transcript import (
    KNOWN_TYPES, NO_RESULT, Transcript, find_session, list_sessions, matching_sessions,
    new_session_id, read_records,
)
from joe_agent.messages import (
    ErrorEvent, Message, Notice, TextDelta, ToolCall, ToolCallEvent, ToolResult, ToolResultEvent, TurnDone,
)
from joe_agent.paths import joe_home, project_key

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path):
    return joe_home() / "transcripts" / project_key(tmp_path)


def _sid(offset_s: int = 0) -> str:
    return new_session_id(datetime(2026, 11, 23, 14, 55, 2, tzinfo=timezone.utc) + timedelta(seconds=offset_s))


# ---- ids and envelope -------------------------------------------------------------------------


def test_session_ids_are_utc_timestamps_that_sort_by_start_time():
    cet = timezone(timedelta(hours=1))
    sid = new_session_id(datetime(2026, 11, 23, 15, 55, 2, tzinfo=cet))
    assert re.fullmatch(r"20261123-145502-[0-9a-f]{4}", sid)
    times = [datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(hours=h * 7, seconds=h) for h in range(20)]
    ids = [new_session_id(t) for t in times]
    assert sorted(ids) == ids
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", new_session_id())


def test_every_record_type_round_trips_with_its_envelope(folder):
    t = Transcript(folder, _sid())
    assert not folder.exists()  # created on first write, not before
    written = {}
    for n, typ in enumerate(sorted(KNOWN_TYPES)):
        fields = {"n": n, "label": f"{typ} record", "nested": {"items": [1, "two", None, True]}}
        if typ == "message":
            fields["message"] = Message(role="user", content=f"prompt {n}").to_dict()
        t.write(typ, turn=n, **fields)
        written[typ] = (n, fields)
    recs = t.records()
    assert [r["type"] for r in recs] == sorted(KNOWN_TYPES)
    for rec in recs:
        n, fields = written[rec["type"]]
        assert rec["v"] == 1 and rec["turn"] == n
        assert rec["ts"].endswith("Z")
        assert datetime.fromisoformat(rec["ts"].replace("Z", "+00:00")).tzinfo is not None
        assert {k: v for k, v in rec.items() if k not in ("v", "ts", "type", "turn")} == fields
    assert list(recs[0])[:4] == ["v", "ts", "type", "turn"]
    assert t.last_turn() == len(KNOWN_TYPES) - 1 and t.skipped_lines == 0


def test_session_start_and_agent_events_are_recorded(folder, tmp_path):
    t = Transcript(folder, _sid())
    t.write_session_start(tmp_path / "proj", model="qwen2.5-coder:7b", backend="ollama", num_ctx=16384)
    call = ToolCall(name="run_shell", arguments={"command": "pytest -q"}, id="c1")
    for ev in (TextDelta("streamed"), ToolCallEvent(call),
               ToolResultEvent(call, ToolResult("2 passed", ok=True, meta={"exit_code": 0, "duration_s": 1.25})),
               Notice("compacted history", topic="compaction", data={"dropped": 4}),
               ErrorEvent("server went away", error_type="stream", partial=True),
               TurnDone(reason="done", steps=3, prompt_tokens=900, completion_tokens=120, duration_s=4.0,
                        tokens_per_s=30.0)):
        t.write_event(ev, turn=1)
    recs = t.records()
    assert [r["type"] for r in recs] == ["session_start", "tool_call", "tool_result", "notice", "error", "turn_done"]
    start = recs[0]
    assert start["session_id"] == t.id and start["model"] == "qwen2.5-coder:7b" and start["num_ctx"] == 16384
    assert start["backend"] == "ollama" and start["joe_version"] and start["project_root"].endswith("proj")
    assert recs[1]["call"] == call.to_dict()
    assert recs[2]["ok"] is True and recs[2]["duration_s"] == 1.25 and recs[2]["meta"]["exit_code"] == 0
    assert recs[3]["data"] == {"dropped": 4} and recs[4]["partial"] is True
    assert recs[5]["reason"] == "done" and recs[5]["steps"] == 3 and recs[5]["tokens_per_s"] == 30.0


def test_bad_writes_are_refused(folder):
    t = Transcript(folder, _sid())
    with pytest.raises(ValueError):
        t.write("notice", ts="yesterday")
    with pytest.raises(ValueError):
        t.write("Bad Type")
    with pytest.raises(StoreError):
        Transcript(folder, "../escape")
    with pytest.raises(StoreError):
        Transcript.open_existing(folder / "missing.jsonl")


def test_odd_characters_stay_on_one_line_and_round_trip(folder):
    t = Transcript(folder, _sid())
    texts = ["line\nbreak", "sep\u2028par\u2029", "undecodable \udcff byte", "tab\tquote\" back\\slash é 🙂"]
    for text in texts:
        t.write_message(Message(role="tool", content=text, tool_name="read_file"), turn=1)
    assert t.path.read_bytes().count(b"\n") == len(texts)
    assert [m.content for m in t.messages()] == texts


# ---- durability ---------------------------------------------------------------------------------


def _assert_complete(path: Path, expected: set[tuple[str, int]]) -> None:
    recs, skipped = read_records(path)
    assert skipped == 0
    assert path.read_bytes().endswith(b"\n")
    got = [(r["who"], r["i"]) for r in recs]
    assert len(got) == len(expected) and set(got) == expected


@pytest.mark.parametrize("shared", [True, False], ids=["one-object", "object-per-thread"])
def test_eight_threads_appending_lose_and_tear_nothing(folder, shared):
    sid = _sid()
    one = Transcript(folder, sid)

    def work(k: int) -> None:
        t = one if shared else Transcript(folder, sid)
        for i in range(200):
            t.write("notice", turn=i, who=f"t{k}", i=i, text="x" * (i * 37 % 3000))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    _assert_complete(one.path, {(f"t{k}", i) for k in range(8) for i in range(200)})


def test_two_processes_appending_lose_and_tear_nothing(folder):
    sid = _sid()
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from joe_agent.memory.transcript import Transcript
        t = Transcript(Path({str(folder)!r}), {sid!r})
        who = sys.argv[1]
        for i in range(500):
            t.write("notice", turn=i, who=who, i=i, text="y" * (i * 53 % 9000))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, f"p{k}"], cwd=REPO) for k in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    _assert_complete(folder / f"{sid}.jsonl", {(f"p{k}", i) for k in range(2) for i in range(500)})


def test_torn_last_line_is_ignored_on_read_and_cut_on_reopen(folder):
    t = Transcript(folder, _sid())
    for i in range(3):
        t.write("notice", turn=1, i=i)
    intact = t.path.read_bytes()
    with open(t.path, "ab") as fh:  # a crash halfway through a write
        fh.write(b'{"v":1,"ts":"2026-11-23T14:55:02.000Z","type":"mess')
    assert [r["i"] for r in t.records()] == [0, 1, 2] and t.skipped_lines == 0

    again = Transcript.open_existing(t.path)
    assert t.path.read_bytes() == intact
    again.write("notice", turn=2, i=3)
    assert [r["i"] for r in again.records()] == [0, 1, 2, 3] and again.skipped_lines == 0


def test_first_append_of_a_new_writer_ends_a_torn_tail_without_cutting_it(folder):
    # a second writer cannot tell a crashed line from another writer's append still landing,
    # so it ends the line instead of cutting it: the debris becomes one skipped line
    sid = _sid()
    Transcript(folder, sid).write("notice", i=0)
    path = folder / f"{sid}.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"v":1,"type":"notice","i":')
    Transcript(folder, sid).write("notice", i=1)
    records, skipped = read_records(path)
    assert [r["i"] for r in records] == [0, 1] and skipped == 1


def test_corrupt_middle_lines_are_skipped_and_counted(folder):
    t = Transcript(folder, _sid())
    t.write_message(Message(role="user", content="first"), turn=1)
    with open(t.path, "ab") as fh:
        fh.write(b"garbage{{\n")
        fh.write(b"[1, 2, 3]\n")  # valid JSON, not a record
        fh.write(b'{"v":1,"type":"message","turn":1,"message":{"content":"no role"}}\n')
        fh.write(b"\xff\xfe not utf-8\n")
        fh.write(b"\n")  # a blank line is not damage
    t.write_message(Message(role="assistant", content="second"), turn=1)
    recs = t.records()
    assert [r["type"] for r in recs] == ["message", "message", "message"] and t.skipped_lines == 3
    assert [m.content for m in t.messages()] == ["first", "second"]
    assert t.skipped_lines == 4  # the message without a role is counted by messages()


# ---- scrubbing ------------------------------------------------------------------------------------


def test_secrets_never_reach_the_file(folder):
    token = "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5"
    email, pem_line = "carol.danvers@acme-corp.io", "MIIEpAIBAAKCAQEA1x2y3z4A5B6C7D8E9F0G1H2I3J4K5L6"
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{pem_line}\n-----END RSA PRIVATE KEY-----"
    t = Transcript(folder, _sid())
    t.write_session_start(Path("/home/carol/work/app"), model="m", backend="ollama", num_ctx=8192)
    t.write_message(Message(role="user", content=f"use {token} and mail {email}"), turn=1)
    t.write_message(Message(role="assistant", content="", tool_calls=[ToolCall(
        name="write_file", arguments={"path": "/home/carol/work/app/.env", "content": "DB_PASSWORD=hunter2xyz\n"})]),
        turn=1, partial=True)
    t.write_message(Message(role="tool", content=pem, tool_name="read_file"), turn=1)
    t.write("correction", turn=1, text="never paste keys", data={"api_key": "plainvalue123"})
    raw = t.path.read_text()
    for secret in (token, email, pem_line, "hunter2xyz", "plainvalue123", "/home/carol"):
        assert secret not in raw, secret
    for marker in ("[REDACTED:github-token]", "[REDACTED:email]", "[REDACTED:private-key]", "~/work/app"):
        assert marker in raw, marker


# ---- resume ---------------------------------------------------------------------------------------


def test_messages_rebuild_the_history_with_tool_calls_and_results(folder):
    calls = [ToolCall(name="read_file", arguments={"path": "a.py"}, id="c1"),
             ToolCall(name="run_shell", arguments={"command": "pytest -q"}, id="c2")]
    history = [
        Message(role="user", content="fix the test"),
        Message(role="assistant", content="", thinking="look first", tool_calls=calls),
        Message(role="tool", content="print(1)", tool_name="read_file", tool_call_id="c1"),
        Message(role="tool", content="1 failed", tool_name="run_shell", tool_call_id="c2"),
        Message(role="assistant", content="Fixed."),
        Message(role="user", content="now the docs"),
        Message(role="assistant", content="Writing the do"),
    ]
    t = Transcript(folder, _sid())
    t.write("session_start", 0, model="m")
    for msg in history[:5]:
        t.write_message(msg, turn=1)
        t.write("tool_result", turn=1, ok=True) if msg.role == "tool" else None
    t.write("turn_done", turn=1, reason="done")
    t.write_message(history[5], turn=2)
    t.write_message(history[6], turn=2, partial=True, interrupted=True)
    resumed = Transcript.open_existing(t.path)
    assert [m.to_dict() for m in resumed.messages()] == [m.to_dict() for m in history]
    assert resumed.last_turn() == 2
    assert [r.get("partial") for r in resumed.records() if r["type"] == "message"][-1] is True


def test_tool_calls_left_without_results_get_one_placeholder_each(folder):
    t = Transcript(folder, _sid())
    calls = [ToolCall(name="run_shell", arguments={}, id="a"), ToolCall(name="read_file", arguments={}, id="b")]
    t.write_message(Message(role="user", content="go"), turn=1)
    t.write_message(Message(role="assistant", tool_calls=calls), turn=1)
    t.write_message(Message(role="tool", content="ok", tool_name="read_file", tool_call_id="b"), turn=1)
    # the process died here; the next turn starts
    t.write_message(Message(role="user", content="again"), turn=2)
    t.write_message(Message(role="assistant", tool_calls=[ToolCall(name="search", id="c")]), turn=2)
    msgs = t.messages()
    assert [(m.role, m.tool_call_id, m.content == NO_RESULT) for m in msgs] == [
        ("user", "", False), ("assistant", "", False), ("tool", "b", False), ("tool", "a", True),
        ("user", "", False), ("assistant", "", False), ("tool", "c", True)]


# ---- listing and finding ----------------------------------------------------------------------------


def _session(folder: Path, offset_s: int, prompts: list[str], model: str = "qwen") -> Transcript:
    t = Transcript(folder, _sid(offset_s))
    t.write_session_start(Path("/srv/app"), model=model, backend="ollama", num_ctx=8192)
    for n, prompt in enumerate(prompts, start=1):
        t.write_message(Message(role="user", content=prompt), turn=n)
        t.write_message(Message(role="assistant", content="done " * 50), turn=n)
        t.write("turn_done", turn=n, reason="done")
    return t


def test_list_sessions_newest_first_with_first_prompt_turns_and_model(folder):
    old = _session(folder, 0, ["first ever", "second"], model="a")
    big = _session(folder, 60, [f"prompt {i}" for i in range(400)], model="b")  # well past the tail block
    new = _session(folder, 120, ["latest"], model="c")
    with open(new.path, "ab") as fh:
        fh.write(b'{"v":1,"type":"message","turn":9')  # torn tail: ignored, not fatal
    assert big.path.stat().st_size > 200_000
    infos = list_sessions(folder)
    assert [i.id for i in infos] == [new.id, big.id, old.id]
    assert [(i.first_prompt, i.turns, i.model) for i in infos] == [
        ("latest", 1, "c"), ("prompt 0", 400, "b"), ("first ever", 2, "a")]
    assert infos[0].path == new.path and infos[0].started > infos[1].started > infos[2].started
    assert infos[0].started.tzinfo is not None
    assert list_sessions(folder / "nowhere") == []


def test_list_sessions_without_a_session_start_falls_back_to_the_id(folder):
    sid = _sid(30)
    Transcript(folder, sid).write_message(Message(role="user", content="hi"), turn=1)
    (folder / "empty-session.jsonl").write_bytes(b"")
    infos = {i.id: i for i in list_sessions(folder)}
    assert infos[sid].first_prompt == "hi" and infos[sid].model == "" and infos[sid].turns == 1
    assert infos["empty-session"].turns == 0 and infos["empty-session"].first_prompt == ""


def test_find_session_by_id_or_unique_prefix(folder):
    a = _session(folder, 0, ["a"])
    b = _session(folder, 3600, ["b"])
    assert find_session(folder, a.id) == a.path
    assert find_session(folder, a.id + ".jsonl") == a.path
    assert find_session(folder, b.id[:12]) == b.path  # the hour differs
    assert find_session(folder, "20261123") is None  # ambiguous
    assert matching_sessions(folder, "20261123") == sorted([a.path, b.path])
    assert find_session(folder, "1999") is None
    assert find_session(folder, "") is None and find_session(folder, "../../etc") is None
    assert json.loads(a.path.read_text().splitlines()[0])["type"] == "session_start"
