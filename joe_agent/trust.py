"""Which projects the person trusts: a project's own `.joe/skills/` are used only after the
person said yes once, since a cloned repository could carry instructions for the agent."""
from __future__ import annotations

import json
from pathlib import Path

from joe_agent.memory.store import atomic_write, locked

FILE = "trusted_projects.json"


def _load(home: Path) -> list[str]:
    try:
        data = json.loads((home / FILE).read_text(encoding="utf-8"))
        return [str(p) for p in data] if isinstance(data, list) else []
    except (OSError, ValueError):
        return []


def is_trusted(home: Path, root: Path) -> bool:
    return str(Path(root).resolve()) in _load(home)


def trust(home: Path, root: Path) -> None:
    path = home / FILE
    with locked(path):
        items = _load(home)
        key = str(Path(root).resolve())
        if key not in items:
            atomic_write(path, json.dumps(sorted([*items, key]), indent=1) + "\n")


def needs_trust(home: Path, root: Path) -> bool:
    """A project with its own skills that the person has not trusted yet."""
    folder = Path(root) / ".joe" / "skills"
    return folder.is_dir() and any(folder.iterdir()) and not is_trusted(home, root)


SKILLS_FILE = "trusted_skills.json"


def _skill_key(name: str, text: str) -> str:
    import hashlib

    return f"{name}:{hashlib.sha256(text.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}"


def _load_skills(home: Path) -> list[str]:
    try:
        data = json.loads((home / SKILLS_FILE).read_text(encoding="utf-8"))
        return [str(x) for x in data] if isinstance(data, list) else []
    except (OSError, ValueError):
        return []


def skill_trusted(home: Path, name: str, text: str) -> bool:
    """Trust covers one exact text: an edit after `joe skills trust` is checked again."""
    return _skill_key(name, text) in _load_skills(home)


def trust_skill(home: Path, name: str, text: str) -> None:
    path = home / SKILLS_FILE
    with locked(path):
        items = [k for k in _load_skills(home) if not k.startswith(name + ":")]
        atomic_write(path, json.dumps(sorted([*items, _skill_key(name, text)]), indent=1) + "\n")
