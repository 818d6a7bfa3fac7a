"""The REPL's parts with prompt_toolkit's pipe input: key bindings, completion, rendering,
slash commands, approvals, interrupts, and `joe doctor` against the fake Ollama server."""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from joe_agent.messages import (ErrorEvent, Notice, TextDelta, ThinkingDelta, ToolCall, ToolCallEvent, ToolResult,
                                ToolResultEvent, TurnDone)
from joe_agent.repl import commands, render
from joe_agent.repl.app import AppendHistory, build_key_bindings, make_approver, pick_session
from joe_agent.repl.completion import JoeCompleter, lazy_gitignore
from joe_agent.repl.render import Renderer
from joe_agent.repl.text import split_markdown, summarize

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SGR_COLOR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|4[0-9]|9[0-7])(;[0-9;]*)?m")


@pytest.fixture
def pipe():
    with create_pipe_input() as inp:
        with create_app_session(input=inp, output=DummyOutput()):
            yield inp


def prompt_once(inp, keys: str, **kw) -> str:
    from prompt_toolkit import PromptSession

    session = PromptSession(multiline=True, key_bindings=build_key_bindings(), input=inp, output=DummyOutput(), **kw)
    inp.send_text(keys)
    return session.prompt("› ")


# ---- key bindings -------------------------------------------------------------------------------

def test_enter_sends(pipe):
    assert prompt_once(pipe, "fix the test\r") == "fix the test"


def test_escape_enter_inserts_a_newline(pipe):
    assert prompt_once(pipe, "line one\x1b\rline two\r") == "line one\nline two"


def test_ctrl_c_clears_a_typed_line_then_interrupts_an_empty_one(pipe):
    assert prompt_once(pipe, "oops\x03kept\r") == "kept"
    with pytest.raises(KeyboardInterrupt):
        prompt_once(pipe, "\x03")


def test_ctrl_d_on_an_empty_line_ends_input(pipe):
    with pytest.raises(EOFError):
        prompt_once(pipe, "\x04")


def test_enter_picks_the_highlighted_completion_before_sending(pipe, tmp_path):
    from prompt_toolkit import PromptSession

    completer = JoeCompleter(commands.help_lines(), tmp_path)
    session = PromptSession(multiline=True, key_bindings=build_key_bindings(), completer=completer,
                            complete_while_typing=True, input=pipe, output=DummyOutput())

    def typist():  # completions arrive asynchronously: type like a person, not all at once
        for keys in ("/mod", "\t", "\r", "\r"):
            time.sleep(0.25)
            pipe.send_text(keys)

    threading.Thread(target=typist, daemon=True).start()
    # Tab highlights the first match (/model); Enter takes it without sending; Enter sends
    assert session.prompt("› ") == "/model"


def test_history_entries_survive_a_new_session(tmp_path):
    hist = AppendHistory(str(tmp_path / "history"))
    hist.store_string("first")
    hist.store_string("two\nlines")
    assert list(FileHistory(str(tmp_path / "history")).load_history_strings()) == ["two\nlines", "first"]


# ---- completion ---------------------------------------------------------------------------------

