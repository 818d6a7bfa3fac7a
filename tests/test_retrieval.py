"""Trigger retrieval: inflections, word order, words in between, near-misses that must not
match, single common words, ranking, and the texts built from skills."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from joe_agent.memory.retrieval import (Retriever, catalog, description_phrases, injection_block, stem,
                                        substring_baseline)
from joe_agent.memory.skills import Skill, SkillLibrary

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "retrieval_set.json"


def mk(name: str, triggers: list[str], description: str = "", steps: list[str] | None = None,
       pitfalls: list[str] | None = None, files: list[str] | None = None) -> Skill:
    return Skill(name=name, description=description or f"About {name}.", title=name.replace("-", " ").title(),
                 triggers=triggers, steps=steps or ["do the thing"], pitfalls=pitfalls or [], metadata={},
                 origin="hand", path=Path("/skills") / name / "SKILL.md", fmt="agent-skills",
                 files=files or [], created=None)


SKILLS = [
    mk("react-class-to-hooks", ["refactor class component", "convert to hooks", "class to functional component"]),
    mk("pytest-failure-triage", ["failing test", "pytest error"]),
    mk("fix-flaky-test", ["flaky test", "intermittent test failure"]),
    mk("dockerize-python-app", ["dockerfile", "containerize the app"]),
    mk("db-migration", ["database migration", "add a column to the table"]),
    mk("generic-words", ["test", "fix"]),  # single common words: must never fire alone
    mk("pdf", [], "Extract text and tables from PDF files, fill in PDF forms, and merge or split PDF "
       "documents. Use this skill whenever the user wants to do anything with PDF files."),
]


def names(request: str, skills: list[Skill] = SKILLS, **kw) -> list[str]:
    return [m.skill.name for m in Retriever(skills).match(request, **kw)]


@pytest.mark.parametrize("family", [
    ["convert", "converting", "converted", "converts", "conversion"],
    ["migrate", "migrating", "migrated", "migration", "migrations"],
    ["test", "tests", "testing", "tested"],
    ["retry", "retries", "retried", "retrying"],
    ["run", "running", "runs", "ran"],
    ["cache", "caching", "cached", "caches"],
    ["configure", "configuring", "configuration"],
    ["fail", "fails", "failing", "failed", "failure"],
])
def test_stemmer_joins_inflections(family):
    assert len({stem(w) for w in family}) == 1, {w: stem(w) for w in family}


def test_stemmer_keeps_different_words_apart():
    pairs = [("format", "form"), ("add", "ad"), ("string", "str"), ("user", "use"), ("apply", "app"),
             ("pass", "pas"), ("diff", "dif")]
    for a, b in pairs:
        assert stem(a) != stem(b), (a, b)


@pytest.mark.parametrize("request_, expected", [
    ("convert to hooks", "react-class-to-hooks"),                       # the trigger itself
    ("Convert To Hooks!!!", "react-class-to-hooks"),                    # case and punctuation
    ("converting the UserCard to hooks", "react-class-to-hooks"),       # inflection + words between
    ("please convert this component to hooks", "react-class-to-hooks"),  # words in between
    ("hooks: convert the Modal", "react-class-to-hooks"),               # word order
    ("refactoring class components", "react-class-to-hooks"),
    ("the test is failing on CI", "pytest-failure-triage"),
    ("tests intermittently failing", "fix-flaky-test"),
    ("write a Dockerfile for the api", "dockerize-python-app"),
    ("containerizing the app", "dockerize-python-app"),
    ("migrate the database schema", "db-migration"),
    ("add a nullable column to the users table", "db-migration"),
])
def test_matches(request_, expected):
    assert names(request_)[:1] == [expected]


@pytest.mark.parametrize("request_", [
    "add a pre-commit hook that runs black",      # shares "hook"
    "convert the CSV export to JSON",             # shares "convert"
    "write a test for the parser",                # shares "test"
    "fix the typo in the readme",                 # shares "fix"
    "migrate from python 2 to python 3",          # shares "migrate"
    "the database connection times out",          # shares "database"
    "convert the pre-commit script and the deploy script into a set of git hooks",  # too far apart
    "explain what this function does",
])
def test_near_misses_do_not_match(request_):
    assert names(request_) == []


def test_single_word_triggers_fire_only_when_specific():
    assert names("test") == [] and names("fix") == []
    assert names("dockerfile") == ["dockerize-python-app"]
    # a rare word that many skills share stops being specific
    crowd = [mk(f"s{i}", ["kubectl"]) for i in range(10)] + [mk(f"o{i}", [f"other{i} words"]) for i in range(40)]
    assert names("kubectl", crowd) == []


def test_partial_match_needs_a_specific_word_and_ranks_below_a_full_one():
    full = Retriever(SKILLS).match("add a column to the table")[0]
    partial = Retriever(SKILLS).match("add a column to the users table", threshold=0)[0]
    assert full.strength == 1.0 and partial.strength < 1.0
    assert names("add a column to the spreadsheet") == []  # 2 of 3 words, the rarest missing
    generic = [mk("g", ["add new test"]), mk("other", ["something else entirely"])]
    assert Retriever(generic).match("add a test", threshold=0) == []  # only common words matched
    assert Retriever(generic).match("add a new test", threshold=0)


def test_ranking_by_strength_then_score():
    skills = [mk("alpha", ["deploy the service"]), mk("beta", ["deploy the service"]),
              mk("gamma", ["service deploy"])]  # same words, other order: a little weaker
    assert [m.skill.name for m in Retriever(skills).match("deploy the service")][:2] == ["alpha", "beta"]
    ranked = Retriever(skills, scores={"alpha": 0.2, "beta": 0.9, "gamma": 5.0}).match("deploy the service")
    assert [m.skill.name for m in ranked] == ["beta", "alpha", "gamma"]  # strength first, then score
    assert ranked[0].strength > ranked[2].strength


def test_limit_threshold_and_reason():
    skills = [mk(f"s{i}", [f"rotate the logs {w}"]) for i, w in enumerate(["daily", "weekly", "hourly", "often"])]
    wide = Retriever(skills).match("rotate the logs daily weekly hourly often", limit=10, threshold=0)
    assert len(wide) == 4
    assert len(Retriever(skills).match("rotate the logs daily weekly hourly often")) <= 3
    m = Retriever(SKILLS).match("please convert this component to hooks")[0]
    assert m.trigger == "convert to hooks" and m.reason == 'matched "convert to hooks"'
    assert 0.6 <= m.strength < 1.0  # words in between cost a little
    assert Retriever(SKILLS).match("please convert this component to hooks", threshold=m.strength + 0.01) == []


def test_description_phrases_match_skills_without_triggers_more_weakly():
    assert "fill in pdf" in description_phrases(SKILLS[-1].description)
    m = Retriever(SKILLS).match("fill in the PDF form for the customer")
    assert [x.skill.name for x in m] == ["pdf"]
    assert "description" in m[0].reason and m[0].strength < 0.9
    assert names("anything with files") == []  # boilerplate words alone never fire


def test_substring_baseline_is_the_seed_behaviour():
    got = [s.name for s in substring_baseline(SKILLS, "Please CONVERT TO HOOKS now")]
    assert got == ["react-class-to-hooks"]
    assert substring_baseline(SKILLS, "converting to hooks") == []  # what the baseline misses


def test_index_at_ten_thousand_skills_finds_the_one():
    rnd = random.Random(3)
    words = [f"w{i}x" for i in range(400)]
    skills = [mk(f"n{i}", [" ".join(rnd.sample(words, 3)) for _ in range(3)]) for i in range(10_000)]
    skills.append(mk("needle", ["rotate signing keys"]))
    got = Retriever(skills).match("please rotate the signing keys today")
    assert [m.skill.name for m in got] == ["needle"]


def test_catalog_is_capped():
    skills = [mk(f"skill-{i:03d}", ["t"], description="word " * 40) for i in range(50)]
    full = catalog(skills[:2], 10_000)
    assert full.splitlines()[0].startswith("- skill-000: word word")
    capped = catalog(skills, 1200)
    assert len(capped) <= 1200 and "more" in capped.splitlines()[-1]
    assert all(len(line) <= 100 for line in capped.splitlines())


def test_injection_block_is_compact_and_complete():
    s = mk("react-class-to-hooks", ["convert to hooks"], steps=["Map lifecycle methods", "Run the tests"],
           pitfalls=["getSnapshotBeforeUpdate has no hook"], files=["references/api.md", "scripts/check.sh"])
    s.title = "Migrate React Class Components to Hooks"
    m = Retriever([s]).match("convert to hooks")[0]
    block = injection_block(s, m)
    for part in ("Migrate React Class Components to Hooks", 'matched "convert to hooks"', "1. Map lifecycle methods",
                 "2. Run the tests", "- getSnapshotBeforeUpdate has no hook", "references/api.md, scripts/check.sh"):
        assert part in block
    public = mk("pdf", [], steps=[])
    public.steps, public.intro = [], "Use pypdf.\n" + "long line of guidance\n" * 500
    text = injection_block(public, None)
    assert "Use pypdf." in text and len(text) < 2000 and 'read_skill("pdf")' in text


def test_library_to_retriever_end_to_end(tmp_path):
    root = tmp_path / "skills"
    (root / "flaky").mkdir(parents=True)
    (root / "flaky" / "SKILL.md").write_text("---\nname: flaky\ndescription: Stabilise flaky tests.\n---\n"
                                             "# Skill: Flaky tests\n## Triggers\n- \"flaky test\"\n## Steps\n1. repeat\n")
    (root / "hooks.md").write_text("# Skill: Hooks\n## Triggers\n- \"convert to hooks\"\n## Steps\n1. map\n")
    skills = SkillLibrary(root).load()
    assert [m.skill.name for m in Retriever(skills).match("the flaky tests again")] == ["flaky"]
    assert [m.skill.name for m in Retriever(skills).match("converting it to hooks")] == ["hooks"]


def test_labelled_set_beats_the_substring_baseline():
    data = json.loads(DATA.read_text())
    skills = [mk(s["name"], s["triggers"], s["description"], s["steps"]) for s in data["skills"]]
    queries = data["queries"]
    assert len(data["skills"]) >= 30 and len(queries) >= 150
    retriever = Retriever(skills)
    pos = [q for q in queries if q["expect"]]
    neg = [q for q in queries if not q["expect"]]
    ours = sum(q["expect"] in [m.skill.name for m in retriever.match(q["q"])] for q in pos) / len(pos)
    base = sum(q["expect"] in [s.name for s in substring_baseline(skills, q["q"])] for q in pos) / len(pos)
    false = sum(bool(retriever.match(q["q"])) for q in neg) / len(neg)
    assert ours >= 0.85 and ours > base + 0.3
    assert false <= 0.10
