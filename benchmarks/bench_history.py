"""Benchmark of the session history index (joe_agent/memory/history.py).

Writes synthetic but realistic transcripts in the transcript format (docs/transcript-format.md:
session_start, then per turn a request, an assistant tool call, its tool_call/tool_result
records, the tool output, the answer and turn_done), then measures: full build, index size,
query time (median of several runs, with "this project first" as the CLI does), the cost of
`update_all` when nothing changed, and the incremental cost of one more turn. The baseline,
measured in the same run: a linear case-insensitive grep over the JSONL files.

    .venv/bin/python benchmarks/bench_history.py                 # 1,000 sessions, 100,000 messages
    .venv/bin/python benchmarks/bench_history.py --sessions 100  # a quick look
"""
from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from joe_agent.history_cli import history_cli  # noqa: E402
from joe_agent.memory.history import HistoryIndex  # noqa: E402

CODE_WORDS = """def class return import self async await raise except try finally yield lambda config
parser token request response client server handler router session cache index query schema
migration fixture assert pytest mock patch module package build deploy docker compose kube pod
service timeout retry backoff socket connection refused reset websocket reconnect json yaml toml
encode decode utf8 bytes buffer stream chunk worker thread process lock queue event loop signal
logger warning error traceback keyerror valueerror typeerror attributeerror importerror null
undefined promise component props state hook render effect reducer context provider store
database postgres sqlite redis transaction commit rollback cursor column table primary foreign
""".split()
FILES = ["src/app.py", "src/io.py", "tests/test_io.py", "web/src/App.tsx", "cli.py", "setup.cfg",
         "pyproject.toml", "Makefile", "docs/index.md", "src/db/models.py", "src/api/routes.py"]
TOOLS = ["read_file", "edit_file", "run_shell", "search", "list_files", "write_file"]


def vocabulary(rng: random.Random, size: int = 6000) -> tuple[list[str], list[float]]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "qu", "sha", "tro", "bel", "dor", "fin"]
    words = list(CODE_WORDS)
    while len(words) < size:
        words.append("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    rng.shuffle(words)
    weights = [1.0 / (rank + 1) for rank in range(len(words))]  # Zipf: a few words everywhere
    return words, list(itertools.accumulate(weights))


def sentence(rng: random.Random, vocab: tuple[list[str], list[float]], lo: int, hi: int) -> str:
    n = max(lo, min(hi, int(rng.lognormvariate(0, 0.8) * (lo + hi) / 3)))
    return " ".join(rng.choices(vocab[0], cum_weights=vocab[1], k=n))


def tool_output(rng: random.Random, vocab) -> str:
    kind = rng.random()
    if kind < 0.3:
        return "\n".join(f"{rng.choice(FILES)}:{rng.randint(1, 400)}: {sentence(rng, vocab, 4, 14)}"
                         for _ in range(rng.randint(3, 30)))
    if kind < 0.5:
        name = rng.choice(["ValueError", "KeyError", "ConnectionRefusedError", "TypeError", "AssertionError"])
        return (f"Traceback (most recent call last):\n  File \"{rng.choice(FILES)}\", line {rng.randint(1, 300)}\n"
                f"    {sentence(rng, vocab, 4, 10)}\n{name}: {sentence(rng, vocab, 3, 12)}\n"
                f"{rng.randint(1, 40)} passed, {rng.randint(0, 3)} failed in {rng.random() * 9:.2f}s")
    return "\n".join(sentence(rng, vocab, 6, 16) for _ in range(rng.randint(2, 60)))


def write_session(path: Path, rng: random.Random, vocab, root: str, sid: str, turns: int, day: int) -> int:
    clock = [day * 86400]

    def rec(type_: str, turn: int, **fields) -> str:
        clock[0] += rng.randint(1, 30)
        t = time.gmtime(1767225600 + clock[0])
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{rng.randint(0, 999):03d}Z"
        return json.dumps({"v": 1, "ts": ts, "type": type_, "turn": turn, **fields}, separators=(",", ":"),
                          ensure_ascii=False)

    lines = [rec("session_start", 0, session=sid, root=root, model="qwen2.5-coder:7b", backend="ollama",
                 version="0.1.0", num_ctx=16384)]
    for n in range(1, turns + 1):
        request = sentence(rng, vocab, 6, 40)
        tool = rng.choice(TOOLS)
        call = {"name": tool, "arguments": {"path": rng.choice(FILES)}, "id": f"call_{n}", "arguments_error": "",
                "source": "native"}
        lines += [rec("message", n, message={"role": "user", "content": request}, request=request),
                  rec("message", n, message={"role": "assistant", "content": "", "tool_calls": [call]}),
                  rec("tool_call", n, call=call),
                  rec("tool_result", n, name=tool, ok=True, meta={}, seconds=0.01),
                  rec("message", n, message={"role": "tool", "content": tool_output(rng, vocab), "tool_name": tool,
                                             "tool_call_id": call["id"]}),
                  rec("message", n, message={"role": "assistant", "content": sentence(rng, vocab, 15, 120)}),
                  rec("turn_done", n, reason="done", steps=2, prompt_tokens=2000, completion_tokens=150)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return turns * 4


def median_ms(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.9))]


