"""Replies Qwen2.5-Coder-1.5B really wrote in the live runs (docs/live-model.md), parsed offline.
Not marked live: these run everywhere, in milliseconds, and keep the forms it uses working."""
from __future__ import annotations

import pytest

from joe_agent.models.textcalls import parse_text_calls

NAMES = {"read_file", "write_file", "edit_file", "list_files", "search", "run_shell", "search_history"}

# a plan written inside <tools>, in the schema-list shape but with values: only the first call
PLAN_IN_TOOLS = (
    '<tools>\n{"type": "function", "function": {"name": "read_file", "arguments": {"path": "config.json"}}}\n'
    '{"type": "function", "function": {"name": "edit_file", "arguments": {"path": "config.json", '
    '"old_text": "port\\": 8080", "new_text": "port\\": 9090"}}}\n</tools>')
CALL_IN_TOOLS = '<tools>\n{"name": "search_history", "arguments": {"query": "last() in lists.py"}}\n</tools>'
UNCLOSED_TOOLS = ('<tools>\n{"type": "function", "function": {"name": "search", "parameters": {"pattern": "timeout", '
                  '"path": "settings.ini"}}, "required": []}}\n<tools>\n')
SCHEMA_ECHO = ('<tools>\n{"type": "function", "function": {"name": "is_palindrome", "description": "Check a string.", '
               '"parameters": {"type": "object", "properties": {"s": {"type": "string"}}}, "required": ["s"]}}\n</tools>')
DOUBLED = ('{{"name": "read_file", "arguments": {"path": "calc.py"}}}\n'
           '{{"name": "edit_file", "arguments": {"path": "calc.py", "old_text": "a - b", "new_text": "a + b"}}}')
BARE_BROKEN = ('{"name": "edit_file", "arguments": {"path": "calc.py", "old_text": "def add(a, b):", '
               '"new_text": "def add(a, b):\\n    """Return the sum."""\\n    return a + b"}}\n')

# a wrapped call with its last closing brace left out (live run 8, add-function)
BRACE_LEFT_OUT = ('<tools>\n{"type": "function", "function": {"name": "write_file", "arguments": {"path": '
                  '"text_utils.py", "content": "def shout(text):\\n    return text.upper()"}}\n</tools>')
# config.json's quotes left unescaped, and one closing quote missing (live run 11, config-value)
QUOTES_UNESCAPED = '{"name": "edit_file", "arguments": {"path": "config.json", "old_text": "port": 8000, "new_text": "port": 9090"}}'


@pytest.mark.parametrize("reply, expected", [
    (PLAN_IN_TOOLS, [("read_file", {"path": "config.json"})]),
    (CALL_IN_TOOLS, [("search_history", {"query": "last() in lists.py"})]),
    (UNCLOSED_TOOLS, [("search", {"pattern": "timeout", "path": "settings.ini"})]),
    (DOUBLED, [("read_file", {"path": "calc.py"}), ("edit_file", {"path": "calc.py", "old_text": "a - b", "new_text": "a + b"})]),
])
def test_calls_the_live_model_wrote_are_found(reply: str, expected: list) -> None:
    parsed = parse_text_calls(reply, NAMES)
    assert [(c.name, c.arguments) for c in parsed.calls] == expected
    assert all(not c.arguments_error for c in parsed.calls)
    assert parsed.prose == ""


def test_a_schema_echo_inside_tools_is_still_not_a_call() -> None:
    assert parse_text_calls(SCHEMA_ECHO, NAMES | {"is_palindrome"}).calls == []


def test_unescaped_quotes_in_a_call_are_read_as_the_model_meant_them() -> None:
    parsed = parse_text_calls(BARE_BROKEN, NAMES)
    assert [(c.name, c.arguments_error) for c in parsed.calls] == [("edit_file", "")]
    assert parsed.calls[0].arguments["new_text"] == 'def add(a, b):\n    """Return the sum."""\n    return a + b'
    parsed = parse_text_calls(BRACE_LEFT_OUT, NAMES)
    assert [(c.name, c.arguments) for c in parsed.calls] == [
        ("write_file", {"path": "text_utils.py", "content": "def shout(text):\n    return text.upper()"})]


def test_a_quote_missing_has_no_good_reading_and_the_tool_says_what_is_missing() -> None:
    # read as far as it goes: new_text swallowed into old_text, so the tool answers
    # "missing required argument new_text" and the model (run 11) sent it right the next time
    (call,) = parse_text_calls(QUOTES_UNESCAPED, NAMES).calls
    assert call.name == "edit_file" and set(call.arguments) == {"path", "old_text"}


def test_an_unfenced_call_that_cannot_be_read_is_a_failed_call_not_the_answer() -> None:
    parsed = parse_text_calls(BARE_BROKEN.replace('"}}', ""), NAMES)  # cut off: no reading fits
    assert [c.name for c in parsed.calls] == ["edit_file"]
    assert "not valid JSON" in parsed.calls[0].arguments_error and parsed.calls[0].arguments == {}


def test_doubled_braces_inside_prose_are_left_alone() -> None:
    text = "In Jinja you write {{ name }} to print a variable."
    assert parse_text_calls(text, NAMES).calls == []


def test_doubled_braces_with_one_brace_too_many_at_the_end() -> None:
    reply = '{{"name": "edit_file", "arguments": {"path": "hello.py", "old_text": "a", "new_text": "b"}}}}\n'
    parsed = parse_text_calls(reply, NAMES)
    assert [(c.name, c.arguments["path"]) for c in parsed.calls] == [("edit_file", "hello.py")]
