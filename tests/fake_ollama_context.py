"""The context model of the fake Ollama server (tests/fake_ollama.py), stdlib only.

Ollama's context handling as /work/shared/ollama-api.md (§7) describes it: the prompt rendered
through a chat template, num_ctx precedence, silent front-message truncation, KV-cache prefix
reuse, and runner reloads when runner options change. fake_ollama.py imports this as a sibling
module: tests/ is on sys.path under pytest, and is the script's own folder when run as a script.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

CHARS_PER_TOKEN = 4  # the fake "tokenizer": deterministic and easy to reason about in tests
RUNNER_OPTIONS = ("num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread", "draft_num_predict")
DEFAULT_SPEC = {"capabilities": ["completion", "tools"], "context_length": 32768, "family": "qwen2"}
COLD_LOAD_NS, WARM_LOAD_NS = 2_500_000_000, 1_000_000  # a (re)load shows as a big load_duration
PROMPT_NS_PER_TOKEN, EVAL_NS_PER_TOKEN = 1_000_000, 20_000_000  # only uncached tokens cost time


@dataclass
class ChatRecord:
    """What the server did with one /api/chat request (for context and cache tests)."""

    model: str
    num_ctx: int
    prompt_tokens: int  # = prompt_eval_count: the whole prompt after truncation, cache included
    cached_tokens: int
    dropped_messages: int
    truncated: bool
    loaded: bool  # the runner was loaded for this request...
    reloaded: bool  # ...replacing one with other runner options


@dataclass
class Runner:
    key: tuple
    num_ctx: int
    cache: str = ""
    expires: float = 0.0


def count_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def render_body(m: dict) -> str:
    body = (f"[{m['tool_name']}] " if m.get("tool_name") else "") + (m.get("content") or "")
    for c in m.get("tool_calls") or []:
        fn = c.get("function", c)
        body += "<call>" + json.dumps({"name": fn.get("name"), "arguments": fn.get("arguments")}) + "</call>"
    return body + "<|end|>\n"


def render_prompt(messages: list[dict], tools: list[dict]) -> str:
    """The fake chat template: tools first, then the messages, then the generation prompt."""
    head = "<tools>" + json.dumps(tools, separators=(",", ":")) + "</tools>\n" if tools else ""
    return head + "".join(f"<|{m.get('role')}|>\n" + render_body(m) for m in messages) + "<|assistant|>\n"


def full_name(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def keep_alive_seconds(value: Any) -> float:
    """A number of seconds or a Go duration ("5m", "1h30m"); negative means forever; default 5m."""
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(-?[\d.]+)(ns|us|ms|s|m|h)?", "300" if value is None else str(value))
    total = sum(float(n) * units[u or "s"] for n, u in parts)
    return 1e9 if total < 0 else total


def timings(tokens: int, cached: int, eval_count: int, loaded: bool) -> dict[str, int]:
    """The counts and durations of a final chunk: prompt_eval_count is the whole prompt."""
    load_ns = COLD_LOAD_NS if loaded else WARM_LOAD_NS
    prompt_ns, eval_ns = (tokens - cached) * PROMPT_NS_PER_TOKEN, eval_count * EVAL_NS_PER_TOKEN
    return {"total_duration": load_ns + prompt_ns + eval_ns, "load_duration": load_ns, "prompt_eval_count": tokens,
            "prompt_eval_duration": prompt_ns, "eval_count": eval_count, "eval_duration": eval_ns}


class ContextModel:
    """The model specs and their runners with KV caches, one per model. FakeOllama subclasses
    this and shares `_lock` with it. `reloads` counts runner reloads caused by changed runner options (the first
    load of a model is counted in `loads` only); `truncations` counts requests that lost prompt text."""

    def __init__(self, models: dict[str, dict], server_num_ctx: int = 4096):
        self.models = {full_name(n): {**DEFAULT_SPEC, **s} for n, s in models.items()}
        self.server_num_ctx = server_num_ctx
        self.chat_log: list[ChatRecord] = []
        self.loads = self.reloads = self.truncations = 0
        self._runners: dict[str, Runner] = {}
        self._lock = threading.Lock()

    def spec(self, name: str) -> dict | None:
        return self.models.get(full_name(name)) if name else None

    def effective_num_ctx(self, spec: dict, options: dict) -> int:
        n = options.get("num_ctx") or spec.get("num_ctx") or self.server_num_ctx
        return max(4, min(n, spec["context_length"]) if spec.get("context_length") else n)

    def schedule(self, name: str, spec: dict, options: dict, keep_alive: Any) -> tuple[Runner, bool, bool]:
        """Find or (re)load the runner: (runner, loaded, reloaded). The caller holds the lock."""
        num_ctx = self.effective_num_ctx(spec, options)
        key = tuple(options.get(k) for k in RUNNER_OPTIONS) + (num_ctx,)
        runner = self._runners.get(name)
        if runner is not None and runner.expires < time.time():
            runner = None
        reloaded = runner is not None and runner.key != key
        loaded = runner is None or reloaded
        if loaded:
            runner = self._runners[name] = Runner(key, num_ctx)
            self.loads, self.reloads = self.loads + 1, self.reloads + int(reloaded)
        runner.expires = time.time() + keep_alive_seconds(keep_alive)
        return runner, loaded, reloaded

    @staticmethod
    def fit(messages: list[dict], tools: list[dict], num_ctx: int) -> tuple[str, int, int]:
        """Silent truncation: drop whole messages from the front (system messages and the last
        one stay), then the runner cuts tokens. Returns (prompt, tokens, dropped messages)."""
        kept, dropped = list(messages), 0
        text = render_prompt(kept, tools)
        while count_tokens(text) > num_ctx:
            idx = next((i for i, m in enumerate(kept[:-1]) if m.get("role") != "system"), None)
            if idx is None:
                break
            del kept[idx]
            dropped += 1
            text = render_prompt(kept, tools)
        if count_tokens(text) > num_ctx:  # context shift keeps about half the window
            text = text[: (num_ctx - max((num_ctx - 4) // 2, 1)) * CHARS_PER_TOKEN]
        return text, count_tokens(text), dropped

    def account(self, body: dict, spec: dict, answer: str) -> tuple[int, int, bool]:
        """Run the context model for one request: (prompt tokens, cached tokens, loaded)."""
        name, tools = full_name(body["model"]), body.get("tools") or []
        with self._lock:
            runner, loaded, reloaded = self.schedule(name, spec, body.get("options") or {}, body.get("keep_alive"))
            prompt, tokens, dropped = self.fit(body.get("messages") or [], tools, runner.num_ctx)
            truncated = len(prompt) < len(render_prompt(body.get("messages") or [], tools))
            cached = min(len(os.path.commonprefix([prompt, runner.cache])) // CHARS_PER_TOKEN, tokens - 1)
            self.truncations += int(truncated)
            self.chat_log.append(ChatRecord(body["model"], runner.num_ctx, tokens, cached, dropped,
                                            truncated, loaded, reloaded))
            runner.cache = prompt + answer
            if body.get("keep_alive") in (0, "0", "0s"):
                self._runners.pop(name, None)
        return tokens, cached, loaded

    def preload(self, body: dict, spec: dict) -> bool:
        """`messages: []` loads the model, or unloads it with keep_alive 0 (then True)."""
        unload = body.get("keep_alive") in (0, "0", "0s")
        with self._lock:
            if unload:
                self._runners.pop(full_name(body["model"]), None)
            else:
                self.schedule(full_name(body["model"]), spec, body.get("options") or {}, body.get("keep_alive"))
        return unload

    def live_runners(self) -> list[tuple[float, str, int]]:
        """(expires, name, num_ctx) of the loaded runners, soonest to expire first."""
        with self._lock:
            return sorted((r.expires, n, r.num_ctx) for n, r in self._runners.items() if r.expires >= time.time())


class QuietServer(ThreadingHTTPServer):
    """A threaded test server that stays quiet when a client hangs up mid-reply (joe drops the
    connection after a malformed chunk, by design); other handler errors are still printed."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
