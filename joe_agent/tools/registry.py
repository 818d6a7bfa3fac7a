"""Tools as plain typed functions. The JSON schema the model sees comes from the signature
(types, defaults) and the docstring (description, `Args:` lines); `Registry.run` checks a
call against that schema and turns every failure into a result the model can read.
Every call gets exactly one result; only KeyboardInterrupt escapes.
"""
from __future__ import annotations

import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from joe_agent.errors import JoeError
from joe_agent.messages import ToolCall, ToolResult
from joe_agent.tools.permissions import Approval, ApprovalRequest, Permissions
from joe_agent.tools.workspace import PathRefused, Workspace

_JSON_TYPES: dict[type, str] = {str: "string", int: "integer", bool: "boolean", float: "number"}
_PY_TYPES = {v: k for k, v in _JSON_TYPES.items()}


@dataclass
class ToolContext:
    workspace: Workspace
    permissions: Permissions
    shell_timeout: float = 120.0
    output_cap: int = 16_000
    on_output: Callable[[str], None] | None = None  # live shell output for the REPL (optional)
    # content hash of each file as the model last saw it, to catch edits made behind its back
    seen: dict[Path, str] = field(default_factory=dict)


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict
    fn: Callable
    kind: Literal["read", "write", "shell"] = "read"

    def __call__(self, ctx: ToolContext, **arguments: Any) -> Any:
        return self.fn(ctx, **arguments)

    def schema(self) -> dict:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


class ToolFailure(Exception):
    """Raised inside a tool: becomes ToolResult(ok=False, content=str(e))."""


def tool(kind: str = "read", name: str | None = None) -> Callable[[Callable], Tool]:
    """Decorator: turn `fn(ctx, arg: type, ...)` into a Tool with a schema."""

    def wrap(fn: Callable) -> Tool:
        description, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        return Tool(name or fn.__name__, description, _parameters(fn, arg_docs), fn, kind)  # type: ignore[arg-type]

    return wrap


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    paragraphs = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)
    description = " ".join(paragraphs[0].split()) if paragraphs[0] else ""
    args: dict[str, str] = {}
    in_args, current = False, ""
    for line in doc.splitlines():
        stripped = line.strip()
        if re.fullmatch(r"(Args|Arguments|Parameters):", stripped):
            in_args = True
            continue
        if not in_args:
            continue
        m = re.match(r"^\s+(\w+)\s*(?:\([^)]*\))?:\s*(.*)$", line)
        if m and (not current or len(line) - len(line.lstrip()) <= _indent_of_first_arg(doc)):
            current = m.group(1)
            args[current] = m.group(2).strip()
        elif stripped and current and line[:1].isspace():
            args[current] = (args[current] + " " + stripped).strip()
        elif stripped:
            in_args = False  # a new section (Returns:, etc.) ends the Args block
    return description, args


def _indent_of_first_arg(doc: str) -> int:
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(r"\s*(Args|Arguments|Parameters):\s*", line):
            for nxt in lines[i + 1:]:
                if nxt.strip():
                    return len(nxt) - len(nxt.lstrip())
    return 0


