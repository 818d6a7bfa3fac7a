"""run_shell: one command in the project root, in its own process group, with a timeout that
kills the whole group, stdin from /dev/null, and output capped to a head and a tail.

Output is read in this thread with a selector (no reader threads), so Ctrl-C lands here and
the group is killed before the interrupt travels on (FIELD-NOTES §3.11-3.12).
"""
from __future__ import annotations

import codecs
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field

from joe_agent.messages import ToolResult
from joe_agent.tools.permissions import ApprovalRequest
from joe_agent.tools.registry import ToolContext, ToolFailure, ask, tool

MAX_TIMEOUT_S = 1_800.0
TERM_GRACE_S = 2.0  # between SIGTERM and SIGKILL
DRAIN_GRACE_S = 1.0  # after the command exits, wait this long for background children's output
_EXTRA_ENV = {"PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"}


@dataclass
class CappedOutput:
    """Keeps the first `head_cap` and the last `tail_cap` bytes of a stream, and counts the rest."""

    head_cap: int
    tail_cap: int
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.tail_cap:  # trim rarely: amortised O(1) per byte
                del self.tail[: len(self.tail) - self.tail_cap]

    def text(self) -> str:
        tail = bytes(self.tail[-self.tail_cap:]) if self.tail_cap else b""
        cut = self.total - len(self.head) - len(tail)
        head = bytes(self.head).decode("utf-8", "replace")
        if cut <= 0:
            return (bytes(self.head) + tail).decode("utf-8", "replace")
        return f"{head}\n[... {cut:,} bytes cut ...]\n{tail.decode('utf-8', 'replace')}"


@dataclass
class ShellRun:
    exit_code: int | None
    timed_out: bool
    output: CappedOutput
    detached: bool = False  # background children still held the output open; we stopped reading


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the whole group, give the leader a moment, then SIGKILL whatever is left
    (children that ignored SIGTERM or were orphaned by the leader's death)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        if sig == signal.SIGTERM:
            try:
                proc.wait(timeout=TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
    proc.wait()


def execute(command: str, cwd: str, timeout: float, cap: int, on_output=None) -> ShellRun:
    """Run `command` with sh in `cwd`. Never leaves its process group running on timeout or
    Ctrl-C (which is re-raised after the kill)."""
    env = {**os.environ, **_EXTRA_ENV}
    proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    out = CappedOutput(cap // 2, cap - cap // 2)
    deadline = time.monotonic() + timeout
    try:
        detached = _pump(proc, out, deadline, on_output)
        remaining = deadline - time.monotonic()
        try:
            code = proc.wait(timeout=max(0.0, remaining))  # it may have closed its output and kept going
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return ShellRun(proc.returncode, True, out)
    except KeyboardInterrupt:
        _kill_group(proc)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    return ShellRun(code, False, out, detached)


def _pump(proc: subprocess.Popen, out: CappedOutput, deadline: float, on_output) -> bool:
    """Read output until EOF, the deadline, or DRAIN_GRACE_S after the command exited while
    background children still hold the pipe. Returns True in that last case."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    drain_until: float | None = None
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if drain_until is None and proc.poll() is not None:
                drain_until = now + DRAIN_GRACE_S
            if drain_until is not None and now >= drain_until:
                return True  # `server &` keeps the pipe open; don't wait for it forever
            if now >= deadline:
                return False
            wait = min(deadline, drain_until or deadline) - now
            if not sel.select(timeout=min(0.2, max(0.0, wait))):
                continue
            data = os.read(fd, 65536)
            if not data:
                return False
            out.feed(data)
            if on_output is not None:
                on_output(decoder.decode(data))


def _status_line(run: ShellRun, timeout: float) -> str:
    if run.timed_out:
        return f"[timed out after {timeout:g}s; the command and its child processes were killed]"
    code = run.exit_code
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"[killed by {name}]"
    line = f"[exit code {code}]"
    if run.detached:
        line += " [background processes kept running; their later output is not captured]"
    return line


@tool("shell")
def run_shell(ctx: ToolContext, command: str, timeout: float | None = None) -> ToolResult:
    """Run a shell command (sh) in the project root and return its output and exit code. stdin is empty, so interactive prompts fail: pass flags like --yes instead.

    Args:
        command: the command line to run, e.g. "python -m pytest -q"
        timeout: seconds before the command is killed (default 120)
    """
    if not command.strip():
        raise ToolFailure("command is empty")
    limit = ctx.shell_timeout if timeout is None else timeout
    if limit <= 0:
        raise ToolFailure("timeout must be a positive number of seconds")
    limit = min(limit, MAX_TIMEOUT_S)
    denied = ask(ctx, ApprovalRequest("run_shell", "shell", command, command))
    if denied:
        return denied
    try:
        run = execute(command, str(ctx.workspace.root), limit, max(ctx.output_cap, 256), ctx.on_output)
    except OSError as e:
        raise ToolFailure(f"could not start the command: {e.strerror or e}") from e
    body = run.output.text().rstrip("\n") or "(no output)"
    ok = run.exit_code == 0 and not run.timed_out
    return ToolResult(f"{body}\n{_status_line(run, limit)}", ok=ok,
                      meta={"exit_code": run.exit_code, "timed_out": run.timed_out, "denied": False,
                            "output_bytes": run.output.total})