def complete(completer, text: str) -> list[str]:
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent(completion_requested=True))]


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.py").write_text("x\n")
    (root / "src" / "util.py").write_text("y\n")
    (root / "README.md").write_text("r\n")
    (root / ".env").write_text("SECRET=1\n")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_text("o")
    (root / ".gitignore").write_text("build/\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def test_slash_commands_complete_with_their_help_line(tmp_path):
    completer = JoeCompleter(commands.help_lines(), tmp_path)
    assert complete(completer, "/mo") == ["/model", "/mode"]
    metas = {c.text: c.display_meta_text for c in completer.get_completions(Document("/s"), CompleteEvent())}
    assert set(metas) == {"/synthesize", "/skills", "/sessions", "/search", "/skill"}
    assert "search past sessions" in metas["/search"]
    assert len(complete(completer, "/")) == len(commands.commands())
    assert complete(completer, "/mode a") == ["ask", "auto-edit"]
    assert complete(completer, "plain words") == []


def test_at_paths_complete_inside_the_project_only(project):
    completer = JoeCompleter(commands.help_lines(), project, lazy_gitignore(project))
    assert complete(completer, "look at @src/m") == ["main.py"]
    assert complete(completer, "look at @src/") == ["main.py", "util.py"]
    top = complete(completer, "@")
    assert top[0] == "src/" and "README.md" in top
    assert ".git/" not in top and ".env" not in top  # hidden unless asked for
    assert "build/" not in top  # .gitignore is respected
    assert complete(completer, "@.e") == [".env"]
    assert complete(completer, "@readme") == ["README.md"]  # case-insensitive fallback
    assert complete(completer, "@../") == []  # never outside the root
    assert complete(completer, "mail me@src/m") == []  # an @ inside a word is not a path


# ---- rendering ----------------------------------------------------------------------------------

def test_split_markdown_keeps_unfinished_blocks_in_the_tail():
    assert split_markdown("hello wor") == ([], "hello wor")
    assert split_markdown("para one\n\npara two") == (["para one"], "para two")
    fenced = "```py\nx = 1\n\n\ny = 2\n```\nafter"
    assert split_markdown(fenced) == (["```py\nx = 1\n\n\ny = 2\n```"], "after")
    assert split_markdown("```py\nx = 1\n\ny") == ([], "```py\nx = 1\n\ny")  # blank line inside a fence


def test_split_markdown_cuts_a_long_tail_and_reopens_its_fence():
    done, tail = split_markdown("```py\n" + "a\n" * 5 + "b", max_lines=3)
    assert done == ["```py\n" + "a\n" * 5 + "```"] and tail == "```py\nb"
    done, tail = split_markdown("l\n" * 5 + "x", max_lines=3)
    assert done == ["l\nl\nl\nl\nl"] and tail == "x"


def call(name="write_file", **args) -> ToolCall:
    return ToolCall(name, args or {"path": "src/app.py"}, id="c1")


DIFF = "--- a/src/app.py\n+++ b/src/app.py\n@@ -1 +1,2 @@\n-old\n+new\n+more\n"


def test_summaries_say_what_happened():
    assert summarize(call(), ToolResult("ok", meta={"diff": DIFF})) == "+2 −1"
    assert summarize(call(), ToolResult("ok", meta={"diff": DIFF, "created": True})) == "created, +2 −1"
    shell = call("run_shell", command="pytest")
    assert summarize(shell, ToolResult("a\nb\n[exit code 1]", ok=False, meta={"exit_code": 1})) == "exit 1"
    assert summarize(shell, ToolResult("", ok=False, meta={"exit_code": -9, "timed_out": True})) == "timed out, exit -9"
    denied = ToolResult("The user denied this command: not now", ok=False, meta={"denied": True, "exit_code": None})
    assert summarize(shell, denied) == "denied"
    assert summarize(call("read_file", path="x"), ToolResult("1\n2\n3\n")) == "3 lines"
    assert summarize(call("read_file", path="x"), ToolResult("# demo\n")) == "1 line"
    assert summarize(call("list_files"), ToolResult("src/app.py\n")) == "src/app.py"
    assert summarize(call(), ToolResult("boom happened\ntrace", ok=False)) == "boom happened"


def turn_events():
    return [Notice("used skill: pytest-triage (matched 'failing test')", "skills"),
            ThinkingDelta("Let me look "), ThinkingDelta("at the file."),
            TextDelta("I will **fix** it.\n\nFirst par"), TextDelta("agraph done."),
            ToolCallEvent(call()), ToolResultEvent(call(), ToolResult("written", meta={"diff": DIFF})),
            ToolCallEvent(call("run_shell", command="rm -rf build")),
            ToolResultEvent(call("run_shell", command="rm -rf build"),
                            ToolResult("The user denied this command", ok=False, meta={"denied": True})),
            ErrorEvent("the connection to Ollama broke mid-reply", "stream", partial=True),
            TurnDone("error")]


def test_plain_output_when_not_a_terminal():
    out = io.StringIO()
    ui = Renderer(out, show_thinking="collapse")
    ui.begin_turn()
    for ev in turn_events():
        ui.event(ev)
    text = out.getvalue()
    assert not ANSI.search(text)
    assert "I will **fix** it.\n\nFirst paragraph done.\n" in text  # raw Markdown, streamed as is
    assert "▸ thought for" in text and "Let me look" not in text  # collapsed
    assert "✓ write_file src/app.py · +2 −1" in text and "+new\n+more" in text
    assert "⊘ run_shell rm -rf build · denied" in text
    assert "✗ the connection to Ollama broke mid-reply (the partial reply was kept)" in text
    assert "📎 used skill: pytest-triage" in text


def test_thinking_shown_or_hidden_by_config():
    shown, hidden = io.StringIO(), io.StringIO()
    for out, mode in ((shown, "show"), (hidden, "hide")):
        ui = Renderer(out, show_thinking=mode)
        for ev in [ThinkingDelta("weighing options"), TextDelta("answer"), TurnDone()]:
            ui.event(ev)
    assert "weighing options" in shown.getvalue() and "answer" in shown.getvalue()
    assert "weighing" not in hidden.getvalue() and "thought" not in hidden.getvalue()


def test_terminal_output_streams_markdown_and_no_color_removes_colors(monkeypatch):
    colored, plain = io.StringIO(), io.StringIO()
    for out, no_color in ((colored, False), (plain, True)):
        if no_color:
            monkeypatch.setenv("NO_COLOR", "1")
        ui = Renderer(out, terminal=True, width=80)
        ui.begin_turn()
        for ev in turn_events():
            ui.event(ev)
    assert SGR_COLOR.search(colored.getvalue())
    assert not SGR_COLOR.search(plain.getvalue())
    screen = ANSI.sub("", plain.getvalue())
    assert "First paragraph done." in screen and "fix it." in screen  # the ** markup rendered away
    assert "run_shell rm -rf build · denied" in screen


def test_a_diff_shown_for_approval_is_not_printed_twice():
    out = io.StringIO()
    ui = Renderer(out)
    req = SimpleNamespace(action="write", tool="write_file", target="src/app.py", detail=DIFF,
                          abs_path="/p/src/app.py")
    ui.approval(req)
    ui.event(ToolResultEvent(call(), ToolResult("written", meta={"diff": DIFF})))
    assert out.getvalue().count("+more") == 1 and "/p/src/app.py" in out.getvalue()


def test_tables_align_in_plain_text():
    out = io.StringIO()
    Renderer(out).table("sessions", ["id", "turns"], [["20260101-a", 3], ["b", 12]])
    assert out.getvalue().splitlines() == ["sessions", "id          turns", "20260101-a  3", "b           12"]


# ---- slash commands -----------------------------------------------------------------------------

def make_ctx(features=None, mode="ask"):
    from joe_agent.tools.permissions import Permissions

    out = io.StringIO()
    rt = SimpleNamespace(features=features or {}, permissions=Permissions(mode=mode),
                         settings=SimpleNamespace(mode=mode))
    turns = []
    ctx = commands.CommandContext(rt, Renderer(out), lambda text, forced: turns.append((text, tuple(forced))))
    return ctx, out, turns


def test_every_command_has_a_help_line_and_help_shows_them():
    ctx, out, _ = make_ctx()
    commands.dispatch("/help", ctx)
    for name, line in commands.help_lines():
        assert line, f"/{name} has no docstring"
        assert f"/{name}" in out.getvalue()
    expected = {"help", "model", "mode", "clear", "tokens", "undo", "synthesize", "skills", "rules",
                "sessions", "search", "good", "skill", "exit"}
    assert expected == set(commands.commands())


def test_unknown_command_suggests_the_closest():
    ctx, out, _ = make_ctx()
    assert commands.dispatch("/modle gpt", ctx) is None
    assert "unknown command /modle; did you mean /model?" in out.getvalue()
    commands.dispatch("/zzzz", ctx)
    assert "/help lists them" in out.getvalue()


def test_features_not_wired_say_so_and_wired_ones_get_their_args():
    got = []
    ctx, out, _ = make_ctx(features={"undo": got.append})
    commands.dispatch("/undo  fix the fixture instead", ctx)
    commands.dispatch("/synthesize", ctx)
    assert got == ["fix the fixture instead"]
    assert "/synthesize is not available yet" in out.getvalue()


def test_mode_switches_permissions_and_rejects_typos():
    ctx, out, _ = make_ctx()
    commands.dispatch("/mode auto-edit", ctx)
    assert ctx.runtime.permissions.mode == "auto-edit" and ctx.runtime.settings.mode == "auto-edit"
    commands.dispatch("/mode full-atuo", ctx)
    assert ctx.runtime.permissions.mode == "auto-edit"
    assert "did you mean full-auto" in out.getvalue()


def test_skill_runs_a_turn_with_that_skill_forced():
    ctx, out, turns = make_ctx(features={"skills": lambda a: None})
    commands.dispatch("/skill pytest-triage fix the failing test", ctx)
    assert turns == [("fix the failing test", ("pytest-triage",))]
    commands.dispatch("/skill only-a-name", ctx)
    assert "usage: /skill <name> <request>" in out.getvalue()
    assert commands.dispatch("/exit", ctx) == commands.EXIT


# ---- approvals ----------------------------------------------------------------------------------

def approver_with(answers: list[str], tmp_path):
    from joe_agent.tools.permissions import Permissions

    out = io.StringIO()
    rt = SimpleNamespace(root=tmp_path, permissions=Permissions(mode="ask"))
    it = iter(answers)
    return make_approver(rt, Renderer(out), lambda q: next(it)), out


def test_approval_shows_the_command_and_maps_every_answer(tmp_path):
    from joe_agent.tools.permissions import ApprovalRequest

    req = ApprovalRequest("run_shell", "shell", "pytest -q && git push -f origin main")
    for answers, granted, always, message in ((["y"], True, False, ""), (["A"], True, True, ""),
                                              (["n"], False, False, ""),
                                              (["?", "e", "use make test"], False, False, "use make test")):
        approve, out = approver_with(answers, tmp_path)
        got = approve(req)
        assert (got.granted, got.always, got.message) == (granted, always, message)
        assert "$ pytest -q && git push -f origin main" in out.getvalue()
        assert "destructive" in out.getvalue()
    assert "answer y, n, a or e" in out.getvalue()


def test_approval_of_a_write_shows_the_diff_and_resolved_path(tmp_path):
    from joe_agent.tools.permissions import ApprovalRequest

    req = ApprovalRequest("edit_file", "write", "src/app.py", DIFF, str(tmp_path / "src/app.py"))
    approve, out = approver_with(["y"], tmp_path)
    assert approve(req).granted
    assert str(tmp_path / "src/app.py") in out.getvalue() and "+more" in out.getvalue()


def test_pick_session_returns_the_chosen_path(pipe, tmp_path):
    sessions = [SimpleNamespace(id=f"s{i}", path=tmp_path / f"s{i}.jsonl", turns=i, first_prompt=f"task {i}",
                                started=__import__("datetime").datetime(2026, 1, i + 1)) for i in range(3)]
    out = io.StringIO()
    render.use(Renderer(out))
    try:
        pipe.send_text("9\r2\r")
        assert pick_session(sessions, input=pipe, output=DummyOutput()) == tmp_path / "s1.jsonl"
        assert "type a number from 1 to 3" in out.getvalue()
    finally:
        render.use(None)


# ---- joe doctor ---------------------------------------------------------------------------------

def doctor_settings(url: str, model: str = "qwen2.5-coder:7b", num_ctx=None):
    from joe_agent.config import Settings

    return Settings(model=model, host=url, num_ctx=num_ctx)


def by_name(checks):
    return {c.name: c for c in checks}


def test_doctor_all_green_against_a_served_model(tmp_path):
    from fake_ollama import FakeOllama

    from joe_agent.doctor import run_checks

    with FakeOllama() as fake:
        checks = by_name(run_checks(doctor_settings(fake.url), tmp_path / "home", tmp_path))
    assert checks["Ollama reachable"].ok is True and fake.url.split("//")[1] in checks["Ollama reachable"].detail
    assert checks["model available"].ok is True
    assert checks["tool calls"].ok is True
    assert checks["context"].ok is True and "num_ctx 32,768" in checks["context"].detail
    assert checks["JOE_HOME writable"].ok is True and (tmp_path / "home").is_dir()
    assert checks["git"].ok is True and "git version" in checks["git"].detail
    # conftest points tiktoken at an empty cache: the estimator is in use, which is a warning
    assert checks["token counting"].ok is None and "estimator" in checks["token counting"].detail


def test_doctor_names_the_fix_for_a_missing_model_and_a_stopped_server(tmp_path):
    from fake_ollama import FakeOllama, closed_port_url

    from joe_agent.doctor import run_checks

    with FakeOllama() as fake:
        missing = by_name(run_checks(doctor_settings(fake.url, "llama3.2:1b"), tmp_path, tmp_path))
    assert missing["model available"].ok is False
    assert missing["model available"].fix == "ollama pull llama3.2:1b"
    assert "qwen2.5-coder:7b" in missing["model available"].detail
    down = by_name(run_checks(doctor_settings(closed_port_url()), tmp_path, tmp_path))
    assert down["Ollama reachable"].ok is False and "ollama serve" in down["Ollama reachable"].fix
    assert "model available" not in down


def test_doctor_warns_about_no_tools_and_a_small_or_oversized_context(tmp_path):
    from fake_ollama import FakeOllama

    from joe_agent.doctor import run_checks

    models = {"tiny:1b": {"capabilities": ["completion"], "context_length": 4096}}
    with FakeOllama(models=models) as fake:
        small = by_name(run_checks(doctor_settings(fake.url, "tiny:1b"), tmp_path, tmp_path))
        over = by_name(run_checks(doctor_settings(fake.url, "tiny:1b", num_ctx=65536), tmp_path, tmp_path))
    assert small["tool calls"].ok is None and "prompt" in small["tool calls"].detail
    assert small["context"].ok is None and "small" in small["context"].detail
    assert over["context"].ok is None and "at most 4,096" in over["context"].detail


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_doctor_reports_a_read_only_home(tmp_path):
    from joe_agent.doctor import check_home

    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o500)
    try:
        assert check_home(home).ok is False
    finally:
        home.chmod(0o700)


