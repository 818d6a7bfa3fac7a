"""read_skill: SKILL.md or one file of the skill's folder, confined to that folder, capped."""
from __future__ import annotations

import os

import pytest

from joe_agent.learning import READ_CAP, SkillAdvisor, read_skill_tool
from joe_agent.memory.ledger import Ledger
from joe_agent.memory.skills import SkillLibrary
from joe_agent.messages import ToolCall
from joe_agent.tools.permissions import Permissions
from joe_agent.tools.registry import Registry, ToolContext
from joe_agent.tools.workspace import Workspace

SKILL = """---
name: api-client
description: Call the billing API. Use when asked to call or change billing API clients.
---
# Skill: Billing API client
## Triggers
- call the billing api
## Steps
1. Read references/endpoints.md for the endpoints
2. Use scripts/sign.sh to sign requests
"""


@pytest.fixture
def setup(tmp_path):
    home = tmp_path / "home"
    lib = SkillLibrary(home / "skills")
    lib.save("api-client", SKILL, "add")
    folder = home / "skills" / "api-client"
    (folder / "references").mkdir()
    (folder / "references" / "endpoints.md").write_text("GET /invoices\nPOST /refunds\n")
    (folder / "scripts").mkdir()
    (folder / "scripts" / "sign.sh").write_text("#!/bin/sh\necho signed\n")
    (folder / "assets").mkdir()
    (folder / "assets" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0binary")
    (folder / "references" / "huge.md").write_text("x" * (READ_CAP * 3))
    outside = tmp_path / "secret.txt"
    outside.write_text("TOP SECRET")
    os.symlink(outside, folder / "references" / "escape.md")
    lib = SkillLibrary(home / "skills")  # reload: the folder's files changed
    ledger = Ledger(home / "ledger.db")
    advisor = SkillAdvisor(lib, ledger, "s1", "m")
    advisor.turn = 1
    project = tmp_path / "proj"
    project.mkdir()
    registry = Registry(ToolContext(Workspace(project), Permissions(mode="ask", headless=True)))
    registry.add(read_skill_tool(advisor))
    return registry, ledger, lib


def run(registry, **args):
    return registry.run(ToolCall("read_skill", args))


def test_reads_skill_md_and_reference_files(setup):
    registry, ledger, lib = setup
    r = run(registry, name="api-client")
    assert r.ok and "# Skill: Billing API client" in r.content
    r = run(registry, name="api-client", file="references/endpoints.md")
    assert r.ok and "POST /refunds" in r.content
    assert ledger.history("api-client")[0]["how"] == "read"
    assert set(lib.get("api-client").files) >= {"references/endpoints.md", "scripts/sign.sh"}


@pytest.mark.parametrize("file, words", [
    ("../../secret.txt", "outside the skill's folder"),
    ("/etc/passwd", "outside the skill's folder"),
    ("references/escape.md", "outside the skill's folder"),
    ("references/none.md", "has no file"),
    ("assets/logo.png", "binary"),
])
def test_refusals(setup, file, words):
    registry, _, _ = setup
    r = run(registry, name="api-client", file=file)
    assert not r.ok and words in r.content
    assert "TOP SECRET" not in r.content


def test_unknown_skill_lists_names_and_big_files_are_capped(setup):
    registry, _, _ = setup
    r = run(registry, name="billing")
    assert not r.ok and "api-client" in r.content
    r = run(registry, name="api-client", file="references/huge.md")
    assert r.ok and len(r.content) <= READ_CAP
