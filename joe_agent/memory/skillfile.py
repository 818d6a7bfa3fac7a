"""One skill file: the Skill model, parsing (both formats), rendering, and the in-place edit of
the ledger's two sections.

Two formats load (DESIGN.md "Skill format"): Agent Skills (`<name>/SKILL.md` with YAML
frontmatter) and the seed's plain `<name>.md` (`# Skill:` and sections, no frontmatter). The
parser is lenient about spacing, CRLF, extra sections and unknown keys, because people edit
these files by hand; only a file it cannot make sense of raises SkillParseError. Softer
findings come back as SkillProblem warnings and hints.
"""
from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from joe_agent.errors import JoeError

DESCRIPTION_MAX = 1024  # the Agent Skills limit
ORIGINS = ("synthesized", "hand", "imported")
KNOWN_KEYS = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")
# section heading (normalised) -> the field it fills; other sections are kept as they are
SECTION_FIELDS = {"trigger": "triggers", "triggers": "triggers", "steps": "steps", "step": "steps",
                  "procedure": "steps", "pitfalls": "pitfalls", "pitfall": "pitfalls",
                  "gotchas": "pitfalls", "last used": "last_used", "success rate": "success_rate"}
STATS_TITLES = {"last_used": "Last Used", "success_rate": "Success Rate"}

_NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_HEADING_RE = re.compile(r"^ {0,3}(#{1,6})(?=[^#]|$)\s*(.*?)[\s#]*$")
_ITEM_RE = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+(.*)$")
_QUOTED_RE = re.compile(r'"([^"]+)"|“([^”]+)”|\'([^\']+)\'|`([^`]+)`')
_FENCE_RE = re.compile(r"^\s{0,3}(```|~~~)")


class SkillParseError(JoeError):
    """The file cannot be read as a skill; `line` is 1-based in the file when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class NotASkill(SkillParseError):
    """A Markdown file beside the skills that is not one (a README): ignored quietly."""


@dataclass
class SkillProblem:
    path: Path
    line: int | None
    message: str
    severity: str  # "error" (skipped) | "warning" (loaded) | "hint" (loaded, a suggestion)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.severity}: {self.message}"


@dataclass
class Skill:
    name: str
    description: str
    title: str
    triggers: list[str]
    steps: list[str]
    pitfalls: list[str]
    metadata: dict[str, str]
    origin: str  # "synthesized" | "hand" | "imported"
    path: Path
    fmt: str  # "agent-skills" | "seed"
    files: list[str]  # extra files beside SKILL.md, relative to the skill folder
    created: date | None
    scope: str = "global"  # or "project"
    last_used: str = ""
    success_rate: str = ""
    intro: str = ""  # text between the title and the first section (the body of public skills)
    sections: dict[str, str] = field(default_factory=dict)  # other sections, heading -> body
    extra: dict[str, str] = field(default_factory=dict)  # other frontmatter keys (license, ...)

    def to_row(self) -> list[Any]:
        """A compact JSON-able row in field order (the library's index cache)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["path"], d["created"] = str(self.path), self.created.isoformat() if self.created else None
        return list(d.values())

    @classmethod
    def from_row(cls, row: list[Any]) -> "Skill":
        skill = cls(*row)
        skill.path = Path(skill.path)
        skill.created = date.fromisoformat(skill.created) if skill.created else None  # type: ignore[arg-type]
        return skill


def validate_name(name: str) -> str | None:
    """The Agent Skills rule for names: an error message, or None when the name is fine."""
    if not isinstance(name, str) or not name or len(name) > 64 or not _NAME_RE.match(name):
        return f"name {name!r} must be 1-64 lowercase letters, digits and single hyphens (e.g. fix-flaky-test)"
    return None


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64].strip("-")


# ---- scanning: shared by the parser and by set_stats --------------------------------------


@dataclass
class _Section:
    title: str
    start: int  # index of the heading line
    end: int  # index after the last body line


def _frontmatter_end(lines: list[str]) -> int:
    """Index of the closing `---` line, -1 when the file has no frontmatter, -2 when unclosed."""
    if not lines or lines[0].lstrip("\ufeff").strip() != "---":
        return -1
    return next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), -2)


