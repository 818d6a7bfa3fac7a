"""Tool calls written as text: which blocks are calls (shape, name, position), and the prose.

The recorded cases are real replies of Qwen2.5-Coder-1.5B-Instruct served by llama-server
(tests/data/real_replies, made by record.py there); the expected calls were written by hand
after reading each reply."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from joe_agent.models.textcalls import parse_text_calls
from joe_agent.models.toolprompt import tool_protocol_prompt

REAL = Path(__file__).parent / "data" / "real_replies"
TOOLS = json.loads((REAL / "tools.json").read_text())
NAMES = {t["function"]["name"] for t in TOOLS}


def calls_of(text: str, names: set[str] = NAMES) -> list[tuple[str, dict]]:
    return [(c.name, c.arguments) for c in parse_text_calls(text, names).calls]


# ---- recorded real replies -------------------------------------------------------------------

HELLO = ("write_file", {"path": "hello.py", "content": "print('hi')"})
GREET = ("edit_file", {"path": "greet.py", "old_text": "hello", "new_text": "goodbye"})
EXPECTED: dict[str, list[tuple[str, dict]]] = {
    "read_app.native": [("read_file", {"path": "app.py", "offset": 1, "limit": 10})],
    "read_app.text": [("read_file", {"path": "app.py", "offset": 1, "limit": 10})],
    "create_hello.native": [HELLO],
    "create_hello.text": [HELLO],
    "fix_calc.native": [],  # asks for details in prose
    "fix_calc.text": [("run_shell", {"command": "python calc.py"})],
    "list_src.native": [("list_files", {"path": "src"})],
    "list_src.text": [("list_files", {"path": "src"})],
    "run_tests.native": [("run_shell", {"command": "pytest"})],
    "run_tests.text": [("run_shell", {"command": "pytest"})],
    "search_todo.native": [("search", {"pattern": "TODO", "path": "src"})],
    "search_todo.text": [("search", {"pattern": "TODO", "path": "."})],
    "explain_listcomp.native": [],  # three ```python examples, cut off by max_tokens
    "explain_listcomp.text": [],
    # "Here's an example of how you might call it:" + a fence ending the reply: an illustration
    "explain_tool.native": [],
    # asked not to call, the model replied with nothing but a call: by shape and position it
    # is one (the documented limit of the rule; the permission layer is the next guard)
    "explain_tool.text": [("read_file", {"path": "example.txt"})],
    "replace_greeting.native": [GREET],
    "replace_greeting.text": [GREET],
    # a bare JSON object, no fence; the content is nonsense, but it is the model's call
    "fix_calc_after_read.native": [("write_file", {"path": "calc.py", "content": "<tool_response><def add(a, b):\n"
                                                   "    return a - b\n\ndef mul(a, b):\n    return a * b</def></tool_response>"})],
    "fix_calc_after_read.text": [("edit_file", {"path": "calc.py", "old_text": "def add(a, b):",
                                                "new_text": "def add(a, b):\n    return a + b"})],
}


def recorded(name: str) -> str:
    return json.loads((REAL / f"{name}.json").read_text())["reply"]["content"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_real_reply(name):
    text = recorded(name)
    parsed = parse_text_calls(text, NAMES)
    assert [(c.name, c.arguments) for c in parsed.calls] == EXPECTED[name]
    assert all(c.source == "text" and c.id and not c.arguments_error for c in parsed.calls)
    if not parsed.calls:
        assert parsed.prose == text  # nothing taken away from a reply that has no call


def test_every_recording_has_an_expectation():
    files = {p.name.removesuffix(".json") for p in REAL.glob("*.json")} - {"tools"}
    assert files == set(EXPECTED) | set(SAMPLED_EXPECTED) | {"sampled_fix_calc_s4.sampled"}


# ---- hand-written: forms that are calls -------------------------------------------------------

READ = ("read_file", {"path": "a.py"})


@pytest.mark.parametrize("text", [
    '```json\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```',
    '```\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```',
    '```json {"name": "read_file", "arguments": {"path": "a.py"}} ```',
    '```json\n{"name": "read_file", "parameters": {"path": "a.py"}}\n```',
    '```json\n{"name": "read_file", "arguments": "{\\"path\\": \\"a.py\\"}"}\n```',
    '```tool_call\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```',
    '{"name": "read_file", "arguments": {"path": "a.py"}}',
    '  {"name": "read_file", "arguments": {"path": "a.py"}}  \n',
    "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.py\"}}\n</tool_call>",
    '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}',  # stopped before the close tag
    "<function=read_file>\n<parameter=path>\na.py\n</parameter>\n</function>",
    "<tool_call>\n<function=read_file>\n<parameter=path>\na.py\n</parameter>\n</function>\n</tool_call>",
    '```json\n{"name": "read_file", "arguments": {"path": "a.py"}}',  # unclosed fence at the end
    'I will read the file first.\n\n```json\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```',
    '```json\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```\nThis shows the file.',
    'Let me look.\n{"name": "read_file", "arguments": {"path": "a.py"}}',
    '```json\n{"name": "read_file", "arguments": {"path": "a.py"}, "id": "x1"}\n```',
])
def test_call_forms(text):
    parsed = parse_text_calls(text, NAMES)
    assert [(c.name, c.arguments) for c in parsed.calls] == [READ]
    assert "read_file" not in parsed.prose and "{" not in parsed.prose


def test_prose_keeps_the_words_around_the_call():
    text = 'I will read the file first.\n\n```json\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```\n\nThen I fix it.'
    assert parse_text_calls(text, NAMES).prose == "I will read the file first.\n\nThen I fix it."


def test_list_and_several_blocks_give_all_calls_in_order():
    listed = '```json\n[{"name": "read_file", "arguments": {"path": "a"}}, {"name": "list_files", "arguments": {}}]\n```'
    assert calls_of(listed) == [("read_file", {"path": "a"}), ("list_files", {})]
    lines = '```json\n{"name": "read_file", "arguments": {"path": "a"}}\n{"name": "read_file", "arguments": {"path": "b"}}\n```'
    assert [a["path"] for _, a in calls_of(lines)] == ["a", "b"]
    blocks = ('First:\n```json\n{"name": "read_file", "arguments": {"path": "a"}}\n```\nThen:\n'
              '```json\n{"name": "read_file", "arguments": {"path": "b"}}\n```')
    parsed = parse_text_calls(blocks, NAMES)
    assert [c.arguments["path"] for c in parsed.calls] == ["a", "b"]
    assert [c.id for c in parsed.calls] == ["call_text_0", "call_text_1"]
    assert parsed.prose == "First:\n\nThen:"


def test_qwen3_function_form_with_several_parameters():
    text = ("I'll fix it.\n<tool_call>\n<function=edit_file>\n<parameter=path>\ncalc.py\n</parameter>\n"
            "<parameter=old_text>\n    return a - b\n</parameter>\n<parameter=new_text>\n    return a + b\n"
            "</parameter>\n</function>\n</tool_call>")
    parsed = parse_text_calls(text, NAMES)
    assert [(c.name, c.arguments) for c in parsed.calls] == [
        ("edit_file", {"path": "calc.py", "old_text": "    return a - b", "new_text": "    return a + b"})]
    assert parsed.prose == "I'll fix it."


def test_schema_echo_in_tools_tags_is_skipped_and_the_call_after_it_taken():
    echo = json.dumps(TOOLS[0])
    text = f"<tools>\n{echo}\n</tools>\n\n```json\n{{\"name\": \"read_file\", \"arguments\": {{\"path\": \"app.py\"}}}}\n```"
    parsed = parse_text_calls(text, NAMES)
    assert [(c.name, c.arguments) for c in parsed.calls] == [("read_file", {"path": "app.py"})]
    assert parsed.prose == ""
    assert calls_of(f"<tools>\n{echo}\n</tools>") == []


def test_broken_json_that_starts_like_our_call_is_a_failed_call():
    parsed = parse_text_calls('```json\n{"name": "run_shell", "arguments": {"command": "ls", }\n```', NAMES)
    assert [c.name for c in parsed.calls] == ["run_shell"]
    assert parsed.calls[0].arguments == {} and "not valid JSON" in parsed.calls[0].arguments_error
    # the last brace left out has one reading (jsonrepair), so that call runs
    parsed = parse_text_calls('```json\n{"name": "run_shell", "arguments": {"command": "ls"}\n```', NAMES)
    assert [(c.arguments, c.arguments_error) for c in parsed.calls] == [({"command": "ls"}, "")]
    cut = '```json\n{"name": "write_file", "arguments": {"path": "a.py", "content": "def f():\n    ret\n```'
    assert "not valid JSON" in parse_text_calls(cut, NAMES).calls[0].arguments_error  # cut off mid-string
    assert calls_of('```json\n{"name": "rm_all", "arguments": {"x": 1\n```') == []  # not ours
    mid = 'For example:\n```json\n{"name": "run_shell", "arguments": {\n```'
    assert calls_of(mid) == []  # the position rule still applies


def test_bad_arguments_string_is_a_call_with_an_error():
    parsed = parse_text_calls('```json\n{"name": "run_shell", "arguments": "{\\"command\\": "}\n```', NAMES)
    assert parsed.calls[0].name == "run_shell" and "not valid JSON" in parsed.calls[0].arguments_error
    parsed = parse_text_calls('{"name": "run_shell", "arguments": ["ls"]}', NAMES)
    assert "JSON object" in parsed.calls[0].arguments_error


# ---- hand-written: blocks that must never run ---------------------------------------------------


@pytest.mark.parametrize("text", [
    # an example in the middle of an explanation
    'Here is an example of a tool call:\n```json\n{"name": "run_shell", "arguments": {"command": "rm -rf build"}}\n```\n'
    "and you could then run the tests to check that everything still works, or read the file again "
    "to confirm the change landed where you expected it to.",
    'Here is an example of a tool call: ```json {"name": "run_shell", "arguments": {"command": "ls"}} ``` and you could ...',
    # introduced as an example even though it ends the reply
    'For example:\n```json\n{"name": "run_shell", "arguments": {"command": "ls"}}\n```',
    'The format would look like this:\n{"name": "run_shell", "arguments": {"command": "ls"}}',
    # a call followed by a whole explanation is an illustration
    '```json\n{"name": "run_shell", "arguments": {"command": "make"}}\n```\n\nThis runs make. It builds every target '
    "in the Makefile, which can take a while on a big project.\nAfter that you can run the binary.\nOr clean up first.",
    # data with a "name" key but no arguments
    '```json\n{"name": "read_file", "version": 2}\n```',
    '```json\n{"name": "read_file"}\n```',
    # extra keys: not exactly the call shape
    '```json\n{"name": "read_file", "arguments": {"path": "a"}, "description": "reads"}\n```',
    # schema echoes, bare or in tags
    json.dumps(TOOLS[5]),
    '```json\n{"name": "run_shell", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}\n```',
    "<tools>\n" + json.dumps(TOOLS[5]) + "\n</tools>",
    # another language
    '```python\n{"name": "run_shell", "arguments": {"command": "ls"}}\n```',
    '```bash\n{"name": "run_shell", "arguments": {"command": "ls"}}\n```',
    # unknown names, nested look-alikes
    '```json\n{"name": "delete_everything", "arguments": {}}\n```',
    '```json\n{"name": "main", "arguments": {"function": "write_file", "arguments": {"path": "x"}}}\n```',
    # a list where one item is not a call
    '```json\n[{"name": "run_shell", "arguments": {"command": "ls"}}, {"name": "bob"}]\n```',
    # JSON inline in a sentence, not on its own line
    'Call it as {"name": "run_shell", "arguments": {"command": "ls"}} when you need to.',
    # a sentence that goes on after the block
    '```json\n{"name": "run_shell", "arguments": {"command": "ls"}}\n```\nand then read the output.',
    # not JSON at all, or broken JSON that does not start like a call
    '```json\n{"tool": "run_shell", "arguments": {"command": "ls"}\n```',
    '```json\nname: run_shell\n```',
    "",
])
def test_not_a_call(text):
    parsed = parse_text_calls(text, NAMES)
    assert parsed.calls == [] and parsed.prose == text


def test_only_offered_names_count():
    text = '```json\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```'
    assert calls_of(text, {"run_shell"}) == []
    assert calls_of(text, set()) == []


def test_an_earlier_example_does_not_run_but_the_final_call_does():
    text = ('A call looks like\n```json\n{"name": "run_shell", "arguments": {"command": "rm -rf /"}}\n```\n'
            "where the command is whatever you need. Commands run in the project root, with a timeout, "
            "and their output comes back to me.\n\nNow, for your request:\n"
            '```json\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```')
    assert calls_of(text) == [READ]


def test_code_with_json_string_containing_fences_stays_one_call():
    content = "# Title\n```\ncode\n```\n"
    text = "```json\n" + json.dumps({"name": "write_file", "arguments": {"path": "README.md", "content": content}}) + "\n```"
    assert calls_of(text) == [("write_file", {"path": "README.md", "content": content})]


# ---- the protocol prompt ------------------------------------------------------------------------


def test_protocol_prompt_lists_tools_and_is_byte_stable():
    prompt = tool_protocol_prompt(TOOLS)
    assert prompt == tool_protocol_prompt(json.loads(json.dumps(TOOLS)))
    for tool in TOOLS:
        assert f"- {tool['function']['name']}(" in prompt
    assert "edit_file(path: string, old_text: string, new_text: string)" in prompt
    assert "list_files(path?: string)" in prompt  # optional parameters are marked
    assert "<tool_call>" in prompt and len(prompt) < 2500
    assert tool_protocol_prompt(TOOLS[:1]) != prompt


def test_the_protocol_example_is_not_itself_a_call():
    # a model that echoes the protocol back must not run the placeholder
    assert calls_of(tool_protocol_prompt(TOOLS), NAMES | {"TOOL_NAME"}) == []


def test_protocol_reply_round_trip():
    """A reply written exactly as the protocol asks is parsed back to the same call."""
    args = {"path": "src/x.py", "old_text": 'a = "{"', "new_text": "a = '}'\n"}
    reply = "```json\n" + json.dumps({"name": "edit_file", "arguments": args}) + "\n```"
    assert calls_of(reply) == [("edit_file", args)]


# ---- sampled real replies (default temperature) -------------------------------------------------

SAMPLED_EXPECTED: dict[str, list[tuple[str, dict]]] = {
    # prose, then a ```python example: no call
    "sampled_docstring_s1.sampled": [],
    # a well-formed call to a tool we do not have
    "sampled_docstring_s5.sampled": [],
    # the whole new file in a ```python block: no call
    "sampled_docstring_s6.sampled": [],
    # the schema echoed as XML <tools> inside a ```python block, cut off by max_tokens
    "sampled_fix_calc_s1.sampled": [],
    # a lead-in, the call, one closing sentence
    "sampled_list_s1.sampled": [("list_files", {"path": "/"})],
    # a bare JSON object over several lines, no fence
    "sampled_list_s4.sampled": [("list_files", {"path": "/"})],
}


@pytest.mark.parametrize("name", sorted(SAMPLED_EXPECTED))
def test_sampled_real_reply(name):
    text = recorded(name)
    parsed = parse_text_calls(text, NAMES)
    assert [(c.name, c.arguments) for c in parsed.calls] == SAMPLED_EXPECTED[name]
    if parsed.calls:
        assert "{" not in parsed.prose
    else:
        assert parsed.prose == text


def test_sampled_stray_quote_is_read_as_written():
    """`"old_text": "print('Hello, world!")"`: strict JSON ends the string at the stray quote;
    the lenient reading (jsonrepair) keeps it, so the edit runs and the tool says what is
    really in the file, which the model can act on."""
    parsed = parse_text_calls(recorded("sampled_fix_calc_s4.sampled"), NAMES)
    assert [(c.name, c.arguments_error) for c in parsed.calls] == [("edit_file", "")]
    assert parsed.calls[0].arguments == {"path": "calc.py", "old_text": "print('Hello, world!\")",
                                         "new_text": "print('Hello, universe!')"}
    assert parsed.prose == ""
