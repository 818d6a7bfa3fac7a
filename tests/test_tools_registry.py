"""The registry: schemas from signatures and docstrings, and one clear result for every bad
call (unknown tool, bad JSON, wrong types, missing and unexpected fields, tool crashes)."""
from __future__ import annotations

from pathlib import Path

import pytest

from joe_agent.errors import StoreError
from joe_agent.messages import ToolCall, ToolResult
from joe_agent.tools.permissions import Permissions
from joe_agent.tools.registry import Registry, ToolContext, ToolFailure, check_arguments, tool
from joe_agent.tools.workspace import PathRefused, Workspace

SIX = ["read_file", "write_file", "edit_file", "list_files", "search", "run_shell"]


@tool("read")
def sample(ctx: ToolContext, name: str, count: int, ratio: float | None = None, loud: bool = False) -> str:
    """Say hello a few times.

    More detail that is not part of the description.

    Args:
        name: who to greet
        count: how many times,
            at least one
        ratio: an optional float
        loud: shout it

    Returns:
        the greeting
    """
    if count == 99:
        raise ToolFailure("count 99 is not allowed")
    if count == 98:
        raise PathRefused("x is outside the project")
    if count == 97:
        raise StoreError("could not write y")
    if count == 96:
        raise ZeroDivisionError("a bug")
    if count == 95:
        raise KeyboardInterrupt
    text = " ".join([f"hi {name}"] * count)
    return ToolResult(text.upper(), meta={"n": count}) if loud else text + (f" r={ratio}" if ratio is not None else "")


@pytest.fixture()
def reg(tmp_path: Path) -> Registry:
    r = Registry(ToolContext(Workspace(tmp_path), Permissions("full-auto")))
    r.add(sample)
    return r


def run(reg: Registry, name: str, arguments=None, error: str = "") -> ToolResult:
    return reg.run(ToolCall(name, arguments if arguments is not None else {}, arguments_error=error))


def test_schema_from_signature_and_docstring() -> None:
    fn = sample.schema()["function"]
    assert fn["name"] == "sample" and fn["description"] == "Say hello a few times."
    props = fn["parameters"]["properties"]
    assert props["name"] == {"type": "string", "description": "who to greet"}
    assert props["count"] == {"type": "integer", "description": "how many times, at least one"}
    assert props["ratio"]["type"] == "number" and props["loud"]["type"] == "boolean"
    assert fn["parameters"]["required"] == ["name", "count"]
    assert "Returns" not in str(props) and "the greeting" not in str(props)


def test_unsupported_parameter_types_are_rejected_at_definition() -> None:
    with pytest.raises(TypeError):
        @tool()
        def bad(ctx, items: list) -> str:  # noqa: ARG001
            return ""


def test_default_registry_has_exactly_the_six_tools(tmp_path: Path) -> None:
    r = Registry(ToolContext(Workspace(tmp_path), Permissions()))
    assert r.names() == SIX
    schemas = r.schemas()
    assert [s["function"]["name"] for s in schemas] == SIX
    by_name = {s["function"]["name"]: s["function"]["parameters"] for s in schemas}
    assert by_name["read_file"]["required"] == ["path"]
    assert set(by_name["read_file"]["properties"]) == {"path", "start_line", "end_line"}
    assert by_name["edit_file"]["required"] == ["path", "old_text", "new_text"]
    assert by_name["list_files"]["required"] == [] and set(by_name["list_files"]["properties"]) == {"path", "pattern"}
    assert by_name["search"]["required"] == ["pattern"] and set(by_name["search"]["properties"]) == {"pattern", "path", "glob"}
    assert by_name["run_shell"]["required"] == ["command"] and by_name["run_shell"]["properties"]["timeout"]["type"] == "number"
    assert all(s["function"]["description"] for s in schemas)


def test_ok_call_and_tool_result_passthrough(reg: Registry) -> None:
    assert run(reg, "sample", {"name": "bo", "count": 2}).content == "hi bo hi bo"
    r = run(reg, "sample", {"name": "bo", "count": 1, "loud": True})
    assert r.content == "HI BO" and r.meta == {"n": 1}