def _sections(lines: list[str], begin: int) -> tuple[int | None, list[_Section]]:
    """The H1 title line (if any) and the level-2 sections after `begin`, skipping fenced code."""
    title_at, found, fenced = None, [], False
    for i in range(begin, len(lines)):
        line = lines[i].rstrip("\r\n")
        if _FENCE_RE.match(line):
            fenced = not fenced
        m = None if fenced else _HEADING_RE.match(line)
        if not m or len(m.group(1)) > 2:
            continue
        if found:
            found[-1].end = i
        if len(m.group(1)) == 1:
            title_at = i if title_at is None and not found else title_at
            if title_at == i:
                continue
        found.append(_Section(m.group(2).strip(), i, len(lines)))
    return title_at, found


def _key(title: str) -> str:
    return re.sub(r"\s+", " ", title.strip().rstrip(":").strip()).lower()


# ---- parsing -------------------------------------------------------------------------------


def parse_skill(text: str, path: Path) -> Skill:
    """Parse either format. Raises SkillParseError for a file that cannot be a skill."""
    return parse_skill_checked(text, path)[0]


def parse_skill_checked(text: str, path: Path) -> tuple[Skill, list[SkillProblem]]:
    """Parse and also return the warnings and hints about the file."""
    path = Path(path)
    problems: list[SkillProblem] = []
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    end = _frontmatter_end(lines)
    if end == -2:
        raise SkillParseError("frontmatter starts with --- but is never closed", 1)
    front = _load_yaml(lines[1:end], path, problems) if end > 0 else None
    title_at, sections = _sections(lines, end + 1 if end > 0 else 0)
    fields_: dict[str, Any] = {"triggers": [], "steps": [], "pitfalls": [], "last_used": "", "success_rate": ""}
    other: dict[str, str] = {}
    for sec in sections:
        body = lines[sec.start + 1:sec.end]
        target = SECTION_FIELDS.get(_key(sec.title))
        if target in ("last_used", "success_rate"):
            fields_[target] = " ".join(x.strip() for x in body if x.strip())
        elif target:
            fields_[target] += _triggers(body) if target == "triggers" else _items(body)
        else:
            other[sec.title] = "\n".join(body).strip("\n")
    first = sections[0].start if sections else len(lines)
    intro_from = (title_at + 1) if title_at is not None else (end + 1 if end > 0 else 0)
    intro = "\n".join(lines[intro_from:first]).strip("\n")
    title, marked = "", False
    if title_at is not None:
        raw_title = _HEADING_RE.match(lines[title_at]).group(2)
        title = re.sub(r"^skill\s*:\s*", "", raw_title, flags=re.I).strip()
        marked = title != raw_title.strip()
    if front is None:
        skill = _seed_skill(path, title, marked, intro, fields_, problems)
    else:
        skill = _agent_skill(path, front, lines[1:end], title, fields_, problems)
    skill.intro, skill.sections = intro, other
    if not skill.triggers:
        problems.append(SkillProblem(path, None, "no ## Triggers section: it is matched on its description "
                                     "only (a weaker signal); add triggers to match reliably", "hint"))
    return skill, problems


def _load_yaml(front: list[str], path: Path, problems: list[SkillProblem]) -> dict[str, Any]:
    import yaml  # off the startup path: the library's index cache means most loads never parse

    text = "\n".join(front)
    try:  # libyaml when present: a cold start over thousands of skills is ~3x faster
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        data = None
    try:  # the pure loader again for a broken file: its error points at the right line
        data = yaml.safe_load(text) if data is None else data
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        hint = " (quote values that contain ': ')" if "mapping values" in str(what) else ""
        raise SkillParseError(f"broken YAML in frontmatter: {what}{hint}", mark.line + 2 if mark else None) from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SkillParseError("frontmatter must be a YAML mapping of keys (name, description, ...)", 2)
    if re.search(r"^metadata:\s*\{", text, re.M):
        problems.append(SkillProblem(path, None, "metadata uses the {...} flow style, which the Agent Skills "
                                     "reference parser rejects; write it as an indented block map", "warning"))
    return data


