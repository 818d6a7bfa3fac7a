"""OllamaModel against the fake Ollama server over real HTTP: info and num_ctx, streaming,
both tool-call placements, thinking, and every error turned into one joe_agent error."""
from __future__ import annotations

import subprocess
import sys

import pytest
from fake_ollama import DEFAULT_MODEL, FakeOllama, Reply, closed_port_url

from joe_agent.errors import ConfigError, ModelError, ModelNotFound, ModelUnreachable, StreamError, ToolsUnsupported
from joe_agent.messages import Chunk, Message, ToolCall
from joe_agent.models.ollama import OllamaModel

TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "Read a file", "parameters": {
    "type": "object", "required": ["path"], "properties": {"path": {"type": "string", "description": "path"}}}}}]
MODELS = {
    DEFAULT_MODEL: {},
    "qwen3:8b": {"capabilities": ["completion", "tools", "thinking"], "context_length": 40960, "family": "qwen3"},
    "gemma3:4b": {"capabilities": ["completion"], "context_length": 131072, "family": "gemma3"},
    "mystery:1b": {"context_length": None},
}
HI = [Message("user", "hi")]


@pytest.fixture
def fake():
    with FakeOllama(models=MODELS) as f:
        yield f


def model(fake, name=DEFAULT_MODEL, **kw) -> OllamaModel:
    return OllamaModel(name, host=fake.url, **kw)


def drain(it) -> tuple[list[Chunk], BaseException | None]:
    """Collect chunks until the stream ends or raises; the error is returned, not raised."""
    got: list[Chunk] = []
    try:
        for c in it:
            got.append(c)
    except Exception as e:  # the test inspects the exact type
        return got, e
    return got, None


def test_info_reads_capabilities_and_context_once(fake):
    m = model(fake, "qwen3:8b")
    info = m.info()
    assert (info.supports_tools, info.supports_thinking, info.context_length) == (True, True, 40960)
    assert info.capabilities == ["completion", "tools", "thinking"] and info.name == "qwen3:8b"
    assert m.num_ctx == 32768  # min(trained, max_num_ctx)
    m.info()
    assert [r["path"] for r in fake.requests] == ["/api/show"]
    assert model(fake, "gemma3:4b").info().supports_tools is False


@pytest.mark.parametrize("name,kw,expected", [
    ("qwen3:8b", {"max_num_ctx": 16384}, 16384),
    ("qwen3:8b", {"max_num_ctx": 65536}, 40960),
    ("qwen3:8b", {"num_ctx": 6000}, 6000),
    ("qwen3:8b", {"num_ctx": 100000}, 40960),  # the server would clamp it: so does our budget
    ("qwen3:8b", {"options": {"num_ctx": 5000}}, 5000),
    ("mystery:1b", {}, 8192),  # the server does not tell the trained context
])
def test_num_ctx_choice(fake, name, kw, expected):
    assert model(fake, name, **kw).num_ctx == expected


def test_num_ctx_and_options_identical_on_every_request(fake):
    m = model(fake, options={"temperature": 0.2}, keep_alive="10m", max_num_ctx=8192)
    for i in range(3):
        chunks, err = drain(m.stream([Message("user", f"turn {i}")], TOOLS))
        assert err is None and chunks[-1].done
    bodies = fake.chat_requests
    assert len(bodies) == 3
    assert all(b["options"] == {"temperature": 0.2, "num_ctx": 8192} and b["keep_alive"] == "10m" for b in bodies)
    assert all("think" not in b for b in bodies)
    assert fake.reloads == 0 and fake.loads == 1 and {r.num_ctx for r in fake.chat_log} == {8192}


