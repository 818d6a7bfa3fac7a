"""The Ollama backend: the only module that knows Ollama's API, spoken through the official
`ollama` client.

Why it looks the way it does:
- `num_ctx` is chosen once (explicit, else the model's trained context capped by
  `max_num_ctx`, else 8192) and sent on every request: the server default is as low as 4096
  and silently drops messages, and a changed `num_ctx` reloads the model.
- Tool calls may come on any chunk, the final `done:true` one included (native mode).
- Every failure leaves as a joe_agent.errors.ModelError subclass with one actionable line;
  what streamed before a failure has already been yielded, so the caller keeps it.
- `ollama` (with pydantic and httpx) costs ~300 ms to import, so it is imported on first use.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterator, TypeVar

from joe_agent.errors import ConfigError, ModelError, ModelNotFound, ModelUnreachable, StreamError, ToolsUnsupported
from joe_agent.messages import Chunk, Message, ModelInfo, ToolCall

DEFAULT_NUM_CTX = 8192  # when the server does not say how long the model's context is
CONNECT_TIMEOUT_S = 10.0  # reads stay unbounded: a cold model load can take minutes
KEPT = "; the partial reply was kept"
T = TypeVar("T")


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _seconds(ns: int | None) -> float | None:
    return ns / 1e9 if ns is not None else None


def to_wire(m: Message) -> dict[str, Any]:
    """A Message as Ollama's /api/chat expects it."""
    d: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.thinking:
        d["thinking"] = m.thinking
    # Calls the model wrote as text go back as structured calls too (the agent has already
    # cut them out of `content` when native tools are on), so the chat template renders the
    # conversation in the model's own native format and every tool result has its call.
    if m.tool_calls:
        d["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in m.tool_calls]
    if m.role == "tool" and m.tool_name:
        d["tool_name"] = m.tool_name
    return d


def to_chunk(part: Any) -> Chunk:
    """One ollama ChatResponse as a backend-neutral Chunk."""
    msg = part.message
    calls = [ToolCall(name=tc.function.name, arguments=dict(tc.function.arguments or {}))
             for tc in msg.tool_calls or []]
    chunk = Chunk(content=msg.content or "", thinking=msg.thinking or "", tool_calls=calls, done=bool(part.done))
    if chunk.done:
        chunk.done_reason = part.done_reason or ""
        chunk.prompt_tokens = part.prompt_eval_count
        chunk.completion_tokens = part.eval_count
        chunk.eval_duration_s = _seconds(part.eval_duration)
        chunk.prompt_eval_duration_s = _seconds(part.prompt_eval_duration)
    return chunk


def context_length_of(model_info: dict[str, Any]) -> int | None:
    """The trained context: `<general.architecture>.context_length`, else any `*.context_length`."""
    arch = model_info.get("general.architecture")
    value = model_info.get(f"{arch}.context_length") if arch else None
    if not isinstance(value, int):
        value = next((v for k, v in model_info.items() if k.endswith(".context_length") and isinstance(v, int)), None)
    return value


class OllamaModel:
    """ChatModel for an Ollama server (see joe_agent/models/base.py)."""

    def __init__(self, model: str, host: str | None = None, num_ctx: int | None = None,
                 keep_alive: str | float | None = None, options: dict | None = None,
                 think: bool | None = None, max_num_ctx: int = 32768):
        if not model:
            raise ConfigError("no model is set: pass --model NAME or set `model` in config.yaml")
        self.name = model
        self.options = dict(options or {})
        self.keep_alive = keep_alive
        self.think = think
        self.max_num_ctx = max_num_ctx
        self._requested_ctx = num_ctx or self.options.pop("num_ctx", None)
        self._host_arg = host or os.environ.get("OLLAMA_HOST") or None
        self._client: Any = None
        self._info: ModelInfo | None = None
        self._num_ctx: int | None = None

    # ---- connection ---------------------------------------------------------------------
    def client(self) -> Any:
        """The ollama.Client, built on first use; the client's own host parsing decides."""
        if self._client is None:
            import httpx
            import ollama

            try:
                timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT_S)
                self._client = ollama.Client(host=self._host_arg, timeout=timeout)
            except ValueError as e:
                raise ConfigError(f"invalid Ollama host {self._host_arg!r}: {_one_line(e)}. "
                                  "Use host:port or http://host:port (--host / OLLAMA_HOST).") from None
        return self._client

    @property
    def host(self) -> str:
        """The base URL actually tried (for messages), e.g. http://127.0.0.1:11434."""
        inner = getattr(self.client(), "_client", None)
        base = getattr(inner, "base_url", None)
        return str(base).rstrip("/") if base is not None else str(self._host_arg or "http://127.0.0.1:11434")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- ChatModel ------------------------------------------------------------------------
    @property
    def num_ctx(self) -> int:
        """The context size every request of this session sends (asks the server once)."""
        if self._num_ctx is None:
            self.info()
        assert self._num_ctx is not None
        return self._num_ctx

    def info(self) -> ModelInfo:
        """POST /api/show once: capabilities and trained context; fixes num_ctx."""
        if self._info is None:
            show = self._call(lambda c: c.show(self.name))
            caps = list(show.capabilities or [])
            trained = context_length_of(dict(show.modelinfo or {}))
            # servers before capabilities existed said nothing: assume tools, the 400 corrects us
            self._info = ModelInfo(name=self.name, supports_tools="tools" in caps if caps else True,
                                   supports_thinking="thinking" in caps, context_length=trained,
                                   capabilities=caps)
            self._num_ctx = self._choose_num_ctx(trained)
        return self._info

    def _choose_num_ctx(self, trained: int | None) -> int:
        if self._requested_ctx:
            # the server clamps to the trained context anyway; our budget must match what it does
            return min(int(self._requested_ctx), trained) if trained else int(self._requested_ctx)
        return min(trained, self.max_num_ctx) if trained else DEFAULT_NUM_CTX

    def list_models(self) -> list[str]:
        """Names of the installed models (GET /api/tags)."""
        return [m.model for m in self._call(lambda c: c.list()).models if m.model]

    def stream(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> Iterator[Chunk]:
        request: dict[str, Any] = {"model": self.name, "messages": [to_wire(m) for m in messages],
                                   "tools": tools or None, "stream": True,
                                   "options": {**self.options, "num_ctx": self.num_ctx}}
        if self.keep_alive is not None:
            request["keep_alive"] = self.keep_alive
        if self.think is not None:
            request["think"] = self.think
        parts, yielded, finished = self._open(request), False, False
        try:
            for part in parts:
                chunk = to_chunk(part)
                yielded, finished = True, finished or chunk.done
                yield chunk
        except self._wire_errors() as e:
            raise self._translate(e, partial=yielded) from None
        finally:
            parts.close()  # closes the HTTP response when the caller stops early (Ctrl-C)
        if not finished:
            raise StreamError(f"Ollama ended the reply without its final chunk{KEPT if yielded else ''}")

    def _open(self, request: dict[str, Any]) -> Iterator[Any]:
        """The client validates the request before sending anything; nothing is sent yet."""
        import pydantic

        try:
            return self.client().chat(**request)
        except pydantic.ValidationError as e:  # our tool schema or a message does not fit the client's types
            first = e.errors()[0] if e.errors() else {}
            where = ".".join(str(x) for x in first.get("loc", ()))
            raise ModelError(f"the request could not be encoded for Ollama: {where}: {first.get('msg', e)}") from None

    # ---- errors ---------------------------------------------------------------------------
    def _call(self, fn: Callable[[Any], T]) -> T:
        try:
            return fn(self.client())
        except self._wire_errors() as e:
            raise self._translate(e, partial=False) from None

    @staticmethod
    def _wire_errors() -> tuple[type[BaseException], ...]:
        """What the client and its transport raise; nothing broader (a bug must stay a bug)."""
        import httpx
        import ollama
        import pydantic

        return (ollama.ResponseError, httpx.HTTPError, ConnectionError, json.JSONDecodeError, pydantic.ValidationError)

    def _translate(self, err: BaseException, partial: bool) -> ModelError:
        import httpx
        import ollama

        kept = KEPT if partial else ""
        if isinstance(err, ollama.ResponseError):
            return self._translate_status(err.status_code, _one_line(err.error), kept)
        if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout)) or (
                isinstance(err, ConnectionError) and not partial):
            return ModelUnreachable(f"Ollama is not reachable at {self.host}. "
                                    "Start it with `ollama serve` (or set --host / OLLAMA_HOST).")
        if isinstance(err, (httpx.HTTPError, ConnectionError)):
            what = _one_line(err) or type(err).__name__
            return StreamError(f"the connection to Ollama at {self.host} broke mid-reply ({what}){kept}")
        return StreamError(f"Ollama sent a malformed reply chunk ({type(err).__name__}){kept}")

    def _translate_status(self, status: int, msg: str, kept: str) -> ModelError:
        if status == -1:  # an {"error": ...} line inside a 200 stream
            return StreamError(f"Ollama failed mid-reply: {msg}{kept}")
        if status == 404 and "page not found" in msg:
            return ModelError(f"{self.host} answered '404 page not found': is it an Ollama server? "
                              "Check --host / OLLAMA_HOST.")
        if status == 404:
            return self._not_found()
        if status == 400 and "does not support tools" in msg:
            return ToolsUnsupported(f"model '{self.name}' does not support native tool calls ({msg})")
        if status == 400 and "does not support thinking" in msg:
            return ModelError(f"model '{self.name}' does not support thinking; turn thinking off for it")
        if status >= 500:
            return ModelError(f"Ollama at {self.host} failed with HTTP {status}: {msg}")
        return ModelError(f"Ollama rejected the request with HTTP {status}: {msg}")

    def _not_found(self) -> ModelNotFound:
        try:
            installed: str | None = ", ".join(self.list_models()) or "none"
        except ModelError:
            installed = None
        tail = f" Installed: {installed}" if installed is not None else ""
        return ModelNotFound(f"model '{self.name}' is not pulled. Run `ollama pull {self.name}`.{tail}")
