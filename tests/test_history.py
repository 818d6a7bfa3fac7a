"""Search across sessions: the FTS5 index over real transcripts (written by the real Transcript
class and by the real agent against the fake Ollama server), its three ways in (CLI/REPL
function, the model's tool, --json), privacy, recovery, incremental and concurrent indexing."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fake_ollama import FakeOllama, Reply
from joe_agent.cli import main
from joe_agent.history_cli import (SEARCH_HISTORY_HINT, TOOL_OUTPUT_CAP, IndexerThread, history_cli,
                                   open_index, search_history_tool)
from joe_agent.memory.history import HistoryIndex, fts_query
from joe_agent.memory.store import append_line
from joe_agent.memory.transcript import Transcript
from joe_agent.messages import Message, ToolCall
from joe_agent.paths import project_key
from joe_agent.tools.permissions import Permissions
from joe_agent.tools.registry import Registry, ToolContext
from joe_agent.tools.workspace import Workspace

AWS_ID = "AKIAQWERTYUIOPASDFGH"
AWS_SECRET = "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"
SK_KEY = "sk-Zq8Xk2Lm9QwErTyUiOpAsDfGhJkLzXcVbNm1234567"
SECRETS = (AWS_ID, AWS_SECRET, SK_KEY)


@pytest.fixture
def home() -> Path:
    return Path(os.environ["JOE_HOME"])


def make_project(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    root.mkdir()
    return root


def write_session(home: Path, root: Path, sid: str, turns: list[tuple[str, str, str]]) -> Transcript:
    """A session as the agent writes it: per turn a request, a shell call, its output, an answer."""
    t = Transcript(home / "transcripts" / project_key(root), sid)
    t.write_session_start(root, "qwen2.5-coder:7b", "ollama", 8192)
    for n, (request, output, answer) in enumerate(turns, 1):
        add_turn(t, n, request, output, answer)
    return t


def add_turn(t: Transcript, n: int, request: str, output: str, answer: str) -> None:
    call = ToolCall("run_shell", {"command": "pytest -q"}, id=f"call_{n}")
    t.write_message(Message("user", f"[skill: injected guidance]\n{request}"), n, request=request)
    t.write_message(Message("assistant", "", tool_calls=[call]), n)
    t.write("tool_call", n, call=call.to_dict())
    t.write_message(Message("tool", output, tool_name="run_shell", tool_call_id=call.id), n)
    t.write_message(Message("assistant", answer), n)
    t.write("turn_done", n, reason="done", steps=2)


class Out:
    def __init__(self) -> None:
        self.tables: list[tuple[str, list[str], list[list[str]]]] = []
        self.lines: list[str] = []

    def table(self, title: str, columns: list[str], rows: list[list[str]]) -> None:
        self.tables.append((title, columns, rows))

    def line(self, text: str) -> None:
        self.lines.append(text)


def cli(action: str, query: str | None, home: Path, root: Path, as_json: bool = False) -> tuple[int, Out]:
    out = Out()
    return history_cli(action, query, as_json, home, root, out.table, out.line), out


def db_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.glob("history.db*") if p.is_file())


@pytest.fixture
def two_projects(tmp_path, home):
    app, lib = make_project(tmp_path, "app"), make_project(tmp_path, "lib")
    old = write_session(home, app, "20260101-090000-0a0a", [
        ("fix the flaky websocket reconnect test", "E ConnectionResetError: peer closed the socket",
         "The reconnect loop did not await the backoff; fixed in ws/client.py."),
        ("add a changelog entry", "ok", "Added the entry."),
    ])
    write_session(home, app, "20260301-090000-0b0b", [("rename the config loader", "3 passed", "Renamed.")])
    write_session(home, lib, "20260201-090000-0c0c", [("bump the version", "1 passed", "Bumped to 2.0.")])
    return app, lib, old


# ---- the three ways in ---------------------------------------------------------------------------

def test_old_phrase_found_by_cli_json_and_the_models_tool(two_projects, home):
    app, lib, old = two_projects
    rc, out = cli("search", "websocket reconnect", home, lib)  # from another project: found anyway
    assert rc == 0
    title, columns, rows = out.tables[0]
    assert columns == ["session", "date", "project", "turn", "from", "match"]
    assert rows[0][0] == old.id and rows[0][3] == "1" and rows[0][1].startswith("20")
    assert "«websocket» «reconnect»" in rows[0][5]
    assert any(f"joe --resume {old.id}" in line for line in out.lines)

    rc, out = cli("search", "reconnect", home, app, as_json=True)
    doc = json.loads(out.lines[-1])
    assert rc == 0 and doc["project"] == project_key(app)
    assert {h["session"] for h in doc["hits"]} == {old.id}
    assert {h["role"] for h in doc["hits"]} == {"user", "assistant"}  # the request and the answer

    index = open_index(home)
    registry = Registry(ToolContext(Workspace(app), Permissions()), tools=[search_history_tool(index, app)])
    assert registry.get("search_history").kind == "read"
    assert "search_history" in SEARCH_HISTORY_HINT
    result = registry.run(ToolCall("search_history", {"query": "ConnectionResetError", "limit": "3"}))
    assert result.ok, result.content
    assert f"session {old.id}, turn 1" in result.content and "this project" in result.content
    assert "request: fix the flaky websocket reconnect test" in result.content
    assert "answer: The reconnect loop did not await the backoff" in result.content
    assert "«ConnectionResetError»" in result.content
    assert "injected guidance" not in result.content  # the request as typed, not the injections
    empty = registry.run(ToolCall("search_history", {"query": "  "}))
    assert not empty.ok and "needs words" in empty.content
    index.close()


def test_sessions_run_through_the_real_agent_are_found(tmp_path, home):
    root = make_project(tmp_path, "proj")
    script = f"print('quantum flux capacitor overheated; token {SK_KEY}')"
    with FakeOllama() as fake:
        fake.queue(Reply(tool_calls=[{"name": "run_shell", "arguments": {"command": f'{sys.executable} -c "{script}"'}}]),
                   Reply(text="The capacitor needs a cooldown step before the build."))
        assert main(["-C", str(root), "--host", fake.url, "-p", "why does the build melt", "--yes"]) == 0
        fake.queue(Reply(text="Nothing else to do."))
        assert main(["-C", str(root), "--host", fake.url, "-p", "anything else?", "--yes"]) == 0
    sessions = sorted((home / "transcripts" / project_key(root)).glob("*.jsonl"))
    assert len(sessions) == 2
    rc, out = cli("search", "capacitor overheated", home, root, as_json=True)
    hits = json.loads(out.lines[-1])["hits"]
    first = next(p.stem for p in sessions if "why does the build melt" in p.read_text())
    assert rc == 0 and hits[0]["session"] == first and hits[0]["role"] == "tool"
    assert "«capacitor» «overheated»" in hits[0]["snippet"]
    index = open_index(home)
    ctx = index.turn_context(hits[0]["session"], hits[0]["turn"])
    assert ctx["request"] == "why does the build melt" and "cooldown step" in ctx["answer"]
    index.close()
    assert SK_KEY.encode() not in db_bytes(home)


def test_current_project_sessions_rank_first(two_projects, home, tmp_path):
    app, lib, _ = two_projects
    # the other project mentions the words more often, so plain BM25 prefers it
    write_session(home, lib, "20260401-090000-0d0d", [(
        "the deploy pipeline deploy step fails", "deploy pipeline: deploy failed, deploy retried",
        "The deploy pipeline now retries the deploy.")])
    write_session(home, app, "20260402-090000-0e0e", [(
        "document the release process in a long and wordy guide that mentions a deploy once", "ok",
        "Written.")])
    index = open_index(home)
    index.update_all()
    assert index.search("deploy")[0].project == project_key(lib)
    ranked = index.search("deploy", project=project_key(app))
    assert ranked[0].project == project_key(app)
    assert [h.project for h in ranked] == sorted((h.project for h in ranked), key=lambda p: p != project_key(app))
    assert index.search("deploy", project=project_key(lib))[0].project == project_key(lib)
    index.close()
    rc, out = cli("search", "deploy", home, app)
    rows = out.tables[0][2]
    assert rows[0][2].endswith("(this)") and not rows[-1][2].endswith("(this)")


# ---- privacy ---------------------------------------------------------------------------------------

def test_planted_secrets_never_reach_history_db(tmp_path, home):
    root = make_project(tmp_path, "app")
    t = write_session(home, root, "20260101-090000-5e5e", [(
        f"deploy with key {AWS_ID}", f"aws_secret_access_key = {AWS_SECRET}\nOPENAI={SK_KEY}", "Deployed.")])
    # a transcript written by an older joe, or edited by hand: raw secrets on disk
    raw = {"v": 1, "ts": "2026-01-01T09:10:00.000Z", "type": "message", "turn": 2,
           "message": {"role": "tool", "tool_name": "run_shell",
                       "content": f"creds {AWS_ID} {AWS_SECRET}\nexport OPENAI_API_KEY={SK_KEY} staging ready"}}
    append_line(t.path, json.dumps(raw))
    assert SK_KEY in t.path.read_text()
    index = open_index(home)
    assert index.update_all() > 0
    assert [h.turn for h in index.search("staging ready")] == [2]  # the text around them is indexed
    assert index.search("REDACTED aws")  # and the markers are searchable
    for secret in SECRETS:
        assert index.search(secret) == []
    conn = sqlite3.connect(home / "history.db")
    conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, fts, 'row')")
    terms = {row[0] for row in conn.execute("SELECT term FROM temp.vocab")}
    conn.close()
    index.close()
    for secret in SECRETS:
        for part in secret.replace("/", "-").replace("sk-", "").split("-"):
            assert part.lower() not in terms
    data = db_bytes(home)
    for secret in SECRETS:
        assert secret.encode() not in data and secret.lower().encode() not in data


# ---- recovery ----------------------------------------------------------------------------------------

def test_rebuilt_after_history_db_is_deleted(two_projects, home):
    app, _, old = two_projects
    live = open_index(home)  # a running session's index, connected when the file goes
    assert live.search("changelog")
    for p in home.glob("history.db*"):
        p.unlink()
    rc, out = cli("search", "changelog", home, app)
    assert rc == 0 and out.tables[0][2][0][0] == old.id
    assert any("building the history index from 3 transcripts" in line for line in out.lines)
    add_turn(old, 3, "the session goes on", "ok", "done")
    assert live.update_file(old.path) == 4  # into the new file, not the deleted one
    live.close()
    fresh = open_index(home)
    assert [h.turn for h in fresh.search("the session goes on")] == [3]
    fresh.close()


@pytest.mark.parametrize("where", ["whole file", "inner pages"])
def test_rebuilt_after_corruption(two_projects, home, where):
    app, _, old = two_projects
    index = open_index(home)
    index.update_all()
    index.close()
    other = open_index(home)  # another session's index, connected before the damage
    assert other.search("changelog")
    db = home / "history.db"
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        if where == "inner pages":
            fh.seek(4096)  # leave the header: sqlite opens it and trips later
        fh.write(os.urandom(size))
    rc, out = cli("search", "changelog", home, app)
    assert rc == 0 and out.tables[0][2][0][0] == old.id
    assert any("damaged" in line and "history.db.corrupt" in line for line in out.lines), out.lines
    assert (home / "history.db.corrupt").is_file()
    # the other one finds the file already replaced: it joins the new one, moves nothing aside
    corrupt = (home / "history.db.corrupt").read_bytes()
    before = other._inode
    assert [h.session for h in other.search("changelog")] == [old.id]
    assert other._inode != before  # it did reconnect
    assert (home / "history.db.corrupt").read_bytes() == corrupt and other.notices == []
    other.close()
    conn = sqlite3.connect(home / "history.db")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM entries").fetchone() == (16,)  # every transcript again
    conn.close()


def test_torn_transcript_line_is_indexed_only_once_complete(tmp_path, home):
    root = make_project(tmp_path, "app")
    t = write_session(home, root, "20260101-090000-7a7a", [("first request", "ok", "done")])
    index = open_index(home)
    base = index.update_file(t.path)
    line = json.dumps({"v": 1, "ts": "2026-01-01T10:00:00.000Z", "type": "message", "turn": 2,
                       "message": {"role": "user", "content": "the zebra crossing request"}}).encode()
    with open(t.path, "ab") as fh:
        fh.write(line[:40])
    assert index.update_file(t.path) == 0 and index.update_all() == 0
    with open(t.path, "ab") as fh:
        fh.write(line[40:-10])
    assert index.search("zebra") == [] and index.update_file(t.path) == 0
    with open(t.path, "ab") as fh:
        fh.write(line[-10:] + b"\n")
    assert index.update_file(t.path) == 1
    assert [(h.turn, h.role) for h in index.search("zebra crossing")] == [(2, "user")]
    assert base == 4  # request, call, output, answer (tool_call and turn_done records add nothing)
    index.close()


# ---- incremental and concurrent ------------------------------------------------------------------

def test_incremental_update_reads_only_new_lines(tmp_path, home):
    root = make_project(tmp_path, "app")
    t = write_session(home, root, "20260101-090000-1b1b", [("alpha request", "alpha output", "alpha answer")])
    index = HistoryIndex(home / "history.db", home / "transcripts")
    assert index.update_file(t.path) == 4
    assert index.update_file(t.path) == 0 and index.update_all() == 0
    add_turn(t, 2, "beta request", "beta output", "beta answer")
    assert index.update_file(t.path) == 4
    conn = sqlite3.connect(home / "history.db")
    assert conn.execute("SELECT offset FROM files").fetchall() == [(t.path.stat().st_size,)]
    assert conn.execute("SELECT count(*) FROM entries").fetchone() == (8,)
    conn.close()
    # an indexed line changed behind the index's back is not read again: only the offset counts
    data = t.path.read_bytes()
    t.path.write_bytes(data.replace(b"alpha request", b"gamma request"))
    add_turn(t, 3, "delta request", "delta output", "delta answer")
    assert index.update_file(t.path) == 4
    assert index.search("gamma") == [] and len(index.search("alpha request")) == 1
    # a transcript that shrank (rewritten) is indexed afresh; a deleted one is forgotten
    t.path.write_bytes(data[: data.index(b"\n") + 1] + b'{"v":1,"ts":"x","type":"message","turn":1,'
                       b'"message":{"role":"user","content":"omega request"}}\n')
    assert index.update_all() == 1
    assert index.search("alpha") == [] and len(index.search("omega")) == 1
    t.path.unlink()
    index.update_all()
    assert index.search("omega") == []
    index.close()


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from joe_agent.memory.history import HistoryIndex
    from joe_agent.memory.transcript import Transcript
    from joe_agent.messages import Message
    home, name, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    t = Transcript(home / "transcripts" / "proj-0000", "20260101-000000-" + name)
    index = HistoryIndex(home / "history.db", home / "transcripts")
    while not go.exists():
        time.sleep(0.005)
    for n in range(1, 41):
        t.write_message(Message("user", f"writer{name} request{n} marmalade"), n)
        t.write_message(Message("assistant", f"writer{name} answer{n} marmalade"), n)
        index.update_file(t.path)
        if n % 2 == 0:
            index.update_all()  # also indexes the other writer's file: the races we care about
    index.close()
""")


