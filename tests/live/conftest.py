"""Opt-in live tests against a real model server (never in CI).

Select them with `pytest -m live tests/live` or `JOE_LIVE=1 pytest tests/live`. Settings, all
from the environment:
  JOE_LIVE_URL          server URL (default http://127.0.0.1:8080)
  JOE_LIVE_BACKEND      openai (default: llama-server, LM Studio, vLLM) or ollama
  JOE_LIVE_MODEL        model name (default qwen2.5-coder-1.5b)
  JOE_LIVE_TEMPERATURE  sampling temperature (default 0, so runs are comparable)
  JOE_LIVE_REPORT       write the per-task results here as JSON
At the end of the session a table of pass/fail and seconds per task is printed.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

DEFAULT_URL = "http://127.0.0.1:8080"
collect_ignore_glob = ["tasks/*"]  # the task projects' own tests are for the model to run


@dataclass
class LiveResult:
    task: str
    passed: bool
    seconds: float
    steps: int | None = None
    tool_calls: int = 0
    exit_code: int | None = None
    why: str = ""  # the first line of the failed check, or the turn's end reason


@dataclass
class LiveRun:
    url: str
    backend: str
    model: str
    temperature: str
    results: list[LiveResult] = field(default_factory=list)

    def record(self, **fields) -> None:
        self.results.append(LiveResult(**fields))


_RUN: LiveRun | None = None


def pytest_configure(config: pytest.Config) -> None:
    # pyproject's addopts deselects `live`; JOE_LIVE=1 is the other documented way in
    if os.environ.get("JOE_LIVE") == "1" and config.option.markexpr.strip() == "not live":
        config.option.markexpr = ""


def _reachable(url: str) -> str:
    """'' when the server answers, else why not."""
    for path in ("/health", "/v1/models", "/api/version"):
        try:
            with urllib.request.urlopen(url.rstrip("/") + path, timeout=5) as r:
                if r.status == 200:
                    return ""
        except urllib.error.HTTPError as e:
            if e.code == 503:
                return f"the server at {url} is still loading its model (HTTP 503)"
        except (urllib.error.URLError, OSError) as e:
            return f"no model server at {url} ({getattr(e, 'reason', e)}); start one or set JOE_LIVE_URL"
    return f"{url} answers, but not like a model server"


@pytest.fixture(scope="session")
def live_run() -> LiveRun:
    global _RUN
    url = os.environ.get("JOE_LIVE_URL", DEFAULT_URL)
    why = _reachable(url)
    if why:
        pytest.skip(why)
    if _RUN is None:
        _RUN = LiveRun(url, os.environ.get("JOE_LIVE_BACKEND", "openai"),
                       os.environ.get("JOE_LIVE_MODEL", "qwen2.5-coder-1.5b"),
                       os.environ.get("JOE_LIVE_TEMPERATURE", "0"))
    return _RUN


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _RUN is None or not _RUN.results:
        return
    rows = _RUN.results
    tr = terminalreporter
    tr.section(f"live tasks: {_RUN.model} via {_RUN.backend} at {_RUN.url}")
    tr.write_line(f"{'task':<20} {'result':<6} {'seconds':>8} {'steps':>5} {'calls':>5}  note")
    for r in rows:
        tr.write_line(f"{r.task:<20} {'pass' if r.passed else 'FAIL':<6} {r.seconds:>8.1f} "
                      f"{r.steps if r.steps is not None else '-':>5} {r.tool_calls:>5}  {r.why[:60]}")
    passed = sum(r.passed for r in rows)
    total_s = sum(r.seconds for r in rows)
    tr.write_line(f"passed {passed}/{len(rows)} in {total_s:.0f} s "
                  f"(median {sorted(r.seconds for r in rows)[len(rows) // 2]:.0f} s per task)")
    report = os.environ.get("JOE_LIVE_REPORT")
    if report:
        payload = {**{k: v for k, v in asdict(_RUN).items() if k != "results"},
                   "passed": passed, "total": len(rows), "seconds": round(total_s, 1),
                   "tasks": [asdict(r) for r in rows]}
        from joe_agent.memory.store import atomic_write

        atomic_write(Path(report), (json.dumps(payload, indent=2) + "\n").encode())
        tr.write_line(f"wrote {report}")
