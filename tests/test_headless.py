"""`joe -p` end to end against the fake Ollama server over real HTTP: the tools, the loop,
the transcript, the prefix the KV cache depends on, and every error as one clear line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fake_ollama import FakeOllama, Reply, closed_port_url
from joe_agent.cli import main

NO_TOOLS_MODEL = {"tiny-coder": {"capabilities": ["completion"], "context_length": 8192, "family": "llama"}}


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "notes.txt").write_text("alpha\nbeta\n")
    return root


@pytest.fixture
def fake():
    with FakeOllama() as server:
        yield server


def joe(fake_or_url, project, *args):
    url = fake_or_url if isinstance(fake_or_url, str) else fake_or_url.url
    return main(["-C", str(project), "--host", url, *args])


def transcript_records(home: Path) -> list[dict]:
    files = sorted((home / "transcripts").rglob("*.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines()]


def test_multi_step_file_task(fake, project, capsys):
    fake.queue(
        Reply(text="I'll create the script.", tool_calls=[call("write_file", path="hello.py", content="print('helo')\n")]),
        Reply(tool_calls=[call("edit_file", path="hello.py", old_text="helo", new_text="hello")], placement="native"),
        Reply(tool_calls=[call("read_file", path="hello.py")]),
        Reply(tool_calls=[call("run_shell", command=f"{sys.executable} hello.py")]),
        Reply(tool_calls=[call("list_files"), call("search", pattern="beta")]),
        Reply(text="Created hello.py; it prints hello."),
    )
    assert joe(fake, project, "-p", "create hello.py that prints hello", "--yes") == 0
    out, err = capsys.readouterr()
    assert out.strip() == "Created hello.py; it prints hello."
    assert (project / "hello.py").read_text() == "print('hello')\n"
    assert "→ write_file hello.py" in err and "→ run_shell" in err
    reqs = fake.chat_requests
    assert len(reqs) == 6
    tool_msgs = [m for m in reqs[-1]["messages"] if m["role"] == "tool"]
    assert [m["tool_name"] for m in tool_msgs] == ["write_file", "edit_file", "read_file", "run_shell", "list_files", "search"]
    assert "hello" in tool_msgs[3]["content"]  # the command's output reached the model
    assert "notes.txt" in tool_msgs[4]["content"] and "beta" in tool_msgs[5]["content"]
    names = [t["function"]["name"] for t in reqs[0]["tools"]]
    assert names == ["read_file", "write_file", "edit_file", "list_files", "search", "run_shell"]


def test_search_history_is_offered_once_there_are_past_sessions(fake, project):
    fake.queue(Reply(text="first"), Reply(text="second"))
    assert joe(fake, project, "-p", "hello", "--yes") == 0  # nothing to search yet: no tool, no hint
    assert joe(fake, project, "-p", "hello again", "--yes") == 0
    first, second = fake.chat_requests
    assert "search_history" not in [t["function"]["name"] for t in first["tools"]]
    assert "search_history" not in first["messages"][0]["content"]
    assert "search_history" in [t["function"]["name"] for t in second["tools"]]
    assert "call search_history" in second["messages"][0]["content"]


def test_request_prefix_is_byte_identical_across_turns(fake, project):
    fake.queue(Reply(tool_calls=[call("read_file", path="notes.txt")]), Reply(tool_calls=[call("list_files")]), Reply(text="done"))
    assert joe(fake, project, "-p", "look around", "--yes") == 0
    fake.queue(Reply(text="again"))
    assert joe(fake, project, "--continue", "-p", "and again", "--yes") == 0
    bodies = fake.chat_requests
    assert len(bodies) == 4
    encoded = [json.dumps(b["messages"]) for b in bodies]
    for prev, cur in zip(encoded, encoded[1:]):
        assert cur.startswith(prev[:-1]), "a request must be a byte-identical prefix of the next"
    assert len({json.dumps(b["tools"]) for b in bodies}) == 1
    assert {b["options"]["num_ctx"] for b in bodies} == {32768}
    assert fake.reloads == 0 and fake.truncations == 0


def test_model_without_tools_uses_text_calls(project, capsys):
    with FakeOllama(models=NO_TOOLS_MODEL) as fake:
        fake.queue(
            Reply(text='I will write it.\n```json\n{"name": "write_file", "arguments": {"path": "a.txt", "content": "A\\n"}}\n```'),
            Reply(text='<tool_call>{"name": "read_file", "arguments": {"path": "a.txt"}}</tool_call>'),
            Reply(text="Wrote a.txt."),
        )
        assert joe(fake, project, "--model", "tiny-coder", "-p", "write a.txt", "--yes") == 0
    assert (project / "a.txt").read_text() == "A\n"
    assert capsys.readouterr().out.strip() == "Wrote a.txt."
    first, last = fake.chat_requests[0], fake.chat_requests[-1]
    assert first["tools"] == [] and "write_file" in first["messages"][0]["content"]  # protocol in the prompt
    results = [m for m in last["messages"] if m["role"] == "user" and m["content"].startswith("[result of")]
    assert len(results) == 2 and "A" in results[1]["content"]


def test_server_refusing_tools_falls_back_to_text_calls(project):
    # /api/show claims tools, but /api/chat says "does not support tools": fall back, keep going
    models = {"liar": {"capabilities": ["completion", "tools"], "context_length": 8192}}
    with FakeOllama(models=models) as fake:
        fake.queue(Reply(http_status=400, http_error="registry.ollama.ai/library/liar does not support tools"),
                   Reply(text='```json\n{"name": "list_files", "arguments": {}}\n```'), Reply(text="ok"))
        assert joe(fake, project, "--model", "liar", "-p", "list", "--yes") == 0
        assert fake.chat_requests[-1]["tools"] == []


def test_headless_without_yes_denies_and_tells_the_model(fake, project, capsys):
    fake.queue(Reply(tool_calls=[call("write_file", path="x.txt", content="x")]), Reply(text="I could not write it."))
    assert joe(fake, project, "-p", "write x.txt") == 0
    assert not (project / "x.txt").exists()
    tool_msg = [m for m in fake.chat_requests[-1]["messages"] if m["role"] == "tool"][0]
    assert "denied" in tool_msg["content"].lower() and "--yes" in tool_msg["content"]


def test_safe_read_only_command_runs_unasked_in_headless(fake, project):
    fake.queue(Reply(tool_calls=[call("run_shell", command="ls")]), Reply(text="listed"))
    assert joe(fake, project, "-p", "list") == 0
    tool_msg = [m for m in fake.chat_requests[-1]["messages"] if m["role"] == "tool"][0]
    assert "notes.txt" in tool_msg["content"]


def test_json_events(fake, project, capsys):
    fake.queue(Reply(thinking="hmm", tool_calls=[call("read_file", path="notes.txt")]), Reply(text="two lines"))
    assert joe(fake, project, "-p", "count", "--yes", "--json") == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "tool_call" or "text" in kinds
    assert "tool_call" in kinds and "tool_result" in kinds and kinds[-1] == "turn_done"
    assert events[-1]["reason"] == "done" and events[-1]["final_text"] == "two lines"


def test_bad_tool_inputs_each_get_one_result(fake, project):
    fake.queue(
        Reply(tool_calls=[call("read_file"), call("read_file", path="notes.txt", start_line="first"),
                          call("read_file", path="../../etc/passwd"), call("edit_file", path="notes.txt", old_text="zzz", new_text="y")]),
        Reply(text="sorry"),
    )
    assert joe(fake, project, "-p", "break things", "--yes") == 0
    results = [m["content"] for m in fake.chat_requests[-1]["messages"] if m["role"] == "tool"]
    assert len(results) == 4 and all(r.startswith("ERROR") for r in results)
    assert "missing required argument" in results[0] and "path" in results[0]
    assert "start_line" in results[1] and "integer" in results[1]
    assert "outside the project" in results[2] and "0 matches" in results[3]


def test_same_failing_call_three_times_stops_the_turn(fake, project, capsys):
    bad = Reply(tool_calls=[call("read_file", path="missing.txt")])
    fake.queue(bad, bad, bad, Reply(text="never reached"))
    assert joe(fake, project, "-p", "read it", "--yes") == 1
    assert "repeated a failing tool call" in capsys.readouterr().err
    assert len(fake.chat_requests) == 3


def test_step_limit_exit_status(fake, project, capsys):
    fake.queue(*[Reply(tool_calls=[call("read_file", path="notes.txt", start_line=i)]) for i in range(1, 5)])
    assert joe(fake, project, "-p", "loop", "--yes", "--max-steps", "2") == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("joe: stopped at the step limit (2)")


def test_ollama_down_is_one_line(project, capsys):
    url = closed_port_url()
    assert joe(url, project, "-p", "hi") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not reachable" in err and url.split("//")[1] in err and "ollama serve" in err


def test_model_missing_is_one_line(fake, project, capsys):
    assert joe(fake, project, "--model", "nope:1b", "-p", "hi") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ollama pull nope:1b" in err and "qwen2.5-coder:7b" in err


@pytest.mark.parametrize("reply, words", [
    (Reply(text="partial answer", error_mid_stream="an error was encountered while running the model"), "error was encountered"),
    (Reply(text="partial answer", drop_mid_stream=True), "partial reply was kept"),
    (Reply(text="partial answer", malformed_chunk=True), "partial reply was kept"),
    (Reply(http_status=500, http_error="model runner has unexpectedly stopped"), "500"),
])
def test_stream_failures_keep_the_partial_reply(fake, project, capsys, reply, words, _isolated_home):
    fake.queue(reply)
    assert joe(fake, project, "-p", "hi") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err
    if reply.http_status == 0:
        partial = [r for r in transcript_records(_isolated_home) if r["type"] == "message" and r.get("partial")]
        assert partial and partial[0]["message"]["content"].startswith("partial")


def test_transcript_has_every_step(fake, project, _isolated_home):
    fake.queue(Reply(tool_calls=[call("read_file", path="notes.txt")]), Reply(text="done"))
    assert joe(fake, project, "-p", "read notes", "--yes") == 0
    types = [r["type"] for r in transcript_records(_isolated_home)]
    assert types[0] == "session_start" and types[-1] == "session_end"
    for t in ("message", "tool_call", "tool_result", "turn_done"):
        assert t in types
    # the fields docs/transcript-format.md promises
    by_type = {r["type"]: r for r in transcript_records(_isolated_home)}
    assert {"session_id", "project_root", "model", "backend", "joe_version", "num_ctx"} <= set(by_type["session_start"])
    assert {"call_id", "name", "ok", "meta", "duration_s", "chars"} <= set(by_type["tool_result"])
    assert by_type["tool_result"]["call_id"] == by_type["tool_call"]["call"]["id"]
    assert {"reason", "steps", "prompt_tokens", "completion_tokens", "duration_s", "tokens_per_s"} <= set(by_type["turn_done"])
    assert by_type["session_end"]["turns"] == 1 and by_type["session_end"]["duration_s"] >= 0


def test_bad_usage_is_one_line(project, capsys):
    assert main(["-C", str(project), "-p", "  "]) == 1
    assert main(["-C", str(project / "nope"), "-p", "x"]) == 1
    (project / ".joe").mkdir()
    (project / ".joe" / "config.yaml").write_text("modell: x\n")
    assert main(["-C", str(project), "-p", "x"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and "modell" in lines[2] and "did you mean 'model'" in lines[2]


def test_real_process_exit_status_and_output(fake, project, tmp_path):
    fake.queue(Reply(tool_calls=[call("write_file", path="b.txt", content="b")]), Reply(text="all done"))
    env = dict(os.environ, JOE_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-m", "joe_agent", "-C", str(project), "--host", fake.url, "-p", "make b", "--yes"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "all done" and (project / "b.txt").read_text() == "b"
    proc = subprocess.run([sys.executable, "-m", "joe_agent", "--host", closed_port_url(), "-p", "x"],
                          capture_output=True, text=True, env=env, timeout=60, cwd=project)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_files_a_request_names_reach_the_model_with_it(fake, project, monkeypatch, capsys):
    fake.queue(Reply(text="It holds two words."), Reply(text="ok"))
    assert joe(fake, project, "-p", "What is in notes.txt?", "--yes") == 0
    sent = user_messages_of(fake.chat_requests[0])[-1]
    assert sent.startswith("What is in notes.txt?\n\n") and "--- notes.txt ---\nalpha\nbeta\n--- end of notes.txt ---" in sent
    assert "attached notes.txt" in capsys.readouterr().err
    record = next(r for r in transcript_records(Path(os.environ["JOE_HOME"])) if r.get("request"))
    assert record["request"] == "What is in notes.txt?"  # what the person typed, for skills and search
    monkeypatch.setenv("JOE_ATTACH_FILES", "false")
    assert joe(fake, project, "-p", "What is in notes.txt?", "--yes") == 0
    assert user_messages_of(fake.chat_requests[1])[-1] == "What is in notes.txt?"


def user_messages_of(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "user"]


def test_reply_cap_reaches_the_server(fake, project, monkeypatch):
    fake.queue(Reply(text="ok"))
    monkeypatch.setenv("JOE_MAX_REPLY_TOKENS", "300")
    assert joe(fake, project, "-p", "hi", "--yes") == 0
    assert fake.chat_requests[0]["options"]["num_predict"] == 300  # the /v1 backend sends max_tokens
    monkeypatch.setenv("JOE_MAX_REPLY_TOKENS", "0")
    assert joe(fake, project, "-p", "hi", "--yes") == 2  # a bad setting is a config error, one line


def test_a_call_written_as_text_keeps_the_raw_reply_in_the_transcript(fake, project, _isolated_home):
    written = '<tool_call>\n{"name": "read_file", "arguments": {"path": "notes.txt"}}\n</tool_call>'
    fake.queue(Reply(text=written), Reply(text="It has two lines."))
    assert joe(fake, project, "-p", "look", "--yes") == 0
    replies = [r for r in transcript_records(_isolated_home)
               if r["type"] == "message" and r["message"]["role"] == "assistant"]
    assert replies[0]["raw_content"] == written and replies[0]["message"]["content"] == ""
    assert replies[0]["message"]["tool_calls"][0]["source"] == "text"
    assert "raw_content" not in replies[1]  # nothing was read out of the answer


def test_tool_format_text_puts_the_protocol_in_the_prompt_instead_of_native_tools(fake, project, monkeypatch):
    written = '<tool_call>\n{"name": "read_file", "arguments": {"path": "notes.txt"}}\n</tool_call>'
    fake.queue(Reply(text=written), Reply(text="Two lines."))
    monkeypatch.setenv("JOE_TOOL_FORMAT", "text")
    assert joe(fake, project, "-p", "look", "--yes") == 0
    first, second = fake.chat_requests
    assert not first.get("tools") and "- read_file(path: string" in first["messages"][0]["content"]
    assert second["messages"][-1] == {"role": "user", "content": "[result of read_file]\nalpha\nbeta"}
    monkeypatch.setenv("JOE_TOOL_FORMAT", "json")
    assert joe(fake, project, "-p", "look", "--yes") == 2


def test_a_model_seen_writing_calls_as_text_gets_the_text_protocol_next_session(fake, project, capsys, _isolated_home):
    written = '<tool_call>\n{"name": "read_file", "arguments": {"path": "notes.txt"}}\n</tool_call>'
    fake.queue(Reply(text=written), Reply(text="Two lines."), Reply(text="Hi."))
    assert joe(fake, project, "-p", "look", "--yes") == 0  # offered native tools, wrote a text call
    assert fake.chat_requests[0].get("tools")
    assert json.loads((_isolated_home / "cache" / "tool_format.json").read_text()) == {"ollama:qwen2.5-coder:7b": "text"}
    assert joe(fake, project, "-p", "hello", "--yes") == 0
    third = fake.chat_requests[2]
    assert not third.get("tools") and "<tool_call>" in third["messages"][0]["content"]
    assert "wrote tool calls as text in an earlier session" in capsys.readouterr().err


def test_tool_format_native_keeps_native_tools_whatever_was_learned(fake, project, monkeypatch, _isolated_home):
    (_isolated_home / "cache").mkdir(parents=True, exist_ok=True)
    (_isolated_home / "cache" / "tool_format.json").write_text('{"ollama:qwen2.5-coder:7b": "text"}')
    fake.queue(Reply(text="Hi."), Reply(text="Hi."))
    monkeypatch.setenv("JOE_TOOL_FORMAT", "native")
    assert joe(fake, project, "-p", "hello", "--yes") == 0
    assert fake.chat_requests[0].get("tools")
    (_isolated_home / "cache" / "tool_format.json").write_text("{broken")  # damaged: nothing learned
    monkeypatch.setenv("JOE_TOOL_FORMAT", "auto")
    assert joe(fake, project, "-p", "hello", "--yes") == 0
    assert fake.chat_requests[1].get("tools")
