"""End to end: the real `joe` binary in a real terminal (tmux) against the fake Ollama server
running as a subprocess, with JOE_HOME in a temp folder. What a person sees is read from the
tmux screen; what the model was sent is read from the fake server's request log."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

FAKE = Path(__file__).with_name("fake_ollama.py")
MODEL = "qwen2.5-coder:7b"


def joe_command() -> list[str]:
    exe = Path(sys.executable).with_name("joe")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "joe_agent"]


class FakeServer:
    """tests/fake_ollama.py as a subprocess; its first stdout line is its URL."""

    def __init__(self, tmp: Path, replies: list[dict]) -> None:
        script, self.log = tmp / "replies.json", tmp / "requests.jsonl"
        script.write_text(json.dumps(replies))
        self.proc = subprocess.Popen([sys.executable, str(FAKE), "--script", str(script), "--log", str(self.log)],
                                     stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            pytest.fail(f"the fake Ollama server did not start: {self.url!r}")

    def chats(self) -> list[dict]:
        if not self.log.exists():
            return []
        rows = [json.loads(ln) for ln in self.log.read_text().splitlines() if ln.strip()]
        return [r["body"] for r in rows if r.get("path") == "/api/chat" and (r.get("body") or {}).get("messages")]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Term:
    """One tmux server (own socket) running one command in a 110x40 terminal."""

    def __init__(self, tmp: Path, argv: list[str], cwd: Path, name: str = "joe") -> None:
        self.sock, self.name = str(tmp / f"tmux-{name}.sock"), name
        wrapper = ["sh", "-c", 'trap : INT; "$@"; echo "joe exited with $?"', "sh", *argv]  # the trap: Ctrl-C is for joe
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", name, "-x", "110", "-y", "40", "-c", str(cwd),
                  *wrapper)
        self.tmux("set-option", "-t", name, "remain-on-exit", "on")
        self.tmux("set-option", "-t", name, "history-limit", "5000")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.sock, *args], check=True, capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.name, "-l", text)

    def line(self, text: str) -> None:
        self.type(text)
        self.keys("Enter")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", self.name, "-S", "-5000")

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if len(re.findall(pattern, screen)) >= count:
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern!r} (x{count}) did not appear; the screen:\n{screen}")
            time.sleep(0.1)

    def exit_status(self) -> int:
        """The command's exit code, printed by the sh wrapper around it."""
        return int(re.findall(r"joe exited with (\d+)", self.wait_for(r"joe exited with \d+"))[-1])

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], capture_output=True)


def user_messages(chat: dict) -> list[str]:
    return [m.get("content", "") for m in chat["messages"] if m["role"] == "user"]


REPLIES = [
    {"text": "Hello from the fake model. Ready to help."},
    {"tool_calls": [{"name": "write_file", "arguments": {"path": "hi.py", "content": "print('hi')\n"}}]},
    {"text": "Created hi.py for you."},
    {"tool_calls": [{"name": "run_shell", "arguments": {"command": "python hi.py && rm -rf build"}}]},
    {"text": "Understood, I did not run it."},
    {"tool_calls": [{"name": "run_shell", "arguments": {"command": "sleep 31.7 && echo never"}}]},
    {"text": "Counting slowly: one two three four five six seven eight nine ten.", "delay_s": 2.0},
    {"text": "Yes, still here."},
    {"text": "Got both lines."},
]


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "README.md").write_text("# demo\n")
    return root


def approve_a_write(term: Term, project: Path) -> None:
    term.line("create hi.py")
    screen = term.wait_for(r"Allow\? \[y\]es")
    assert "write_file wants to write hi.py" in screen and "+print('hi')" in screen
    assert str(project / "hi.py") in screen  # the resolved target
    assert not (project / "hi.py").exists()
    term.line("y")
    term.wait_for("Created hi.py for you.")
    assert (project / "hi.py").read_text() == "print('hi')\n"
    assert "✓ write_file hi.py" in term.screen()


