"""The tool protocol for models without native tool calls: how to write a call as text, and
the tools there are, as one deterministic block of the system prompt."""
from __future__ import annotations

from typing import Any


def tool_protocol_prompt(tool_schemas: list[dict]) -> str:
    """How to call tools in text, and which tools there are. Deterministic for the same
    schemas, so the system prompt (and the server's KV cache) stays byte-identical."""
    lines = [
        "# Tools",
        "To use a tool, write one call in <tool_call> tags, and nothing after it:",
        "<tool_call>",
        '{"name": "TOOL_NAME", "arguments": {"PARAMETER": "VALUE"}}',
        "</tool_call>",
        "The result comes back in the next message. When the task is done, answer in plain text",
        "without any tool call.",
        "",
        "Available tools:",
    ]
    for schema in tool_schemas:
        lines.extend(_describe_tool(schema))
    return "\n".join(lines) + "\n"


def _describe_tool(schema: dict) -> list[str]:
    fn = schema.get("function", schema)
    params = fn.get("parameters") or {}
    props: dict[str, Any] = params.get("properties") or {}
    required = set(params.get("required") or [])
    sig = ", ".join(f"{k}{'' if k in required else '?'}: {_type_name(v)}" for k, v in props.items())
    desc = " ".join(str(fn.get("description", "")).split())
    lines = [f"- {fn.get('name', '?')}({sig})" + (f": {desc}" if desc else "")]
    for key, prop in props.items():
        pdesc = " ".join(str(prop.get("description", "")).split())
        if pdesc:
            lines.append(f"    {key}: {pdesc}")
    return lines


def _type_name(prop: dict) -> str:
    kind = prop.get("type", "any")
    if isinstance(kind, list):
        kind = "|".join(str(k) for k in kind)
    if kind == "array" and isinstance(prop.get("items"), dict):
        return f"array of {_type_name(prop['items'])}"
    return str(kind)