def test_two_writer_processes_lose_nothing(home, tmp_path):
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(home), name, str(go)], env=env,
                              stderr=subprocess.PIPE, text=True) for name in ("aaaa", "bbbb")]
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    conn = sqlite3.connect(home / "history.db")
    rows = conn.execute("SELECT f.session, e.turn, e.role, count(*) FROM entries e JOIN files f ON f.id = e.file_id"
                        " GROUP BY 1, 2, 3").fetchall()
    conn.close()
    assert len(rows) == 2 * 40 * 2 and all(r[3] == 1 for r in rows)
    index = open_index(home)
    assert index.update_all() == 0
    assert len(index.search("marmalade", limit=500)) == 160
    assert [h.session for h in index.search("writerbbbb request40")] == ["20260101-000000-bbbb"]
    index.close()


def test_indexer_thread_indexes_in_the_background(tmp_path, home):
    root = make_project(tmp_path, "app")
    t = write_session(home, root, "20260101-090000-2c2c", [("first", "ok", "done")])
    index = open_index(home)
    indexer = IndexerThread(index)
    indexer.submit(t.path)
    assert indexer.flush(10)
    add_turn(t, 2, "the background request", "ok", "done")
    indexer.submit(t.path)
    indexer.submit(t.path)  # coalesces with the one before
    indexer.close()
    assert [h.turn for h in index.search("background")] == [2] and indexer.errors == []
    index.close()


