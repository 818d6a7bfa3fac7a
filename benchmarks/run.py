"""Run every benchmark and print its table, then a summary of what ran.

    .venv/bin/python benchmarks/run.py [--quick] [--only agent,retrieval] [--save results.md]

Each benchmark is its own script (medians of several runs, ratios against a baseline measured
in the same run) and runs in its own process, so one that is missing or fails is reported in
the summary instead of stopping the others. --save writes the machine, the command and every
table as Markdown (the raw material of docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Bench:
    name: str
    script: str
    measures: str
    quick: tuple[str, ...] = ()  # arguments for --quick


BENCHES = [
    Bench("startup", "bench_startup.py", "launch → ready prompt, joe --version, per-turn render cost", ("--runs", "3", "--turns", "20")),
    Bench("agent", "bench_agent.py", "per-turn overhead (1,000 skills, 100 rules, 200 messages), prefix stability, context fit", ("--quick",)),
    Bench("checkpoints", "bench_checkpoints.py", "checkpoint snapshot of a 5,000-file project", ("--runs", "3")),
    Bench("retrieval", "bench_retrieval.py", "skill retrieval at 100 / 1,000 / 10,000 skills; recall and false matches vs substring", ("--quick",)),
    Bench("history", "bench_history.py", "history search over past sessions", ()),
]


@dataclass
class Outcome:
    bench: Bench
    status: str  # "ok" | "missing" | "failed (exit N)" | "timed out"
    seconds: float = 0.0
    output: str = ""


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}"}


def run(bench: Bench, quick: bool, timeout: float) -> Outcome:
    path = HERE / bench.script
    if not path.is_file():
        return Outcome(bench, "missing")
    argv = [sys.executable, str(path), *(bench.quick if quick else ())]
    began = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=HERE.parent, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return Outcome(bench, "timed out", time.monotonic() - began, out)
    seconds = time.monotonic() - began
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return Outcome(bench, f"failed (exit {proc.returncode})", seconds, proc.stdout + "\n" + tail)
    return Outcome(bench, "ok", seconds, proc.stdout)


def summary(outcomes: list[Outcome]) -> str:
    rows = [("benchmark", "status", "seconds", "measures")]
    for o in outcomes:
        rows.append((o.bench.script, o.status if o.status != "missing" else "missing (not written yet)",
                     f"{o.seconds:.1f}" if o.seconds else "-", o.bench.measures))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"| {r[0]:<{widths[0]}} | {r[1]:<{widths[1]}} | {r[2]:>{widths[2]}} | {r[3]} |" for r in rows]
    lines.insert(1, f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|{'-' * (widths[2] + 2)}|{'-' * 10}|")
    return "\n".join(lines)


def save(path: Path, info: dict[str, str], command: str, outcomes: list[Outcome]) -> None:
    parts = [f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, {info['os']}",
             f"Command: `{command}`", "", summary(outcomes)]
    for o in outcomes:
        if o.output.strip():
            parts += ["", f"### {o.bench.script}", "", "```", o.output.rstrip(), "```"]
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs and turns (a smoke run, not for the docs)")
    ap.add_argument("--only", help="comma-separated names: " + ", ".join(b.name for b in BENCHES))
    ap.add_argument("--save", type=Path, help="also write everything as Markdown here")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark")
    args = ap.parse_args(argv)
    chosen = BENCHES
    if args.only:
        names = {n.strip() for n in args.only.split(",")}
        unknown = names - {b.name for b in BENCHES}
        if unknown:
            ap.error(f"unknown benchmark {sorted(unknown)[0]!r}")
        chosen = [b for b in BENCHES if b.name in names]
    info = machine()
    print(f"machine: {info['cpu']} · {info['cores']} cores · Python {info['python']} · {info['os']}\n", flush=True)
    outcomes = []
    for bench in chosen:
        print(f"=== {bench.script}: {bench.measures}", flush=True)
        outcome = run(bench, args.quick, args.timeout)
        print(outcome.output.rstrip() or f"({outcome.status})", flush=True)
        print(flush=True)
        outcomes.append(outcome)
    print(summary(outcomes))
    if args.save:
        given = sys.argv[1:] if argv is None else argv
        save(args.save, info, " ".join(["python benchmarks/run.py", *given]), outcomes)
    return 0 if all(o.status in ("ok", "missing") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