def test_messages_translated_to_the_wire(fake):
    history = [Message("system", "You are joe."), Message("user", "read a.py"),
               Message("assistant", "", thinking="need the file",
                       tool_calls=[ToolCall("read_file", {"path": "a.py"}, id="c1")]),
               Message("tool", "print(1)", tool_name="read_file", tool_call_id="c1"),
               Message("assistant", "Listing.", tool_calls=[ToolCall("list_files", {}, source="text")])]
    drain(model(fake).stream(history, TOOLS))
    sent = fake.chat_requests[0]["messages"]
    assert sent[0] == {"role": "system", "content": "You are joe."}
    assert sent[2] == {"role": "assistant", "thinking": "need the file",
                       "tool_calls": [{"function": {"name": "read_file", "arguments": {"path": "a.py"}}}]}
    assert sent[3] == {"role": "tool", "content": "print(1)", "tool_name": "read_file"}
    # a call the model wrote as text goes back structured, so its result has a call to answer
    assert sent[4] == {"role": "assistant", "content": "Listing.",
                       "tool_calls": [{"function": {"name": "list_files", "arguments": {}}}]}
    assert fake.chat_requests[0]["tools"][0]["function"]["name"] == "read_file"


@pytest.mark.parametrize("placement", ["rendered", "native"])
def test_tool_calls_collected_from_either_chunk(fake, placement):
    fake.queue(Reply(text="Let me look.", tool_calls=[{"name": "read_file", "arguments": {"path": "README.md"}}],
                     placement=placement))
    chunks, err = drain(model(fake).stream(HI, TOOLS))
    assert err is None
    carriers = [c for c in chunks if c.tool_calls]
    assert len(carriers) == 1 and carriers[0].done is (placement == "native")
    calls = [(t.name, t.arguments, t.source) for t in carriers[0].tool_calls]
    assert calls == [("read_file", {"path": "README.md"}, "native")]
    assert "".join(c.content for c in chunks) == "Let me look."


def test_thinking_kept_apart_and_final_metrics(fake):
    fake.queue(Reply(thinking="The user says hi.", text="Hello there!"))
    chunks, err = drain(model(fake, "qwen3:8b").stream(HI, None))
    assert err is None
    assert "".join(c.thinking for c in chunks) == "The user says hi."
    assert "".join(c.content for c in chunks) == "Hello there!"
    assert all(not (c.thinking and c.content) for c in chunks)
    last = chunks[-1]
    assert last.done and last.done_reason == "stop" and all(not c.done for c in chunks[:-1])
    assert last.prompt_tokens == fake.chat_log[-1].prompt_tokens and last.completion_tokens > 0
    assert 0 < last.prompt_eval_duration_s < 10 and 0 < last.eval_duration_s < 10  # ns became seconds
    assert chunks[0].prompt_tokens is None


def test_think_setting_is_sent(fake):
    fake.queue(Reply(thinking="hidden", text="ok"))
    chunks, _ = drain(model(fake, "qwen3:8b", think=False).stream(HI, None))
    assert fake.chat_requests[-1]["think"] is False and not any(c.thinking for c in chunks)
    chunks, err = drain(model(fake, think=True).stream(HI, None))
    assert type(err) is ModelError and "does not support thinking" in str(err) and chunks == []


def test_closed_port_is_unreachable_everywhere():
    url = closed_port_url()
    m = OllamaModel(DEFAULT_MODEL, host=url)
    expected = f"Ollama is not reachable at {url}. Start it with `ollama serve` (or set --host / OLLAMA_HOST)."
    for call in (m.info, m.list_models, lambda: next(iter(OllamaModel("x", host=url, num_ctx=4096).stream(HI, None)))):
        with pytest.raises(ModelUnreachable) as e:
            call()
        assert str(e.value) == expected


def test_missing_model_names_the_pull_and_installed_models(fake):
    with pytest.raises(ModelNotFound) as e:
        model(fake, "llama9:70b").info()
    installed = ", ".join(["qwen2.5-coder:7b", "qwen3:8b", "gemma3:4b", "mystery:1b"])
    assert str(e.value) == f"model 'llama9:70b' is not pulled. Run `ollama pull llama9:70b`. Installed: {installed}"
    chunks, err = drain(model(fake, "llama9:70b", num_ctx=4096).stream(HI, None))  # 404 on /api/chat too
    assert isinstance(err, ModelNotFound) and chunks == []


