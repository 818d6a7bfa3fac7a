"""ScriptedModel: queued replies, reply files, token estimates, errors."""
from __future__ import annotations

import json

import pytest

from joe_agent.errors import ConfigError, StreamError
from joe_agent.messages import Message, ToolCall
from joe_agent.models.scripted import NO_MORE_REPLIES, ScriptedModel, ScriptedReply, estimate_tokens


def collect(model, messages, tools=None):
    chunks = list(model.stream(messages, tools))
    return chunks, "".join(c.content for c in chunks), "".join(c.thinking for c in chunks)


def test_replays_in_order_and_records_requests():
    model = ScriptedModel([ScriptedReply(text="first answer, which is long enough to stream in pieces"),
                           ScriptedReply(thinking="hmm", tool_calls=[ToolCall("read_file", {"path": "a.py"})])])
    m1 = [Message("user", "one")]
    chunks, text, _ = collect(model, m1)
    assert text == "first answer, which is long enough to stream in pieces"
    assert len([c for c in chunks if c.content]) > 1 and chunks[-1].done and not chunks[-1].tool_calls
    m2 = [*m1, Message("assistant", text), Message("user", "two")]
    chunks, text, thinking = collect(model, m2, tools=[{"type": "function"}])
    assert (text, thinking) == ("", "hmm")
    call = chunks[-1].tool_calls[0]
    assert (call.name, call.arguments, call.id) == ("read_file", {"path": "a.py"}, "call_scripted_0")
    assert model.requests == [m1, m2] and model.tools_seen == [None, [{"type": "function"}]]
    assert collect(model, m2)[1] == NO_MORE_REPLIES  # the queue ran out: a plain final answer


def test_token_counts_are_chars_over_four():
    msgs = [Message("system", "s" * 100), Message("user", "u" * 43)]
    model = ScriptedModel([ScriptedReply(text="x" * 10)])
    final = collect(model, msgs)[0][-1]
    assert final.prompt_tokens == estimate_tokens(msgs, None) == (100 + 43 + 2 * 16 + 3) // 4
    assert final.completion_tokens == 3  # ceil(10 / 4)
    bigger = estimate_tokens([*msgs, Message("assistant", "", tool_calls=[ToolCall("x", {"a": 1})])], [{"t": 1}])
    assert bigger > final.prompt_tokens


def test_error_raises_stream_error_after_the_text():
    model = ScriptedModel([ScriptedReply(text="partial words", error="connection reset")])
    seen = []
    with pytest.raises(StreamError, match="connection reset"):
        for chunk in model.stream([Message("user", "x")], None):
            seen.append(chunk.content)
    assert "".join(seen) == "partial words"


def test_responder_decides_each_reply():
    def echo(messages):
        return ScriptedReply(text=f"you said {messages[-1].content}")

    model = ScriptedModel(responder=echo)
    assert collect(model, [Message("user", "ping")])[1] == "you said ping"
    assert collect(model, [Message("user", "pong")])[1] == "you said pong"


def test_info_and_list_models():
    model = ScriptedModel(name="demo", num_ctx=2048, supports_tools=False)
    info = model.info()
    assert (info.name, info.supports_tools, info.context_length) == ("demo", False, 2048)
    assert model.list_models() == ["demo"] and model.num_ctx == 2048


def test_from_file_list_and_object_forms(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(["hello", {"text": "x", "tool_calls": [{"name": "run_shell", "arguments": {"command": "ls"}}]}]))
    model = ScriptedModel.from_file(plain)
    assert [r.text for r in model.replies] == ["hello", "x"]
    assert model.replies[1].tool_calls[0].arguments == {"command": "ls"}
    full = tmp_path / "full.json"
    full.write_text(json.dumps({"model": {"name": "m", "num_ctx": 999, "supports_tools": False},
                                "replies": [{"thinking": "t", "error": "boom"}]}))
    model = ScriptedModel.from_file(full)
    assert (model.name, model.num_ctx, model.supports_tools) == ("m", 999, False)
    assert model.replies[0].error == "boom"


@pytest.mark.parametrize("content,fragment", [
    (None, "not found"),
    ("[1, 2", "not valid JSON (line 1"),
    ('{"replies": 3}', "expected a list"),
    ('[{"txt": "typo"}]', "unknown reply key(s) txt"),
    ('[{"tool_calls": [{"arguments": {}}]}]', "tool_calls must be"),
    ('[{"tool_calls": [{"name": "x", "arguments": "ls"}]}]', "JSON objects"),
    ('[42]', "must be a string or an object"),
    ('{"model": {"num_ctx": "big"}, "replies": []}', "num_ctx"),
    ('{"model": {"colour": 1}, "replies": []}', '"model" must be'),
])
def test_bad_files_are_one_line_config_errors(tmp_path, content, fragment):
    path = tmp_path / "replies.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as e:
        ScriptedModel.from_file(path)
    assert fragment in str(e.value) and "\n" not in str(e.value) and str(path) in str(e.value)