def test_unknown_tool_lists_valid_names(reg: Registry) -> None:
    r = run(reg, "delete_everything")
    assert not r.ok and "Unknown tool 'delete_everything'" in r.content
    for name in SIX + ["sample"]:
        assert name in r.content


def test_bad_json_arguments(reg: Registry) -> None:
    r = run(reg, "sample", {}, error="Expecting ',' delimiter: line 1 column 12")
    assert not r.ok and "Expecting ','" in r.content and "name, count" in r.content


@pytest.mark.parametrize("args,expected", [
    ({"name": "bo", "count": "3"}, "hi bo hi bo hi bo"),
    ({"name": "bo", "count": 2.0}, "hi bo hi bo"),
    ({"name": "bo", "count": 1, "ratio": "0.5"}, "hi bo r=0.5"),
    ({"name": "bo", "count": 1, "ratio": 2}, "hi bo r=2.0"),
    ({"name": 7, "count": 1}, "hi 7"),
    ({"name": "bo", "count": 1, "ratio": None}, "hi bo"),
])
def test_lossless_coercions(reg: Registry, args: dict, expected: str) -> None:
    r = run(reg, "sample", args)
    assert r.ok and r.content == expected


@pytest.mark.parametrize("args,field,want", [
    ({"name": "bo", "count": "three"}, "count", "an integer"),
    ({"name": "bo", "count": 2.5}, "count", "an integer"),
    ({"name": "bo", "count": True}, "count", "an integer"),
    ({"name": ["bo"], "count": 1}, "name", "a string"),
    ({"name": {"x": 1}, "count": 1}, "name", "a string"),
    ({"name": "bo", "count": 1, "loud": "maybe"}, "loud", "a boolean"),
    ({"name": "bo", "count": 1, "ratio": "lots"}, "ratio", "a number"),
])
def test_wrong_types_name_field_and_type(reg: Registry, args: dict, field: str, want: str) -> None:
    r = run(reg, "sample", args)
    assert not r.ok and f"'{field}'" in r.content and want in r.content


def test_missing_and_unexpected_fields(reg: Registry) -> None:
    r = run(reg, "sample", {"name": "bo"})
    assert not r.ok and "missing" in r.content and "count" in r.content
    r = run(reg, "sample", {"name": "bo", "count": None})
    assert not r.ok and "missing" in r.content
    r = run(reg, "sample", {"name": "bo", "count": 1, "file_path": "x"})
    assert not r.ok and "unexpected" in r.content and "file_path" in r.content and "name (string)" in r.content
    r = run(reg, "read_file", {})
    assert not r.ok and "path" in r.content


def test_non_dict_arguments() -> None:
    t, problem = check_arguments(sample, ["bo", 1])
    assert t == {} and "JSON object" in problem


@pytest.mark.parametrize("count,text", [
    (99, "count 99 is not allowed"), (98, "outside the project"), (97, "could not write y"),
    (96, "sample failed unexpectedly: ZeroDivisionError: a bug"),
])
def test_tool_errors_become_results(reg: Registry, count: int, text: str) -> None:
    r = run(reg, "sample", {"name": "bo", "count": count})
    assert not r.ok and text in r.content


def test_keyboard_interrupt_passes_through(reg: Registry) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(reg, "sample", {"name": "bo", "count": 95})


def test_every_call_gets_exactly_one_result(reg: Registry) -> None:
    calls = [ToolCall("nope"), ToolCall("sample", {"count": 1}), ToolCall("sample", {}, arguments_error="bad"),
             ToolCall("sample", {"name": "x", "count": 96}), ToolCall("read_file", {"path": "../../etc/passwd"}),
             ToolCall("sample", {"name": "x", "count": 1})]
    results = [reg.run(c) for c in calls]
    assert [type(r) for r in results] == [ToolResult] * len(calls)
    assert [r.ok for r in results] == [False, False, False, False, False, True]
    assert all(isinstance(r.content, str) and r.content for r in results)


def test_add_extends_names_and_schemas(tmp_path: Path) -> None:
    r = Registry(ToolContext(Workspace(tmp_path), Permissions()), tools=[])
    assert r.names() == [] and r.schemas() == []
    r.add(sample)
    assert r.names() == ["sample"] and r.schemas()[0]["function"]["name"] == "sample"