def test_doctor_reports_an_unwritable_home_path(tmp_path):
    from joe_agent.doctor import check_home

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    check = check_home(blocker / "home")
    assert check.ok is False and "JOE_HOME" in check.fix


# ---- the whole loop, with the real Runtime and agent --------------------------------------------

def make_runtime(tmp_path, model: str, host: str | None = None, mode: str = "ask"):
    from joe_agent.config import Settings
    from joe_agent.paths import joe_home
    from joe_agent.runtime import Runtime

    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    rt = Runtime.create(Settings(model=model, host=host, mode=mode), root, joe_home())
    return rt.start(background=False), root


def scripted(tmp_path, replies) -> str:
    path = tmp_path / "replies.json"
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


def run_with_keys(rt, pipe, keys: str) -> tuple[int, str]:
    from joe_agent.repl.app import build_session, run_repl

    out = io.StringIO()
    session = build_session(rt, input=pipe, output=DummyOutput())
    pipe.send_text(keys)
    code = run_repl(rt, session=session, out=out)
    return code, out.getvalue()


def test_a_session_with_approvals_commands_and_clear(pipe, tmp_path):
    replies = ["Hi there, ready.",
               {"tool_calls": [{"name": "write_file", "arguments": {"path": "notes.txt", "content": "a\nb\n"}}]},
               "Wrote notes.txt.",
               {"tool_calls": [{"name": "run_shell", "arguments": {"command": "make deploy"}}]},
               "Fine, not deploying.",
               "A fresh start."]
    rt, root = make_runtime(tmp_path, scripted(tmp_path, replies))
    keys = "hello\rwrite notes\ry\rdeploy it\rn\r/tokens\r/clear\ragain\r\x04"
    code, out = run_with_keys(rt, pipe, keys)
    assert code == 0
    assert (root / "notes.txt").read_text() == "a\nb\n"
    for seen in ("Hi there, ready.", "✎ write_file wants to write notes.txt", "+a\n+b", "Wrote notes.txt.",
                 "$ make deploy", "⊘ run_shell make deploy · denied", "Fine, not deploying.", "history",
                 "new conversation", "A fresh start."):
        assert seen in out, seen
    requests = rt.model.requests
    assert any(m.role == "tool" and "denied" in m.content.lower() for m in requests[4])
    assert [m.content for m in requests[-1] if m.role == "user"] == ["again"]  # /clear took effect
    records = [json.loads(ln) for ln in rt.transcript.path.read_text().splitlines()]
    assert records[-1]["type"] == "session_end"
    assert (Path(os.environ["JOE_HOME"]) / "history").read_text().count("+hello") == 1


