"""The OpenAI-compatible backend: `/v1/chat/completions` as served by llama.cpp's
llama-server, LM Studio, vLLM and Ollama's own /v1.

The only file that knows this wire format. What /v1 cannot do, compared with Ollama's
/api/chat: set the context size (num_ctx is whatever the server was started with; we read
it from llama.cpp's /props or vLLM's max_model_len when the server tells), keep a model
loaded (keep_alive) or switch thinking on and off. See docs/backends.md.

Tool-call ids the model did not give are generated from the message's position, so the
same history always renders to the same bytes and the server's prompt cache keeps working.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Iterator

from joe_agent.errors import ModelError, ModelNotFound, ModelUnreachable, StreamError, ToolsUnsupported
from joe_agent.messages import Chunk, Message, ModelInfo, ToolCall

DEFAULT_HOST = "http://127.0.0.1:8080"
FALLBACK_NUM_CTX = 4096  # what Ollama and LM Studio use when nobody set a context size
API_KEY_ENV = "JOE_API_KEY"  # sent as a Bearer token when set (vLLM --api-key, hosted gateways)
START_HINT = ("start one, e.g. `llama-server -m model.gguf --jinja --port 8080`, LM Studio's local server "
              "(`lms server start`) or `vllm serve MODEL`, or pass --host")
# Options in Ollama's vocabulary that have a /v1 equivalent; the rest (num_ctx, keep_alive...)
# cannot be set through /v1 and are dropped.
_OPTION_NAMES = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "stop": "stop",
                 "num_predict": "max_tokens", "max_tokens": "max_tokens", "presence_penalty": "presence_penalty",
                 "frequency_penalty": "frequency_penalty", "top_k": "top_k", "min_p": "min_p"}
_KEPT = "; the partial reply was kept"
_TOOLS_REFUSED = re.compile(r"(?i)tool.*(not support|unsupported|requires|--jinja|enable-auto-tool-choice|"
                            r"tool-call-parser)|(does not|doesn't) support tools")


def normalize_host(host: str | None) -> str:
    """`127.0.0.1:8080`, `http://h:8080/` and `http://h:8080/v1` all mean the same server."""
    host = (host or DEFAULT_HOST).strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    return host[:-3] if host.endswith("/v1") else host


class OpenAICompatModel:
    """A ChatModel over an OpenAI-compatible server (see the module docs)."""

    def __init__(self, name: str, host: str | None = None, options: dict[str, Any] | None = None,
                 num_ctx: int | None = None, api_key: str | None = None, timeout_s: float = 900.0):
        self.name = name
        self.host = normalize_host(host)
        self.num_ctx = num_ctx or FALLBACK_NUM_CTX  # replaced by the server's own in info()
        self.options = {_OPTION_NAMES[k]: v for k, v in (options or {}).items() if k in _OPTION_NAMES and v is not None}
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        self.timeout_s = timeout_s
        self.served_name = name  # the id sent in requests (a llama.cpp server takes its one model)
        self._info: ModelInfo | None = None
        self._client: Any = None

    # ---- ChatModel ---------------------------------------------------------------------
    def info(self) -> ModelInfo:
        if self._info is None:
            self._info = self._probe()
        return self._info

    def list_models(self) -> list[str]:
        return [m["id"] for m in self._models()]

    def stream(self, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> Iterator[Chunk]:
        body: dict[str, Any] = {"model": self.served_name, "messages": to_openai_messages(messages),
                                "stream": True, "stream_options": {"include_usage": True}, **self.options}
        if tools:
            body["tools"] = tools
        return self._stream(body, bool(tools))

    # ---- probing -----------------------------------------------------------------------
    def _probe(self) -> ModelInfo:
        models = self._models()
        props = self._props()
        entry = self._pick(models, llama_cpp=props is not None)
        caps = (props or {}).get("chat_template_caps") or {}
        supports_tools = bool(caps.get("supports_tools", True))
        n_ctx = _int((props or {}).get("default_generation_settings", {}).get("n_ctx")) or _served_ctx(entry)
        if n_ctx:
            self.num_ctx = n_ctx
        trained = _int((entry or {}).get("meta", {}).get("n_ctx_train")) or n_ctx
        return ModelInfo(name=self.name, supports_tools=supports_tools, supports_thinking=False,
                         context_length=trained, capabilities=["completion", "tools"] if supports_tools else ["completion"])

    def _pick(self, models: list[dict], llama_cpp: bool) -> dict | None:
        """The served model matching our name; a llama.cpp server serves its one model
        whatever name the request carries, so there any name is fine."""
        if not models:
            return None  # the server does not list models: let the chat request decide
        for m in models:
            if self.name in _names_of(m):
                self.served_name = m["id"]
                return m
        if llama_cpp and len(models) == 1:
            self.served_name = models[0]["id"]
            return models[0]
        served = ", ".join(m["id"] for m in models)
        raise ModelNotFound(f"model {self.name!r} is not served at {self.host}; it serves: {served} "
                            f"(use --model with one of them)")

    def _models(self) -> list[dict]:
        r = self._get("/v1/models")
        if r.status_code == 404:
            return []
        if r.status_code >= 400:
            raise ModelError(f"{self.host}/v1/models answered HTTP {r.status_code}: {_error_text(r.text)}")
        try:
            data = r.json().get("data") or []
        except (ValueError, AttributeError):
            raise ModelError(f"{self.host} is not an OpenAI-compatible server (/v1/models is not JSON)") from None
        return [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    def _props(self) -> dict | None:
        """llama.cpp's /props (context size, template capabilities); None elsewhere."""
        r = self._get("/props")
        if r.status_code != 200:
            return None
        try:
            data = r.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) and "default_generation_settings" in data else None

    # ---- HTTP --------------------------------------------------------------------------
    def _http(self):
        if self._client is None:
            import httpx  # lazily: ~100 ms, and only the sessions that use this backend pay it

            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.Client(base_url=self.host, headers=headers, timeout=httpx.Timeout(
                self.timeout_s, connect=10.0))
        return self._client

    def _get(self, path: str):
        import httpx

        try:
            return self._http().get(path)
        except httpx.TransportError as e:
            raise self._unreachable(e) from None

    def _unreachable(self, e: Exception) -> ModelUnreachable:
        return ModelUnreachable(f"cannot reach an OpenAI-compatible server at {self.host} ({type(e).__name__}); "
                                + START_HINT)

    def _stream(self, body: dict[str, Any], with_tools: bool) -> Iterator[Chunk]:
        import httpx

        yielded = False
        try:
            with self._http().stream("POST", "/v1/chat/completions", json=body) as r:
                if r.status_code != 200:
                    raise self._http_error(r.status_code, r.read().decode("utf-8", "replace"), with_tools)
                for chunk in self._read_events(r):
                    yielded = True
                    yield chunk
        except httpx.ConnectError as e:
            raise self._unreachable(e) from None
        except httpx.TimeoutException as e:
            raise StreamError(f"{self.host} stopped answering ({type(e).__name__} after {self.timeout_s:.0f} s)"
                              f"{_KEPT if yielded else ''}") from None
        except httpx.TransportError as e:
            raise StreamError(f"the connection to {self.host} broke mid-reply ({type(e).__name__})"
                              f"{_KEPT if yielded else ''}") from None

    def _http_error(self, status: int, text: str, with_tools: bool) -> ModelError:
        message = _error_text(text)
        if with_tools and status in (400, 422, 500) and _TOOLS_REFUSED.search(message):
            return ToolsUnsupported(f"{self.name} on {self.host} does not take native tools ({message})")
        if status == 404 or (status == 400 and re.search(r"(?i)model.*(not found|does not exist)", message)):
            try:
                served = ", ".join(self.list_models()) or "none listed"
            except ModelError:
                served = "unknown"
            return ModelNotFound(f"model {self.served_name!r} is not served at {self.host}: {message}; it serves: {served}")
        if status in (401, 403):
            return ModelError(f"{self.host} refused the request (HTTP {status}: {message}); set {API_KEY_ENV} "
                              "if the server needs an API key")
        return ModelError(f"{self.host} answered HTTP {status}: {message}")

    def _read_events(self, response) -> Iterator[Chunk]:
        acc, partial = _Assembler(), False
        for data in _sse_data(response.iter_lines()):
            if data == "[DONE]":
                acc.done_seen = True
                break
            try:
                event = json.loads(data)
            except ValueError:
                event = None
            if not isinstance(event, dict):
                raise StreamError(f"{self.host} sent a malformed stream event: {data[:80]!r}"
                                  f"{_KEPT if partial else ''}")
            if event.get("error"):
                raise StreamError(f"the model server reported an error mid-reply: {_error_text(json.dumps(event))}")
            for chunk in acc.feed(event):
                partial = True
                yield chunk
        if not (acc.done_seen or acc.finish_reason):
            raise StreamError(f"the stream from {self.host} ended before the reply was complete"
                              f"{_KEPT if partial else ''}")
        yield acc.final_chunk()


