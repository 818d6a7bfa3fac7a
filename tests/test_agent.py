"""The agent loop with the scripted model: events, interrupts, loops, limits, conversation validity."""
from __future__ import annotations

from pathlib import Path

import pytest

from joe_agent.agent import Agent
from joe_agent.context import Context, Injection, PromptParts
from joe_agent.messages import (ErrorEvent, Notice, TextDelta, ToolCall, ToolCallEvent, ToolResultEvent,
                                TurnDone)
from joe_agent.models.scripted import ScriptedModel, ScriptedReply
from joe_agent.models.toolprompt import tool_protocol_prompt
from joe_agent.tools.permissions import Permissions
from joe_agent.tools.registry import Registry, ToolContext
from joe_agent.tools.workspace import Workspace


def make_agent(root: Path, replies, supports_tools=True, **kw) -> tuple[Agent, ScriptedModel]:
    model = ScriptedModel(replies, supports_tools=supports_tools)
    registry = Registry(ToolContext(Workspace(root), Permissions(mode="full-auto", headless=True)))
    parts = PromptParts(base="You are joe.", tool_protocol="" if supports_tools else tool_protocol_prompt(registry.schemas()))
    ctx = Context(parts, registry.schemas() if supports_tools else None, model.num_ctx)
    return Agent(model, registry, ctx, native_tools=supports_tools, text_protocol=tool_protocol_prompt, **kw), model


def tc(name, **args):
    return ToolCall(name, args)


def assert_valid_conversation(history):
    """Every assistant tool call is answered before the next assistant/user turn."""
    pending = 0
    for m in history:
        if m.role == "assistant":
            assert pending == 0, "a tool call was left without a result"
            pending = len(m.tool_calls)
        elif m.role == "tool" or (m.role == "user" and m.tool_name):
            pending -= 1
        elif m.role == "user":
            assert pending == 0, "a tool call was left without a result"
    assert pending == 0


def test_events_of_a_turn(tmp_path):
    (tmp_path / "a.txt").write_text("hi\n")
    agent, _ = make_agent(tmp_path, [ScriptedReply(text="Looking.", tool_calls=[tc("read_file", path="a.txt")]),
                                      ScriptedReply(text="It says hi.")])
    events = list(agent.run_turn("what is in a.txt?"))
    kinds = [type(e) for e in events]
    assert TextDelta in kinds and ToolCallEvent in kinds and ToolResultEvent in kinds
    done = events[-1]
    assert isinstance(done, TurnDone) and done.reason == "done" and done.steps == 2 and done.final_text == "It says hi."
    assert [m.role for m in agent.history] == ["user", "assistant", "tool", "assistant"]


def test_unknown_tool_and_bad_json_are_results(tmp_path):
    calls = [tc("format_disk"), ToolCall("read_file", {}, arguments_error="Expecting value: line 1 column 9")]
    agent, _ = make_agent(tmp_path, [ScriptedReply(tool_calls=calls), ScriptedReply(text="ok")])
    results = [e.result for e in agent.run_turn("x") if isinstance(e, ToolResultEvent)]
    assert len(results) == 2 and not any(r.ok for r in results)
    assert "read_file" in results[0].content and "JSON" in results[1].content or "Expecting" in results[1].content
    assert_valid_conversation(agent.history)


def test_loop_detection_stops_after_three_identical_failures(tmp_path):
    bad = ScriptedReply(tool_calls=[tc("read_file", path="nope.txt")])
    agent, model = make_agent(tmp_path, [bad, bad, bad, ScriptedReply(text="unreached")])
    events = list(agent.run_turn("read"))
    assert events[-1].reason == "loop" and len(model.requests) == 3
    assert any(isinstance(e, Notice) and e.topic == "loop" for e in events)


def test_different_failures_do_not_count_as_a_loop(tmp_path):
    replies = [ScriptedReply(tool_calls=[tc("read_file", path=f"nope{i}.txt")]) for i in range(4)] + [ScriptedReply(text="gave up")]
    agent, _ = make_agent(tmp_path, replies)
    assert list(agent.run_turn("read"))[-1].reason == "done"


