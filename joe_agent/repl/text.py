"""Pure text decisions for render.py, kept apart so they are testable and rich-free: where a
streamed Markdown reply can be cut into finished blocks, and the few words that summarise a
tool call and its result."""
from __future__ import annotations

from joe_agent.messages import ToolCall, ToolResult

TARGET_KEYS = ("path", "command", "pattern", "name", "query", "url")


def split_markdown(text: str, max_lines: int = 30) -> tuple[list[str], str]:
    """Split streamed Markdown into finished blocks (safe to print for good) and the tail.

    A block ends at a blank line or a closing code fence. A tail longer than `max_lines`
    complete lines is cut anyway; inside a code fence the cut closes the fence and the tail
    reopens it, so both halves still render as code."""
    lines = text.split("\n")
    complete = lines[:-1]  # the last element is the line still being written
    cut, fence, fence_line = 0, "", -1
    for i, line in enumerate(complete):
        s = line.strip()
        if fence:
            if s.startswith(fence) and not s.strip(fence[0]):
                fence, cut = "", i + 1
        elif s.startswith(("```", "~~~")):
            fence, fence_line = s[:len(s) - len(s.lstrip(s[0]))], i
        elif not s:
            cut = i + 1
    rest = lines[cut:]
    if len(complete) - cut > max_lines:
        if fence:  # close the fence for the printed half, reopen it for the tail
            complete, rest = complete + [fence], [complete[fence_line], lines[-1]]
        else:
            rest = lines[-1:]
        cut = len(complete)
    done = "\n".join(complete[:cut]).strip("\n")
    return ([done] if done.strip() else []), "\n".join(rest)


def tool_target(call: ToolCall, limit: int = 100) -> str:
    """The one argument that says what a call touches: its path, command, pattern..."""
    for key in TARGET_KEYS:
        if key in call.arguments:
            value = " ".join(str(call.arguments[key]).split())
            return value if len(value) <= limit else value[: limit - 1] + "…"
    return ""


def diff_stats(diff: str) -> tuple[int, int]:
    added = sum(1 for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++"))
    removed = sum(1 for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---"))
    return added, removed


def summarize(call: ToolCall, result: ToolResult) -> str:
    """A few words about a tool result, for its one-line display."""
    meta, text = result.meta or {}, result.content or ""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    first = first if len(first) <= 120 else first[:119] + "…"
    if meta.get("denied"):
        return "denied"
    if meta.get("interrupted"):
        return "interrupted"
    if meta.get("exit_code") is not None or meta.get("timed_out"):
        return f"timed out, exit {meta.get('exit_code')}" if meta.get("timed_out") else f"exit {meta['exit_code']}"
    if not result.ok:
        return first or "failed"
    if meta.get("diff"):
        added, removed = diff_stats(meta["diff"])
        return ("created, " if meta.get("created") else "") + f"+{added} −{removed}"
    n = len(text.splitlines())
    if call.name == "read_file" or n != 1:
        return f"{n} line{'s' if n != 1 else ''}"
    return first
