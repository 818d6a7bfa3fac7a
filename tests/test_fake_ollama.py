"""The fake Ollama server, checked through the official `ollama` client over real HTTP, and
against the raw wire format of /work/shared/ollama-api.md §9."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import ollama
import pytest
from fake_ollama import DEFAULT_MODEL, NO_REPLY_TEXT, FakeOllama, Reply, closed_port_url, count_tokens

TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "Read a file", "parameters": {
    "type": "object", "required": ["path"], "properties": {"path": {"type": "string", "description": "path"}}}}}]
MODELS = {
    DEFAULT_MODEL: {},
    "qwen3:8b": {"capabilities": ["completion", "tools", "thinking"], "context_length": 40960, "family": "qwen3"},
    "gemma3:4b": {"capabilities": ["completion"], "context_length": 131072, "family": "gemma3"},
    "tuned:latest": {"context_length": 16384, "num_ctx": 12000},
}
USER = [{"role": "user", "content": "hi"}]
METRICS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
           "eval_count", "eval_duration")


@pytest.fixture
def fake():
    with FakeOllama(models=MODELS) as f:
        yield f


@pytest.fixture
def client(fake):
    c = ollama.Client(host=fake.url)
    yield c
    c.close()


def raw_lines(fake, body):
    """POST /api/chat with httpx and return (response, raw NDJSON lines)."""
    r = httpx.post(fake.url + "/api/chat", json=body, timeout=10)
    return r, r.text.split("\n")


def test_text_streams_in_pieces_with_metrics_only_on_the_final_chunk(fake, client):
    fake.queue(Reply(text="The sky is blue because of Rayleigh scattering."))
    parts = list(client.chat(DEFAULT_MODEL, USER, stream=True))
    assert len(parts) == 4
    assert "".join(p.message.content for p in parts) == "The sky is blue because of Rayleigh scattering."
    assert all(not p.done and p.done_reason is None and p.eval_count is None for p in parts[:-1])
    last = parts[-1]
    assert last.done and last.done_reason == "stop" and last.message.content == ""
    assert all(isinstance(getattr(last, k), int) and getattr(last, k) > 0 for k in METRICS)
    assert last.prompt_eval_count == count_tokens("<|user|>\nhi<|end|>\n<|assistant|>\n")


def test_raw_stream_is_ndjson_without_blank_lines(fake):
    fake.queue(Reply(text="abc def ghi"))
    r, lines = raw_lines(fake, {"model": DEFAULT_MODEL, "messages": USER})  # stream absent = streaming
    assert r.headers["content-type"] == "application/x-ndjson"
    assert lines[-1] == "" and all(lines[:-1])  # every line terminated, none empty
    chunks = [json.loads(x) for x in lines[:-1]]
    for c in chunks:
        assert list(c)[:4] == ["model", "created_at", "message", "done"] and c["model"] == DEFAULT_MODEL
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", c["created_at"])
        assert c["message"]["role"] == "assistant" and isinstance(c["message"]["content"], str)
        assert "thinking" not in c["message"]
    assert all(set(c) == {"model", "created_at", "message", "done"} for c in chunks[:-1])
    assert set(METRICS) | {"done_reason"} <= set(chunks[-1])


def test_non_streaming_aggregates_and_keeps_tool_calls_only_with_tools(fake, client):
    fake.queue(Reply(text="Let me look.", tool_calls=[{"name": "read_file", "arguments": {"path": "a.py"}}]))
    r = client.chat(DEFAULT_MODEL, USER, tools=TOOLS, stream=False)
    assert r.done and r.message.content == "Let me look." and r.eval_count > 0
    calls = [(t.function.name, dict(t.function.arguments)) for t in r.message.tool_calls]
    assert calls == [("read_file", {"path": "a.py"})]
    fake.queue(Reply(text="plain", tool_calls=[{"name": "read_file", "arguments": {}}]))
    r = client.chat(DEFAULT_MODEL, USER, stream=False)
    assert r.message.tool_calls is None and "read_file" in r.message.content  # not offered: stays text


@pytest.mark.parametrize("placement", ["rendered", "native"])
def test_tool_call_placements(fake, placement):
    call = {"name": "read_file", "arguments": {"path": "README.md"}}
    fake.queue(Reply(text="Checking.", tool_calls=[call], placement=placement))
    _, lines = raw_lines(fake, {"model": DEFAULT_MODEL, "messages": USER, "tools": TOOLS, "stream": True})
    chunks = [json.loads(x) for x in lines if x]
    carriers = [c for c in chunks if c["message"].get("tool_calls")]
    assert len(carriers) == 1
    carrier = carriers[0]
    assert carrier["done"] is (placement == "native") and carrier["message"]["content"] == ""
    tc = carrier["message"]["tool_calls"][0]
    assert re.fullmatch(r"call_[a-z0-9]{8}", tc["id"]) and tc["function"] == {"index": 0, **call}
    assert chunks[-1]["done"] and "".join(c["message"]["content"] for c in chunks) == "Checking."


def test_client_parses_both_placements(fake, client):
    fake.queue(Reply(tool_calls=[{"name": "read_file", "arguments": {"path": "x"}}], placement="native"))
    parts = list(client.chat(DEFAULT_MODEL, USER, tools=TOOLS, stream=True))
    assert parts[-1].done and parts[-1].message.tool_calls[0].function.name == "read_file"


def test_thinking_default_on_for_thinking_models_and_kept_apart(fake, client):
    fake.queue(Reply(thinking="The user greets me.", text="Hello!"))
    parts = list(client.chat("qwen3:8b", USER, stream=True))
    thinking = [p for p in parts if p.message.thinking]
    assert "".join(p.message.thinking for p in thinking) == "The user greets me."
    assert all(p.message.content == "" for p in thinking) and parts.index(thinking[-1]) < 3
    assert "".join(p.message.content for p in parts) == "Hello!"
    fake.queue(Reply(thinking="hidden", text="Hi"))
    r = client.chat("qwen3:8b", USER, think=False)
    assert r.message.thinking is None and r.message.content == "Hi"
    fake.queue(Reply(thinking="aggregated", text="x"))
    assert client.chat("qwen3:8b", USER, think=True).message.thinking == "aggregated"


def test_think_on_a_non_thinking_model_is_400(client):
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(DEFAULT_MODEL, USER, think=True)
    assert e.value.status_code == 400 and e.value.error == f'"{DEFAULT_MODEL}" does not support thinking'


def test_validation_errors_before_streaming(fake, client):
    with pytest.raises(ollama.ResponseError) as e:
        next(iter(client.chat("missing:1b", USER, stream=True)))
    assert (e.value.status_code, e.value.error) == (404, "model 'missing:1b' not found")
    with pytest.raises(ollama.ResponseError) as e:
        client.chat("gemma3:4b", USER, tools=TOOLS)
    assert str(e.value) == "registry.ollama.ai/library/gemma3:4b does not support tools (status code: 400)"
    assert client.chat("gemma3:4b", USER, tools=[]).message.content == NO_REPLY_TEXT  # [] is harmless
    r = httpx.post(fake.url + "/api/chat", content=b"xyz")
    assert r.status_code == 400 and r.json()["error"].startswith("invalid character 'x'")
    bad_option = {"model": DEFAULT_MODEL, "messages": USER, "options": {"num_ctx": "big"}}
    r = httpx.post(fake.url + "/api/chat", json=bad_option)
    assert r.status_code == 500 and r.json() == {"error": 'option "num_ctx" must be of type integer'}


def test_scripted_http_error_and_mid_stream_errors(fake, client):
    fake.queue(Reply(http_status=503, http_error="server busy"))
    with pytest.raises(ollama.ResponseError) as e:
        next(iter(client.chat(DEFAULT_MODEL, USER, stream=True)))
    assert (e.value.status_code, e.value.error) == (503, "server busy")
    fake.queue(Reply(text="partial answer here", error_mid_stream="an error was encountered while running the model"))
    got = []
    with pytest.raises(ollama.ResponseError) as e:
        for p in client.chat(DEFAULT_MODEL, USER, stream=True):
            got.append(p.message.content)
    assert "".join(got) == "partial answer here" and e.value.status_code == -1
    fake.queue(Reply(text="cut short", error_mid_stream="boom"))
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(DEFAULT_MODEL, USER)  # non-stream: the error replaces the whole reply
    assert (e.value.status_code, e.value.error) == (500, "boom")


def test_drop_and_malformed_chunk_mid_stream(fake, client):
    fake.queue(Reply(text="abcdef", drop_mid_stream=True))
    got = []
    with pytest.raises(httpx.RemoteProtocolError):
        for p in client.chat(DEFAULT_MODEL, USER, stream=True):
            got.append(p.message.content)
    assert "".join(got) == "abcdef"
    fake.queue(Reply(text="abc", malformed_chunk=True))
    with pytest.raises(json.JSONDecodeError):
        list(client.chat(DEFAULT_MODEL, USER, stream=True))
    assert client.chat(DEFAULT_MODEL, USER).message.content == NO_REPLY_TEXT  # still serving


def test_closed_port_is_connection_refused():
    c = ollama.Client(host=closed_port_url())
    with pytest.raises(ConnectionError):
        c.list()
    with pytest.raises(httpx.ConnectError):
        next(iter(c.chat(DEFAULT_MODEL, USER, stream=True)))


def test_show_tags_ps_and_unknown_route(fake, client):
    show = client.show("qwen3:8b")
    assert show.modelinfo["general.architecture"] == "qwen3" and show.modelinfo["qwen3.context_length"] == 40960
    assert show.capabilities == ["completion", "tools", "thinking"]
    assert show.template and show.details.family == "qwen3"
    with pytest.raises(ollama.ResponseError) as e:
        client.show("nope")
    assert (e.value.status_code, e.value.error) == (404, "model 'nope:latest' not found")
    assert [m.model for m in client.list().models] == list(MODELS)
    assert client.ps().models == []
    client.chat("qwen3:8b", USER, options={"num_ctx": 8192}, keep_alive="10m")
    (loaded,) = client.ps().models
    assert loaded.model == "qwen3:8b" and loaded.context_length == 8192 and loaded.expires_at is not None
    with pytest.raises(ollama.ResponseError) as e:
        client._request_raw("GET", "/api/nothing")
    assert (e.value.status_code, e.value.error) == (404, "404 page not found")
    assert httpx.get(fake.url + "/").text == "Ollama is running"
    assert httpx.get(fake.url + "/api/version").json()["version"]
    assert httpx.head(fake.url + "/api/tags").status_code == 200
    emb = client.embed(DEFAULT_MODEL, ["a", "b"]).embeddings
    assert len(emb) == 2 and abs(sum(x * x for x in emb[0]) - 1) < 1e-9


def test_load_and_unload_forms(fake, client):
    r = client.chat(DEFAULT_MODEL)
    assert r.done_reason == "load" and r.message.content == "" and len(client.ps().models) == 1
    r = client.chat(DEFAULT_MODEL, keep_alive=0)
    assert r.done_reason == "unload" and client.ps().models == []


def test_num_ctx_precedence_and_clamping(fake, client):
    def ctx(model, **options):
        client.chat(model, USER, options=options or None)
        return fake.chat_log[-1].num_ctx

    assert ctx(DEFAULT_MODEL) == 4096  # the server default
    assert ctx("tuned") == 12000  # the model's own default
    assert ctx("tuned", num_ctx=2048) == 2048  # the request wins
    assert ctx("tuned", num_ctx=999999) == 16384  # clamped to the trained context


def test_changing_num_ctx_reloads_sampling_options_do_not(fake, client):
    client.chat(DEFAULT_MODEL, USER, options={"num_ctx": 8192})
    warm = client.chat(DEFAULT_MODEL, USER, options={"num_ctx": 8192, "temperature": 0.1, "seed": 3})
    assert fake.reloads == 0 and warm.load_duration < 10_000_000
    cold = client.chat(DEFAULT_MODEL, USER, options={"num_ctx": 16384})
    assert fake.reloads == 1 and cold.load_duration > 1_000_000_000 and fake.chat_log[-1].reloaded


def test_front_messages_are_dropped_silently_keeping_system_and_last(fake, client):
    history = [{"role": "system", "content": "S" * 200}]
    history += [{"role": "user" if i % 2 == 0 else "assistant", "content": f"{i}" * 400} for i in range(10)]
    r = client.chat(DEFAULT_MODEL, history, options={"num_ctx": 512})
    rec = fake.chat_log[-1]
    assert r.done and rec.dropped_messages > 0 and fake.truncations == 1
    assert r.prompt_eval_count == rec.prompt_tokens <= 512
    prompt, tokens, dropped = FakeOllama.fit(history, [], 512)
    assert prompt.startswith("<|system|>\n" + "S" * 200) and ("9" * 400) in prompt and dropped == rec.dropped_messages
    client.chat(DEFAULT_MODEL, history[-2:], options={"num_ctx": 512})
    assert fake.truncations == 1  # a prompt that fits is untouched


def test_kv_cache_reuse_needs_an_identical_prefix(fake, client):
    system = {"role": "system", "content": "You are joe. " * 50}
    fake.queue(Reply(text="first answer"))
    first = client.chat(DEFAULT_MODEL, [system, *USER], tools=TOOLS)
    grown = [system, *USER, {"role": "assistant", "content": "first answer"}, {"role": "user", "content": "more"}]
    second = client.chat(DEFAULT_MODEL, grown, tools=TOOLS)
    assert second.prompt_eval_count > first.prompt_eval_count
    assert fake.chat_log[-1].cached_tokens >= first.prompt_eval_count
    assert second.prompt_eval_duration < first.prompt_eval_duration  # only the new suffix is evaluated
    changed = [{"role": "system", "content": "You are joe! " * 50}, *grown[1:]]
    third = client.chat(DEFAULT_MODEL, changed, tools=TOOLS)
    # only the tool list ahead of the system prompt is still shared
    assert fake.chat_log[-1].cached_tokens < third.prompt_eval_count // 3
    assert third.prompt_eval_duration > second.prompt_eval_duration


def test_queue_responder_and_recorded_requests():
    seen = []

    def responder(body):
        seen.append(body["messages"][-1]["content"])
        return Reply(text="echo: " + body["messages"][-1]["content"])

    with FakeOllama(replies=[Reply(text="scripted")], responder=responder) as fake:
        c = ollama.Client(host=fake.url)
        assert c.chat(DEFAULT_MODEL, USER).message.content == "scripted"
        assert c.chat(DEFAULT_MODEL, [{"role": "user", "content": "yo"}]).message.content == "echo: yo"
        c.chat(DEFAULT_MODEL, USER, options={"num_ctx": 2048}, keep_alive="1m")
    assert seen == ["yo", "hi"]
    body = fake.chat_requests[-1]
    assert body["options"] == {"num_ctx": 2048} and body["keep_alive"] == "1m" and body["tools"] == []
    assert [(r["method"], r["path"]) for r in fake.requests] == [("POST", "/api/chat")] * 3


def test_delay_spaces_chunks_and_stop_refuses_kept_alive_clients(fake, client):
    fake.queue(Reply(text="slow text here", delay_s=0.05))
    t0 = time.monotonic()
    assert len(list(client.chat(DEFAULT_MODEL, USER, stream=True))) == 4
    assert time.monotonic() - t0 >= 0.15
    fake.stop()
    with pytest.raises((ConnectionError, httpx.TransportError)):
        client.list()


def test_reply_round_trip_and_typos_rejected():
    r = Reply(text="x", tool_calls=[{"name": "a", "arguments": {"b": 1}}], placement="native", delay_s=0.5)
    assert Reply.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    with pytest.raises(ValueError, match="txt"):
        Reply.from_dict({"txt": "oops"})


def test_script_mode_subprocess(tmp_path: Path):
    script = tmp_path / "replies.json"
    script.write_text(json.dumps([Reply(text="from the script").to_dict()]))
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"tiny:1b": {"capabilities": ["completion"], "context_length": 2048}}))
    log = tmp_path / "requests.jsonl"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fake_ollama.py")), "--script", str(script),
                             "--models", str(models), "--log", str(log)], stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        c = ollama.Client(host=url)
        assert c.chat("tiny:1b", USER).message.content == "from the script"
        assert c.chat("tiny:1b", USER).message.content == NO_REPLY_TEXT
        assert [m.model for m in c.list().models] == ["tiny:1b"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    logged = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["path"] for x in logged] == ["/api/chat", "/api/chat", "/api/tags"]
    assert logged[0]["body"]["messages"] == USER
