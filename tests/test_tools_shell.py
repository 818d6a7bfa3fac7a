"""run_shell with real processes: exit codes, cwd, stdin, 10 MB output capped to head and
tail, timeouts and Ctrl-C that kill the whole process tree, and permission denials."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from joe_agent.messages import ToolCall, ToolResult
from joe_agent.tools.permissions import Approval, Permissions
from joe_agent.tools.registry import Registry, ToolContext
from joe_agent.tools.shell import execute
from joe_agent.tools.workspace import Workspace


def make(root: Path, mode: str = "full-auto", approver=None, headless: bool = False, **ctx_kw) -> Registry:
    return Registry(ToolContext(Workspace(root), Permissions(mode, approver=approver, headless=headless), **ctx_kw))


def sh(reg: Registry, command: str, **kw) -> ToolResult:
    return reg.run(ToolCall("run_shell", {"command": command, **kw}))


def live_procs_with(marker: str) -> list[int]:
    """Pids of non-zombie processes whose command line contains `marker` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmd and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def gone(marker: str, within: float = 5.0) -> bool:
    """SIGKILL is delivered asynchronously: allow the kernel a moment to finish the job."""
    deadline = time.monotonic() + within
    while live_procs_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return live_procs_with(marker) == []


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def test_exit_code_cwd_and_stdin(tmp_path: Path) -> None:
    reg = make(tmp_path)
    r = sh(reg, "pwd; echo err >&2; exit 3")
    assert not r.ok and r.meta == {"exit_code": 3, "timed_out": False, "denied": False, "output_bytes": r.meta["output_bytes"]}
    assert str(tmp_path.resolve()) in r.content and "err" in r.content and "[exit code 3]" in r.content
    r = sh(reg, "cat; echo done")  # stdin is /dev/null: cat returns at once
    assert r.ok and r.content.startswith("done") and r.meta["exit_code"] == 0


def test_no_output_is_said(tmp_path: Path) -> None:
    assert sh(make(tmp_path), "true").content == "(no output)\n[exit code 0]"


def test_ten_megabytes_capped_head_and_tail(tmp_path: Path) -> None:
    reg = make(tmp_path, output_cap=16_000)
    cmd = "echo HEAD-MARK; head -c 10000000 /dev/zero | tr '\\0' x; echo; echo TAIL-MARK"
    began = time.monotonic()
    r = sh(reg, cmd)
    took = time.monotonic() - began
    assert r.ok and r.meta["output_bytes"] > 10_000_000
    assert r.content.startswith("HEAD-MARK") and "TAIL-MARK" in r.content[-100:]
    assert "bytes cut" in r.content and len(r.content) < 16_500
    cut = int(r.content.split("[... ")[1].split(" bytes cut")[0].replace(",", ""))
    assert cut == r.meta["output_bytes"] - 16_000
    assert took < 30  # generous: the point is that it finishes, not how fast


@needs_proc
def test_timeout_kills_the_whole_tree(tmp_path: Path) -> None:
    marker = f"{os.getpid() % 1000 + 100}.{int(time.time() * 1000) % 100000}"
    reg = make(tmp_path)
    r = sh(reg, f"sh -c 'sleep {marker} & sleep {marker}'", timeout=1)
    assert not r.ok and r.meta["timed_out"] is True and "timed out after 1s" in r.content
    assert gone(f"sleep {marker}")


@needs_proc
def test_sigterm_ignoring_child_is_killed(tmp_path: Path) -> None:
    marker = f"{int(time.time() * 1000) % 100000 + 200}.5"
    run = execute(f"trap '' TERM; sleep {marker}", str(tmp_path), 0.5, 1000)
    assert run.timed_out
    assert gone(f"sleep {marker}")


@needs_proc
def test_keyboard_interrupt_kills_group_and_reraises(tmp_path: Path) -> None:
    marker = f"{int(time.time() * 1000) % 100000 + 300}.25"
    main = threading.main_thread().ident
    assert threading.get_ident() == main
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        execute(f"sleep {marker} & sleep {marker}; wait", str(tmp_path), 30, 1000)
    timer.cancel()
    assert gone(f"sleep {marker}")


def test_background_child_does_not_hang_the_call(tmp_path: Path) -> None:
    marker = f"{int(time.time() * 1000) % 100000 + 400}.75"
    began = time.monotonic()
    r = sh(make(tmp_path), f"sleep {marker} & echo started")
    try:
        assert r.ok and "started" in r.content and time.monotonic() - began < 5
        assert "background" in r.content
    finally:
        for pid in live_procs_with(f"sleep {marker}") if Path("/proc/self").exists() else []:
            os.kill(pid, signal.SIGKILL)  # only the sleep this test started, by its pid


def test_live_output_callback(tmp_path: Path) -> None:
    seen: list[str] = []
    reg = make(tmp_path, on_output=seen.append)
    assert sh(reg, "echo one; echo two").ok
    assert "".join(seen) == "one\ntwo\n"


def test_default_timeout_from_context(tmp_path: Path) -> None:
    r = sh(make(tmp_path, shell_timeout=0.5), "sleep 5")
    assert r.meta["timed_out"] is True


def test_bad_timeouts_rejected(tmp_path: Path) -> None:
    reg = make(tmp_path)
    assert "positive" in sh(reg, "true", timeout=0).content
    assert not sh(reg, "   ").ok
    assert sh(reg, "echo ok", timeout="2").ok  # a numeric string is coerced


def test_denied_in_headless_without_yes(tmp_path: Path) -> None:
    reg = make(tmp_path, mode="ask", headless=True)
    r = sh(reg, "touch made-it")
    assert not r.ok and r.meta["denied"] is True and "--yes" in r.content
    assert not (tmp_path / "made-it").exists()
    assert sh(reg, "ls").ok  # plain read-only commands still run


def test_approver_sees_the_command_and_refusal_reaches_model(tmp_path: Path) -> None:
    asked = []

    def approver(req):
        asked.append(req)
        return Approval(False, "run the unit tests only")

    r = sh(make(tmp_path, mode="ask", approver=approver), "pytest && touch x")
    assert asked[0].action == "shell" and asked[0].target == "pytest && touch x"
    assert "The user denied the command" in r.content and "unit tests only" in r.content
    assert not (tmp_path / "x").exists()