def test_model_without_tools_raises_tools_unsupported(fake):
    chunks, err = drain(model(fake, "gemma3:4b").stream(HI, TOOLS))
    assert isinstance(err, ToolsUnsupported) and "gemma3:4b" in str(err) and chunks == []
    fake.queue(Reply(text="fine without tools"))
    chunks, err = drain(model(fake, "gemma3:4b").stream(HI, None))
    assert err is None and "".join(c.content for c in chunks) == "fine without tools"


def test_error_line_mid_stream_keeps_the_partial_reply(fake):
    fake.queue(Reply(text="I will now edit", error_mid_stream="model runner has unexpectedly stopped"))
    chunks, err = drain(model(fake).stream(HI, TOOLS))
    assert "".join(c.content for c in chunks) == "I will now edit" and not any(c.done for c in chunks)
    assert isinstance(err, StreamError) and "model runner has unexpectedly stopped" in str(err)
    assert str(err).endswith("the partial reply was kept") and "\n" not in str(err)


def test_connection_cut_mid_stream_keeps_the_partial_reply(fake):
    fake.queue(Reply(text="partial words", drop_mid_stream=True))
    chunks, err = drain(model(fake).stream(HI, TOOLS))
    assert "".join(c.content for c in chunks) == "partial words" and len(chunks) == 3
    assert isinstance(err, StreamError) and str(err).endswith("the partial reply was kept")
    assert fake.url in str(err)


def test_malformed_chunk_is_a_stream_error(fake):
    fake.queue(Reply(text="abc", malformed_chunk=True))
    chunks, err = drain(model(fake).stream(HI, None))
    assert "".join(c.content for c in chunks) == "abc"
    assert isinstance(err, StreamError) and "malformed" in str(err)


def test_http_5xx_names_status_and_message(fake):
    fake.queue(Reply(http_status=500, http_error="out of memory loading model"))
    chunks, err = drain(model(fake).stream(HI, None))
    assert type(err) is ModelError and chunks == []
    assert "HTTP 500" in str(err) and "out of memory loading model" in str(err)


def test_not_an_ollama_server(fake):
    chunks, err = drain(OllamaModel(DEFAULT_MODEL, host=fake.url + "/not-ollama", num_ctx=4096).stream(HI, None))
    assert type(err) is ModelError and "404 page not found" in str(err) and "/not-ollama" in str(err)


def test_stopping_early_closes_the_stream_and_the_server_keeps_serving(fake):
    fake.queue(Reply(text="a long answer that the user interrupts", delay_s=0.05), Reply(text="next"))
    m = model(fake)
    it = m.stream(HI, None)
    assert next(it).content
    it.close()  # what a KeyboardInterrupt in the consumer does to the generator
    chunks, err = drain(m.stream(HI, None))
    assert err is None and "".join(c.content for c in chunks) == "next"


def test_list_models(fake):
    assert model(fake).list_models() == ["qwen2.5-coder:7b", "qwen3:8b", "gemma3:4b", "mystery:1b"]


def test_host_resolution(fake, monkeypatch):
    assert OllamaModel("x").host == "http://127.0.0.1:11434"  # nothing set: the client's default
    port = fake.url.rsplit(":", 1)[1]
    monkeypatch.setenv("OLLAMA_HOST", f":{port}")
    m = OllamaModel(DEFAULT_MODEL)
    assert m.host == fake.url and m.list_models()[0] == DEFAULT_MODEL
    assert OllamaModel("x", host="example.com:1234").host == "http://example.com:1234"  # argument beats env
    with pytest.raises(ConfigError):
        OllamaModel("x", host="http://127.0.0.1:notaport").host


def test_importing_the_backend_does_not_import_ollama():
    code = "import sys, joe_agent.models.ollama; print('ollama' in sys.modules, 'httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_a_request_the_client_cannot_encode_is_one_line_before_any_http(fake):
    bad_tools = [{"type": "function", "function": {"name": ["not", "a", "string"]}}]
    chunks, err = drain(model(fake).stream(HI, bad_tools))
    assert type(err) is ModelError and "could not be encoded" in str(err) and "\n" not in str(err)
    assert fake.chat_requests == []
    with pytest.raises(ConfigError):
        OllamaModel("")
