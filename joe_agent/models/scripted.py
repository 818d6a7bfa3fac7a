"""ScriptedModel: a ChatModel that replays queued replies, with no server at all.

For tests, demos, `joe eval --model scripted:FILE` and benchmarks (a zero-latency model).
A reply file is JSON: a list of replies, or {"replies": [...], "model": {...}} where "model"
takes the constructor's keywords (name, num_ctx, supports_tools). A reply is a string (plain
text) or an object with text, thinking, tool_calls ([{"name", "arguments"}]) and error (raise
StreamError after the text). Token counts are a deterministic chars/4 estimate, so context
accounting in the agent works as it does against a real server.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from joe_agent.errors import ConfigError, StreamError
from joe_agent.messages import Chunk, Message, ModelInfo, ToolCall

NO_MORE_REPLIES = "(scripted: no more replies)"
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_CHARS = 16  # role markers and separators a chat template adds per message
_REPLY_KEYS = {"text", "thinking", "tool_calls", "error"}
_MODEL_KEYS = {"name", "num_ctx", "supports_tools"}


@dataclass
class ScriptedReply:
    text: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    error: str = ""  # raise StreamError after the text

    @classmethod
    def from_json(cls, value: Any, where: str) -> "ScriptedReply":
        if isinstance(value, str):
            return cls(text=value)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: a reply must be a string or an object, got {type(value).__name__}")
        unknown = set(value) - _REPLY_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown reply key(s) {', '.join(sorted(unknown))}; "
                              f"use {', '.join(sorted(_REPLY_KEYS))}")
        calls = value.get("tool_calls") or []
        if not isinstance(calls, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in calls):
            raise ConfigError(f'{where}: tool_calls must be a list of {{"name": ..., "arguments": {{...}}}}')
        if not all(isinstance(c.get("arguments", {}), dict) for c in calls):
            raise ConfigError(f"{where}: tool call arguments must be JSON objects")
        return cls(
            text=str(value.get("text", "")),
            thinking=str(value.get("thinking", "")),
            tool_calls=[ToolCall(name=c["name"], arguments=dict(c.get("arguments") or {}), id=str(c.get("id", "")))
                        for c in calls],
            error=str(value.get("error", "")),
        )


class ScriptedModel:
    """Replays `replies` in order (or asks `responder` for each reply); records every request."""

    def __init__(self, replies: list[ScriptedReply] | None = None, name: str = "scripted",
                 num_ctx: int = 32768, supports_tools: bool = True,
                 responder: Callable[[list[Message]], ScriptedReply] | None = None):
        self.name = name
        self.num_ctx = num_ctx
        self.supports_tools = supports_tools
        self.replies: list[ScriptedReply] = list(replies or [])
        self.responder = responder
        self.requests: list[list[Message]] = []
        self.tools_seen: list[list[dict] | None] = []
        self._calls = 0

    @classmethod
    def from_file(cls, path: Path) -> "ScriptedModel":
        """Load a reply file; any problem is one ConfigError naming the file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"scripted model file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read scripted model file {path}: {e}") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None
        model: dict[str, Any] = {}
        if isinstance(data, dict):
            model, data = data.get("model") or {}, data.get("replies")
            if not isinstance(model, dict) or set(model) - _MODEL_KEYS:
                raise ConfigError(f'{path}: "model" must be an object with keys among {", ".join(sorted(_MODEL_KEYS))}')
        if not isinstance(data, list):
            raise ConfigError(f'{path}: expected a list of replies or {{"replies": [...]}}')
        replies = [ScriptedReply.from_json(v, f"{path}: reply {i + 1}") for i, v in enumerate(data)]
        try:
            return cls(replies, name=str(model.get("name", "scripted")), num_ctx=int(model.get("num_ctx", 32768)),
                       supports_tools=bool(model.get("supports_tools", True)))
        except (TypeError, ValueError):
            raise ConfigError(f'{path}: "model.num_ctx" must be an integer') from None

    # ---- ChatModel ---------------------------------------------------------------------
    def info(self) -> ModelInfo:
        caps = ["completion", "tools"] if self.supports_tools else ["completion"]
        return ModelInfo(name=self.name, supports_tools=self.supports_tools, context_length=self.num_ctx,
                         capabilities=caps)

    def list_models(self) -> list[str]:
        return [self.name]

    def stream(self, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> Iterator[Chunk]:
        self.requests.append(list(messages))
        self.tools_seen.append(tools)
        reply = self._next(messages)
        prompt_tokens = estimate_tokens(messages, tools)
        return self._chunks(reply, prompt_tokens)

    def _next(self, messages: list[Message]) -> ScriptedReply:
        self._calls += 1
        if self.responder is not None:
            return self.responder(messages)
        if self.replies:
            return self.replies.pop(0)
        return ScriptedReply(text=NO_MORE_REPLIES)

    @staticmethod
    def _chunks(reply: ScriptedReply, prompt_tokens: int) -> Iterator[Chunk]:
        # a generator, like a real stream: nothing happens until the first next()
        if reply.thinking:
            yield Chunk(thinking=reply.thinking)
        for piece in _pieces(reply.text):
            yield Chunk(content=piece)
        if reply.error:
            raise StreamError(reply.error)
        calls = [ToolCall(c.name, dict(c.arguments), c.id or f"call_scripted_{i}", c.arguments_error)
                 for i, c in enumerate(reply.tool_calls)]
        completion = _estimate(reply.text) + _estimate(reply.thinking) + _estimate(
            json.dumps([c.to_dict() for c in calls]) if calls else "")
        yield Chunk(tool_calls=calls, done=True, done_reason="stop", prompt_tokens=prompt_tokens,
                    completion_tokens=completion, eval_duration_s=0.0, prompt_eval_duration_s=0.0)


def estimate_tokens(messages: list[Message], tools: list[dict[str, Any]] | None) -> int:
    """chars/4 over everything the request carries: deterministic, so tests can compute it."""
    chars = len(json.dumps(tools)) if tools else 0
    for m in messages:
        chars += len(m.content) + len(m.thinking) + MESSAGE_OVERHEAD_CHARS
        if m.tool_calls:
            chars += len(json.dumps([c.to_dict() for c in m.tool_calls]))
    return _estimate_chars(chars)


def _estimate(text: str) -> int:
    return _estimate_chars(len(text))


def _estimate_chars(chars: int) -> int:
    return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def _pieces(text: str, size: int = 24) -> list[str]:
    """The text in a few chunks, as a stream delivers it."""
    return [text[i:i + size] for i in range(0, len(text), size)]
