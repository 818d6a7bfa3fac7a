"""Skill retrieval: quality on a labelled query set, and speed at 100 / 1,000 / 10,000 skills.

    .venv/bin/python benchmarks/bench_retrieval.py            # everything (about a minute)
    .venv/bin/python benchmarks/bench_retrieval.py --quick    # quality + match timing only
    .venv/bin/python benchmarks/bench_retrieval.py --misses   # also list every wrong answer

Quality: benchmarks/data/retrieval_set.json holds realistic coding skills and queries labelled
with the skill that should match (or none). Ours (`Retriever.match`, limit 3) is compared with
the seed article's `trigger.lower() in query.lower()` baseline on the same data.
Speed: synthetic skills generated deterministically from a coding vocabulary; the time per
request is the median of several passes over the query set; the baseline is timed alongside.
Load: SkillLibrary.load over 1,000 and 10,000 SKILL.md files, cold (parse) and warm (index cache).
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from joe_agent.memory.retrieval import Retriever, substring_baseline  # noqa: E402
from joe_agent.memory.skillfile import Skill, render_skill  # noqa: E402

DATA = Path(__file__).parent / "data" / "retrieval_set.json"


def make_skill(name: str, description: str, triggers: list[str], steps: list[str],
               pitfalls: list[str] | None = None, root: Path = Path("skills")) -> Skill:
    return Skill(name=name, description=description, title=name.replace("-", " ").capitalize(),
                 triggers=list(triggers), steps=list(steps), pitfalls=list(pitfalls or []), metadata={},
                 origin="hand", path=root / name / "SKILL.md", fmt="agent-skills", files=[], created=None)


def load_set() -> tuple[list[Skill], list[dict]]:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    return [make_skill(**s) for s in data["skills"]], data["queries"]


# ---- quality --------------------------------------------------------------------------------


def evaluate(answer, queries: list[dict]) -> dict:
    """answer(query) -> ranked skill names. Recall@3 and top-1 over positive queries;
    false-match rate over queries that must match nothing; precision over everything returned."""
    pos = [q for q in queries if q["expect"]]
    neg = [q for q in queries if not q["expect"]]
    by_kind: dict[str, list[bool]] = defaultdict(list)
    hit = top1 = returned = correct = fired = 0
    misses = []
    for q in queries:
        names = answer(q["q"])
        returned += len(names)
        if q["expect"]:
            ok = q["expect"] in names
            hit += ok
            top1 += bool(names) and names[0] == q["expect"]
            correct += ok
            by_kind[q["kind"]].append(ok)
            if not ok or len(names) > 1:
                misses.append((q["q"], q["expect"], names))
        else:
            fired += bool(names)
            by_kind[q["kind"]].append(not names)
            if names:
                misses.append((q["q"], None, names))
    return {"recall@3": hit / len(pos), "top1": top1 / len(pos), "false_match": fired / len(neg),
            "precision": correct / returned if returned else 1.0,
            "kinds": {k: sum(v) / len(v) for k, v in by_kind.items()}, "misses": misses}


def quality(show_misses: bool) -> None:
    skills, queries = load_set()
    retriever = Retriever(skills)
    ours = evaluate(lambda text: [m.skill.name for m in retriever.match(text)], queries)
    base = evaluate(lambda text: [s.name for s in substring_baseline(skills, text)][:3], queries)
    npos = sum(1 for q in queries if q["expect"])
    print(f"Quality: {len(skills)} skills, {len(queries)} queries ({npos} should match, "
          f"{len(queries) - npos} should not)\n")
    print(f"| {'metric':<34} | {'ours':>7} | {'substring':>9} |")
    print(f"|{'-' * 36}|{'-' * 9}|{'-' * 11}|")
    for key, label in (("recall@3", "recall (expected skill in top 3)"), ("top1", "top-1 accuracy"),
                       ("false_match", "false-match rate (near-misses)"), ("precision", "precision of returned")):
        print(f"| {label:<34} | {ours[key]:>7.1%} | {base[key]:>9.1%} |")
    for kind in ("exact", "inflection", "between", "order", "paraphrase", "near-miss", "unrelated"):
        label = f"  {kind} ({'no match' if kind in ('near-miss', 'unrelated') else 'matched'})"
        print(f"| {label:<34} | {ours['kinds'][kind]:>7.1%} | {base['kinds'][kind]:>9.1%} |")
    if show_misses:
        print("\nOurs, wrong or extra answers:")
        for text, expect, got in ours["misses"]:
            print(f"  {text!r}: expected {expect}, got {got}")


# ---- speed ----------------------------------------------------------------------------------

VERBS = ["fix", "add", "migrate", "convert", "refactor", "debug", "optimize", "configure", "upgrade",
         "write", "deploy", "validate", "test", "profile", "document", "secure", "cache", "paginate"]
OBJECTS = ["endpoint", "query", "component", "migration", "workflow", "dockerfile", "schema", "parser",
           "logger", "middleware", "fixture", "serializer", "webhook", "cron job", "template", "router",
           "reducer", "dataframe", "model", "client", "handler", "worker", "queue", "index", "cli flag"]
TECH = ["django", "flask", "fastapi", "react", "vue", "postgres", "redis", "kafka", "celery", "pytest",
        "terraform", "kubernetes", "graphql", "grpc", "pandas", "numpy", "webpack", "vite", "rust",
        "go", "typescript", "node", "spark", "airflow", "sqlalchemy", "alembic", "docker", "nginx"]


def synthetic(n: int, seed: int = 7) -> list[Skill]:
    """n realistic-looking skills: 2-4 triggers of verb / object / technology phrases."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        verb, obj, tech = rnd.choice(VERBS), rnd.choice(OBJECTS), rnd.choice(TECH)
        triggers = [f"{verb} {obj}", f"{tech} {obj}", f"{verb} the {tech} {obj}"][: rnd.randint(2, 3)]
        if rnd.random() < 0.3:
            triggers.append(f"{rnd.choice(VERBS)} {tech} {rnd.choice(OBJECTS)}")
        name = f"{verb}-{tech}-{obj.replace(' ', '-')}-{i}"
        out.append(make_skill(name, f"{verb.capitalize()} a {tech} {obj}.", triggers,
                              [f"step {k}" for k in range(1, 6)]))
    return out


