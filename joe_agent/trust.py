"""Which projects the person trusts: a project's own `.joe/skills/` are used only after the
person said yes once, since a cloned repository could carry instructions for the agent."""
from __future__ import annotations

import json
from pathlib import Path

from joe_agent.memory.store import atomic_write, locked

FILE = "trusted_projects.json"


SKILLS_FILE = "trusted_skills.json"


def _load(home: Path, name: str) -> list[str]:
    """A trust list: a JSON list of strings (missing or damaged: nothing is trusted)."""
    try:
        data = json.loads((home / name).read_text(encoding="utf-8"))
        return [str(p) for p in data] if isinstance(data, list) else []
    except (OSError, ValueError):
        return []


def _add(home: Path, name: str, key: str, replaces: str = "") -> None:
    """Add `key` to a trust list under its lock, dropping entries that start with `replaces`."""
    path = home / name
    with locked(path):
        items = [k for k in _load(home, name) if not (replaces and k.startswith(replaces))]
        if key not in items:
            atomic_write(path, json.dumps(sorted([*items, key]), indent=1) + "\n")


def is_trusted(home: Path, root: Path) -> bool:
    return str(Path(root).resolve()) in _load(home, FILE)


def trust(home: Path, root: Path) -> None:
    _add(home, FILE, str(Path(root).resolve()))


def needs_trust(home: Path, root: Path) -> bool:
    """A project with its own skills that the person has not trusted yet."""
    folder = Path(root) / ".joe" / "skills"
    return folder.is_dir() and any(folder.iterdir()) and not is_trusted(home, root)


def _skill_key(name: str, text: str) -> str:
    import hashlib

    return f"{name}:{hashlib.sha256(text.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}"


def skill_trusted(home: Path, name: str, text: str) -> bool:
    """Trust covers one exact text: an edit after `joe skills trust` is checked again."""
    return _skill_key(name, text) in _load(home, SKILLS_FILE)


def trust_skill(home: Path, name: str, text: str) -> None:
    _add(home, SKILLS_FILE, _skill_key(name, text), replaces=name + ":")