def _agent_skill(path: Path, front: dict[str, Any], raw: list[str], title: str,
                 f: dict[str, Any], problems: list[SkillProblem]) -> Skill:
    def note(key: str, message: str, severity: str = "warning") -> None:
        line = next((i + 2 for i, x in enumerate(raw) if x.startswith(f"{key}:")), None)
        problems.append(SkillProblem(path, line, message, severity))

    name = front.get("name")
    if name is None or (isinstance(name, str) and not name.strip()):
        raise SkillParseError("frontmatter has no name (add `name: <folder-name>`)", 2)
    if not isinstance(name, str):
        raise SkillParseError(f"name must be a string, not {type(name).__name__}", None)
    folder = _name_from_path(path)
    if (err := validate_name(name)) is not None:
        note("name", err)
    if path.name == "SKILL.md" and name != folder:
        note("name", f"name {name!r} differs from its folder {folder!r}; the folder name is used")
    desc = "" if front.get("description") is None else str(front["description"]).strip()
    if not desc:
        note("description", "no description: other agents will not load it; the catalog uses the title")
    elif len(desc) > DESCRIPTION_MAX:
        note("description", f"description is {len(desc)} characters; the standard allows {DESCRIPTION_MAX}")
    meta = _metadata(front.get("metadata"), lambda m, sev: note("metadata", m, sev))
    for key in front:
        if key not in KNOWN_KEYS:
            note(str(key), f"unknown frontmatter key {key!r} (kept; other agents may ignore it)", "hint")
    extra = {str(k): _as_str(v) for k, v in front.items() if k not in ("name", "description", "metadata")}
    origin = meta.get("origin", "imported")
    return Skill(name=folder if path.name == "SKILL.md" else name, description=desc or title or folder,
                 title=title or folder.replace("-", " ").capitalize(), metadata=meta,
                 origin=origin if origin in ORIGINS else "imported", path=path, fmt="agent-skills",
                 files=[], created=_date(meta.get("created")), extra=extra, **f)


def _seed_skill(path: Path, title: str, marked: bool, intro: str, f: dict[str, Any],
                problems: list[SkillProblem]) -> Skill:
    # a README beside the skills is not a skill: the seed format needs its marks
    if not (marked or f["triggers"] or f["steps"] or path.name == "SKILL.md"):
        raise NotASkill("not a skill: no frontmatter, no '# Skill:' title, no Triggers or Steps", None)
    name = _name_from_path(path)
    if validate_name(name) is not None:
        slug = slugify(name) or slugify(title) or "skill"
        problems.append(SkillProblem(path, None, f"{name!r} is not a valid skill name; loaded as {slug!r}", "warning"))
        name = slug
    problems.append(SkillProblem(path, None, "plain format without frontmatter: other agents cannot "
                                 "load it; `joe skills` can rewrite it as SKILL.md", "hint"))
    para = intro.strip().split("\n\n")[0].strip() if intro.strip() else ""
    desc = para or (title or name) + (f". Use when: {'; '.join(f['triggers'])}" if f["triggers"] else "")
    return Skill(name=name, description=desc, title=title or name, metadata={}, origin="hand", path=path,
                 fmt="seed", files=[], created=None, **f)


def _name_from_path(path: Path) -> str:
    return path.parent.name if path.name == "SKILL.md" else path.stem


def _metadata(raw: Any, note: Any) -> dict[str, str]:
    if raw is None or not isinstance(raw, dict):
        if raw is not None:
            note("metadata must be a map of strings; ignored", "warning")
        return {}
    for k, v in raw.items():
        if not isinstance(v, str):
            note(f"metadata.{k} should be a quoted string", "hint")
    return {str(k): _as_str(v) for k, v in raw.items()}


def _as_str(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, default=str)
    return v.isoformat() if isinstance(v, date) else "" if v is None else str(v)


def _date(text: str | None) -> date | None:
    with contextlib.suppress(ValueError):
        return date.fromisoformat(text[:10]) if text else None
    return None


def _unquote(text: str) -> str:
    text = text.strip()
    return text[1:-1].strip() if len(text) >= 2 and text[0] + text[-1] in ('""', "''", "``", "“”") else text


