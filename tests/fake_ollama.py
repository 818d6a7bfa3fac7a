"""A faithful fake Ollama server for tests: real HTTP on 127.0.0.1, stdlib only.

Speaks the wire format of /work/shared/ollama-api.md (§9): NDJSON chat streams in chunked
transfer encoding (so a cut connection is an error to the client, not an end), both tool-call
placements, thinking, errors before and during a stream, /api/show, /api/tags, /api/ps,
/api/embed, and Ollama's context handling (num_ctx precedence, silent front-message truncation,
KV-cache prefix reuse, reloads when runner options change: the context model lives in the
sibling tests/fake_ollama_context.py). It imports nothing from joe_agent:
`python tests/fake_ollama.py --script replies.json [--port 0] [--models models.json]
[--log requests.jsonl]` prints its URL on the first stdout line and serves until killed.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import random
import socket
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from fake_ollama_context import (  # noqa: F401 (re-exported: tests import these from fake_ollama)
    CHARS_PER_TOKEN, DEFAULT_SPEC, RUNNER_OPTIONS, ChatRecord, ContextModel, QuietServer, count_tokens, full_name,
    keep_alive_seconds, render_body, render_prompt, timings)

DEFAULT_MODEL = "qwen2.5-coder:7b"
NO_REPLY_TEXT = "(fake: no scripted reply)"
INT_OPTIONS = {"num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "draft_num_predict",
               "num_keep", "seed", "num_predict", "top_k", "repeat_last_n"}
MODIFIED_AT = "2026-05-10T08:06:48.639712648-07:00"


@dataclass
class Reply:
    """One scripted model reply (JSON-serialisable: to_dict / from_dict)."""

    text: str = ""  # streamed in ~3 content chunks
    thinking: str = ""  # streamed first, only when thinking is on for the request
    tool_calls: list[dict] = field(default_factory=list)  # [{"name": ..., "arguments": {...}}]
    placement: str = "rendered"  # "rendered": own done:false chunk | "native": on the final chunk
    error_mid_stream: str = ""  # after the text: an {"error": ...} line and no final chunk
    drop_mid_stream: bool = False  # after the text: the socket is cut (no final chunk)
    http_status: int = 0  # if set: this status + {"error": http_error} before streaming
    http_error: str = ""
    malformed_chunk: bool = False  # a line that is not JSON after the text
    delay_s: float = 0.0  # sleep between chunks
    done_reason: str = "stop"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Reply":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:  # a typo in a script must fail loudly, not silently do nothing
            raise ValueError(f"unknown Reply field(s): {', '.join(sorted(unknown))}")
        return cls(**d)


class _HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def now_rfc3339(delta_s: float = 0.0) -> str:
    t = datetime.now(timezone.utc) + timedelta(seconds=delta_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def split_text(text: str, pieces: int = 3) -> list[str]:
    size = max(1, math.ceil(len(text) / pieces))
    return [text[i:i + size] for i in range(0, len(text), size)]


def closed_port_url() -> str:
    """A URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class FakeOllama(ContextModel):
    """The server. Replies come from `queue(...)`, else `responder(body)`, else a fixed text.
    The model specs, the runner and context counters (`loads`, `reloads`, `truncations`,
    `chat_log`) and the lock come from ContextModel."""

    def __init__(self, models: dict[str, dict] | None = None, replies: list[Reply] | None = None,
                 responder: Callable[[dict], Reply] | None = None, server_num_ctx: int = 4096,
                 port: int = 0, log_path: str | None = None):
        super().__init__(models if models is not None else {DEFAULT_MODEL: {}}, server_num_ctx)
        self.responder = responder
        self.requests: list[dict] = []
        self.url = ""
        self._replies: list[Reply] = list(replies or [])
        self._conns: set[socket.socket] = set()
        self._rng = random.Random(7)
        self._port, self._log_path = port, log_path
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "FakeOllama":
        self._server = QuietServer(("127.0.0.1", self._port), type("H", (_Handler,), {"fake": self}))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True, name="fake-ollama").start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with self._lock:  # kept-alive connections would otherwise still be served
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> "FakeOllama":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def chat_requests(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["method"] == "POST" and r["path"] == "/api/chat"]

    def record(self, method: str, path: str, body: Any) -> None:
        entry = {"method": method, "path": path, "body": body}
        with self._lock:
            self.requests.append(entry)
            if self._log_path:
                with open(self._log_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry) + "\n")

    def next_reply(self, body: dict) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.pop(0)
        return self.responder(body) if self.responder else Reply(text=NO_REPLY_TEXT)

    # ---- /api/chat ---------------------------------------------------------------------
    def validate_chat(self, body: dict) -> dict:
        model = body.get("model")
        spec = self.spec(model or "")
        if not model:
            raise _HttpError(400, "model is required")
        if spec is None:
            raise _HttpError(404, f"model '{model}' not found")
        if "completion" not in spec["capabilities"]:
            raise _HttpError(400, f'"{model}" does not support chat')
        if body.get("tools") and "tools" not in spec["capabilities"]:
            fq = full_name(model) if "/" in model else "library/" + full_name(model)
            raise _HttpError(400, f"registry.ollama.ai/{fq} does not support tools")
        if body.get("think") and "thinking" not in spec["capabilities"]:
            raise _HttpError(400, f'"{model}" does not support thinking')
        for key, value in (body.get("options") or {}).items():
            if key in INT_OPTIONS and (not isinstance(value, int) or isinstance(value, bool)):
                raise _HttpError(500, f'option "{key}" must be of type integer')
        return spec

    def load_form(self, body: dict, spec: dict) -> dict:
        """`messages: []` loads the model, or unloads it with keep_alive 0."""
        unload = self.preload(body, spec)
        return {"model": body["model"], "created_at": now_rfc3339(), "message": {"role": "assistant", "content": ""},
                "done": True, "done_reason": "unload" if unload else "load"}

    def plan(self, body: dict, spec: dict, reply: Reply) -> list[tuple[str, Any]]:
        """The reply as steps: ("chunk", dict) | ("raw", str) | ("error", str) | ("drop", None)."""
        think = body.get("think")
        thinking_on = bool(think) if think is not None else "thinking" in spec["capabilities"]
        offered = {(t.get("function") or {}).get("name") for t in body.get("tools") or []}
        calls = [self._call(c) for c in reply.tool_calls if c.get("name") in offered]
        # a call to a tool that was not offered is just text, as the real parser leaves it
        text = reply.text + "".join(json.dumps(c) for c in reply.tool_calls if c.get("name") not in offered)
        thinking = reply.thinking if thinking_on else ""
        broken = bool(reply.error_mid_stream or reply.drop_mid_stream)
        answer = "" if broken else render_body({"content": text, "tool_calls": calls})
        tokens, cached, loaded = self.account(body, spec, answer)
        msg = lambda **m: {"model": body["model"], "created_at": "",  # noqa: E731 (filled when sent)
                           "message": {"role": "assistant", "content": "", **m}, "done": False}
        steps: list[tuple[str, Any]] = [("chunk", msg(thinking=p)) for p in split_text(thinking)]
        steps += [("chunk", msg(content=p)) for p in split_text(text)]
        if reply.malformed_chunk:
            steps.append(("raw", '{"model": "' + body["model"] + '", "message": {"role": "assist'))
        if broken:
            return steps + [("error", reply.error_mid_stream) if reply.error_mid_stream else ("drop", None)]
        if calls and reply.placement == "rendered":
            steps.append(("chunk", msg(tool_calls=calls)))
        final = msg(tool_calls=calls) if calls and reply.placement == "native" else msg()
        eval_count = max(1, count_tokens(thinking + text + json.dumps(calls)))
        final.update(done=True, done_reason=reply.done_reason, **timings(tokens, cached, eval_count, loaded))
        return steps + [("chunk", final)]

    def _call(self, call: dict) -> dict:
        ident = "call_" + "".join(self._rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=8))
        return {"id": ident, "function": {"index": 0, "name": call["name"], "arguments": call.get("arguments", {})}}

    # ---- other endpoints -----------------------------------------------------------------
    @staticmethod
    def _details(spec: dict) -> dict:
        return {"parent_model": "", "format": "gguf", "family": spec["family"], "families": [spec["family"]],
                "parameter_size": "7.6B", "quantization_level": "Q4_K_M"}

    def show(self, body: dict) -> dict:
        name = body.get("model") or body.get("name")
        if not name:
            raise _HttpError(400, "model is required")
        spec = self.spec(name)
        if spec is None:
            raise _HttpError(404, f"model '{full_name(name)}' not found")
        arch = spec["family"]
        info: dict[str, Any] = {"general.architecture": arch, "general.parameter_count": 7_615_616_512}
        if spec.get("context_length"):
            info[f"{arch}.context_length"] = spec["context_length"]
        params = f"{'num_ctx':<30} {spec['num_ctx']}" if spec.get("num_ctx") else f"{'temperature':<30} 0.7"
        return {"license": "fake", "modelfile": f"FROM {full_name(name)}\n", "parameters": params,
                "template": "{{ .Prompt }}", "details": self._details(spec), "model_info": info,
                "capabilities": list(spec["capabilities"]), "modified_at": MODIFIED_AT}

    def tags(self) -> dict:
        return {"models": [{"name": n, "model": n, "modified_at": MODIFIED_AT, "size": 4_683_087_332,
                            "digest": hashlib.sha256(n.encode()).hexdigest(),
                            "details": {**self._details(s), "context_length": s.get("context_length")},
                            "capabilities": list(s["capabilities"])} for n, s in self.models.items()]}

    def ps(self) -> dict:
        live = self.live_runners()
        return {"models": [{"name": n, "model": n, "size": 6_654_289_920, "size_vram": 6_654_289_920,
                            "digest": hashlib.sha256(n.encode()).hexdigest(), "details": self._details(self.models[n]),
                            "expires_at": now_rfc3339(min(exp - time.time(), 1e9)), "context_length": ctx}
                           for exp, n, ctx in reversed(live)]}

    def embed(self, body: dict) -> dict:
        if self.spec(body.get("model") or "") is None:
            raise _HttpError(404, f"model '{body.get('model')}' not found")
        inputs = body.get("input") or []
        inputs = [inputs] if isinstance(inputs, str) else inputs
        raws = [[b / 127.5 - 1 for b in hashlib.sha256(t.encode()).digest()[:8]] for t in inputs]
        vecs = [[x / (math.sqrt(sum(y * y for y in raw)) or 1.0) for x in raw] for raw in raws]
        return {"model": body["model"], "embeddings": vecs, "total_duration": 14_143_917,
                "load_duration": 1_019_500, "prompt_eval_count": sum(count_tokens(t) for t in inputs)}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked streams, keep-alive like the real server
    timeout = 60
    fake: FakeOllama

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._conns.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._conns.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._route()

    do_HEAD = do_POST = do_GET

    def _route(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body, bad = None, ""
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            bad = f"invalid character '{raw.decode(errors='replace').strip()[0]}' looking for beginning of value"
        path, method = self.path.split("?", 1)[0], self.command
        self.fake.record(method, path, body)
        gets = {"/api/tags": self.fake.tags, "/api/ps": self.fake.ps, "/api/version": lambda: {"version": "0.32.15"}}
        posts = {"/api/chat": self._chat, "/api/show": self.fake.show, "/api/embed": self.fake.embed}
        try:
            if path == "/" and method in ("GET", "HEAD"):
                self._send(200, b"Ollama is running", "text/plain; charset=utf-8")
            elif path in gets and (method == "GET" or (method == "HEAD" and path != "/api/ps")):
                self._json(200, gets[path]())
            elif path in posts and method == "POST":
                if bad or not isinstance(body, dict):
                    raise _HttpError(400, bad or "missing request body")
                result = posts[path](body)
                if result is not None:
                    self._json(200, result)
            else:
                self._send(404, b"404 page not found", "text/plain")
        except _HttpError as err:
            self._json(err.status, {"error": str(err)})
        except (BrokenPipeError, ConnectionResetError):  # the client went away (e.g. Ctrl-C)
            self.close_connection = True

    def _send(self, status: int, data: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, separators=(",", ":")).encode(), "application/json; charset=utf-8")

    def _chat(self, body: dict) -> dict | None:
        spec = self.fake.validate_chat(body)
        if not body.get("messages"):
            return self.fake.load_form(body, spec)
        reply = self.fake.next_reply(body)
        if reply.http_status:
            raise _HttpError(reply.http_status, reply.http_error or "fake error")
        steps = self.fake.plan(body, spec, reply)
        if body.get("stream") is False:
            return self._aggregate(steps, bool(body.get("tools")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, (kind, item) in enumerate(steps):
            if i and reply.delay_s:
                time.sleep(reply.delay_s)
            if kind == "drop":
                return self._drop()
            if kind == "chunk":
                item["created_at"] = now_rfc3339()
            line = item if kind == "raw" else json.dumps({"error": item} if kind == "error" else item)
            self._write_chunk((line + "\n").encode())
        self._write_chunk(b"")  # the terminating zero-length chunk
        return None

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _aggregate(self, steps: list[tuple[str, Any]], had_tools: bool) -> dict | None:
        """stream:false drains the same chunks into one object; any error replaces it."""
        kinds = dict(steps)
        if "drop" in kinds:
            return self._drop()
        if "error" in kinds:
            raise _HttpError(500, kinds["error"])
        if "raw" in kinds:
            return self._send(200, kinds["raw"].encode(), "application/json; charset=utf-8")
        msgs = [item["message"] for _, item in steps]
        msg = {"role": "assistant", "content": "".join(m.get("content", "") for m in msgs)}
        thinking = "".join(m.get("thinking", "") for m in msgs)
        calls = [tc for m in msgs for tc in m.get("tool_calls", [])]
        msg.update({"thinking": thinking} if thinking else {})
        msg.update({"tool_calls": calls} if calls and had_tools else {})
        return dict(steps[-1][1], created_at=now_rfc3339(), message=msg)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Serve a fake Ollama for end-to-end tests.")
    ap.add_argument("--script", help="JSON list of Reply dicts, served in order")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--models", help="JSON object: name -> {capabilities, context_length, family, num_ctx?}")
    ap.add_argument("--num-ctx", type=int, default=4096, help="the server's default num_ctx")
    ap.add_argument("--log", help="append every request as one JSON line to this file")
    args = ap.parse_args(argv)
    replies, models = [], None
    if args.script:
        with open(args.script, encoding="utf-8") as fh:
            replies = [Reply.from_dict(d) for d in json.load(fh)]
    if args.models:
        with open(args.models, encoding="utf-8") as fh:
            models = json.load(fh)
    fake = FakeOllama(models, replies, server_num_ctx=args.num_ctx, port=args.port, log_path=args.log).start()
    print(fake.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
