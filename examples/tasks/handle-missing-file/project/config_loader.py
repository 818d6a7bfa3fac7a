import json

DEFAULTS = {"theme": "light", "autosave": True, "recent": []}


def load_settings(path="settings.json"):
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return {**DEFAULTS, **data}
