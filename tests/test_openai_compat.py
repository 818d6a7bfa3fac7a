"""OpenAICompatModel against a real-HTTP fake of the /v1 API (tests/fake_openai.py)."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from fake_openai import DEFAULT_MODEL, FakeOpenAI, FakeReply
from joe_agent.errors import ModelError, ModelNotFound, ModelUnreachable, StreamError, ToolsUnsupported
from joe_agent.messages import Message, ToolCall
from joe_agent.models.openai_compat import OpenAICompatModel, normalize_host, to_openai_messages

REAL = Path(__file__).parent / "data" / "real_replies"
TOOLS = json.loads((REAL / "tools.json").read_text())
LLAMA_PROPS = {"default_generation_settings": {"n_ctx": 16384, "params": {}},
               "chat_template_caps": {"supports_tools": True}, "model_path": "/m/x.gguf"}


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def run(model: OpenAICompatModel, messages=None, tools=None):
    chunks = list(model.stream(messages or [Message("user", "hi")], tools))
    text = "".join(c.content for c in chunks)
    thinking = "".join(c.thinking for c in chunks)
    return chunks, text, thinking


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- streaming ------------------------------------------------------------------------------


def test_content_streams_in_pieces_and_ends_with_usage(fake):
    fake.replies.append(FakeReply(text="Hello there, how can I help?", fragment=4))
    chunks, text, _ = run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url))
    assert text == "Hello there, how can I help?"
    assert len([c for c in chunks if c.content]) == 7  # real deltas, not one blob
    final = chunks[-1]
    assert final.done and final.done_reason == "stop" and not final.tool_calls
    assert final.prompt_tokens and final.completion_tokens
    assert fake.requests[0]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_goes_to_thinking_never_to_content(fake, key):
    fake.replies.append(FakeReply(reasoning="The user greets me.", reasoning_key=key, text="Hi!"))
    _, text, thinking = run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url))
    assert thinking == "The user greets me." and text == "Hi!"


def test_tool_call_fragments_assembled_by_index(fake):
    calls = [{"name": "read_file", "arguments": {"path": "src/app.py", "limit": 20}},
             {"name": "search", "arguments": {"pattern": "def main\\(", "path": "."}}]
    fake.replies.append(FakeReply(text="Let me look.", tool_calls=calls, fragment=3))
    chunks, text, _ = run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url), tools=TOOLS)
    final = chunks[-1]
    assert text == "Let me look."
    assert [(c.name, c.arguments) for c in final.tool_calls] == [(c["name"], c["arguments"]) for c in calls]
    assert [c.id for c in final.tool_calls] == ["call_fake_0", "call_fake_1"]
    assert all(c.source == "native" and not c.arguments_error for c in final.tool_calls)
    assert final.done_reason == "tool_calls"
    assert fake.requests[0]["tools"] == TOOLS


def test_tool_calls_without_index_are_still_told_apart(fake):
    calls = [{"name": "read_file", "arguments": {"path": "a.py"}}, {"name": "read_file", "arguments": {"path": "b.py"}}]
    fake.replies.append(FakeReply(tool_calls=calls, fragment=4, omit_index=True))
    final = run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url), tools=TOOLS)[0][-1]
    assert [c.arguments["path"] for c in final.tool_calls] == ["a.py", "b.py"]


def test_invalid_argument_json_sets_arguments_error(fake):
    fake.replies.append(FakeReply(tool_calls=[{"name": "write_file", "arguments": '{"path": "x.py", "content": "pri'}]))
    call = run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url), tools=TOOLS)[0][-1].tool_calls[0]
    assert call.name == "write_file" and call.arguments == {}
    assert "not valid JSON" in call.arguments_error


def test_arguments_that_are_not_an_object_are_an_error(fake):
    fake.replies.append(FakeReply(tool_calls=[{"name": "run_shell", "arguments": '["ls"]'}]))
    call = run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url), tools=TOOLS)[0][-1].tool_calls[0]
    assert "JSON object" in call.arguments_error


def test_options_translated_and_unsettable_ones_dropped(fake):
    model = OpenAICompatModel(DEFAULT_MODEL, host=fake.url, options={"temperature": 0.2, "num_predict": 99,
                                                                     "num_ctx": 8192, "keep_alive": "5m"})
    run(model)
    body = fake.requests[0]
    assert body["temperature"] == 0.2 and body["max_tokens"] == 99
    assert "num_ctx" not in body and "keep_alive" not in body and "options" not in body


def test_llama_cpp_timings_give_counts_and_speed(fake):
    timings = {"prompt_n": 120, "prompt_ms": 900.0, "predicted_n": 30, "predicted_ms": 1500.0}
    fake.replies.append(FakeReply(text="ok", timings=timings, usage={"prompt_tokens": 0}))
    final = run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url))[0][-1]
    assert (final.prompt_tokens, final.completion_tokens) == (120, 30)
    assert final.eval_duration_s == pytest.approx(1.5) and final.prompt_eval_duration_s == pytest.approx(0.9)


def test_recorded_real_stream_replays(fake):
    """The SSE events llama-server really sent (qwen2.5-coder-1.5B, tools offered)."""
    rec = json.loads((REAL / "read_app.native.json").read_text())
    fake.strict_models = False
    fake.replies.append(FakeReply(raw_sse=rec["sse"]))
    chunks, text, _ = run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url), tools=TOOLS)
    assert text == rec["reply"]["content"]
    timings = json.loads(rec["sse"][-2][len("data:"):])["timings"]
    assert chunks[-1].done and chunks[-1].prompt_tokens == timings["prompt_n"]


# ---- errors -----------------------------------------------------------------------------------


def test_server_down_is_unreachable_with_how_to_start():
    model = OpenAICompatModel(DEFAULT_MODEL, host=f"127.0.0.1:{free_port()}")
    with pytest.raises(ModelUnreachable) as e:
        model.info()
    assert "127.0.0.1" in str(e.value) and "llama-server" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ModelUnreachable):
        run(model)


def test_unknown_model_lists_the_served_ones(fake):
    fake.models = [{"id": "qwen2.5-coder:7b"}, {"id": "llama3.2:3b"}]
    with pytest.raises(ModelNotFound) as e:
        OpenAICompatModel("mistral", host=fake.url).info()
    assert "qwen2.5-coder:7b, llama3.2:3b" in str(e.value)
    with pytest.raises(ModelNotFound) as e:  # the chat request itself 404s: same class, same list
        run(OpenAICompatModel("mistral", host=fake.url))
    assert "mistral" in str(e.value) and "llama3.2:3b" in str(e.value)


def test_http_error_names_status_and_message(fake):
    fake.replies.append(FakeReply(http_status=503, http_body={"error": {"message": "Loading model", "code": 503}}))
    with pytest.raises(ModelError) as e:
        run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url))
    assert type(e.value) is ModelError and "503" in str(e.value) and "Loading model" in str(e.value)


def test_plain_text_error_body(fake):
    fake.replies.append(FakeReply(http_status=500, http_body="upstream exploded\n"))
    with pytest.raises(ModelError, match="HTTP 500: upstream exploded$"):
        run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url))


@pytest.mark.parametrize("status,body", [
    (500, {"error": {"code": 500, "message": "tools param requires --jinja flag", "type": "server_error"}}),
    (400, {"object": "error", "message": '"auto" tool choice requires --enable-auto-tool-choice and '
                                         "--tool-call-parser to be set", "type": "BadRequestError", "code": 400}),
    (400, {"error": {"message": "registry.ollama.ai/library/gemma3:4b does not support tools", "type": "api_error"}}),
])
def test_tools_refused_becomes_tools_unsupported(fake, status, body):
    fake.tools_error = (status, body)
    with pytest.raises(ToolsUnsupported):
        run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url), tools=TOOLS)
    _, text, _ = run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url), tools=None)  # the fallback works
    assert text


def test_a_400_about_something_else_is_not_tools_unsupported(fake):
    fake.replies.append(FakeReply(http_status=400, http_body={"error": {"message": "the prompt is longer than the context"}}))
    with pytest.raises(ModelError) as e:
        run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url), tools=TOOLS)
    assert type(e.value) is ModelError and "longer than the context" in str(e.value)


@pytest.mark.parametrize("how", ["cut_mid_stream", "end_without_done", "malformed_event"])
def test_broken_stream_raises_stream_error_after_partial_chunks(fake, how):
    fake.replies.append(FakeReply(text="I will now read", **{how: True}))
    seen = []
    with pytest.raises(StreamError) as e:
        for chunk in OpenAICompatModel(DEFAULT_MODEL, host=fake.url).stream([Message("user", "x")], None):
            seen.append(chunk.content)
    assert "".join(seen) == "I will now read"
    assert "partial reply was kept" in str(e.value)


def test_error_event_mid_stream(fake):
    fake.replies.append(FakeReply(text="Sure", error_mid_stream="an error was encountered while running the model"))
    seen = []
    with pytest.raises(StreamError, match="encountered while running the model"):
        for chunk in OpenAICompatModel(DEFAULT_MODEL, host=fake.url).stream([Message("user", "x")], None):
            seen.append(chunk.content)
    assert "".join(seen) == "Sure"


def test_unauthorized_says_which_variable(fake):
    fake.replies.append(FakeReply(http_status=401, http_body={"error": {"message": "Invalid API Key"}}))
    with pytest.raises(ModelError, match="JOE_API_KEY"):
        run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url))


# ---- info, context, models ------------------------------------------------------------------


def test_llama_cpp_props_give_num_ctx_and_any_name_works(fake):
    fake.models = [{"id": "/models/qwen2.5-coder-1.5b-instruct.gguf", "meta": {"n_ctx": 16384, "n_ctx_train": 32768}}]
    fake.props = LLAMA_PROPS
    model = OpenAICompatModel("whatever-i-typed", host=fake.url + "/v1/", num_ctx=4096)
    info = model.info()
    assert model.num_ctx == 16384 and info.context_length == 32768 and info.supports_tools
    run(model)
    assert fake.requests[0]["model"] == "/models/qwen2.5-coder-1.5b-instruct.gguf"


def test_llama_cpp_without_tool_template_reports_no_tools(fake):
    fake.props = {**LLAMA_PROPS, "chat_template_caps": {"supports_tools": False}}
    assert OpenAICompatModel(DEFAULT_MODEL, host=fake.url).info().supports_tools is False


def test_file_stem_matches_a_gguf_path(fake):
    fake.models = [{"id": "/m/a.gguf"}, {"id": "/m/qwen.gguf"}]
    model = OpenAICompatModel("qwen", host=fake.url)
    model.info()
    assert model.served_name == "/m/qwen.gguf"


def test_vllm_max_model_len_is_the_context(fake):
    fake.models = [{"id": "Qwen/Qwen2.5-Coder-7B-Instruct", "max_model_len": 32768}]
    model = OpenAICompatModel("Qwen/Qwen2.5-Coder-7B-Instruct", host=fake.url)
    model.info()
    assert model.num_ctx == 32768


def test_context_unknown_keeps_the_configured_or_fallback(fake):
    assert OpenAICompatModel(DEFAULT_MODEL, host=fake.url, num_ctx=12000).num_ctx == 12000
    model = OpenAICompatModel(DEFAULT_MODEL, host=fake.url)
    model.info()
    assert model.num_ctx == 4096
    assert fake.gets == ["/v1/models", "/props"]


def test_list_models(fake):
    fake.models = [{"id": "a"}, {"id": "b"}]
    assert OpenAICompatModel("a", host=fake.url).list_models() == ["a", "b"]


def test_server_without_models_route_lets_chat_decide(fake):
    fake.models_route = False
    model = OpenAICompatModel(DEFAULT_MODEL, host=fake.url)
    assert model.info().name == DEFAULT_MODEL
    assert run(model)[1] == "(fake: no scripted reply)"


def test_api_key_sent_as_bearer(fake, monkeypatch):
    monkeypatch.setenv("JOE_API_KEY", "k-123")
    model = OpenAICompatModel(DEFAULT_MODEL, host=fake.url)
    assert model._http().headers["authorization"] == "Bearer k-123"
    assert "authorization" not in OpenAICompatModel(DEFAULT_MODEL, host=fake.url, api_key="")._http().headers


def test_normalize_host():
    assert normalize_host(None) == "http://127.0.0.1:8080"
    assert normalize_host("localhost:1234") == "http://localhost:1234"
    assert normalize_host("http://h:8000/v1/") == "http://h:8000"


# ---- messages -----------------------------------------------------------------------------------


def test_messages_translated_with_ids_and_string_arguments(fake):
    history = [
        Message("system", "sys"),
        Message("user", "fix calc.py"),
        Message("assistant", "", "thought", [ToolCall("read_file", {"path": "calc.py"}, id="")]),
        Message("tool", "def add(a, b): ...", tool_name="read_file"),
        Message("assistant", "Two at once.", tool_calls=[ToolCall("read_file", {"path": "a"}, id="c1"),
                                                         ToolCall("list_files", {}, id="")]),
        Message("tool", "A", tool_name="read_file", tool_call_id="c1"),
        Message("tool", "files", tool_name="list_files"),
    ]
    out = to_openai_messages(history)
    assert out[2]["tool_calls"] == [{"id": "call_2_0", "type": "function",
                                     "function": {"name": "read_file", "arguments": '{"path": "calc.py"}'}}]
    assert "thinking" not in out[2] and out[2]["content"] == ""
    assert out[3] == {"role": "tool", "tool_call_id": "call_2_0", "content": "def add(a, b): ..."}
    assert [c["id"] for c in out[4]["tool_calls"]] == ["c1", "call_4_1"]
    assert out[5]["tool_call_id"] == "c1" and out[6]["tool_call_id"] == "call_4_1"
    assert to_openai_messages(history) == out  # same history, same bytes: the prompt cache holds
    fake.replies.append(FakeReply(text="done"))
    run(OpenAICompatModel(DEFAULT_MODEL, host=fake.url), history)
    assert fake.requests[0]["messages"] == out
