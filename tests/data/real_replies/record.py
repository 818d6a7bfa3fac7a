"""Record real replies of a local model to tool-using requests (not a test; run by hand).

    python tests/data/real_replies/record.py http://127.0.0.1:8081 [name ...]

Each case of CASES is asked twice: with native tools (`tools` in the request) and with the text tool
protocol in the system prompt (no `tools`). Every reply is saved as <case>.<mode>.json with a
summary of the request and the raw reply as streamed (content, reasoning, tool-call deltas
assembled, finish reason); `sse` keeps the raw event lines for the cases listed in KEEP_SSE.
Temperature 0 and a fixed seed make a rerun on the same build give the same bytes. SAMPLED
cases are asked once (<case>.sampled.json) at the server's default temperature.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from joe_agent.models.toolprompt import tool_protocol_prompt  # noqa: E402

CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
CASES: dict[str, list[dict]] = {
    "read_app": [{"role": "user", "content": "read the file app.py"}],
    "create_hello": [{"role": "user", "content": "create hello.py that prints hi"}],
    "fix_calc": [{"role": "user", "content": "fix the bug in calc.py"}],
    "list_src": [{"role": "user", "content": "list the files in src"}],
    "run_tests": [{"role": "user", "content": "run the tests with pytest"}],
    "search_todo": [{"role": "user", "content": "find every TODO comment in the project"}],
    "explain_listcomp": [{"role": "user", "content": "what does a python list comprehension look like? just explain, no tools"}],
    "explain_tool": [{"role": "user", "content": "how would I ask you to read a file? show me what your tool call looks like, but don't call it"}],
    "replace_greeting": [{"role": "user", "content": "in greet.py replace the word hello with goodbye"}],
    "fix_calc_after_read": [
        {"role": "user", "content": "fix the bug in calc.py"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
         "function": {"name": "read_file", "arguments": json.dumps({"path": "calc.py"})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": CALC},
    ],
}
KEEP_SSE = {"read_app.native", "create_hello.native"}
# Asked once, native tools, at the server's default temperature with a fixed seed: small
# models sampled this way show the messier forms (bare JSON, unknown names, schema echoes).
# name -> (system prompt?, user request, seed)
SAMPLED: dict[str, tuple[bool, str, int]] = {
    "sampled_fix_calc_s1": (False, "fix the bug in calc.py", 1),
    "sampled_fix_calc_s4": (False, "fix the bug in calc.py", 4),
    "sampled_list_s1": (True, "what files are in this project?", 1),
    "sampled_list_s4": (True, "what files are in this project?", 4),
    "sampled_docstring_s1": (True, "add a docstring to main.py", 1),
    "sampled_docstring_s5": (True, "add a docstring to main.py", 5),
    "sampled_docstring_s6": (True, "add a docstring to main.py", 6),
}


def system_prompt(text_protocol: bool, tools: list[dict]) -> str:
    base = (ROOT / "joe_agent/prompts/system.md").read_text().format(root="/home/dev/demo")
    return base.strip() + ("\n\n" + tool_protocol_prompt(tools).strip() if text_protocol else "") + "\n"


def text_mode_history(messages: list[dict]) -> list[dict]:
    """The same conversation as a model without native tools sees it (calls as text)."""
    out = []
    for m in messages:
        if m.get("tool_calls"):
            calls = [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                     for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": "```json\n" + json.dumps(calls[0]) + "\n```"})
        elif m["role"] == "tool":
            out.append({"role": "user", "content": "[result of read_file]\n" + m["content"]})
        else:
            out.append(m)
    return out


def record(host: str, case: str, mode: str, tools: list[dict]) -> dict:
    native = mode != "text"
    if mode == "sampled":
        with_system, request, seed = SAMPLED[case]
        history = [{"role": "user", "content": request}]
        system = [{"role": "system", "content": system_prompt(False, tools)}] if with_system else []
        sampling = {"seed": seed}
    else:
        history = CASES[case] if native else text_mode_history(CASES[case])
        system = [{"role": "system", "content": system_prompt(not native, tools)}]
        sampling = {"temperature": 0, "seed": 7}
    body = {"model": "qwen2.5-coder-1.5b-instruct", "stream": True, **sampling,
            "max_tokens": 300 if mode == "sampled" else 500,
            "messages": [*system, *history]}
    if native:
        body["tools"] = tools
    lines, content, reasoning, calls, finish = [], [], [], {}, None
    with httpx.stream("POST", f"{host}/v1/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            lines.append(line)
            data = line[5:].strip()
            if data == "[DONE]":
                break
            for choice in json.loads(data).get("choices", []):
                delta = choice.get("delta") or {}
                content.append(delta.get("content") or "")
                reasoning.append(delta.get("reasoning_content") or "")
                for tc in delta.get("tool_calls") or []:
                    slot = calls.setdefault(tc.get("index", 0), {"id": "", "name": "", "arguments": ""})
                    slot["id"] += tc.get("id") or ""
                    slot["name"] += (tc.get("function") or {}).get("name") or ""
                    slot["arguments"] += (tc.get("function") or {}).get("arguments") or ""
                finish = choice.get("finish_reason") or finish
    prompt = ("joe_agent/prompts/system.md" + ("" if native else " + tool_protocol_prompt(tools.json)")) if system else ""
    rec = {"request": {"case": case, "mode": mode, "messages": history, "sampling": sampling,
                       "tools": [t["function"]["name"] for t in tools] if native else [], "system_prompt": prompt},
           "reply": {"content": "".join(content), "reasoning": "".join(reasoning),
                     "tool_calls": [calls[k] for k in sorted(calls)], "finish_reason": finish}}
    if f"{case}.{mode}" in KEEP_SSE:
        rec["sse"] = lines
    return rec


def main() -> None:
    host = sys.argv[1].rstrip("/")
    tools = json.loads((HERE / "tools.json").read_text())
    served = httpx.get(f"{host}/v1/models", timeout=10).json()["data"][0]
    names = sys.argv[2:] or [*CASES, *SAMPLED]
    for case in names:
        for mode in (("sampled",) if case in SAMPLED else ("native", "text")):
            rec = record(host, case, mode, tools)
            rec["model"] = {"id": Path(served["id"]).name, "server": "llama.cpp llama-server --jinja"}
            (HERE / f"{case}.{mode}.json").write_text(json.dumps(rec, indent=1, ensure_ascii=False) + "\n")
            print(case, mode, repr(rec["reply"]["content"][:100]), rec["reply"]["tool_calls"], flush=True)


if __name__ == "__main__":
    main()
