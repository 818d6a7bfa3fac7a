"""How much a checkpoint adds to a turn, on a generated 5,000-file project.

Medians of several runs, each against baselines measured in the same run: plain
`git add -A && git commit` in a copy of the project, and `cp -r` of it. Everything is written
under a temp folder, nothing into the repo tree.

    .venv/bin/python benchmarks/bench_checkpoints.py [--files 5000] [--runs 7]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from joe_agent.memory.checkpoints import Checkpoints  # noqa: E402

GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}


def make_project(root: Path, files: int) -> None:
    """Source-like files in nested folders, a .gitignore, and a node_modules to skip."""
    rng = random.Random(7)
    for i in range(files):
        folder = root / f"pkg{i % 40}" / f"mod{i % 9}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{i}.py").write_text("".join(f"value_{i}_{n} = {n}\n" for n in range(rng.randint(5, 120))))
    (root / ".gitignore").write_text("*.log\n")
    modules = root / "node_modules" / "dep"
    modules.mkdir(parents=True)
    for i in range(500):
        (modules / f"m{i}.js").write_text("module.exports = 1\n")


def sh(cmd: str, cwd: Path) -> None:
    subprocess.run(cmd, shell=True, cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(files: int, runs: int) -> list[tuple[str, float, str, float]]:
    work = Path(tempfile.mkdtemp(prefix="joe-bench-ckpt-"))
    try:
        project = work / "project"
        make_project(project, files)
        first, first_git, copy_s = [], [], []
        for r in range(runs):
            copy_s.append(timed(lambda: shutil.copytree(project, work / f"copy{r}", symlinks=True)))
            first_git.append(timed(lambda: sh("git init -q . && git add -A && git commit -qm s", work / f"copy{r}")))
            cp = Checkpoints(project, work / f"store{r}")
            first.append(timed(lambda: cp.begin_turn("bench", 1, "first")))
        small, small_git, end_s, undo_s = [], [], [], []
        target, mirror = project / "pkg3" / "mod3" / "file1011.py", work / "copy0" / "pkg3" / "mod3" / "file1011.py"
        for r in range(runs):
            target.write_text(f"changed = {r}\n")
            small.append(timed(lambda: cp.begin_turn("bench", r + 2, "small")))
            target.write_text(f"agent = {r}\n")
            end_s.append(timed(lambda: cp.end_turn("bench", r + 2)))
            undo_s.append(timed(lambda: cp.undo("bench")))
            mirror.write_text(f"changed = {r}\n")
            small_git.append(timed(lambda: sh("git add -A && git commit -qm s", work / "copy0")))
        med = statistics.median
        return [("first snapshot (begin_turn)", med(first), "git add -A && commit (fresh)", med(first_git)),
                ("first snapshot (begin_turn)", med(first), "cp -r", med(copy_s)),
                ("snapshot after 1-file change", med(small), "git add -A && commit", med(small_git)),
                ("end_turn after 1-file change", med(end_s), "git add -A && commit", med(small_git)),
                ("undo of a 1-file turn", med(undo_s), "git add -A && commit", med(small_git))]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rows = bench(args.files, args.runs)
    print(f"checkpoints on {args.files} files, median of {args.runs} runs")
    print(f"{'operation':<30} {'median':>9}   {'baseline':<30} {'median':>9} {'ratio':>7}")
    for name, value, base, base_value in rows:
        print(f"{name:<30} {value * 1000:>7.1f}ms   {base:<30} {base_value * 1000:>7.1f}ms {value / base_value:>6.2f}x")


if __name__ == "__main__":
    main()
