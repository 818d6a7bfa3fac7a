"""The agent loop's own costs: overhead per turn, prompt-prefix stability, and context fit.

    .venv/bin/python benchmarks/bench_agent.py [--turns 30] [--session 50] [--fit-turns 200] [--quick]

1. Overhead per turn against a zero-latency model (ScriptedModel): one turn is a read_file
   call and an answer, with checkpoints, transcript, ledger and retrieval all on. Loaded with
   1,000 skills, 100 rules and a 200-message history, against the same turn with none of them
   (the baseline), and each load alone. Median over the turns, after two warm-up turns.
2. Prefix stability: a 50-turn session through the real Agent, tools and Ollama backend,
   against tests/fake_ollama.py over real HTTP, with skills matching on some turns. For each
   request, the share of it (rendered as the server renders it: tools, then messages) that is
   a byte-identical prefix of the next request; how often num_ctx changed; runner reloads; the
   share of prompt tokens the server found in its KV cache. The baseline is the same requests
   with each turn's skills moved into the system prompt (the seed agent's layout).
3. Context fit: a 200-turn session whose tool outputs are 1-4k tokens each, num_ctx 8192;
   requests the server had to truncate (its own token count; target 0), against the same
   session with compaction switched off; and the session at the default num_ctx (32768),
   where compaction should be rare.
Nothing here is an assertion; all state lives in a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

REQUESTS = ["fix the flask endpoint pagination", "add a cli flag to the parser",
            "explain what this function does", "write a pytest fixture for the redis client",
            "refactor the django serializer", "rename the helper in utils"]
VERBS = ["fix", "add", "refactor", "debug", "write", "migrate", "test", "document", "optimize"]
OBJECTS = ["endpoint", "serializer", "fixture", "parser", "cli flag", "client", "worker", "query", "schema"]
TECH = ["flask", "django", "pytest", "redis", "postgres", "react", "celery", "docker", "pandas"]


def isolate(tmp: Path) -> None:
    """This process only: no real JOE_HOME, no tiktoken download, a git identity."""
    os.environ.update({"JOE_HOME": str(tmp / "joe-home"), "TIKTOKEN_CACHE_DIR": str(tmp / "tiktoken"),
                       "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
                       "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
                       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"})
    for name in ("OLLAMA_HOST", "JOE_MODEL", "JOE_HOST", "JOE_MODE", "JOE_NUM_CTX"):
        os.environ.pop(name, None)


# ---- fixtures --------------------------------------------------------------------------------

def write_skills(folder: Path, n: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    for i in range(n):
        verb, obj, tech = rnd.choice(VERBS), rnd.choice(OBJECTS), rnd.choice(TECH)
        name = f"{verb}-{tech}-{obj.replace(' ', '-')}-{i}"
        (folder / name).mkdir(parents=True)
        (folder / name / "SKILL.md").write_text(
            f"---\nname: {name}\ndescription: {verb.capitalize()} a {tech} {obj}.\nmetadata:\n  origin: hand\n---\n"
            f"# Skill: {verb} {tech} {obj}\n## Triggers\n- {verb} the {tech} {obj}\n- {tech} {obj}\n"
            f"## Steps\n" + "".join(f"{k}. step {k} for the {tech} {obj}\n" for k in range(1, 6)), encoding="utf-8")


def write_rules(path: Path, n: int) -> None:
    lines = [f"- Prefer small focused changes in module {i}; keep the tests green. "
             f"<!-- 2026-01-01, session bench-{i} -->\n" for i in range(n)]
    path.write_text("# Preference rules\n\n" + "".join(lines), encoding="utf-8")


def history(n: int):
    from joe_agent.messages import Message, ToolCall

    out, i = [], 0
    while len(out) < n:
        out += [Message("user", f"{REQUESTS[i % len(REQUESTS)]} (earlier request {i})"),
                Message("assistant", "", tool_calls=[ToolCall("read_file", {"path": "notes.txt"}, f"h{i}")]),
                Message("tool", "line of earlier output\n" * 25, tool_name="read_file", tool_call_id=f"h{i}"),
                Message("assistant", f"Done with request {i}.")]
        i += 1
    return out[:n]


def project(tmp: Path) -> Path:
    root = tmp / "project"
    root.mkdir(exist_ok=True)
    (root / "notes.txt").write_text("alpha\nbeta\n" * 20)
    (root / "big.txt").write_text("".join(f"{n:05d} " + "lorem ipsum dolor sit amet " * 3 + "\n" for n in range(4000)))
    return root


# ---- 1. overhead per turn ---------------------------------------------------------------------

def loaded_runtime(tmp: Path, label: str, skills: int, rules: int, turns: int):
    from joe_agent.config import Settings
    from joe_agent.runtime import Runtime

    home = tmp / f"home-{label}"
    (home / "skills").mkdir(parents=True)
    write_skills(home / "skills", skills)
    if rules:
        write_rules(home / "rules.md", rules)
    step = [{"tool_calls": [{"name": "read_file", "arguments": {"path": "notes.txt"}}]}, "Done."]
    script = tmp / f"replies-{label}.json"
    script.write_text(json.dumps(step * (turns + 2)))
    root = tmp / f"project-{label}"
    root.mkdir()
    (root / "notes.txt").write_text("alpha\nbeta\n" * 20)
    return Runtime.create(Settings(model=f"scripted:{script}", mode="full-auto"), root, home, headless=True).start(False)


def overhead(tmp: Path, turns: int) -> list[tuple[str, float]]:
    """Median ms per turn for each load. The loads take turns round by round, so a slow
    moment of the machine (git, the disk) falls on all of them alike."""
    configs = [("baseline: no skills, rules or history", 0, 0, 0), ("1,000 skills", 1000, 0, 0),
               ("100 rules", 0, 100, 0), ("200-message history", 0, 0, 200),
               ("all three", 1000, 100, 200)]
    runtimes = [loaded_runtime(tmp, f"o{i}", s, r, turns) for i, (_, s, r, _) in enumerate(configs)]
    pasts = [history(h) for *_, h in configs]
    samples: list[list[float]] = [[] for _ in configs]
    for i in range(turns + 2):
        for rt, past, out in zip(runtimes, pasts, samples):
            rt.agent.context.replace_history(list(past))  # the same load every turn
            t0 = time.perf_counter()
            for _ev in rt.agent.run_turn(REQUESTS[i % len(REQUESTS)]):
                pass
            out.append(time.perf_counter() - t0)
    for rt in runtimes:
        rt.close()
    return [(label, statistics.median(out[2:]) * 1000) for (label, *_), out in zip(configs, samples)]


# ---- 2 and 3: sessions against the fake Ollama server ---------------------------------------------

def ollama_session(tmp: Path, label: str, fake, turns: int, num_ctx: int | None, skills: int,
                   compaction: bool = True) -> dict:
    from joe_agent.config import Settings
    from joe_agent.runtime import Runtime

    home = tmp / f"home-{label}"
    (home / "skills").mkdir(parents=True)
    write_skills(home / "skills", skills)
    settings = Settings(model="qwen2.5-coder:7b", host=fake.url, mode="full-auto", num_ctx=num_ctx)
    rt = Runtime.create(settings, project(tmp), home, headless=True)
    rt.start(background=False)
    agent = rt.agent
    if not compaction:
        agent.context.fit = lambda: []
    compactions = 0
    for i in range(turns):
        for ev in agent.run_turn(REQUESTS[i % len(REQUESTS)] + f" (turn {i + 1})"):
            compactions += getattr(ev, "topic", "") == "compaction"
    rt.close()
    return {"compactions": compactions}


def tool_reply(sizes: random.Random | None):
    """The fake's responder: one tool call per turn, then an answer. With `sizes`, the call
    reads 45-180 lines (1-4k tokens) of big.txt; otherwise it cycles through light tools."""
    from fake_ollama import Reply

    light = [("read_file", {"path": "notes.txt"}), ("list_files", {}), ("search", {"pattern": "beta"}),
             ("run_shell", {"command": "echo checked"})]
    count = [0]

    def respond(body: dict) -> Reply:
        if body["messages"][-1]["role"] == "tool":
            return Reply(text="Done: " + "the change is in place. " * 4)
        count[0] += 1
        if sizes is not None:
            start = sizes.randint(1, 3000)
            name, args = "read_file", {"path": "big.txt", "start_line": start, "end_line": start + sizes.randint(45, 180)}
        else:
            name, args = light[count[0] % len(light)]
        return Reply(tool_calls=[{"name": name, "arguments": args}])

    return respond


def prefix_stability(tmp: Path, turns: int) -> dict:
    from fake_ollama import FakeOllama, render_prompt

    with FakeOllama(responder=tool_reply(None)) as fake:
        ollama_session(tmp, "prefix", fake, turns, None, skills=200)
        bodies, log, reloads = fake.chat_requests, list(fake.chat_log), fake.reloads
    ours = [render_prompt(b["messages"], b.get("tools") or []) for b in bodies]
    seed = [render_prompt(_skills_in_system(b["messages"]), b.get("tools") or []) for b in bodies]
    ctx = [(b.get("options") or {}).get("num_ctx") for b in bodies]
    return {"requests": len(bodies), "ours": _prefix_shares(ours), "seed": _prefix_shares(seed),
            "num_ctx_changes": sum(a != b for a, b in zip(ctx, ctx[1:])), "num_ctx": sorted(set(ctx), key=str),
            "reloads": reloads, "skill_turns": sum("<skills>" in m["content"] for m in bodies[-1]["messages"]
                                                   if m["role"] == "user"),
            "cached": sum(r.cached_tokens for r in log) / max(1, sum(r.prompt_tokens for r in log))}


def _skills_in_system(messages: list[dict]) -> list[dict]:
    """The seed's layout: the latest turn's skills in the system prompt, not in its message."""
    out = [dict(m) for m in messages]
    last_user = max((i for i, m in enumerate(out) if m["role"] == "user"), default=None)
    if last_user is None:
        return out
    for i, m in enumerate(out):
        if m["role"] == "user" and "\n\n<skills>" in m["content"]:
            text, block = m["content"].split("\n\n<skills>", 1)
            out[i]["content"] = text
            if i == last_user:
                out[0]["content"] = "<skills>" + block + "\n\n" + out[0]["content"]
    return out


def _prefix_shares(prompts: list[str]) -> dict:
    shares = [len(os.path.commonprefix([a, b])) / len(a) for a, b in zip(prompts, prompts[1:])]
    return {"mean": statistics.fmean(shares), "min": min(shares), "full": sum(s == 1.0 for s in shares),
            "pairs": len(shares)}


FIT_SESSIONS = (("ours (compaction on)", 8192, True), ("baseline: compaction off", 8192, False),
                ("ours, at the default num_ctx", 32768, True))


def context_fit(tmp: Path, turns: int) -> list[dict]:
    from fake_ollama import FakeOllama, render_prompt

    out = []
    for i, (label, num_ctx, compaction) in enumerate(FIT_SESSIONS):
        with FakeOllama(responder=tool_reply(random.Random(11))) as fake:
            info = ollama_session(tmp, f"fit-{i}", fake, turns, num_ctx, skills=0, compaction=compaction)
            log = list(fake.chat_log)
            prompts = [render_prompt(b["messages"], b.get("tools") or []) for b in fake.chat_requests]
        out.append({"label": label, "requests": len(log), "truncated": sum(r.truncated for r in log),
                    "prefix": _prefix_shares(prompts)["mean"], "num_ctx": num_ctx,
                    "dropped": sum(r.dropped_messages for r in log), "compactions": info["compactions"],
                    "peak": max(r.prompt_tokens for r in log) / num_ctx, "reloads": fake.reloads})
    return out


# ---- output ----------------------------------------------------------------------------------

def show_overhead(rows: list[tuple[str, float]], turns: int) -> None:
    base = rows[0][1]
    print(f"Agent overhead per turn (zero-latency scripted model, median of {turns} turns)\n")
    print(f"| {'load':<38} | {'ms / turn':>9} | {'× baseline':>10} | {'+ ms':>7} |")
    print(f"|{'-' * 40}|{'-' * 11}|{'-' * 12}|{'-' * 9}|")
    for label, ms in rows:
        print(f"| {label:<38} | {ms:>9.2f} | {ms / base:>9.2f}× | {ms - base:>+7.2f} |")


def show_prefix(p: dict, turns: int) -> None:
    print(f"\nPrompt-prefix stability ({turns} turns, {p['requests']} requests, Ollama backend over HTTP, "
          f"skills matched on {p['skill_turns']} turns)\n")
    print(f"| {'layout':<40} | {'mean prefix share':>17} | {'min':>6} | {'full prefix':>11} |")
    print(f"|{'-' * 42}|{'-' * 19}|{'-' * 8}|{'-' * 13}|")
    for key, label in (("ours", "ours (skills ride in the user message)"), ("seed", "baseline: skills in the system prompt")):
        s = p[key]
        print(f"| {label:<40} | {s['mean']:>16.1%} | {s['min']:>5.1%} | {s['full']:>4}/{s['pairs']:<6} |")
    print(f"\nnum_ctx changes: {p['num_ctx_changes']} (sent: {p['num_ctx']}); runner reloads: {p['reloads']}; "
          f"prompt tokens served from the KV cache: {p['cached']:.1%}")


def show_fit(rows: list[dict], turns: int) -> None:
    print(f"\nContext fit ({turns} turns, tool outputs of 1-4k tokens, the server's own token count)\n")
    print(f"| {'session':<30} | {'num_ctx':>7} | {'requests':>8} | {'truncated':>9} | {'msgs dropped':>12} | "
          f"{'compaction notices':>18} | {'peak / num_ctx':>14} | {'mean prefix share':>17} |")
    print(f"|{'-' * 32}|{'-' * 9}|{'-' * 10}|{'-' * 11}|{'-' * 14}|{'-' * 20}|{'-' * 16}|{'-' * 19}|")
    for r in rows:
        print(f"| {r['label']:<30} | {r['num_ctx']:>7} | {r['requests']:>8} | {r['truncated']:>9} | {r['dropped']:>12} | "
              f"{r['compactions']:>18} | {r['peak']:>13.0%} | {r['prefix']:>16.1%} |")
    print("(truncated and dropped are the server's: requests over num_ctx, and the messages it cut silently)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=30, help="timed turns per load (overhead)")
    ap.add_argument("--session", type=int, default=50, help="turns of the prefix-stability session")
    ap.add_argument("--fit-turns", type=int, default=200, help="turns of the context-fit session")
    ap.add_argument("--quick", action="store_true", help="10 / 20 / 60 turns")
    args = ap.parse_args()
    if args.quick:
        args.turns, args.session, args.fit_turns = 10, 20, 60
    with tempfile.TemporaryDirectory(prefix="joe-bench-agent-") as d:
        tmp = Path(d)
        isolate(tmp)
        show_overhead(overhead(tmp, args.turns), args.turns)
        show_prefix(prefix_stability(tmp, args.session), args.session)
        show_fit(context_fit(tmp, args.fit_turns), args.fit_turns)


if __name__ == "__main__":
    main()