def _param_type(hint: Any) -> tuple[type, bool]:
    """(base type, optional) for str/int/bool/float, `X | None` and Optional[X]."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and args[0] in _JSON_TYPES:
            return args[0], True
    elif hint in _JSON_TYPES:
        return hint, False
    raise TypeError(f"tool parameters must be str, int, bool or float (optionally | None), not {hint!r}")


def _parameters(fn: Callable, arg_docs: dict[str, str]) -> dict:
    hints = typing.get_type_hints(fn)
    params = list(inspect.signature(fn).parameters.values())[1:]  # the first one is ctx
    props: dict[str, dict] = {}
    required: list[str] = []
    for p in params:
        base, optional = _param_type(hints.get(p.name, str))
        prop: dict[str, Any] = {"type": _JSON_TYPES[base]}
        if p.name in arg_docs:
            prop["description"] = arg_docs[p.name]
        props[p.name] = prop
        if not optional and p.default is inspect.Parameter.empty:
            required.append(p.name)
    return {"type": "object", "properties": props, "required": required}


# ---- checking arguments ---------------------------------------------------------------------

def _coerce(value: Any, want: str) -> tuple[bool, Any]:
    """(ok, value) converting only when nothing is lost: "5" -> 5, 5.0 -> 5, "true" -> True."""
    if want == "string":
        if isinstance(value, str):
            return True, value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, str(value)
        return False, value
    if want == "integer":
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return True, int(value)
        return False, value
    if want == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        if isinstance(value, str):
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return False, value
    if isinstance(value, bool):
        return True, value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return True, value.strip().lower() == "true"
    return False, value


def check_arguments(t: Tool, arguments: Any) -> tuple[dict[str, Any], str]:
    """(clean arguments, "") or ({}, a message naming what is wrong and what is expected)."""
    props, required = t.parameters["properties"], t.parameters["required"]
    expected = ", ".join(f"{n} ({p['type']}{'' if n in required else ', optional'})" for n, p in props.items())
    if not isinstance(arguments, dict):
        return {}, f"{t.name} takes a JSON object of arguments: {expected or 'none'}"
    unexpected = sorted(k for k in arguments if k not in props)
    if unexpected:
        return {}, f"{t.name} got unexpected argument(s) {', '.join(unexpected)}; it takes: {expected or 'none'}"
    clean: dict[str, Any] = {}
    for key, value in arguments.items():
        if value is None:
            continue  # null means "not given"; a required field is reported below
        ok, converted = _coerce(value, props[key]["type"])
        if not ok:
            got = type(value).__name__ if not isinstance(value, (dict, list)) else ("object" if isinstance(value, dict) else "array")
            want = props[key]["type"]
            article = "an" if want[0] in "aeiou" else "a"
            return {}, f"{t.name}: argument '{key}' must be {article} {want}, got {got} {_short(value)}"
        clean[key] = converted
    missing = [n for n in required if n not in clean]
    if missing:
        return {}, f"{t.name} is missing required argument(s) {', '.join(missing)}; it takes: {expected}"
    return clean, ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- permissions helper for tools -----------------------------------------------------------

def ask(ctx: ToolContext, req: ApprovalRequest) -> ToolResult | None:
    """None when the action may go ahead, else the denied result to return to the model."""
    approval: Approval = ctx.permissions.request(req)
    if approval.granted:
        return None
    what = f"{req.tool} on {req.target}" if req.action == "write" else f"the command `{req.target}`"
    reason = approval.message.strip() or "no reason given"
    meta: dict[str, Any] = {"denied": True}
    if req.action == "write":
        meta.update(path=req.target, diff=req.detail)
    else:
        meta.update(exit_code=None, timed_out=False)
    return ToolResult(f"The user denied {what}: {reason}", ok=False, meta=meta)


# ---- the registry ---------------------------------------------------------------------------

def default_tools() -> list[Tool]:
    from joe_agent.tools.files import edit_file, list_files, read_file, search, write_file
    from joe_agent.tools.shell import run_shell

    return [read_file, write_file, edit_file, list_files, search, run_shell]


class Registry:
    """The tools offered to the model, and the one place their calls are run."""

    def __init__(self, ctx: ToolContext, tools: list[Tool] | None = None) -> None:
        self.ctx = ctx
        self._tools: dict[str, Tool] = {}
        for t in default_tools() if tools is None else tools:
            self.add(t)

    def add(self, tool: Tool) -> None:
        self._tools[tool.name] = tool

    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def schemas(self) -> list[dict]:
        return [t.schema() for t in self._tools.values()]

    def run(self, call: ToolCall) -> ToolResult:
        """Run one call. Never raises except KeyboardInterrupt."""
        try:
            return self._run(call)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # the boundary: a tool bug must still give the model one result
            return ToolResult(f"{call.name} failed unexpectedly: {type(e).__name__}: {e}", ok=False)

    def _run(self, call: ToolCall) -> ToolResult:
        t = self._tools.get(call.name)
        if t is None:
            return ToolResult(f"Unknown tool '{call.name}'. Valid tools: {', '.join(self._tools)}.", ok=False)
        if call.arguments_error:
            params = ", ".join(t.parameters["properties"]) or "none"
            return ToolResult(f"Could not read the arguments for {t.name}: {call.arguments_error}. "
                              f"Send a JSON object with: {params}.", ok=False)
        args, problem = check_arguments(t, call.arguments)
        if problem:
            return ToolResult(problem, ok=False)
        try:
            out = t.fn(self.ctx, **args)
        except (ToolFailure, PathRefused, JoeError) as e:
            return ToolResult(str(e), ok=False)
        if isinstance(out, ToolResult):
            return out
        return ToolResult(str(out))
