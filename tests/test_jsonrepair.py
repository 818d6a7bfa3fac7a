"""The lenient reading of a tool call's JSON (models/jsonrepair.py)."""
from __future__ import annotations

import json

import pytest

from joe_agent.models.jsonrepair import repair_object


@pytest.mark.parametrize("text, value", [
    ('{"a": ""port": 8000,", "b": 1}', {"a": '"port": 8000,', "b": 1}),
    ('{"content": "x = {"k": [1, 2]}\nprint("hi")"}', {"content": 'x = {"k": [1, 2]}\nprint("hi")'}),
    ('{"s": "tab\there"}', {"s": "tab\there"}),
    ('{"s": "already \\"escaped\\""}', {"s": 'already "escaped"'}),
    ('{"list": ["a", "b"], "n": {"m": "v"}}', {"list": ["a", "b"], "n": {"m": "v"}}),
    ('  {"a": "said "no" twice"}  and then prose', {"a": 'said "no" twice'}),
])
def test_reads_what_the_model_meant(text, value):
    got = repair_object(text)
    assert got is not None and got[0] == value
    assert text[:got[1]].rstrip().endswith("}") and not text[got[1]:].startswith("}")


def test_valid_json_reads_the_same_as_json():
    text = json.dumps({"path": "a.py", "old_text": 'x = "1"\n', "new_text": "x = '2'"})
    assert repair_object(text) == (json.loads(text), len(text))


@pytest.mark.parametrize("text", [
    '{"a": "never closed',
    '{"a": 1]',
    '[1, 2]',
    'prose {"a": 1}',
    '{"a": "x"',
])
def test_what_has_no_reading_is_none(text):
    assert repair_object(text) is None
