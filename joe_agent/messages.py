"""The shapes that cross module boundaries: messages, tool calls, model chunks and agent events.

Everything here is a plain dataclass with no behaviour beyond (de)serialisation, so that the
model backends, the agent loop, the REPL and the transcript agree on one vocabulary.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Union

Role = Literal["system", "user", "assistant", "tool"]


@dataclass
class ToolCall:
    """One call the model asked for. `arguments` is always a dict; when the model sent
    something that is not a JSON object, `arguments_error` says why and the call fails."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    arguments_error: str = ""
    # "native" (structured tool_calls) or "text" (parsed from the reply's text by textcalls)
    source: str = "native"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ToolCall":
        return cls(
            name=str(d.get("name", "")),
            arguments=dict(d.get("arguments") or {}),
            id=str(d.get("id", "")),
            arguments_error=str(d.get("arguments_error", "")),
            source=str(d.get("source", "native")),
        )


@dataclass
class Message:
    """One chat message as the agent keeps it. Backends translate to their wire format."""

    role: Role
    content: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_name: str = ""  # for role == "tool": which tool produced this result
    tool_call_id: str = ""  # for role == "tool": the id of the call it answers, if any

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.thinking:
            d["thinking"] = self.thinking
        if self.tool_calls:
            d["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.tool_name:
            d["tool_name"] = self.tool_name
        if self.tool_call_id:
            d["tool_call_id"] = self.tool_call_id
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Message":
        return cls(
            role=d["role"],
            content=str(d.get("content") or ""),
            thinking=str(d.get("thinking") or ""),
            tool_calls=[ToolCall.from_dict(c) for c in d.get("tool_calls") or []],
            tool_name=str(d.get("tool_name") or ""),
            tool_call_id=str(d.get("tool_call_id") or ""),
        )


@dataclass
class ToolResult:
    """The one result every tool call gets. `ok=False` results are still sent to the model."""

    content: str
    ok: bool = True
    # Structured extras for the REPL and transcript (never sent to the model): e.g.
    # {"path": "src/x.py", "diff": "...", "exit_code": 0, "denied": True}
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Chunk:
    """One piece of a streamed model reply, backend-neutral."""

    content: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    done: bool = False
    done_reason: str = ""
    prompt_tokens: int | None = None  # Ollama prompt_eval_count (whole prompt, cache included)
    completion_tokens: int | None = None  # Ollama eval_count
    eval_duration_s: float | None = None
    prompt_eval_duration_s: float | None = None


@dataclass
class ModelInfo:
    """What the backend learned about the model at session start."""

    name: str
    supports_tools: bool = True
    supports_thinking: bool = False
    context_length: int | None = None  # trained context, when the server tells
    capabilities: list[str] = field(default_factory=list)


# ---- agent events: what run_turn yields -------------------------------------------------


@dataclass
class TextDelta:
    text: str
    kind: Literal["text"] = "text"


@dataclass
class ThinkingDelta:
    text: str
    kind: Literal["thinking"] = "thinking"


@dataclass
class ToolCallEvent:
    call: ToolCall
    kind: Literal["tool_call"] = "tool_call"


@dataclass
class ToolResultEvent:
    call: ToolCall
    result: ToolResult
    kind: Literal["tool_result"] = "tool_result"


@dataclass
class Notice:
    """Something the person should know that is not the model's words: compaction happened,
    skills were injected (and why), a fallback to text tool calls, etc."""

    text: str
    topic: str = ""  # e.g. "compaction", "skills", "textcalls"
    data: dict[str, Any] = field(default_factory=dict)
    kind: Literal["notice"] = "notice"


@dataclass
class TurnDone:
    reason: Literal["done", "max_steps", "interrupted", "error", "loop"] = "done"
    steps: int = 0
    prompt_tokens: int = 0  # last request's prompt size (context used)
    completion_tokens: int = 0  # summed over the turn
    duration_s: float = 0.0
    tokens_per_s: float | None = None
    final_text: str = ""
    denied: int = 0  # tool actions the person refused this turn
    kind: Literal["turn_done"] = "turn_done"


@dataclass
class ErrorEvent:
    message: str  # one line, user-facing
    error_type: str = ""  # e.g. "unreachable", "model_not_found", "stream", "http"
    partial: bool = False  # a partial reply was kept
    kind: Literal["error"] = "error"


Event = Union[TextDelta, ThinkingDelta, ToolCallEvent, ToolResultEvent, Notice, TurnDone, ErrorEvent]


def event_to_dict(ev: Event) -> dict[str, Any]:
    """JSON-ready form of an event (used by --json and tests)."""
    return asdict(ev)