# ---- stream assembly -------------------------------------------------------------------------


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _Assembler:
    """Folds /v1 stream events into Chunks; tool calls are put together by index."""

    calls: dict[int, _PartialCall] = field(default_factory=dict)
    finish_reason: str = ""
    done_seen: bool = False
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)

    def feed(self, event: dict[str, Any]) -> Iterator[Chunk]:
        self.usage = event.get("usage") or self.usage
        self.timings = event.get("timings") or self.timings
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or choice.get("message") or {}
            thinking = delta.get("reasoning_content") or delta.get("reasoning") or ""
            content = delta.get("content") or ""
            for tc in delta.get("tool_calls") or []:
                self._add_call(tc)
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
            if thinking or content:
                yield Chunk(content=content if isinstance(content, str) else "", thinking=str(thinking))

    def _add_call(self, tc: dict[str, Any]) -> None:
        fn = tc.get("function") or {}
        index = tc.get("index")
        if not isinstance(index, int):  # servers that omit it: a new id or name starts a new call
            starts = bool(tc.get("id") or fn.get("name")) or not self.calls
            index = len(self.calls) if starts else max(self.calls)
        slot = self.calls.setdefault(index, _PartialCall())
        slot.id = slot.id or str(tc.get("id") or "")
        slot.name += str(fn.get("name") or "")
        args = fn.get("arguments")
        slot.arguments += json.dumps(args) if isinstance(args, (dict, list)) else str(args or "")

    def final_chunk(self) -> Chunk:
        calls = [_finish_call(self.calls[i], i) for i in sorted(self.calls)]
        prompt = _int(self.usage.get("prompt_tokens")) or _int(self.timings.get("prompt_n"))
        completion = _int(self.usage.get("completion_tokens")) or _int(self.timings.get("predicted_n"))
        eval_ms, prompt_ms = self.timings.get("predicted_ms"), self.timings.get("prompt_ms")
        return Chunk(tool_calls=calls, done=True, done_reason=self.finish_reason or "stop",
                     prompt_tokens=prompt, completion_tokens=completion,
                     eval_duration_s=eval_ms / 1000 if isinstance(eval_ms, (int, float)) else None,
                     prompt_eval_duration_s=prompt_ms / 1000 if isinstance(prompt_ms, (int, float)) else None)