def test_ctrl_c_mid_stream_keeps_the_partial_reply_and_the_session(pipe, tmp_path):
    from fake_ollama import FakeOllama, Reply

    slow = Reply(text="Counting slowly: one two three four five six seven eight nine ten.", delay_s=2.0)
    with FakeOllama(replies=[slow, Reply(text="Still here.")]) as fake:
        rt, _ = make_runtime(tmp_path, "qwen2.5-coder:7b", host=fake.url)

        class Out(io.StringIO):  # the person presses Ctrl-C once the first words are on screen
            fired = False

            def write(self, s):
                if "Counting" in s and not Out.fired:
                    Out.fired = True
                    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
                return super().write(s)

        from joe_agent.repl.app import build_session, run_repl

        out = Out()
        pipe.send_text("count\rstill there?\r\x04")
        assert run_repl(rt, session=build_session(rt, input=pipe, output=DummyOutput()), out=out) == 0
        chats = fake.chat_requests
    text = out.getvalue()
    assert "interrupted" in text and "Still here." in text and "ten." not in text
    kept = [m for m in chats[-1]["messages"] if m["role"] == "assistant"]
    assert kept and kept[0]["content"].startswith("Counting") and "ten." not in kept[0]["content"]
    records = [json.loads(ln) for ln in rt.transcript.path.read_text().splitlines()]
    assert any(r.get("interrupted") for r in records)


