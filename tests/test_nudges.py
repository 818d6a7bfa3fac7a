"""Which replies without a tool call get a reminder instead of ending the turn (nudges.py)."""
from __future__ import annotations

import pytest

from joe_agent.nudges import Progress, nudge_for

TOOLS = {"read_file", "edit_file", "write_file", "run_shell"}


@pytest.mark.parametrize("text", [
    "I will continue the task with the next tool call.",
    "I'll now call edit_file on shop.py.",
    "Let me read the file first.",
    "Now I call read_file on config.json",
    "Next I run_shell the tests.",
    "To finish, call edit_file on app.py.",
])
def test_announcements_are_reminded_once(text):
    p = Progress(calls=1)
    assert "did not make it" in nudge_for(text, p, TOOLS)
    assert nudge_for(text, p, TOOLS) is None  # said again: the turn ends


@pytest.mark.parametrize("text", [
    "Done.",
    "Fixed the off-by-one in lists.py.",
    "The function returns the sum of a and b.",
    "I changed the port to 9090.",
    "I will " + "explain at length. " * 30,  # a long answer is an answer
])
def test_answers_end_the_turn(text):
    assert nudge_for(text, Progress(calls=1), TOOLS) is None


def test_empty_reply_before_any_call_is_not_nudged_but_after_one_it_is():
    assert nudge_for("", Progress(), TOOLS) is None
    assert "reply was empty" in nudge_for("  ", Progress(calls=2), TOOLS)


def test_unchanged_named_files_only_after_some_change():
    p = Progress(named=["a.py", "./b.py"], calls=1)
    assert nudge_for("Done.", p, TOOLS) is None  # nothing changed: a question, or nothing to do
    p.note_change("a.py")
    assert "also names ./b.py" in nudge_for("Done.", p, TOOLS)
    p2 = Progress(named=["a.py", "./b.py"], calls=2)
    p2.note_change("a.py"), p2.note_change("b.py")
    assert nudge_for("Done.", p2, TOOLS) is None