# ---- queries -------------------------------------------------------------------------------------

WEIRD = ['foo-bar', '"', '""', ':', 'AND', 'OR', 'NOT', 'a AND', 'NEAR(', 'NEAR(a b)', '*', 'x*', '^start',
         'col:val', 'text:foo', '{text}: x', '(', ')', '-', '+', 'a OR OR b', '"unterminated phrase', "'",
         '\\', '\x00', 'naïve café', '日本語', '🙂', 'a' * 5000, '   ', '', 'sk-', '%', '_', 'select * from',
         'rank', 'fts MATCH', '"a" "b" "', 'foo"bar', 'a\nb\tc', 'word ' * 400]


def test_weird_queries_never_raise(two_projects, home):
    app, lib, _ = two_projects
    write_session(home, app, "20260501-090000-3d3d", [(
        "rename foo-bar to baz AND keep col:val intact", "naïve café ok", "Done with the foo-bar rename.")])
    index = open_index(home)
    for q in WEIRD:
        assert isinstance(index.search(q, project=project_key(app)), list), q
        assert history_cli("search", q, True, home, app, lambda *a: None, lambda s: None) in (0, 1, 2)
    assert index.search("foo-bar")[0].session == "20260501-090000-3d3d"
    assert index.search("col:val") and index.search("AND keep") and index.search("naive cafe")
    assert index.search('"keep col"') and not index.search('"col keep"')  # a quoted phrase keeps its order
    assert index.search("renam")  # the last word matches as a prefix
    assert index.search("websocket zzzunknown")  # no match for all words: any word will do
    index.close()
    assert fts_query('say "hello world" now') == '"say" AND "hello world" AND "now"'
    assert fts_query('say "hello world" now', prefix=True) == '"say" AND "hello world" AND "now"*'
    assert fts_query('say "hello world"', prefix=True) == '"say" AND "hello world"'
    assert fts_query("it ", prefix=True) == fts_query("it", prefix=True) == '"it"'
    assert fts_query("x AND y") == '"x" AND "AND" AND "y"'


