"""A fake OpenAI-compatible server for tests: real HTTP on 127.0.0.1 (port 0), stdlib only.

Speaks what llama.cpp's llama-server, LM Studio, vLLM and Ollama's /v1 have in common:
GET /v1/models, POST /v1/chat/completions (SSE stream: `data: {json}` events, `data: [DONE]`),
and llama.cpp's GET /props. Streams go out in chunked transfer encoding, so a cut connection
is an error to the client, not a clean end. Replies are scripted (FakeReply); every request
body is recorded. Imports nothing from joe_agent.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fake_ollama_context import QuietServer

DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"
NO_REPLY_TEXT = "(fake: no scripted reply)"


@dataclass
class FakeReply:
    """One scripted reply. Content, reasoning and call arguments go out in `fragment`-sized
    deltas, as real servers send them token by token."""

    text: str = ""
    reasoning: str = ""
    reasoning_key: str = "reasoning_content"  # llama.cpp / vLLM; Ollama's /v1 says "reasoning"
    tool_calls: list[dict] = field(default_factory=list)  # [{"name", "arguments": dict | raw str, "id"?}]
    fragment: int = 5
    omit_index: bool = False  # some servers leave `index` out of tool-call deltas
    finish_reason: str = ""  # default: "tool_calls" with calls, else "stop"
    usage: dict | None = None  # default: a chars/4 estimate, sent when include_usage was asked
    timings: dict | None = None  # llama.cpp extra on the last event
    http_status: int = 0  # answer this status with `http_body` instead of a stream
    http_body: Any = None
    error_mid_stream: str = ""  # after the text: a `data: {"error": ...}` event, then the end
    cut_mid_stream: bool = False  # after the text: the connection is closed mid-body
    end_without_done: bool = False  # after the text: a clean end with no finish_reason or [DONE]
    malformed_event: bool = False  # after the text: a data line that is not JSON
    raw_sse: list[str] | None = None  # replay these `data: ...` lines verbatim (recorded replies)
    delay_s: float = 0.0


@dataclass
class FakeOpenAI:
    """The server's state: scripted replies, served models, recorded requests."""

    replies: list[FakeReply] = field(default_factory=list)
    models: list[dict] = field(default_factory=lambda: [{"id": DEFAULT_MODEL}])
    strict_models: bool = True  # unknown model in a chat request -> 404 (LM Studio, vLLM, Ollama)
    props: dict | None = None  # llama.cpp's /props; None -> 404 like other servers
    models_route: bool = True  # False -> /v1/models answers 404
    tools_error: tuple[int, dict] | None = None  # a request with tools gets this (status, body)
    requests: list[dict] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def start(self) -> "FakeOpenAI":
        fake = self

        class Handler(_Handler):
            state = fake

        self._server = QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    state: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.state.gets.append(self.path)
        if self.path == "/v1/models" and self.state.models_route:
            data = [{"object": "model", "owned_by": "fake", **m} for m in self.state.models]
            return self._json(200, {"object": "list", "data": data})
        if self.path == "/props" and self.state.props is not None:
            return self._json(200, self.state.props)
        self._json(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            return self._json(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._json(400, {"error": {"code": 400, "message": "invalid JSON body", "type": "invalid_request_error"}})
        self.state.requests.append(body)
        ids = {m["id"] for m in self.state.models}
        if self.state.strict_models and body.get("model") not in ids:
            return self._json(404, {"error": {"message": f"model '{body.get('model')}' not found",
                                              "type": "invalid_request_error", "code": "model_not_found"}})
        if body.get("tools") and self.state.tools_error:
            return self._json(*self.state.tools_error)
        reply = self.state.replies.pop(0) if self.state.replies else FakeReply(text=NO_REPLY_TEXT)
        if reply.http_status:
            return self._json(reply.http_status, reply.http_body)
        self._stream(body, reply)

    # ---- writing ------------------------------------------------------------------------
    def _json(self, status: int, body: Any) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, obj: Any, delay: float = 0.0) -> None:
        if delay:
            time.sleep(delay)
        self._chunk("data: " + (obj if isinstance(obj, str) else json.dumps(obj)) + "\n\n")

    def _stream(self, body: dict, reply: FakeReply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if reply.raw_sse is not None:
            for line in reply.raw_sse:
                self._chunk(line + "\n\n")
            return self._chunk("")
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": body.get("model")}

        def delta(d: dict, finish: str | None = None, **extra: Any) -> dict:
            return {**base, "choices": [{"index": 0, "delta": d, "finish_reason": finish}], **extra}

        self._event(delta({"role": "assistant", "content": None}))
        for piece in _split(reply.reasoning, reply.fragment):
            self._event(delta({reply.reasoning_key: piece}), reply.delay_s)
        for piece in _split(reply.text, reply.fragment):
            self._event(delta({"content": piece}), reply.delay_s)
        if self._broken_end(reply):
            return
        for i, call in enumerate(reply.tool_calls):
            for d in _call_deltas(call, i, reply.fragment, reply.omit_index):
                self._event(delta({"tool_calls": [d]}), reply.delay_s)
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        self._event(delta({}, finish, **({"timings": reply.timings} if reply.timings else {})))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = reply.usage or _estimate_usage(body, reply)
            self._event({**base, "choices": [], "usage": usage})
        self._event("[DONE]")
        self._chunk("")

    def _broken_end(self, reply: FakeReply) -> bool:
        """The ways a stream goes wrong after its first events."""
        if reply.error_mid_stream:
            self._event({"error": {"code": 500, "message": reply.error_mid_stream, "type": "server_error"}})
        elif reply.malformed_event:
            self._chunk("data: {not json\n\n")
        elif reply.cut_mid_stream:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # no terminating zero-length chunk: an incomplete body
            return True
        elif not reply.end_without_done:
            return False
        self._chunk("")
        return True


def _split(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), max(1, size))]


def _call_deltas(call: dict, index: int, size: int, omit_index: bool) -> list[dict]:
    """The first delta names the call; the arguments follow as string fragments."""
    args = call.get("arguments", {})
    text = args if isinstance(args, str) else json.dumps(args)
    first = {"id": call.get("id", f"call_fake_{index}"), "type": "function", "function": {"name": call["name"], "arguments": ""}}
    rest = [{"function": {"arguments": piece}} for piece in _split(text, size)]
    out = [first, *rest]
    for d in out:
        if not omit_index:
            d["index"] = index
    return out


def _estimate_usage(body: dict, reply: FakeReply) -> dict:
    prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4 + 1
    completion = (len(reply.text) + len(reply.reasoning) + len(json.dumps(reply.tool_calls))) // 4 + 1
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
