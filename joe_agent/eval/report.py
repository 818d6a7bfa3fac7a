"""The eval report: per task and arm, and in total, the pass rate, steps, tokens in and out
and wall time, and each arm's difference from the arm without skills. One dict feeds both
the tables (through joe_agent.repl.render's functions) and the JSON file for machines."""
from __future__ import annotations

import json
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

REPORT_VERSION = 1
METRICS = ("pass_rate", "steps", "tokens_in", "tokens_out", "wall_s")
BASELINE = "without"
ALL = "all"


def summarise(runs: Sequence[Any]) -> dict[str, float | int]:
    """Counts, and means over the runs (pass_rate is a share, 0..1)."""
    n = len(runs)
    if not n:
        return {"runs": 0, "passed": 0, **{m: 0.0 for m in METRICS}}
    passed = sum(1 for r in runs if r.passed)
    return {"runs": n, "passed": passed, "pass_rate": round(passed / n, 4),
            "steps": round(statistics.fmean(r.steps for r in runs), 2),
            "tokens_in": round(statistics.fmean(r.tokens_in for r in runs), 1),
            "tokens_out": round(statistics.fmean(r.tokens_out for r in runs), 1),
            "wall_s": round(statistics.fmean(r.wall_s for r in runs), 3)}


def difference(arm: dict, base: dict) -> dict[str, float]:
    """arm − base for every metric (pass_rate in points of share: +0.25 is +25 points)."""
    return {m: round(float(arm[m]) - float(base[m]), 4) for m in METRICS}


def _block(runs: Sequence[Any], arms: list[str]) -> dict[str, Any]:
    by_arm = {a: summarise([r for r in runs if r.arm == a]) for a in arms}
    diffs = {a: difference(by_arm[a], by_arm[BASELINE]) for a in arms if a != BASELINE and BASELINE in by_arm}
    return {"arms": by_arm, "diff": diffs}


def build_report(runs: Sequence[Any], tasks: Sequence[Any], arms: list[str], meta: dict) -> dict[str, Any]:
    per_task = []
    for task in tasks:
        mine = [r for r in runs if r.task == task.name]
        per_task.append({"name": task.name, "path": str(task.folder), **_block(mine, arms),
                         "runs": [asdict(r) for r in mine]})
    return {"version": REPORT_VERSION, **meta, "arm_names": arms, "tasks": per_task,
            "total": _block(runs, arms)}


# ---- showing it ---------------------------------------------------------------------------

def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def _signed(value: float, digits: int = 1, unit: str = "") -> str:
    return f"{value:+,.{digits}f}{unit}"


def _arm_row(label: str, arm: str, s: dict) -> list[str]:
    return [label, arm, f"{s['passed']}/{s['runs']}", _pct(s["pass_rate"]), f"{s['steps']:.1f}",
            f"{s['tokens_in']:,.0f}", f"{s['tokens_out']:,.0f}", f"{s['wall_s']:.2f}"]


def _diff_row(label: str, arm: str, d: dict) -> list[str]:
    return [label, f"{arm} − {BASELINE}", _signed(d["pass_rate"] * 100, 0, " pts"), _signed(d["steps"]),
            _signed(d["tokens_in"], 0), _signed(d["tokens_out"], 0), _signed(d["wall_s"], 2)]


def show(report: dict, table: Callable[..., None], print_line: Callable[..., None]) -> None:
    arms = report["arm_names"]
    blocks = [(t["name"], t) for t in report["tasks"]] + [(ALL, report["total"])]
    rows = [_arm_row(label, arm, block["arms"][arm]) for label, block in blocks for arm in arms]
    table(f"joe eval · {report['model']} · {report['repeat']} run(s) per task and arm",
          ["task", "arm", "passed", "pass rate", "steps", "tokens in", "tokens out", "wall s"], rows)
    diffs = [_diff_row(label, arm, block["diff"][arm]) for label, block in blocks for arm in block["diff"]]
    if diffs:
        table("difference between arms (means per run)",
              ["task", "arms", "pass rate", "steps", "tokens in", "tokens out", "wall s"], diffs)
    total = report["total"]["arms"]
    summary = ", ".join(f"{arm} {total[arm]['passed']}/{total[arm]['runs']}" for arm in arms)
    print_line(f"passed: {summary}")


def write_json(path: Path, report: dict) -> None:
    from joe_agent.memory.store import atomic_write

    atomic_write(path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