def test_odd_transcript_content_is_indexed_not_fatal(tmp_path, home):
    root = make_project(tmp_path, "app")
    t = write_session(home, root, "20260101-090000-8a8a", [("first", "ok", "done")])
    undecodable = b"binary \xff\xfe tail".decode("utf-8", "surrogateescape")
    t.write_message(Message("tool", f"gibberish {undecodable} «quoted» end", tool_name="read_file"), 2)
    for line in ("not json at all", "[1, 2]", '{"type": "message", "turn": "x", "message": "oops"}',
                 '{"type": "message", "turn": 3, "message": {"role": "user", "content": null}}'):
        append_line(t.path, line)
    add_turn(t, 4, "after the damage", "ok", "done")
    index = open_index(home)
    assert index.update_file(t.path) == 9
    [hit] = index.search("gibberish")
    assert "\ufffd" in hit.snippet and "‹quoted›" in hit.snippet and "«gibberish»" in hit.snippet
    assert [h.turn for h in index.search("after the damage")] == [4]
    index.close()


def test_whole_words_rank_before_prefix_matches(tmp_path, home):
    root = make_project(tmp_path, "app")
    write_session(home, root, "20260101-090000-6f6f", [
        ("the parsers parsers parsers module", "ok", "done"), ("fix the parse step", "ok", "done")])
    index = open_index(home)
    assert [h.turn for h in index.search("parse")] == [2, 1]
    assert [h.turn for h in index.search("parsers")] == [1]
    index.close()