def grep_all(files: list[Path], term: str) -> int:
    """The baseline: what searching without an index costs (every byte read and scanned)."""
    rx = re.compile(re.escape(term.encode()), re.I)
    return sum(1 for f in files for line in f.read_bytes().split(b"\n") if rx.search(line))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--projects", type=int, default=20)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    rng = random.Random(7)
    vocab = vocabulary(rng)
    turns = max(1, args.messages // args.sessions // 4)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        t0 = time.perf_counter()
        messages = 0
        for s in range(args.sessions):
            proj = f"proj{s % args.projects:02d}-{s % args.projects:08x}"
            sid = f"2026{1 + s % 12:02d}{1 + s % 28:02d}-{s // 100:02d}{s % 100:02d}00-{s:04x}"
            messages += write_session(home / "transcripts" / proj / f"{sid}.jsonl", rng, vocab,
                                      f"~/work/{proj}", sid, turns, s)
        files = sorted((home / "transcripts").glob("*/*.jsonl"))
        jsonl_bytes = sum(f.stat().st_size for f in files)
        print(f"wrote {len(files)} sessions, {messages} messages, {jsonl_bytes / 1e6:.1f} MB of JSONL "
              f"in {time.perf_counter() - t0:.1f}s")
        index = HistoryIndex(home / "history.db", home / "transcripts")
        t0 = time.perf_counter()
        entries = index.rebuild()
        build_s = time.perf_counter() - t0
        db_bytes = (home / "history.db").stat().st_size
        print(f"full build: {entries} entries in {build_s:.1f}s ({entries / build_s:.0f} entries/s); "
              f"history.db {db_bytes / 1e6:.1f} MB = {db_bytes / jsonl_bytes:.2f}x the JSONL")
        report_queries(index, files, vocab, args.runs)
        report_incremental(index, files, rng, vocab, args.runs)
        index.close()
        med, _ = median_ms(lambda: history_cli("search", vocab[0][200], True, home, Path(tmp), lambda *a: None,
                                               lambda line: None), args.runs)
        print(f"joe sessions search end to end (open, update_all, search, close): median {med:.1f} ms")


def report_queries(index: HistoryIndex, files: list[Path], vocab, runs: int) -> None:
    words = vocab[0]
    queries = {"common word": words[0], "mid word": words[200], "rare word": words[5000],
               "two words": f"{words[3]} {words[40]}", "phrase": f'"{words[1]} {words[2]}"',
               "prefix (typing)": words[60][:4], "error text": "ConnectionRefusedError", "no match": "zzzqqq"}
    project = files[0].parent.name
    print(f"\n{'query':18} {'hits':>5} {'index ms (p90)':>15} {'+project ms':>12} {'grep ms':>9} {'ratio':>7}")
    for label, q in queries.items():
        hits = len(index.search(q, limit=20))
        med, p90 = median_ms(lambda: index.search(q, limit=20), runs)
        proj_med, _ = median_ms(lambda: index.search(q, project=project, limit=20), runs)
        term = q.strip('"').split()[0]
        grep_med, _ = median_ms(lambda: grep_all(files, term), max(3, runs // 5))
        print(f"{label:18} {hits:>5} {med:>8.2f} ({p90:5.2f}) {proj_med:>12.2f} {grep_med:>9.1f} "
              f"{grep_med / proj_med:>6.0f}x")


def report_incremental(index: HistoryIndex, files: list[Path], rng, vocab, runs: int) -> None:
    med, _ = median_ms(index.update_all, runs)
    print(f"\nupdate_all, nothing changed ({len(files)} transcripts stat'ed): {med:.2f} ms")
    target = files[len(files) // 2]
    costs = []
    for n in range(runs):
        extra = target.with_suffix(".extra")
        write_session(extra, rng, vocab, "~/work/x", target.stem, 1, 0)
        turn_lines = extra.read_bytes().split(b"\n", 1)[1]  # one turn, without session_start
        extra.unlink()
        with open(target, "ab") as fh:
            fh.write(turn_lines)
        t0 = time.perf_counter()
        added = index.update_file(target)
        costs.append((time.perf_counter() - t0) * 1000)
        assert added == 4, added
    print(f"incremental: one more turn (7 records, {len(turn_lines)} bytes) in a "
          f"{target.stat().st_size / 1e3:.0f} kB transcript: update_file median {statistics.median(costs):.2f} ms")


if __name__ == "__main__":
    main()