def deny_a_command_with_a_reason(term: Term, server: FakeServer) -> None:
    term.line("run it")
    screen = term.wait_for(r"Allow\? \[y\]es", count=2)
    assert "$ python hi.py && rm -rf build" in screen and "run_shell in" in screen
    term.line("e")
    term.wait_for("Tell the model why")
    term.line("use make run instead")
    term.wait_for("Understood, I did not run it.")
    tool_msgs = [m for m in server.chats()[-1]["messages"] if m["role"] == "tool"]
    assert "use make run instead" in tool_msgs[-1]["content"]


def sleepers() -> list[str]:
    out = subprocess.run(["pgrep", "-f", "sleep 31.7"], capture_output=True, text=True).stdout
    return out.split()


def interrupt_a_command(term: Term) -> None:
    term.line("wait a while")
    term.wait_for(r"Allow\? \[y\]es", count=3)
    term.line("y")
    deadline = time.monotonic() + 10
    while not sleepers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleepers(), "the command never started"
    term.keys("C-c")
    term.wait_for("interrupted")
    deadline = time.monotonic() + 5
    while sleepers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sleepers()  # the whole process group is gone
    after = term.screen().split("wait a while")[-1].split("[e]xplain › y")[-1]
    assert "interrupted" in after and "never" not in after


def interrupt_mid_stream(term: Term, server: FakeServer) -> None:
    term.line("count slowly")
    term.wait_for("Counting slowly")
    term.keys("C-c")
    term.wait_for("interrupted", count=2)
    assert "ten." not in term.screen()
    term.line("are you there?")
    term.wait_for("Yes, still here.")
    after = server.chats()[-1]["messages"]
    partial = [m for m in after if m["role"] == "assistant" and m.get("content", "").startswith("Counting")]
    assert partial and "ten." not in partial[0]["content"]  # the partial reply was kept, cut short
    assert after[-1]["content"] == "are you there?"


def commands_and_multiline(term: Term, server: FakeServer) -> None:
    term.line("/mode auto-edit")
    term.wait_for("mode: auto-edit")
    term.wait_for(r"│ auto-edit │")  # the toolbar follows
    term.line("/modle")
    term.wait_for("did you mean /model")
    term.type("first line")
    term.keys("Escape", "Enter")
    term.type("second line")
    term.keys("Enter")
    term.wait_for("Got both lines.")
    assert user_messages(server.chats()[-1])[-1] == "first line\nsecond line"


@pytest.fixture
def server(tmp_path):
    fake = FakeServer(tmp_path, REPLIES)
    yield fake
    fake.stop()


def test_a_whole_session_in_a_real_terminal(tmp_path, project, server):
    term = Term(tmp_path, [*joe_command(), "--model", MODEL, "--host", server.url], project)
    try:
        term.wait_for(r"joe \d+\.\d+")
        term.wait_for(rf"{re.escape(MODEL)} │ ask │ ctx \d")  # the toolbar, once the client has loaded
        term.line("say hello")
        term.wait_for("Hello from the fake model. Ready to help.")
        approve_a_write(term, project)
        deny_a_command_with_a_reason(term, server)
        interrupt_a_command(term)
        interrupt_mid_stream(term, server)
        commands_and_multiline(term, server)
        term.keys("C-d")
        assert term.exit_status() == 0
    finally:
        term.close()
    # --continue: the same session comes back with its history, and the model sees it
    term = Term(tmp_path, [*joe_command(), "--model", MODEL, "--host", server.url, "--continue"], project, "again")
    try:
        screen = term.wait_for("resumed")
        assert "› say hello" in screen and "Hello from the fake model" in screen
        term.line("and now?")
        term.wait_for(r"\(fake: no scripted reply\)")
        assert "say hello" in user_messages(server.chats()[-1])
        term.keys("C-c")
        term.wait_for("press Ctrl-C again")
        term.keys("C-c")
        assert term.exit_status() == 0
    finally:
        term.close()