def median_per_request(fn, requests: list[str], passes: int = 5) -> float:
    runs = []
    for _ in range(passes):
        t0 = time.perf_counter()
        for r in requests:
            fn(r)
        runs.append((time.perf_counter() - t0) / len(requests))
    return statistics.median(runs)


def speed() -> None:
    _, queries = load_set()
    requests = [q["q"] for q in queries]
    print("\nMatch time per request (median of 5 passes over the query set)\n")
    print(f"| {'skills':>7} | {'index build':>11} | {'ours / request':>14} | {'substring / request':>19} | {'ratio':>6} |")
    print(f"|{'-' * 9}|{'-' * 13}|{'-' * 16}|{'-' * 21}|{'-' * 8}|")
    for n in (100, 1000, 10000):
        skills = synthetic(n)
        t0 = time.perf_counter()
        retriever = Retriever(skills)
        retriever.match("warm up")  # the index is built on the first match
        build = time.perf_counter() - t0
        ours = median_per_request(retriever.match, requests)
        base = median_per_request(lambda r: substring_baseline(skills, r), requests)
        print(f"| {n:>7,} | {build * 1000:>8.1f} ms | {ours * 1000:>11.3f} ms | {base * 1000:>16.3f} ms | "
              f"{ours / base:>5.2f}x |")


def load_time() -> None:
    from joe_agent.memory.skills import SkillLibrary

    print("\nSkillLibrary.load (medians of 5; cold parses every file once)\n")
    print(f"| {'skills':>7} | {'cold: parse all':>15} | {'warm start: index cache':>23} | {'reload in session':>17} |")
    print(f"|{'-' * 9}|{'-' * 17}|{'-' * 25}|{'-' * 19}|")
    for n in (1000, 10000):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "skills"
            for s in synthetic(n):
                (root / s.name).mkdir(parents=True)
                (root / s.name / "SKILL.md").write_text(render_skill(s), encoding="utf-8")
            t0 = time.perf_counter()
            assert len(SkillLibrary(root).load()) == n
            cold = time.perf_counter() - t0
            warm = statistics.median(_timed(lambda: SkillLibrary(root).load()) for _ in range(5))
            lib = SkillLibrary(root)
            lib.load()
            hot = statistics.median(_timed(lib.load) for _ in range(5))
        print(f"| {n:>7,} | {cold * 1000:>12,.0f} ms | {warm * 1000:>20,.0f} ms | {hot * 1000:>14,.0f} ms |")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 10,000-file load benchmark")
    ap.add_argument("--misses", action="store_true", help="list our wrong or extra answers")
    args = ap.parse_args()
    quality(args.misses)
    speed()
    if not args.quick:
        load_time()


if __name__ == "__main__":
    main()
