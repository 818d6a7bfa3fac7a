"""`joe doctor`: what would stop a session from working, each with the fix.

Checks the model server at the configured host, the model (pulled, tool support, the num_ctx a
session will use against its trained context), JOE_HOME, git, and token counting. Never raises
for a broken setup: a broken setup is the answer. Rendered by joe_agent/repl/render.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joe_agent.errors import JoeError, ModelNotFound

MIN_USEFUL_CTX = 8192  # below this an agent's system prompt, tools and one file barely fit


@dataclass
class Check:
    name: str
    ok: bool | None  # None: works, but worth knowing (a warning)
    detail: str
    fix: str = ""


def run_checks(settings: Any, home: Path, root: Path) -> list[Check]:
    checks = model_checks(settings)
    checks.append(check_home(Path(home)))
    checks.append(check_git(Path(root)))
    checks.append(check_tokens())
    return checks


# ---- the model ----------------------------------------------------------------------------------

def model_checks(settings: Any) -> list[Check]:
    if settings.model.startswith("scripted:"):
        return [Check("model", None, f"{settings.model}: a scripted model, no server to check")]
    from joe_agent.runtime import make_model  # the backend (ollama: ~300 ms) loads only here

    server = "Ollama" if settings.backend == "ollama" else "model server"
    try:
        model = make_model(settings)
        installed = model.list_models()
    except ImportError as e:
        return [Check(f"{server} reachable", False, f"the {settings.backend} backend is not installed ({e})",
                      "reinstall joe-agent")]
    except JoeError as e:
        return [Check(f"{server} reachable", False, str(e), _start_hint(settings))]
    host = getattr(model, "host", None) or settings.host or "the default host"
    checks = [Check(f"{server} reachable", True, f"{host} · {len(installed)} models")]
    if not _is_installed(settings.model, installed):
        pull = f"ollama pull {settings.model}" if settings.backend == "ollama" else "load it in the server"
        listing = ", ".join(installed[:8]) or "none"
        checks.append(Check("model available", False, f"{settings.model} is not installed (installed: {listing})", pull))
        return checks
    try:
        info = model.info()
    except ModelNotFound as e:
        checks.append(Check("model available", False, str(e), f"ollama pull {settings.model}"))
        return checks
    except JoeError as e:
        checks.append(Check("model info", False, str(e), _start_hint(settings)))
        return checks
    checks.append(Check("model available", True, settings.model))
    checks.append(_tools_check(info))
    checks.append(_ctx_check(settings, info, getattr(model, "num_ctx", None)))
    return checks


def _start_hint(settings: Any) -> str:
    if settings.backend == "ollama":
        return "start it with `ollama serve`, or set --host / OLLAMA_HOST / host: in config.yaml"
    return "start the server (llama-server, LM Studio, vLLM) or set --host"


def _is_installed(name: str, installed: list[str]) -> bool:
    def norm(n: str) -> str:
        return n if ":" in n else n + ":latest"

    return norm(name) in {norm(n) for n in installed}


def _tools_check(info: Any) -> Check:
    if info.supports_tools:
        return Check("tool calls", True, "native tool calls")
    return Check("tool calls", None, "no native tool support: joe describes the tools in the prompt instead",
                 "a model with the `tools` capability is more reliable (e.g. qwen2.5-coder)")


def _ctx_check(settings: Any, info: Any, num_ctx: int | None) -> Check:
    trained = info.context_length
    used = num_ctx or settings.num_ctx
    where = f"trained {trained:,}" if trained else "trained context unknown"
    if used is None:
        return Check("context", None, f"num_ctx not known yet ({where})", "set num_ctx in config.yaml")
    asked = settings.num_ctx
    if trained and (used > trained or (asked and asked > trained)):
        return Check("context", None, f"num_ctx {asked or used:,} is more than the model was trained on "
                     f"({where}); the server uses at most {trained:,}", f"set num_ctx to {trained} or less")
    if used < MIN_USEFUL_CTX:
        return Check("context", None, f"num_ctx {used:,} ({where}) is small for an agent",
                     f"set num_ctx: {min(trained or 16384, 16384)} if memory allows")
    return Check("context", True, f"num_ctx {used:,} ({where}), sent with every request")


# ---- the machine --------------------------------------------------------------------------------

def check_home(home: Path) -> Check:
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".doctor.", dir=home)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        return Check("JOE_HOME writable", False, f"{home}: {e.strerror or e}",
                     "set JOE_HOME to a folder you can write, or fix its permissions")
    return Check("JOE_HOME writable", True, str(home))


def check_git(root: Path) -> Check:
    git = shutil.which("git")
    if git is None:
        return Check("git", False, "git is not on PATH; checkpoints and /undo need it", "install git")
    try:
        out = subprocess.run([git, "--version"], capture_output=True, text=True, timeout=10, cwd=root)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check("git", False, f"{git} does not run: {e}", "reinstall git")
    return Check("git", True, out.stdout.strip() or git)


def check_tokens() -> Check:
    try:
        from joe_agent.tokens import encoding_on_disk, encoding_status
    except ImportError:
        return Check("token counting", None, "joe_agent.tokens is missing; context use is estimated")
    status = encoding_status()
    if encoding_on_disk():
        return Check("token counting", True, status)
    return Check("token counting", None, status,
                 "optional: run `python -c \"import tiktoken; tiktoken.get_encoding('cl100k_base')\"` once online")
