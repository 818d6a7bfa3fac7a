"""Reading a tool call's JSON the way a small model meant it.

The mistakes small models make when they write a call as text are few and regular: a quote
inside a string value left unescaped (`"old_text": ""port": 8000"` for a JSON file), a raw
newline or tab inside a string, and the last closing brace of a wrapped call left out. They
break `json.loads`, and each has one sensible reading: inside a string, a quote ends it only
where the JSON around it goes on (`:` after a key; `}`, `]` or `, "next_key":` after a value),
anything else is part of the text; braces still open where the text ends are closed.

Used only on a block that already starts like a call to one of our tools and failed strict
parsing; what it cannot read stays a failed call that the model is told about."""
from __future__ import annotations

import json
import re
from typing import Any

_KEY_END = re.compile(r"\s*:")
_VALUE_END = re.compile(r'\s*(?:\}|,\s*"[A-Za-z_][\w-]*"\s*:)')
_ITEM_END = re.compile(r"\s*(?:\]|,)")


def repair_object(text: str) -> tuple[Any, int] | None:
    """The JSON object at the start of `text` (after whitespace), read leniently, and the index
    just past it; None when even that reading fails."""
    start = len(text) - len(text.lstrip())
    if not text.startswith("{", start):
        return None
    out: list[str] = []
    stack: list[str] = []
    in_string = is_key = expect_key = False
    i = start
    while i < len(text):
        c = text[i]
        if in_string:
            if c == "\\" and i + 1 < len(text):
                out.append(text[i:i + 2])
                i += 2
                continue
            if c == '"':
                end = _KEY_END if is_key else (_VALUE_END if stack[-1] == "{" else _ITEM_END)
                if end.match(text, i + 1):
                    in_string = False
                    out.append(c)
                else:
                    out.append('\\"')
            else:
                out.append(c)
        elif c == '"':
            in_string, is_key = True, stack[-1] == "{" and expect_key
            out.append(c)
        elif c in "{[":
            stack.append(c)
            expect_key = c == "{"
            out.append(c)
        elif c in "}]":
            if not stack or (stack.pop() == "{") != (c == "}"):
                return None
            out.append(c)
            if not stack:
                try:
                    return json.loads("".join(out), strict=False), i + 1  # strict=False: raw newlines
                except ValueError:
                    return None
        else:
            if c == ",":
                expect_key = stack[-1] == "{"
            elif c == ":":
                expect_key = False
            out.append(c)
        i += 1
    if stack and not in_string and not expect_key:
        # the text ended with braces still open: small models drop the last "}" of a wrapped
        # call. Closed only after a complete value, never inside a string (a reply cut off
        # mid-content stays unreadable, so a half-written file is never written).
        out.extend("}" if b == "{" else "]" for b in reversed(stack))
        try:
            return json.loads("".join(out), strict=False), len(text)
        except ValueError:
            return None
    return None
