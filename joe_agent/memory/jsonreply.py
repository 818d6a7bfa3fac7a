"""Reading a JSON object out of a model's reply: small models wrap it in prose or fences."""
from __future__ import annotations

import json
import re


def first_object(text: str, key: str) -> dict | None:
    """The first JSON object in `text` (``` fences ignored) that has `key`, else None."""
    cleaned = re.sub(r"```(?:json)?", "", text or "")
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", cleaned):
        try:
            obj, _ = decoder.raw_decode(cleaned, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict) and key in obj:
            return obj
    return None