def test_a_path_at_the_start_is_a_message_not_a_command():
    from joe_agent.repl.app import is_command

    assert is_command("/model qwen") and is_command("/help")
    assert not is_command("/usr/bin/python crashes on start") and not is_command("//help me")


def test_a_stopped_server_or_a_broken_stream_is_one_line_and_the_repl_lives_on(pipe, tmp_path):
    from fake_ollama import FakeOllama, Reply, closed_port_url

    rt, _ = make_runtime(tmp_path, "qwen2.5-coder:7b", host=closed_port_url())
    code, out = run_with_keys(rt, pipe, "hello\rstill?\r\x04")
    assert code == 0 and out.count("✗ Ollama is not reachable at") == 2 and "Traceback" not in out

    broken = Reply(text="Half of an answer that", error_mid_stream="model runner crashed")
    with FakeOllama(replies=[broken, Reply(text="Recovered fine.")]) as fake:
        rt, _ = make_runtime(tmp_path, "qwen2.5-coder:7b", host=fake.url)
        code, out = run_with_keys(rt, pipe, "go\ragain\r\x04")
        chats = fake.chat_requests
    assert code == 0 and "Half of an answer that" in out and "(the partial reply was kept)" in out
    assert "Recovered fine." in out
    assert any(m["role"] == "assistant" and m.get("content") == "Half of an answer that" for m in chats[-1]["messages"])


