import json

from joe_agent.context import Context, Injection, PromptParts, read_agents_md
from joe_agent.messages import Message, ToolCall
from joe_agent.tokens import TokenCounter

TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "Read", "parameters": {"type": "object", "properties": {}}}}]


def ctx(num_ctx=32768, **kw):
    return Context(PromptParts(base="You are joe.", rules="- prefer small diffs", **kw), TOOLS, num_ctx,
                   counter=TokenCounter(use_tiktoken=False))


def dump(msgs):
    return json.dumps([m.to_dict() for m in msgs])


def test_system_message_layout_and_stability(tmp_path):
    (tmp_path / "AGENTS.md").write_text("Use tabs.")
    c = ctx(agents_md=read_agents_md(tmp_path), catalog="- a: b")
    first = c.messages()
    system = first[0].content
    assert system.index("You are joe.") < system.index("prefer small diffs") < system.index("Use tabs.") < system.index("- a: b")
    c.append(Message("user", "hi"))
    assert c.messages()[0] is first[0]


def test_requests_are_append_only_prefixes():
    c = ctx()
    prev = dump(c.messages())
    for i in range(20):
        c.append(Message("user", Context.user_content(f"task {i}", [Injection("s", "## Steps\n1. x", "matched")] if i % 3 == 0 else [])))
        c.append(Message("assistant", "", tool_calls=[ToolCall("read_file", {"path": f"f{i}"})]))
        c.append(Message("tool", "x" * 100, tool_name="read_file"))
        c.append(Message("assistant", f"done {i}"))
        assert c.fit() == []
        cur = dump(c.messages())
        assert cur[:-1].startswith(prev[:-1])  # the previous request (minus its closing bracket) is a prefix
        prev = cur


def test_injection_rides_in_user_message():
    text = Context.user_content("convert this to hooks", [Injection("react-hooks", "# Skill: hooks\n1. step", "matched \"convert to hooks\"")])
    assert text.startswith("convert this to hooks\n") and "# Skill: hooks" in text
    assert Context.user_content("plain", []) == "plain"


def test_compaction_keeps_recent_turns_and_says_so():
    c = ctx(num_ctx=2048)
    for i in range(12):
        c.append(Message("user", f"task {i}"))
        c.append(Message("assistant", "", tool_calls=[ToolCall("read_file", {"path": "big.txt"})]))
        c.append(Message("tool", f"line {i} " * 120, tool_name="read_file"))
        c.append(Message("assistant", "ok"))
    assert c.tokens() > c.budget()
    notes = c.fit()
    assert notes and "compacted" in notes[0]
    assert c.tokens() <= c.budget()
    # the last two turns' tool output is intact
    tail_tools = [m for m in c.history[-8:] if m.role == "tool"]
    assert all(m.content.startswith("line ") for m in tail_tools)
    assert c.fit() == []  # compaction is rare: right after, nothing to do


def test_drop_oldest_turns_when_compaction_is_not_enough():
    c = ctx(num_ctx=1024)
    for i in range(30):
        c.append(Message("user", f"request {i} " + "words " * 40))
        c.append(Message("assistant", "answer " * 40))
    notes = c.fit()
    assert any("removed" in n for n in notes)
    assert c.tokens() <= c.budget()
    assert c.history[0].content.startswith("[context: ")
    assert c.history[1].role == "user" and c.history[-1].content.startswith("answer")
    # dropping again accumulates the count in a single marker
    for i in range(30):
        c.append(Message("user", "more " * 40))
        c.append(Message("assistant", "answer " * 40))
    c.fit()
    assert sum(1 for m in c.history if m.content.startswith("[context: ")) == 1


def test_usage_breakdown():
    c = ctx()
    c.append(Message("user", "hello there"))
    u = c.usage()
    assert u["num_ctx"] == 32768 and u["used"] > 0
    assert set(u["breakdown"]) >= {"system", "tools", "history"}