def test_max_steps(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    replies = [ScriptedReply(tool_calls=[tc("read_file", path="a.txt", start_line=i)]) for i in range(1, 9)]
    agent, _ = make_agent(tmp_path, replies, max_steps=3)
    events = list(agent.run_turn("go"))
    assert events[-1].reason == "max_steps" and events[-1].steps == 3
    assert_valid_conversation(agent.history)


def test_consumer_interrupt_mid_stream_keeps_partial_and_stays_valid(tmp_path):
    agent, _ = make_agent(tmp_path, [ScriptedReply(text="a long answer " * 30), ScriptedReply(text="fine")])
    gen = agent.run_turn("explain")
    for ev in gen:
        if isinstance(ev, TextDelta):
            gen.close()  # what the REPL does on Ctrl-C
            break
    last = agent.history[-1]
    assert last.role == "assistant" and last.content and len(last.content) < len("a long answer " * 30)
    assert list(agent.run_turn("go on"))[-1].reason == "done"
    assert_valid_conversation(agent.history)


def test_interrupt_inside_a_tool_answers_every_call(tmp_path):
    calls = [tc("run_shell", command="true"), tc("run_shell", command="true"), tc("run_shell", command="true")]
    agent, _ = make_agent(tmp_path, [ScriptedReply(tool_calls=calls), ScriptedReply(text="after")])
    original = agent.registry.run
    seen = []

    def run(call):
        seen.append(call)
        if len(seen) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second command runs
        return original(call)

    agent.registry.run = run
    events = list(agent.run_turn("run three"))
    assert events[-1].reason == "interrupted"
    tools = [m for m in agent.history if m.role == "tool"]
    assert len(tools) == 3 and "Interrupted" in tools[1].content and "Interrupted" in tools[2].content
    assert_valid_conversation(agent.history)
    assert list(agent.run_turn("continue"))[-1].reason == "done"


def test_stream_error_keeps_partial(tmp_path):
    agent, _ = make_agent(tmp_path, [ScriptedReply(text="half of it", error="connection dropped")])
    events = list(agent.run_turn("x"))
    err = [e for e in events if isinstance(e, ErrorEvent)][0]
    assert err.partial and events[-1].reason == "error"
    assert agent.history[-1].content == "half of it"


def test_text_calls_for_a_model_without_tools(tmp_path):
    reply = 'Writing now.\n```json\n{"name": "write_file", "arguments": {"path": "n.txt", "content": "1"}}\n```'
    agent, model = make_agent(tmp_path, [ScriptedReply(text=reply), ScriptedReply(text="done")], supports_tools=False)
    assert list(agent.run_turn("write n"))[-1].reason == "done"
    assert (tmp_path / "n.txt").read_text() == "1"
    assert "write_file" in model.requests[0][0].content  # the protocol is in the system prompt
    assert model.requests[1][-1].role == "user" and model.requests[1][-1].content.startswith("[result of write_file]")
    assert_valid_conversation(agent.history)


def test_text_calls_from_a_native_tools_model_become_structured(tmp_path):
    reply = '```json\n{"name": "list_files", "arguments": {}}\n```'
    agent, model = make_agent(tmp_path, [ScriptedReply(text=reply), ScriptedReply(text="done")])
    assert list(agent.run_turn("list"))[-1].reason == "done"
    asst = agent.history[1]
    assert asst.tool_calls[0].name == "list_files" and "```" not in asst.content
    assert agent.history[2].role == "tool"


def test_prose_with_example_json_is_not_executed(tmp_path):
    reply = ('To call a tool you would write something like:\n```json\n{"name": "write_file", "arguments": '
             '{"path": "x", "content": "y"}}\n```\nbut here no change is needed, the code is fine as it is.')
    agent, _ = make_agent(tmp_path, [ScriptedReply(text=reply)])
    assert list(agent.run_turn("is it fine?"))[-1].reason == "done"
    assert not (tmp_path / "x").exists()


def test_skill_injection_rides_in_the_user_message(tmp_path):
    agent, model = make_agent(tmp_path, [ScriptedReply(text="ok"), ScriptedReply(text="ok")],
                              pick_skills=lambda turn, text, forced: [Injection("hooks", "### Skill: hooks\n1. do it", 'matched "to hooks"')] if "hooks" in text else [])
    events = list(agent.run_turn("convert this to hooks"))
    assert any(isinstance(e, Notice) and e.topic == "skills" and "hooks" in e.text for e in events)
    first = model.requests[0]
    assert first[0].content == agent.context.messages()[0].content  # system untouched
    assert "### Skill: hooks" in first[-1].content
    list(agent.run_turn("thanks"))
    second = model.requests[1]
    assert [m.content for m in second[: len(first)]] == [m.content for m in first]  # prefix kept


def test_tool_calls_that_the_person_denies(tmp_path):
    model = ScriptedModel([ScriptedReply(tool_calls=[tc("write_file", path="d.txt", content="x")]), ScriptedReply(text="ok")])
    registry = Registry(ToolContext(Workspace(tmp_path), Permissions(mode="ask", headless=True)))
    agent = Agent(model, registry, Context(PromptParts(base="b"), registry.schemas(), model.num_ctx))
    events = list(agent.run_turn("write"))
    assert events[-1].denied == 1 and not (tmp_path / "d.txt").exists()


@pytest.mark.parametrize("n", [60])
def test_long_sessions_stay_inside_num_ctx(tmp_path, n):
    (tmp_path / "big.txt").write_text("data line\n" * 400)
    replies = []
    for _ in range(n):
        replies += [ScriptedReply(tool_calls=[tc("read_file", path="big.txt")]), ScriptedReply(text="read it")]
    model = ScriptedModel(replies, num_ctx=4096)
    registry = Registry(ToolContext(Workspace(tmp_path), Permissions(mode="full-auto", headless=True)))
    agent = Agent(model, registry, Context(PromptParts(base="b"), registry.schemas(), 4096))
    notices = []
    for i in range(n):
        notices += [e for e in agent.run_turn(f"read big.txt again {i}") if isinstance(e, Notice)]
    assert any(e.topic == "compaction" for e in notices)
    from joe_agent.models.scripted import estimate_tokens
    sizes = [estimate_tokens(req, registry.schemas()) for req in model.requests]
    assert max(sizes) <= 4096


def test_text_calls_after_a_read_in_the_same_reply_do_not_run(tmp_path):
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    reply = ('```json\n{"name": "read_file", "arguments": {"path": "calc.py"}}\n```\n'
             '```json\n{"name": "write_file", "arguments": {"path": "calc.py", "content": "guess"}}\n```')
    agent, model = make_agent(tmp_path, [ScriptedReply(text=reply), ScriptedReply(text="read it")])
    assert list(agent.run_turn("fix calc"))[-1].reason == "done"
    assert (tmp_path / "calc.py").read_text().startswith("def add")  # the blind write never ran
    tool = [m for m in agent.history if m.role == "tool"]
    assert len(tool) == 1 and "1 more tool call after this read_file did not run" in tool[0].content
    assert_valid_conversation(agent.history)


def test_several_text_edits_in_one_reply_all_run(tmp_path):
    (tmp_path / "a.py").write_text("N = 1\n")
    (tmp_path / "b.py").write_text("from a import N\n")
    reply = ('{"name": "edit_file", "arguments": {"path": "a.py", "old_text": "N = 1", "new_text": "M = 1"}}\n'
             '{"name": "edit_file", "arguments": {"path": "b.py", "old_text": "import N", "new_text": "import M"}}')
    agent, model = make_agent(tmp_path, [ScriptedReply(text=reply), ScriptedReply(text="Renamed.")])
    assert list(agent.run_turn("rename N to M in a.py and b.py"))[-1].final_text == "Renamed."
    assert (tmp_path / "a.py").read_text() == "M = 1\n" and (tmp_path / "b.py").read_text() == "from a import M\n"
    assert_valid_conversation(agent.history)


def test_after_a_failed_text_call_the_rest_of_its_reply_is_skipped(tmp_path):
    (tmp_path / "a.py").write_text("N = 1\n")
    reply = ('{"name": "edit_file", "arguments": {"path": "a.py", "old_text": "N = 2", "new_text": "M = 2"}}\n'
             '{"name": "write_file", "arguments": {"path": "b.py", "content": "from a import M\\n"}}')
    agent, model = make_agent(tmp_path, [ScriptedReply(text=reply), ScriptedReply(text="Stopped.")])
    events = list(agent.run_turn("rename"))
    results = [e.result for e in events if isinstance(e, ToolResultEvent)]
    assert [r.ok for r in results] == [False, False] and "call before it (edit_file) failed" in results[1].content
    assert results[1].meta == {"skipped": True}  # shown as its own words in the REPL, not "interrupted"
    assert not (tmp_path / "b.py").exists()
    assert_valid_conversation(agent.history)


def test_a_read_only_call_repeated_a_third_time_is_not_run_again(tmp_path):
    same = ScriptedReply(tool_calls=[tc("search", pattern="nothing-here")])
    agent, model = make_agent(tmp_path, [same, same, same, same, same, ScriptedReply(text="ok")])
    events = list(agent.run_turn("find it"))
    results = [e.result for e in events if isinstance(e, ToolResultEvent)]
    assert results[0].ok and results[1].ok and not results[2].ok and "already called" in results[2].content
    assert events[-1].reason == "loop"  # the reminders are failures: three in a row stop the turn


def test_an_empty_reply_mid_task_gets_one_nudge(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    agent, model = make_agent(tmp_path, [ScriptedReply(tool_calls=[tc("read_file", path="a.txt")]),
                                         ScriptedReply(text=""), ScriptedReply(text="Done: read a.txt.")])
    events = list(agent.run_turn("read a.txt"))
    assert events[-1].final_text == "Done: read a.txt." and len(model.requests) == 3
    assert "reply was empty" in model.requests[2][-1].content


def test_a_text_call_to_an_invented_tool_gets_told_the_real_tools(tmp_path):
    reply = '```json\n{"name": "add_function", "arguments": {"file": "a.py"}}\n```'
    agent, model = make_agent(tmp_path, [ScriptedReply(text=reply), ScriptedReply(text="ok")])
    events = list(agent.run_turn("add a function"))
    result = [e.result for e in events if isinstance(e, ToolResultEvent)][0]
    assert not result.ok and "write_file" in result.content and events[-1].reason == "done"


def test_prose_mentioning_an_invented_tool_is_still_prose(tmp_path):
    reply = ('A call looks like {"name": "add_function", "arguments": {}} in the protocol, '
             'but nothing needs to change here, the code is already right.')
    agent, model = make_agent(tmp_path, [ScriptedReply(text=reply)])
    events = list(agent.run_turn("is it fine?"))
    assert not [e for e in events if isinstance(e, ToolResultEvent)] and events[-1].final_text == reply


def test_a_reply_announcing_a_call_gets_one_reminder(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    announce = ScriptedReply(text='I will now call edit_file to replace "x" with "y" in a.txt.')
    agent, model = make_agent(tmp_path, [ScriptedReply(tool_calls=[tc("read_file", path="a.txt")]),
                                         announce, announce])
    events = list(agent.run_turn("change x to y in a.txt"))
    assert len(model.requests) == 3 and "did not make it" in model.requests[2][-1].content
    assert events[-1].reason == "done" and events[-1].final_text.startswith("I will now call")  # said twice: it ends
    assert_valid_conversation(agent.history)


def test_files_the_request_names_but_the_turn_left_unchanged_get_one_reminder(tmp_path):
    from joe_agent.mentions import attacher

    (tmp_path / "a.py").write_text("N = 1\n")
    (tmp_path / "b.py").write_text("from a import N\n")
    agent, model = make_agent(tmp_path, [
        ScriptedReply(tool_calls=[tc("edit_file", path="a.py", old_text="N = 1", new_text="M = 1")]),
        ScriptedReply(text="Done."),
        ScriptedReply(tool_calls=[tc("edit_file", path="b.py", old_text="import N", new_text="import M")]),
        ScriptedReply(text="Done."),
    ])
    agent.attach = attacher(agent.registry.ctx.workspace, agent.registry.run)
    events = list(agent.run_turn("rename N to M in a.py and b.py"))
    reminder = model.requests[2][-1].content
    assert "You changed a.py" in reminder and "also names b.py" in reminder
    assert (tmp_path / "b.py").read_text() == "from a import M\n" and len(model.requests) == 4
    assert events[-1].final_text == "Done."


def test_a_question_about_a_named_file_is_not_nudged(tmp_path):
    from joe_agent.mentions import attacher

    (tmp_path / "a.py").write_text("N = 1\n")
    agent, model = make_agent(tmp_path, [ScriptedReply(text="It sets N to 1."), ScriptedReply(text="unused")])
    agent.attach = attacher(agent.registry.ctx.workspace, agent.registry.run)
    events = list(agent.run_turn("what does a.py do?"))
    assert events[-1].final_text == "It sets N to 1." and len(model.requests) == 1
    assert "--- a.py ---\nN = 1" in model.requests[0][-1].content


def test_two_failing_calls_in_turn_are_a_loop_too(tmp_path):
    shell = ScriptedReply(tool_calls=[tc("run_shell", command="exit 5")])
    listing = ScriptedReply(tool_calls=[tc("read_file", path="missing.txt")])
    agent, model = make_agent(tmp_path, [shell, listing, shell, listing, shell, listing, ScriptedReply(text="x")],
                              max_steps=12)
    events = list(agent.run_turn("check"))
    assert events[-1].reason == "loop" and len(model.requests) == 5  # the third `exit 5` stops it
    assert_valid_conversation(agent.history)
