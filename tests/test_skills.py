"""The skill library: both file formats, hand-edited oddities, broken files, the git history,
the ledger's in-place stats edit and the index cache. Real files and real git repos."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
from datetime import date
from pathlib import Path

import pytest
import yaml

from joe_agent.errors import JoeError, StoreError
from joe_agent.memory.skills import (Skill, SkillLibrary, SkillParseError, parse_skill, render_skill,
                                     validate_name)
from joe_agent.memory.skillfile import parse_skill_checked

AGENT_SKILL = """---
name: react-class-to-hooks
description: Migrate React class components to hooks. Use when asked to refactor a class
  component or convert it to hooks.
metadata:
  created: "2026-06-10"
  source: "session 2026-06-10T14-02-11"
  origin: synthesized
---
# Skill: Migrate React Class Components to Hooks
## Triggers
- refactor class component
- convert to hooks
## Steps
1. Identify lifecycle methods in the class component
2. Map componentDidMount to useEffect
## Pitfalls
- getSnapshotBeforeUpdate has no hook equivalent
## Last Used
2026-06-10
## Success Rate
3/3 sessions (confirmed by user acceptance)
"""

SEED_SKILL = """# Skill: Migrate React Class Components to Hooks
## Triggers
- "refactor class component"
- "convert to hooks"
- "class to functional component"
## Steps
1. Identify lifecycle methods in the class component
2. Map componentDidMount + componentWillUnmount to useEffect
## Last Used
2026-06-10
## Success Rate
3/3 sessions (confirmed by user acceptance)
"""


def write(path: Path, text: str, newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def skill_text(name: str, trigger: str = "some trigger phrase", description: str = "Does a thing.") -> str:
    return (f"---\nname: {name}\ndescription: {description}\nmetadata:\n  origin: hand\n---\n"
            f"# Skill: {name}\n## Triggers\n- {trigger}\n## Steps\n1. do it\n")


# ---- parsing -------------------------------------------------------------------------------


def test_parse_agent_skills_format(tmp_path):
    s = parse_skill(AGENT_SKILL, tmp_path / "react-class-to-hooks" / "SKILL.md")
    assert s.name == "react-class-to-hooks" and s.fmt == "agent-skills"
    assert s.description.startswith("Migrate React class components") and "convert it to hooks" in s.description
    assert s.title == "Migrate React Class Components to Hooks"
    assert s.triggers == ["refactor class component", "convert to hooks"]
    assert s.steps == ["Identify lifecycle methods in the class component", "Map componentDidMount to useEffect"]
    assert s.pitfalls == ["getSnapshotBeforeUpdate has no hook equivalent"]
    assert s.metadata == {"created": "2026-06-10", "source": "session 2026-06-10T14-02-11", "origin": "synthesized"}
    assert s.origin == "synthesized" and s.created == date(2026, 6, 10)
    assert s.last_used == "2026-06-10" and s.success_rate.startswith("3/3")


def test_parse_seed_format_with_quoted_triggers(tmp_path):
    s, problems = parse_skill_checked(SEED_SKILL, tmp_path / "react-hooks.md")
    assert s.fmt == "seed" and s.name == "react-hooks" and s.origin == "hand"
    assert s.triggers == ["refactor class component", "convert to hooks", "class to functional component"]
    assert len(s.steps) == 2 and s.created is None
    assert "Migrate React Class Components to Hooks" in s.description
    assert all(p.severity == "hint" for p in problems)


def test_hand_edited_oddities_load(tmp_path):
    text = ("---\nname: odd\ndescription: 'Odd spacing: and CRLF.'\nauthor: me\nmetadata:\n  origin: hand\n"
            "  created: 2026-01-05\n---\n\n#   Skill:   Odd One  \n\nSome intro text.\n\n##Triggers\n"
            "*   first trigger  \n+ “curly quoted”\n- 'single quoted'\n\n##   Steps   \n1) step one\n"
            "   continued here\n2.  step two\n## Notes\nfree text\n### deeper heading\nmore\n"
            "##  pitfalls:\n- watch out\n")
    s, problems = parse_skill_checked(text.replace("\n", "\r\n"), tmp_path / "odd" / "SKILL.md")
    assert s.title == "Odd One" and s.intro == "Some intro text."
    assert s.triggers == ["first trigger", "curly quoted", "single quoted"]
    assert s.steps == ["step one\n   continued here", "step two"]
    assert s.pitfalls == ["watch out"]
    assert "Notes" in s.sections and "deeper heading" in s.sections["Notes"]
    assert s.metadata["created"] == "2026-01-05" and s.created == date(2026, 1, 5)
    assert s.extra == {"author": "me"}
    messages = " ".join(p.message for p in problems)
    assert "unknown frontmatter key 'author'" in messages and "created should be a quoted string" in messages
    assert not [p for p in problems if p.severity == "error"]


def test_render_is_canonical_and_round_trips(tmp_path):
    s = parse_skill(SEED_SKILL, tmp_path / "react-hooks.md")
    s.description = "Migrate hooks: carefully, # not a comment"
    text = render_skill(s)
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["name"] == "react-hooks" and front["description"] == s.description
    assert all(isinstance(v, str) for v in front["metadata"].values())  # a block map of strings
    assert "metadata: {" not in text
    again = parse_skill(text, tmp_path / "react-hooks" / "SKILL.md")
    for attr in ("name", "description", "title", "triggers", "steps", "pitfalls", "last_used", "success_rate"):
        assert getattr(again, attr) == getattr(s, attr), attr
    assert again.fmt == "agent-skills" and render_skill(again) == text


def test_validate_name():
    assert validate_name("fix-flaky-test") is None
    for bad in ("", "Fix", "a--b", "-a", "a_b", "x" * 65, "a b"):
        assert validate_name(bad), bad


def test_broken_yaml_is_reported_with_its_line_and_skipped(tmp_path):
    root = tmp_path / "skills"
    write(root / "good" / "SKILL.md", skill_text("good"))
    # the classic hand edit: an unquoted ": " inside the description, on line 3
    write(root / "broken" / "SKILL.md", "---\nname: broken\ndescription: Use when: tests fail\n---\n# Skill: b\n")
    write(root / "unclosed" / "SKILL.md", "---\nname: unclosed\nmetadata:\n  a: [1, 2\n---\n# Skill: u\n")
    write(root / "noname" / "SKILL.md", "---\ndescription: no name here\n---\n# Skill: n\n## Steps\n1. x\n")
    lib = SkillLibrary(root)
    assert [s.name for s in lib.load()] == ["good"]
    errors = {p.path.parent.name: p for p in lib.check() if p.severity == "error"}
    assert set(errors) == {"broken", "noname", "unclosed"}
    assert errors["broken"].line == 3 and "YAML" in errors["broken"].message and "quote" in errors["broken"].message
    assert errors["unclosed"].line == 4
    assert "no name" in errors["noname"].message
    assert issubclass(SkillParseError, JoeError)


def test_public_skill_without_triggers_loads_with_a_hint(tmp_path):
    root = tmp_path / "skills"
    write(root / "pdf" / "SKILL.md", "---\nname: pdf\ndescription: Use this skill whenever the user wants "
          "to do anything with PDF files.\nlicense: Proprietary\n---\n\n# PDF processing\n\nUse pypdf.\n\n"
          "## Quick start\n```python\n# not a heading\nimport pypdf\n```\n")
    write(root / "pdf" / "scripts" / "fill.py", "print(1)\n")
    write(root / "pdf" / "reference.md", "# ref\n")
    write(root / "long" / "SKILL.md", skill_text("long", description="x" * 1100))
    lib = SkillLibrary(root)
    by = {s.name: s for s in lib.load()}
    assert by["pdf"].triggers == [] and by["pdf"].origin == "imported" and by["pdf"].extra == {"license": "Proprietary"}
    assert by["pdf"].files == ["reference.md", "scripts/fill.py"]
    assert "# not a heading" in by["pdf"].sections["Quick start"]
    assert len(by["long"].description) == 1100
    severity = {(p.path.parent.name, p.severity) for p in lib.check()}
    assert ("pdf", "hint") in severity and ("long", "warning") in severity
    assert not any(sev == "error" for _, sev in severity)


def test_flow_style_metadata_warns_and_readme_is_ignored(tmp_path):
    root = tmp_path / "skills"
    write(root / "flow" / "SKILL.md", "---\nname: flow\ndescription: d\nmetadata: {origin: hand}\n---\n"
          "## Triggers\n- flow thing\n")
    write(root / "README.md", "# Our team skills\n\nClone this into ~/.joe-agent/skills.\n")
    write(root / "seedy.md", SEED_SKILL)
    lib = SkillLibrary(root)
    assert [s.name for s in lib.load()] == ["flow", "seedy"]
    problems = lib.check()
    assert any("flow style" in p.message and p.severity == "warning" for p in problems)
    readme = [p for p in problems if p.path.name == "README.md"]
    assert readme and all(p.severity == "hint" for p in readme)


def test_project_skills_only_when_trusted(tmp_path):
    root, project = tmp_path / "skills", tmp_path / "proj"
    write(root / "shared" / "SKILL.md", skill_text("shared", description="global one"))
    write(project / ".joe" / "skills" / "shared" / "SKILL.md", skill_text("shared", description="project one"))
    write(project / ".joe" / "skills" / "local.md", "# Skill: Local\n## Triggers\n- local thing\n")
    assert [s.name for s in SkillLibrary(root, project, trust_project=False).load()] == ["shared"]
    lib = SkillLibrary(root, project, trust_project=True)
    by = {s.name: s for s in lib.load()}
    assert by["shared"].description == "project one" and by["shared"].scope == "project"
    assert by["local"].scope == "project"
    before = (project / ".joe" / "skills" / "local.md").read_bytes()
    lib.update_stats("local", "2026-01-01", "1/1")  # a project's files are left alone
    assert (project / ".joe" / "skills" / "local.md").read_bytes() == before


# ---- the git-backed library ---------------------------------------------------------------


def test_save_validates_writes_and_commits(tmp_path):
    root = tmp_path / "skills"
    lib = SkillLibrary(root)
    sha = lib.save("react-class-to-hooks", AGENT_SKILL, "accept react-class-to-hooks")
    assert sha == git(root, "rev-parse", "HEAD").strip() == lib.version("react-class-to-hooks")
    assert (root / "react-class-to-hooks" / "SKILL.md").read_text() == AGENT_SKILL
    assert lib.get("react-class-to-hooks").steps[0].startswith("Identify")
    assert git(root, "log", "-1", "--format=%s").strip() == "accept react-class-to-hooks"
    assert git(root, "status", "--porcelain") == ""
    count = int(git(root, "rev-list", "--count", "HEAD"))
    with pytest.raises(SkillParseError):
        lib.save("Bad Name", AGENT_SKILL, "x")
    with pytest.raises(SkillParseError):
        lib.save("other-name", AGENT_SKILL, "x")  # frontmatter says another name
    with pytest.raises(SkillParseError):
        lib.save("broken", "---\nname: broken\ndescription: [\n---\n", "x")
    assert int(git(root, "rev-list", "--count", "HEAD")) == count
    assert not (root / "other-name").exists() and not (root / "broken").exists()
    other = SkillLibrary(root)  # another session: its memoised version follows HEAD
    assert other.version("react-class-to-hooks") == sha
    edited = AGENT_SKILL.replace("2. Map", "2. Carefully map")
    sha2 = lib.save("react-class-to-hooks", edited, "edit react-class-to-hooks")
    assert sha2 != sha and lib.body("react-class-to-hooks") == edited
    assert other.version("react-class-to-hooks") == sha2
    assert [m for _, _, m in lib.log("react-class-to-hooks")] == ["edit react-class-to-hooks",
                                                                 "accept react-class-to-hooks"]


def test_archive_and_restore_round_trip(tmp_path):
    root = tmp_path / "skills"
    write(root / "seedy.md", SEED_SKILL)  # there before the library became a repo
    lib = SkillLibrary(root)
    lib.save("keep-me", skill_text("keep-me"), "accept keep-me")
    write(root / "keep-me" / "references" / "notes.md", "extra file\n")
    original = {p.relative_to(root / "keep-me"): p.read_bytes() for p in (root / "keep-me").rglob("*") if p.is_file()}
    lib.archive("keep-me", "score 0.1 after 6 uses")
    assert not (root / "keep-me").exists() and lib.archived() == ["keep-me"]
    assert (root / ".archive" / "keep-me" / "references" / "notes.md").is_file()
    assert [s.name for s in lib.load()] == ["seedy"]
    assert git(root, "log", "-1", "--format=%s").strip() == "archive keep-me: score 0.1 after 6 uses"
    lib.restore("keep-me")
    restored = {p.relative_to(root / "keep-me"): p.read_bytes() for p in (root / "keep-me").rglob("*") if p.is_file()}
    assert restored == original and lib.archived() == []
    assert git(root, "status", "--porcelain") == ""
    # a seed-format file archives and restores as itself
    lib.archive("seedy", "unused")
    assert (root / ".archive" / "seedy" / "seedy.md").read_text() == SEED_SKILL
    lib.restore("seedy")
    assert (root / "seedy.md").read_text() == SEED_SKILL
    assert [m for _, _, m in lib.log("seedy")][:2] == ["restore seedy", "archive seedy: unused"]
    with pytest.raises(StoreError):
        lib.restore("seedy")
    with pytest.raises(StoreError):
        lib.archive("no-such-skill", "x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "SKILL.md").write_text(skill_text("outside"))
    with pytest.raises(StoreError):
        lib.restore("../../outside")  # names never leave the library folder
    assert (tmp_path / "outside" / "SKILL.md").is_file()
    # reverting a commit is ordinary git: history works
    git(root, "revert", "--no-edit", "HEAD")
    assert not (root / "seedy.md").exists() and lib.archived() == ["seedy"]


def test_update_stats_preserves_every_other_byte_and_does_not_commit(tmp_path):
    root = tmp_path / "skills"
    lib = SkillLibrary(root)
    lib.save("react-class-to-hooks", AGENT_SKILL, "accept")
    path = root / "react-class-to-hooks" / "SKILL.md"
    odd = AGENT_SKILL.replace("## Last Used", "##   Last Used  ").replace("## Steps", "## Steps\n\n") \
        + "\n## Notes   \n  kept   as is  \n"
    write(path, odd, newline="\r\n")
    before = path.read_bytes()
    head = git(root, "rev-parse", "HEAD")
    lib.update_stats("react-class-to-hooks", "2026-07-01", "4/4 sessions")
    after = path.read_bytes()
    expected = before.replace(b"2026-06-10\r\n## Success", b"2026-07-01\r\n## Success") \
        .replace(b"3/3 sessions (confirmed by user acceptance)\r\n", b"4/4 sessions\r\n")
    assert after == expected and after != before
    assert git(root, "rev-parse", "HEAD") == head
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    s = SkillLibrary(root).get("react-class-to-hooks")
    assert (s.last_used, s.success_rate) == ("2026-07-01", "4/4 sessions")


def test_update_stats_appends_missing_sections(tmp_path):
    root = tmp_path / "skills"
    text = "# Skill: Bare\r\n## Triggers\r\n- bare thing\r\n## Steps\r\n1. go"  # no final newline
    root.mkdir()
    (root / "bare.md").write_bytes(text.encode())
    lib = SkillLibrary(root)
    lib.update_stats("bare", "2026-07-02", "1/2")
    assert (root / "bare.md").read_bytes() == (text + "\r\n## Last Used\r\n2026-07-02\r\n## Success Rate\r\n1/2\r\n").encode()
    with pytest.raises(StoreError):
        lib.update_stats("missing", "x", "y")


def test_sync_without_a_remote_is_a_clear_error_and_with_one_shares_skills(tmp_path):
    lib_a = SkillLibrary(tmp_path / "a")
    lib_a.save("team-skill", skill_text("team-skill"), "accept team-skill")
    with pytest.raises(StoreError, match="no git remote"):
        lib_a.sync()
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(tmp_path / "a", "remote", "add", "origin", str(remote))
    assert "origin/main" in lib_a.sync()
    subprocess.run(["git", "clone", "-q", "-b", "main", str(remote), str(tmp_path / "b")], check=True)
    lib_b = SkillLibrary(tmp_path / "b")
    lib_b.save("second", skill_text("second"), "accept second")
    lib_b.sync()
    lib_a.update_stats("team-skill", "2026-07-03", "2/2")  # uncommitted: autostash keeps it
    lib_a.sync()
    assert [s.name for s in lib_a.load()] == ["second", "team-skill"]
    assert lib_a.get("team-skill").last_used == "2026-07-03"


def test_sync_conflict_is_reported_and_leaves_the_library_as_it_was(tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(remote)], check=True)
    lib_a = SkillLibrary(tmp_path / "a")
    lib_a.save("shared", skill_text("shared", trigger="from a"), "accept shared")
    git(tmp_path / "a", "remote", "add", "origin", str(remote))
    lib_a.sync()
    subprocess.run(["git", "clone", "-q", str(remote), str(tmp_path / "b")], check=True)
    SkillLibrary(tmp_path / "b").save("shared", skill_text("shared", trigger="edited in b"), "edit in b")
    SkillLibrary(tmp_path / "b").sync()
    lib_a.save("shared", skill_text("shared", trigger="edited in a"), "edit in a")
    head = git(tmp_path / "a", "rev-parse", "HEAD")
    with pytest.raises(StoreError, match="git pull failed"):
        lib_a.sync()
    assert git(tmp_path / "a", "rev-parse", "HEAD") == head
    assert git(tmp_path / "a", "status", "--porcelain") == ""
    assert lib_a.load()[0].triggers == ["edited in a"]


def _save_many(root: str, prefix: str) -> None:
    lib = SkillLibrary(Path(root))
    for i in range(4):
        lib.save(f"{prefix}-{i}", skill_text(f"{prefix}-{i}"), f"accept {prefix}-{i}")


def test_two_processes_saving_at_once_lose_nothing(tmp_path):
    root = tmp_path / "skills"
    SkillLibrary(root).save("first", skill_text("first"), "accept first")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_save_many, args=(str(root), p)) for p in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(SkillLibrary(root).load()) == 9
    assert int(git(root, "rev-list", "--count", "HEAD")) == 2 + 8  # start + first + 8 saves
    assert git(root, "status", "--porcelain") == ""


# ---- the index cache ----------------------------------------------------------------------


def test_cache_is_keyed_by_mtime_and_size(tmp_path):
    root = tmp_path / "skills"
    path = write(root / "cached" / "SKILL.md", skill_text("cached", trigger="alpha phrase"))
    assert SkillLibrary(root).load()[0].triggers == ["alpha phrase"]
    assert (root / ".cache" / "index.json").is_file()
    st = path.stat()
    write(path, skill_text("cached", trigger="omega phrase"))  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    # same mtime and size: a fresh library trusts the on-disk index and does not parse
    assert SkillLibrary(root).load()[0].triggers == ["alpha phrase"]
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    lib = SkillLibrary(root)
    assert lib.load()[0].triggers == ["omega phrase"]
    write(root / "cached" / "assets" / "logo.txt", "x")  # a new folder changes the skill folder's mtime
    assert lib.load()[0].files == ["assets/logo.txt"]
    write(root / "cached" / "assets" / "more.txt", "y")  # a file deeper down changes assets/'s mtime
    assert lib.load()[0].files == ["assets/logo.txt", "assets/more.txt"]
    (root / ".cache" / "index.json").write_text("{not json")
    assert SkillLibrary(root).load()[0].triggers == ["omega phrase"]  # a damaged cache costs a parse


def test_a_dataclass_survives_the_cache(tmp_path):
    root = tmp_path / "skills"
    write(root / "react-class-to-hooks" / "SKILL.md", AGENT_SKILL)
    fresh = SkillLibrary(root).load()[0]
    cached = SkillLibrary(root).load()[0]
    assert isinstance(cached, Skill) and cached == fresh and cached.created == date(2026, 6, 10)
