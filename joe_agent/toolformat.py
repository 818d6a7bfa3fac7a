"""Which way a model gets its tools: natively (the API's `tools`), or as the text protocol in the
system prompt with calls written in the reply.

Some models answer native tools with calls written as text anyway (qwen2.5-coder above all,
FIELD-NOTES §1.3), and do better with the short text protocol than with the server's chat
template printing every tool schema into the prompt (live suite: 3/10 against 9/10 with
Qwen2.5-Coder-1.5B, docs/live-model.md). With `tool_format: auto`, a model gets the text
protocol from the session after one in which joe saw it write a call as text while offered
native tools (remembered per backend and model in $JOE_HOME/cache/tool_format.json). Evidence,
not a list of names: the same model may call natively on another server or template."""
from __future__ import annotations

import json
from pathlib import Path

CACHE = "tool_format.json"


def _key(backend: str, model: str) -> str:
    return f"{backend}:{model}"


def learned(home: Path) -> dict[str, str]:
    try:
        data = json.loads((Path(home) / "cache" / CACHE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing or damaged: nothing learned yet
    return {k: v for k, v in data.items() if isinstance(k, str) and v in ("text", "native")} if isinstance(data, dict) else {}


def text_reason(setting: str, backend: str, model: str, home: Path) -> str | None:
    """Why this model gets the text protocol, or None for native tools (when it has them)."""
    if setting == "text":
        return "tool_format: text"
    if setting == "native":
        return None
    if learned(home).get(_key(backend, model)) == "text":
        return f"{model} wrote tool calls as text in an earlier session"
    return None


def remember_text_writer(home: Path, backend: str, model: str) -> None:
    """Record that this model wrote calls as text although offered native tools."""
    from joe_agent.memory.store import atomic_write, locked

    path = Path(home) / "cache" / CACHE
    with locked(path):
        data = learned(home)
        if data.get(_key(backend, model)) == "text":
            return
        data[_key(backend, model)] = "text"
        atomic_write(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"))