def test_a_very_common_query_is_ranked_among_its_newest_matches(tmp_path, home, monkeypatch):
    root = make_project(tmp_path, "app")
    turns = [("common common common common", "ok", "done")] + [(f"common word {n} " + "filler " * 30, "ok", "done")
                                                               for n in range(30)]
    write_session(home, root, "20260101-090000-7f7f", turns)
    index = open_index(home)
    assert index.search("common", limit=5)[0].turn == 1  # the best match, however old
    monkeypatch.setattr("joe_agent.memory.history.RANK_WINDOW", 10)
    hits = index.search("common", limit=50)
    assert sorted(h.turn for h in hits) == list(range(22, 32))  # the newest 10 matches only
    index.close()


def test_cli_usage_mistakes_and_reindex(two_projects, home):
    app, _, _ = two_projects
    assert cli("explode", None, home, app)[0] == 2
    rc, out = cli("search", "  ", home, app)
    assert rc == 2 and "needs words" in out.lines[0]
    rc, out = cli("search", "nothing-like-this-anywhere", home, app)
    assert rc == 1 and "no past session" in out.lines[-1]
    rc, out = cli("reindex", None, home, app)
    assert rc == 0 and "reindexed 3 sessions (16 entries)" in out.lines[-1]
    rc, out = cli("reindex", None, home, app)
    assert "(16 entries)" in out.lines[-1]  # a rebuild replaces, it does not add


def test_tool_output_is_capped_and_grouped_by_turn(tmp_path, home):
    root = make_project(tmp_path, "app")
    long = "lorem ipsum " * 200
    write_session(home, root, "20260101-090000-4e4e", [
        (f"request {n} about the parser {long}", f"parser output {n} {long}", f"answer {n} {long}") for n in range(12)])
    index = open_index(home)
    tool = search_history_tool(index, root, exclude_session=None)
    text = tool.fn(None, query="parser", limit=10)
    assert len(text) <= TOOL_OUTPUT_CAP and "more not shown" in text
    assert text.count("session 20260101-090000-4e4e, turn") >= 3
    assert tool.fn(None, query="parser", limit=2).count("session 20260101") == 2
    hidden = search_history_tool(index, root, exclude_session="20260101-090000-4e4e")
    assert hidden.fn(None, query="parser").startswith("No past session mentions")
    index.close()