def test_the_toolbar_shows_model_mode_context_and_speed(tmp_path):
    from fake_ollama import FakeOllama, Reply, closed_port_url

    from joe_agent.config import Settings
    from joe_agent.paths import joe_home
    from joe_agent.repl.app import Status
    from joe_agent.runtime import Runtime

    def text(status) -> str:
        return "".join(t for _, t in status.toolbar())

    waiting = Runtime.create(Settings(model=scripted(tmp_path, ["hi"])), tmp_path, joe_home())
    assert "connecting…" in text(Status(waiting))  # not started: the toolbar never blocks
    with FakeOllama(replies=[Reply(text="a reply long enough to be counted")]) as fake:
        rt, _ = make_runtime(tmp_path, "qwen2.5-coder:7b", host=fake.url, mode="auto-edit")
        status = Status(rt)
        before = text(status)
        assert before.startswith(" qwen2.5-coder:7b │ auto-edit │ ctx ") and "%)" in before and "tok/s" not in before
        for _ in rt.agent.run_turn("hello"):
            pass
    status.refresh()
    after = text(status)
    assert rt.agent.last_turn_tokens_per_s and f"{rt.agent.last_turn_tokens_per_s:.1f} tok/s" in after
    assert after.split("│")[2] != before.split("│")[2]  # the context grew by one exchange
    down, _ = make_runtime(tmp_path, "qwen2.5-coder:7b", host=closed_port_url())
    assert "⚠ Ollama is not reachable" in text(Status(down))


def test_startup_path_imports_neither_ollama_nor_rich():
    """The prompt must come fast: the REPL modules never import ollama, and plain output
    (or a styled line on a terminal) never imports rich."""
    code = ("import io, sys\n"
            "import joe_agent.repl.app, joe_agent.repl.commands, joe_agent.repl.completion\n"
            "from joe_agent.repl.render import Renderer\n"
            "Renderer(io.StringIO()).table('t', ['a'], [['1']])\n"
            "Renderer(io.StringIO(), terminal=True).line('banner', 'bold')\n"
            "print(sorted(m for m in ('ollama', 'rich', 'git', 'httpx') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