def _triggers(body: list[str]) -> list[str]:
    """One trigger per line; a line holding quoted phrases gives each phrase."""
    out = []
    for line in body:
        m = _ITEM_RE.match(line)
        text = (m.group(1) if m else line).strip()
        if not text or text.startswith("<!--"):
            continue
        quoted = [next(g for g in q if g) for q in _QUOTED_RE.findall(text)]
        out += [q.strip() for q in quoted if q.strip()] if quoted else [_unquote(text)]
    return [t for t in out if t]


def _items(body: list[str]) -> list[str]:
    """List items; indented or plain lines continue the item before them."""
    out: list[str] = []
    for line in body:
        if not line.strip():
            continue
        m = _ITEM_RE.match(line)
        if m:
            out.append(m.group(1).strip())
        elif out and (line[:1].isspace() or not _HEADING_RE.match(line)):
            out[-1] += "\n" + line.rstrip()  # keeps code blocks inside a step readable
        else:
            out.append(line.strip())
    return out


# ---- rendering -----------------------------------------------------------------------------


def _scalar(text: str) -> str:
    plain = re.fullmatch(r"[A-Za-z][A-Za-z0-9 _.,()'/-]*[A-Za-z0-9.)]", text)
    if plain and " " in text and ": " not in text:
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted scalar


def render_skill(skill: Skill) -> str:
    """The canonical SKILL.md text: Agent Skills frontmatter, then the joe sections."""
    meta = dict(skill.metadata, **({"origin": skill.origin} if skill.origin else {}))
    if skill.created:
        meta.setdefault("created", skill.created.isoformat())
    out = ["---", f"name: {skill.name}", f"description: {_scalar(' '.join(skill.description.split()))}"]
    out += [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in skill.extra.items()]
    if meta:
        out += ["metadata:"] + [f"  {k}: {json.dumps(str(v), ensure_ascii=False)}" for k, v in meta.items()]
    out += ["---", f"# Skill: {skill.title or skill.name}"]
    if skill.intro.strip():
        out.append(skill.intro.strip("\n"))
    if skill.triggers:
        out += ["## Triggers"] + [f"- {t}" for t in skill.triggers]
    if skill.steps:
        out += ["## Steps"] + [f"{i}. {s}" for i, s in enumerate(skill.steps, 1)]
    if skill.pitfalls:
        out += ["## Pitfalls"] + [f"- {p}" for p in skill.pitfalls]
    for heading, body in skill.sections.items():
        out += [f"## {heading}"] + ([body.strip("\n")] if body.strip() else [])
    for attr, heading in STATS_TITLES.items():
        if getattr(skill, attr):
            out += [f"## {heading}", getattr(skill, attr)]
    return "\n".join(out) + "\n"


# ---- the ledger's in-place edit --------------------------------------------------------------


def set_stats(text: str, last_used: str, success_rate: str) -> str:
    """Rewrite only the bodies of `## Last Used` and `## Success Rate` (appending a section at
    the end when missing). Every other byte, line endings and spacing included, is kept."""
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)  # only \n ends a line: joining gives every byte back
    bare = [x.rstrip("\r\n") for x in lines]
    nl = next((x[len(b):] for x, b in zip(lines, bare) if x.endswith("\n")), "\n")
    values = {"last_used": " ".join(last_used.split()), "success_rate": " ".join(success_rate.split())}
    found: dict[str, _Section] = {}
    end = _frontmatter_end(bare)
    for sec in _sections(bare, end + 1 if end > 0 else 0)[1]:
        attr = SECTION_FIELDS.get(_key(sec.title))
        if attr in values:
            found.setdefault(attr, sec)
    for attr, sec in sorted(found.items(), key=lambda kv: -kv[1].start):  # from the end: indexes hold
        if not lines[sec.start].endswith("\n"):
            lines[sec.start] += nl
        body = lines[sec.start + 1:sec.end]
        filled = [i for i, x in enumerate(body) if x.strip()]
        # the last content line's ending: keeps CRLF, and no newline when it ended the file
        ending = body[filled[-1]][len(body[filled[-1]].rstrip("\r\n")):] if filled else nl
        lines[sec.start + 1:sec.end] = [values[attr] + ending] + body[filled[-1] + 1 if filled else 0:]
    out = "".join(lines)
    for attr in (a for a in values if a not in found):
        out += (nl if out and not out.endswith("\n") else "") + f"## {STATS_TITLES[attr]}{nl}{values[attr]}{nl}"
    return out
