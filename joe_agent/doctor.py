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
    checks += learned_text_checks(settings, Path(home), Path(root))
    return checks


def learned_text_checks(settings: Any, home: Path, root: Path) -> list[Check]:
    """Skills and rules the load guard holds back from the model, and how to clear them."""
    from joe_agent.errors import JoeError
    from joe_agent.skills_cli import SkillsAdmin

    try:
        admin = SkillsAdmin(settings, home, root)
        flagged = [(sk.name, admin.learning.blocked(sk)) for sk in admin.library.load()]
    except JoeError as e:
        return [Check("skills", False, str(e), "see `joe skills check`")]
    flagged = [(name, why) for name, why in flagged if why]
    out = [Check("skills", True, f"{len(admin.library.load())} loaded, none held back")] if not flagged else [
        Check(f"skill {name}", False, f"held back from the model: {why}",
              f"edit {home / 'skills' / name / 'SKILL.md'}, or `joe skills trust {name}` if it is fine")
        for name, why in flagged]
    try:
        from joe_agent.memory.rules import load_rules

        held = [r for f in load_rules(home, root) for r in f.rules if not r.active]
    except (JoeError, ImportError, OSError):
        held = []
    if held:
        out.append(Check("rules", None, f"{len(held)} rule(s) wait for your confirmation (flagged by the guard)",
                         "`joe rules` lists them; `joe rules confirm N` or `joe rules rm N`"))
    return out


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
    if settings.backend == "openai":
        return checks + _openai_checks(settings, model)
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


def _openai_checks(settings: Any, model: Any) -> list[Check]:
    """An OpenAI-compatible server: the model it serves under our name (a llama.cpp server
    serves its one model whatever the name), and the context it was started with, from
    llama.cpp's /props or vLLM's max_model_len: /v1 cannot set it per request."""
    try:
        info = model.info()
    except ModelNotFound as e:
        return [Check("model available", False, str(e), "pass --model with a name the server lists, or load it")]
    except JoeError as e:
        return [Check("model info", False, str(e), _start_hint(settings))]
    served = getattr(model, "served_name", settings.model)
    detail = settings.model if served == settings.model else f"{settings.model} (served as {served})"
    return [Check("model available", True, detail), _tools_check(info), _served_ctx_check(settings, model, info)]


def _served_ctx_check(settings: Any, model: Any, info: Any) -> Check:
    from joe_agent.models.openai_compat import FALLBACK_NUM_CTX

    n_ctx = getattr(model, "num_ctx", None) or FALLBACK_NUM_CTX
    told = bool(info.context_length)  # the server said (llama.cpp /props, vLLM max_model_len)
    source = "from the server" if told else f"not told by the server; assuming {FALLBACK_NUM_CTX:,}"
    want = max(settings.num_ctx or 0, 16384)
    restart = f"restart the server with a larger context (llama-server -c {want}; LM Studio: context length)"
    if settings.num_ctx and settings.num_ctx != n_ctx and told:
        return Check("context", None, f"the server runs {n_ctx:,} tokens; num_ctx {settings.num_ctx:,} "
                     "cannot be set through /v1", restart if settings.num_ctx > n_ctx else "")
    if n_ctx < MIN_USEFUL_CTX:
        return Check("context", None, f"{n_ctx:,} tokens ({source}) is small for an agent", restart)
    if not told:
        return Check("context", None, f"{n_ctx:,} tokens ({source})", "start the server with an explicit context size")
    return Check("context", True, f"{n_ctx:,} tokens ({source}), trained {info.context_length:,}")


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