def _finish_call(p: _PartialCall, index: int) -> ToolCall:
    call = ToolCall(name=p.name, id=p.id or f"call_{index}", source="native")
    text = p.arguments.strip()
    if not text:
        return call
    try:
        value = json.loads(text)
    except ValueError as e:
        call.arguments_error = f"arguments are not valid JSON ({e.msg} at char {e.pos}): {text[:200]}"
        return call
    if isinstance(value, dict):
        call.arguments = value
    else:
        call.arguments_error = f"arguments must be a JSON object, got {type(value).__name__}"
    return call


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The data of each server-sent event (multi-line data joined, comments skipped)."""
    buf: list[str] = []
    for line in lines:
        if not line.strip():
            if buf:
                yield "\n".join(buf)
                buf = []
        elif line.startswith("data:"):
            buf.append(line[5:].lstrip(" "))
        # ":" comments (keep-alives), "event:", "id:" and "retry:" lines carry nothing we use
    if buf:
        yield "\n".join(buf)


# ---- requests: our messages in OpenAI shape --------------------------------------------------


def to_openai_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Assistant calls get ids and JSON-string arguments; tool results answer them by id."""
    out: list[dict[str, Any]] = []
    pending: list[tuple[str, str]] = []  # (id, name) of calls not answered yet
    for pos, m in enumerate(messages):
        if m.role == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": m.content}
            if m.tool_calls:
                ids = [c.id or f"call_{pos}_{i}" for i, c in enumerate(m.tool_calls)]
                msg["tool_calls"] = [{"id": cid, "type": "function", "function": {
                    "name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
                    for cid, c in zip(ids, m.tool_calls)]
                pending = [(cid, c.name) for cid, c in zip(ids, m.tool_calls)]
            out.append(msg)
        elif m.role == "tool":
            call_id = m.tool_call_id or _claim(pending, m.tool_name) or f"call_{pos}"
            pending = [p for p in pending if p[0] != call_id]
            out.append({"role": "tool", "tool_call_id": call_id, "content": m.content})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _claim(pending: list[tuple[str, str]], name: str) -> str:
    """The id of the first unanswered call to `name` (or of the first unanswered call)."""
    for cid, cname in pending:
        if cname == name:
            return cid
    return pending[0][0] if pending else ""


# ---- small helpers ----------------------------------------------------------------------------


def _names_of(model: dict[str, Any]) -> set[str]:
    """Every name a served model answers to: its id, aliases, and a file name's stem."""
    names = {model["id"], *[a for a in model.get("aliases") or [] if isinstance(a, str)]}
    for n in list(names):
        base = PurePosixPath(n).name
        names |= {base, base.removesuffix(".gguf")}
    return names


def _served_ctx(entry: dict | None) -> int | None:
    if not entry:
        return None
    return _int(entry.get("max_model_len")) or _int((entry.get("meta") or {}).get("n_ctx"))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _error_text(body: str) -> str:
    """The one human line in an error body, whatever the server's error shape."""
    try:
        data = json.loads(body)
    except ValueError:
        return " ".join(body.split())[:300] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            err = err.get("message") or err.get("detail") or data.get("message") or err
        elif not err:
            err = data.get("message") or data.get("detail") or data
        return " ".join(str(err).split())[:300]
    return " ".join(str(data).split())[:300]
