"""Start-up and per-turn overhead of joe, against baselines measured in the same run.

    .venv/bin/python benchmarks/bench_startup.py [--runs 7] [--turns 50]

- launch → ready prompt: `joe` in a pseudo-terminal (pexpect), until the prompt is drawn;
  with a scripted model, and with an Ollama model (tests/fake_ollama.py as the server) whose
  client (`import ollama`, ~300 ms) must load in the background, not before the prompt.
- `joe --version`, and the baselines `python -c pass`, `python -c "import ollama"`, and a
  peer CLI (`aider --version`, `hermes --version`) when one is installed (never installed here).
- per-turn overhead: one agent turn with a zero-latency ScriptedModel, not rendered (baseline),
  rendered plain, and rendered on a (fake) terminal (rich Live + Markdown).
Medians of several runs; nothing here is an assertion.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
JOE = [str(Path(PY).with_name("joe"))] if Path(PY).with_name("joe").exists() else [PY, "-m", "joe_agent"]


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def time_command(argv: list[str], runs: int, env: dict) -> float | None:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, env=env)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            return None
    return median_ms(times)


def time_to_prompt(argv: list[str], cwd: Path, runs: int, env: dict) -> float:
    import pexpect

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        child = pexpect.spawn(argv[0], argv[1:], cwd=str(cwd), env=env, dimensions=(40, 120), encoding="utf-8")
        child.expect("›", timeout=30)  # the prompt itself (the banner has no such mark)
        times.append(time.perf_counter() - t0)
        child.sendcontrol("d")
        child.expect(pexpect.EOF, timeout=30)
        child.close()
    return median_ms(times)


def start_fake_ollama(tmp: Path) -> subprocess.Popen:
    script = tmp / "fake.json"
    script.write_text("[]")
    proc = subprocess.Popen([PY, str(REPO / "tests" / "fake_ollama.py"), "--script", str(script)],
                            stdout=subprocess.PIPE, text=True)
    proc.url = proc.stdout.readline().strip()  # type: ignore[attr-defined]
    return proc


def per_turn(tmp: Path, turns: int) -> dict[str, float]:
    """Median ms per turn: the scripted stream alone; an agent turn (checkpoints, transcript,
    context) consumed without output; the same rendered plain and on a (fake) terminal."""
    sys.path.insert(0, str(REPO))
    from joe_agent.config import Settings
    from joe_agent.models.scripted import ScriptedModel, ScriptedReply
    from joe_agent.repl.render import Renderer
    from joe_agent.runtime import Runtime

    reply = "Here is the change you asked for.\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nDone."
    script = tmp / "turns.json"
    script.write_text(json.dumps([reply] * (turns * 3 + 2)))
    root = tmp / "turn-proj"
    root.mkdir(exist_ok=True)
    rt = Runtime.create(Settings(model=f"scripted:{script}", mode="full-auto"), root, tmp / "home").start(False)
    raw = ScriptedModel([ScriptedReply(reply) for _ in range(turns)])
    out: dict[str, list[float]] = {"stream": [], "agent": [], "plain": [], "terminal": []}
    for _ in range(turns):
        t0 = time.perf_counter()
        for _chunk in raw.stream([], None):
            pass
        out["stream"].append(time.perf_counter() - t0)
    for kind in ("agent", "plain", "terminal"):
        ui = Renderer(io.StringIO(), terminal=kind == "terminal", width=100)
        for _ in range(turns):
            rt.agent.clear()  # same prompt size every turn
            t0 = time.perf_counter()
            if kind == "agent":
                for _ev in rt.agent.run_turn("add a function"):
                    pass
            else:
                ui.begin_turn()
                for ev in rt.agent.run_turn("add a function"):
                    ui.event(ev)
                ui.end_turn()
            out[kind].append(time.perf_counter() - t0)
    rt.close()
    return {k: median_ms(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--turns", type=int, default=50)
    args = ap.parse_args()
    rows: list[tuple[str, float | None, str]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = dict(os.environ, JOE_HOME=str(tmp / "home"), TIKTOKEN_CACHE_DIR=str(tmp / "tk"), NO_COLOR="1")
        project = tmp / "proj"
        project.mkdir()
        script = tmp / "replies.json"
        script.write_text("[]")
        base = time_command([PY, "-c", "pass"], args.runs, env)
        rows.append(("python -c pass (baseline)", base, ""))
        rows.append(("python -c 'import ollama'", time_command([PY, "-c", "import ollama"], args.runs, env), ""))
        rows.append(("joe --version", time_command([*JOE, "--version"], args.runs, env), ""))
        for peer in ("aider", "hermes"):
            if shutil.which(peer):
                rows.append((f"{peer} --version (peer)", time_command([peer, "--version"], args.runs, env), ""))
            else:
                rows.append((f"{peer} --version (peer)", None, "not installed"))
        rows.append(("joe → prompt (scripted model)",
                     time_to_prompt([*JOE, "--model", f"scripted:{script}"], project, args.runs, env), "pty"))
        fake = start_fake_ollama(tmp)
        try:
            rows.append(("joe → prompt (ollama model, fake server)",
                         time_to_prompt([*JOE, "--model", "qwen2.5-coder:7b", "--host", fake.url],  # type: ignore
                                        project, args.runs, env), "client loads in background"))
        finally:
            fake.terminate()
            fake.wait()
        turn = per_turn(tmp, args.turns)
    print(f"{'measure':<44} {'median ms':>10} {'× baseline':>11}  note")
    for name, ms, note in rows:
        ratio = f"{ms / base:.1f}×" if ms is not None and base else "-"
        print(f"{name:<44} {ms if ms is None else round(ms, 1)!s:>10} {ratio:>11}  {note}")
    print(f"\nper turn ({args.turns} turns, zero-latency scripted model), median ms:")
    print(f"{'scripted stream alone':<44} {turn['stream']:>10.2f}")
    print(f"{'agent turn, events not rendered (baseline)':<44} {turn['agent']:>10.2f}")
    for kind in ("plain", "terminal"):
        extra = turn[kind] - turn["agent"]
        print(f"{'agent turn rendered ' + kind:<44} {turn[kind]:>10.2f}  render overhead {extra:+.2f} ms")


if __name__ == "__main__":
    main()
