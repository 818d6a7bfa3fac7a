"""Tool calls written as text, by models that do not (or not reliably) use native tool calls.

Small local coder models (qwen2.5-coder above all) answer a tools request with the call as
text. Forms recognised, for names the caller says are ours:

- a fenced block (```json, ```tool_call or no language) holding `{"name", "arguments"}`
  ("parameters" accepted for "arguments"; arguments may be a JSON string), a list of such
  objects, or several of them one after another;
- a bare JSON object (or list) of that shape starting on its own line;
- `<tool_call>{...}</tool_call>` tags (Hermes / qwen2.5 style);
- `<function=name><parameter=key>value</parameter></function>` (qwen3-coder style); the
  values stay strings, since no schema is at hand here.

The rule that keeps prose about code from being executed: a block is a call only when
1. its JSON has exactly the call shape (a name, plus an arguments/parameters object or JSON
   string; nothing else but an optional id) and the parameters are not a JSON schema,
2. the name is one of ours, and
3. it is the reply's action: after it comes only whitespace or a short closing sentence,
   and between several calls only short connecting text. A block followed by more
   explanation, or by a sentence that goes on in lower case ("...``` and then you could"),
   is an illustration, not an action; so is a block introduced as an example ("For example:").
Schema echoes inside `<tools>...</tools>` are never calls, and are left out of the prose.
A fenced or tagged block that starts like a call to one of our tools but is broken JSON is a
call with `arguments_error` set (it fails, and the model sees why), under the same rule.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from joe_agent.messages import ToolCall
from joe_agent.models.jsonrepair import repair_object

CLOSING_MAX_CHARS = 160  # "This will show the file." fits; another paragraph of explanation does not
CLOSING_MAX_LINES = 2
CALL_LANGS = {"", "json", "json5", "jsonc", "tool_call", "tool", "tool_code", "function_call"}
_ID_KEYS = {"id", "type"}  # harmless extras some models add next to name/arguments

_FENCE_OPEN = re.compile(r"(?m)^[ \t]*(`{3,}|~{3,})[ \t]*([\w.+-]*)(.*)$")
_TOOLS_ECHO = re.compile(r"(?s)<tools>.*?(?:</tools>|\Z)")
_TAG = re.compile(r"(?s)<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)")
_FUNCTION = re.compile(r"(?s)(?:<tool_call>\s*)?<function=([\w.-]+)>(.*?)(?:</function>\s*(?:</tool_call>)?|\Z)")
_PARAM = re.compile(r"(?s)<parameter=([\w.-]+)>\n?(.*?)\n?(?:</parameter>|(?=<parameter=)|\Z)")
_CALL_START = re.compile(r'\s*\{\s*"name"\s*:\s*"([\w.-]+)"\s*,\s*"(?:arguments|parameters)"\s*:')
_EXAMPLE_CUE = re.compile(
    r"(?i)\b(for example|example|e\.g\.|for instance|would look like|might look like|could look like|"
    r"such as|syntax|format(?:ted)? (?:is|like))\b[^.!?\n]*[:.]?\s*$"
)


@dataclass
class TextCallParse:
    calls: list[ToolCall] = field(default_factory=list)  # source="text"
    prose: str = ""  # the reply with the call blocks removed: what the person sees


@dataclass
class _Block:
    start: int
    end: int
    calls: list[ToolCall]


def parse_text_calls(text: str, tool_names: set[str]) -> TextCallParse:
    """Find the tool calls a reply wrote as text (see the module docs for the rule)."""
    if not text or not tool_names:
        return TextCallParse([], text or "")
    echoes, echo_calls = _split_echoes(text, tool_names)
    blocks = sorted(_find_blocks(text, tool_names, echoes + [(b.start, b.end) for b in echo_calls]) + echo_calls,
                    key=lambda b: b.start)
    accepted = _action_blocks(text, blocks, echoes)
    calls = [c for b in accepted for c in b.calls]
    if not calls:
        return TextCallParse([], text)
    for i, call in enumerate(calls):
        call.id = call.id or f"call_text_{i}"
    cut = sorted([(b.start, b.end) for b in accepted] + echoes)
    return TextCallParse(calls, _remove(text, cut))


# ---- finding candidate blocks -------------------------------------------------------------


def _split_echoes(text: str, names: set[str]) -> tuple[list[tuple[int, int]], list[_Block]]:
    """`<tools>` spans that only echo schemas, and those that hold calls instead: a small model
    imitating the template's tool list writes `<tools>{"name": "read_file", "arguments":
    {...}}</tools>` (bare, or wrapped as {"type": "function", "function": {...}}) as its call.
    Such a block often lists a whole plan (read, edit, write) written before seeing any file;
    only its first call is taken, so the model sees that result before it goes on."""
    echoes: list[tuple[int, int]] = []
    calls: list[_Block] = []
    for m in _TOOLS_ECHO.finditer(text):
        found = _calls_in_echo(m.group(0), names)
        if found:
            calls.append(_Block(m.start(), m.end(), found[:1]))
        else:
            echoes.append((m.start(), m.end()))
    return echoes, calls


def _calls_in_echo(block: str, names: set[str]) -> list[ToolCall]:
    body = re.sub(r"</?tools>", "\n", block)
    decoder, pos, calls = json.JSONDecoder(), 0, []
    while (start := _next_value(body, pos)) is not None:
        try:
            value, pos = decoder.raw_decode(body, start)
        except ValueError:
            repaired = repair_object(body[start:])
            if repaired is None:
                break
            value, pos = repaired[0], start + repaired[1]
        if isinstance(value, dict) and isinstance(value.get("function"), dict) and value.get("type") == "function":
            value = value["function"]
        call = _call_from_object(value, names)
        if call is None:
            return []  # a schema (or anything else) in the block: an echo, not calls
        calls.append(call)
    return calls


def _next_value(body: str, pos: int) -> int | None:
    m = re.compile(r"[\[{]").search(body, pos)
    return m.start() if m else None


def _find_blocks(text: str, names: set[str], echoes: list[tuple[int, int]]) -> list[_Block]:
    taken: list[tuple[int, int]] = list(echoes)
    blocks: list[_Block] = []
    for start, end, lang, body in _fences(text):
        if _inside(start, echoes):
            continue
        taken.append((start, end))
        calls = _calls_from_tags(body, names) if "<function=" in body or "<tool_call>" in body else None
        if calls is None and lang.lower() in CALL_LANGS:
            calls = _calls_from_json_text(body, names)
        if calls:
            blocks.append(_Block(start, end, calls))
    for pattern, parse in ((_FUNCTION, _calls_from_function), (_TAG, _calls_from_tag)):
        for m in pattern.finditer(text):
            if _inside(m.start(), taken):
                continue
            taken.append((m.start(), m.end()))
            calls = parse(m, names)
            if calls:
                blocks.append(_Block(m.start(), m.end(), calls))
    blocks.extend(_bare_json_blocks(text, names, taken))
    return sorted(blocks, key=lambda b: b.start)


def _fences(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, language, body) of each fenced block; one-line ```json {...}``` included,
    an unclosed last fence runs to the end of the text."""
    out, pos = [], 0
    while (m := _FENCE_OPEN.search(text, pos)) is not None:
        fence, lang, rest = m.group(1), m.group(2), m.group(3).strip()
        if rest.endswith(fence) and rest[:1] in "{[<" and rest:
            out.append((m.start(), m.end(), lang, rest[: -len(fence)]))
            pos = m.end()
            continue
        close = re.compile(rf"(?m)^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$").search(text, m.end())
        end = close.end() if close else len(text)
        body = (rest if rest[:1] in "{[<" else "") + text[m.end():close.start() if close else len(text)]
        out.append((m.start(), end, lang, body))
        pos = max(end, m.end() + 1)
    return out


def _bare_json_blocks(text: str, names: set[str], taken: list[tuple[int, int]]) -> list[_Block]:
    """JSON objects or lists that start a line, outside fences and tags."""
    decoder = json.JSONDecoder()
    out: list[_Block] = []
    for m in re.finditer(r"(?m)^[ \t]*([\[{])", text):
        start = m.start(1)
        if _inside(start, taken) or (out and start < out[-1].end):
            continue
        try:
            value, end = _decode_maybe_doubled(decoder, text, start)
        except ValueError as e:
            broken = _broken_call(text[start:], names, e)
            if broken is not None:  # unfenced, like the fenced case: a failed call, not the answer
                out.append(_Block(start, len(text), [broken]))
                break
            continue
        calls = _calls_from_value(value, names)
        if calls:
            out.append(_Block(start, end, calls))
    return out


def _decode_maybe_doubled(decoder: json.JSONDecoder, text: str, start: int) -> tuple[Any, int]:
    """raw_decode, also reading `{{"name": ..., "arguments": {...}}}`: qwen2.5's GGUF chat
    template shows its call format with doubled outer braces, and small models copy them."""
    if text.startswith("{{", start):
        try:
            value, end = decoder.raw_decode(text, start + 1)
        except ValueError:
            value, end = None, -1
        if isinstance(value, dict) and text.startswith("}", end):
            return value, len(text) - len(text[end:].lstrip("}"))  # it may add one more "}" than it opened
    return decoder.raw_decode(text, start)


def _calls_from_tags(body: str, names: set[str]) -> list[ToolCall] | None:
    calls: list[ToolCall] = []
    for pattern, parse in ((_FUNCTION, _calls_from_function), (_TAG, _calls_from_tag)):
        for m in pattern.finditer(body):
            found = parse(m, names)
            if not found:
                return None
            calls.extend(found)
        if calls:
            return calls
    return None


def _calls_from_tag(m: re.Match, names: set[str]) -> list[ToolCall]:
    return _calls_from_json_text(m.group(1), names)


def _calls_from_function(m: re.Match, names: set[str]) -> list[ToolCall]:
    name = m.group(1)
    if name not in names:
        return []
    args = {p.group(1): p.group(2) for p in _PARAM.finditer(m.group(2))}
    return [ToolCall(name=name, arguments=args, source="text")]


def _calls_from_json_text(body: str, names: set[str]) -> list[ToolCall]:
    """One JSON value, or several in a row (one per line); every one must be a call."""
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    pos, body = 0, body.strip()
    while pos < len(body):
        try:
            value, pos = decoder.raw_decode(body, pos)
        except ValueError as e:
            broken = _broken_call(body[pos:], names, e)
            return [*calls, broken] if broken else []
        found = _calls_from_value(value, names)
        if not found:
            return []
        calls.extend(found)
        while pos < len(body) and body[pos] in " \t\r\n,;":
            pos += 1
    return calls


def _broken_call(body: str, names: set[str], err: ValueError) -> ToolCall | None:
    """A block that starts like a call to one of our tools but is not valid JSON (a quote
    left unescaped, say) is a failed call: the model is told why and can retry, where
    dropping it would end the turn on a reply that did nothing."""
    m = _CALL_START.match(body)
    if m is None or m.group(1) not in names:
        return None
    repaired = repair_object(body)
    call = _call_from_object(repaired[0], names) if repaired else None
    if call is not None:
        return call
    return ToolCall(name=m.group(1), source="text", arguments_error=f"the tool call is not valid JSON: {err}")


def _calls_from_value(value: Any, names: set[str]) -> list[ToolCall]:
    items = value if isinstance(value, list) else [value]
    calls = [_call_from_object(v, names) for v in items]
    if not items or any(c is None for c in calls):
        return []
    return [c for c in calls if c is not None]


def _call_from_object(obj: Any, names: set[str]) -> ToolCall | None:
    """A ToolCall when `obj` has exactly the call shape and an offered name, else None."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    arg_keys = [k for k in ("arguments", "parameters") if k in obj]
    if len(arg_keys) != 1 or set(obj) - {"name", arg_keys[0]} - _ID_KEYS:
        return None
    if obj.get("type", "function") != "function" or obj["name"] not in names:
        return None
    raw = obj[arg_keys[0]]
    call = ToolCall(name=obj["name"], id=str(obj.get("id") or ""), source="text")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            call.arguments_error = f"arguments are not valid JSON: {e}"
            return call
    if not isinstance(raw, dict):
        if raw is None or isinstance(raw, (list, int, float, bool)):
            call.arguments_error = f"arguments must be a JSON object, got {type(raw).__name__}"
            return call
        return None
    if _is_schema(raw):
        return None
    call.arguments = raw
    return call


def _is_schema(args: dict[str, Any]) -> bool:
    """`{"type": "object", "properties": {...}}`: a parameters schema echoed, not values."""
    return args.get("type") == "object" and isinstance(args.get("properties"), dict)


# ---- position: is the block the reply's action? -------------------------------------------


def _action_blocks(text: str, blocks: list[_Block], echoes: list[tuple[int, int]]) -> list[_Block]:
    """The trailing run of blocks separated only by short text, ending the reply."""
    accepted: list[_Block] = []
    tail_end = len(text)
    for block in reversed(blocks):
        gap = _without(text, block.end, tail_end, echoes)
        if not _is_short(gap) or (not accepted and gap.strip()[:1].islower()):
            break  # more explanation follows, or the sentence goes on ("... and you could"): prose
        accepted.append(block)
        tail_end = block.start
    accepted.reverse()
    if accepted:
        lead = _without(text, 0, accepted[0].start, echoes).rstrip()
        last_line = lead.splitlines()[-1] if lead else ""
        if _EXAMPLE_CUE.search(last_line):
            return []  # "for example:" introduces an illustration, not an action
    return accepted


def _is_short(gap: str) -> bool:
    gap = gap.strip()
    if not gap:
        return True
    if "```" in gap or "{" in gap:
        return False
    return len(gap) <= CLOSING_MAX_CHARS and len(gap.splitlines()) <= CLOSING_MAX_LINES


# ---- small helpers -------------------------------------------------------------------------


def _inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= pos < b for a, b in spans)


def _without(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> str:
    """text[start:end] with the given spans (tool schema echoes) cut out."""
    return _remove(text[start:end], [(max(a, start) - start, min(b, end) - start) for a, b in spans if a < end and b > start],
                   tidy=False)


def _remove(text: str, spans: list[tuple[int, int]], tidy: bool = True) -> str:
    out, pos = [], 0
    for a, b in sorted(spans):
        if a >= pos:
            out.append(text[pos:a])
            pos = b
        elif b > pos:
            pos = b
    out.append(text[pos:])
    joined = "".join(out)
    return re.sub(r"\n{3,}", "\n\n", joined).strip() if tidy else joined
