"""Settings and where they come from.

Precedence, lowest first: defaults < $JOE_HOME/config.yaml < ./.joe/config.yaml < JOE_*
environment variables < command-line flags. A bad file names the file, the line and the key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from joe_agent.errors import ConfigError
from joe_agent.paths import joe_home

MODES = ("ask", "auto-edit", "full-auto")
BACKENDS = ("ollama", "openai")
THINKING = ("show", "collapse", "hide")
TOOL_FORMATS = ("auto", "native", "text")


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass
class Settings:
    model: str = field(default="qwen2.5-coder:7b", metadata=_doc("model name (or scripted:FILE)"))
    host: str | None = field(default=None, metadata=_doc("model server URL; default OLLAMA_HOST or Ollama's"))
    backend: str = field(default="ollama", metadata=_doc("ollama | openai (OpenAI-compatible /v1)"))
    num_ctx: int | None = field(default=None, metadata=_doc("context size; default: trained, capped at max_num_ctx"))
    max_num_ctx: int = field(default=32768, metadata=_doc("cap for the default num_ctx"))
    keep_alive: str | None = field(default=None, metadata=_doc("how long Ollama keeps the model loaded, e.g. 30m"))
    temperature: float | None = field(default=None, metadata=_doc("sampling temperature; server default if unset"))
    max_reply_tokens: int | None = field(default=None, metadata=_doc("cap on one reply (num_predict / max_tokens); server default if unset"))
    tool_format: str = field(default="auto", metadata=_doc("auto | native | text (calls written in the reply; auto: for models that write them so)"))
    attach_files: bool = field(default=True, metadata=_doc("read the files a request names (@path or a file name) into it"))
    mode: str = field(default="ask", metadata=_doc("ask | auto-edit | full-auto"))
    max_steps: int = field(default=30, metadata=_doc("model calls per turn before stopping"))
    shell_timeout: float = field(default=120.0, metadata=_doc("seconds before run_shell kills the command"))
    output_cap: int = field(default=16000, metadata=_doc("bytes of tool output the model sees"))
    show_thinking: str = field(default="collapse", metadata=_doc("show | collapse | hide"))
    max_skills: int = field(default=3, metadata=_doc("skills injected per request at most"))
    skill_threshold: float = field(default=0.6, metadata=_doc("minimum trigger match strength"))
    catalog_share: float = field(default=0.05, metadata=_doc("share of num_ctx the skill catalog may use"))
    prune_min_uses: int = field(default=5, metadata=_doc("settled uses before a skill can be pruned"))
    prune_threshold: float = field(default=0.3, metadata=_doc("score under which a skill is a loser"))
    prune_unused_days: int = field(default=90, metadata=_doc("days without use before pruning"))
    prune_hand_written: bool = field(default=False, metadata=_doc("also auto-prune hand-written skills"))
    auto_prune: bool = field(default=False, metadata=_doc("prune losers at session start"))
    editor: str | None = field(default=None, metadata=_doc("editor for reviews; default $VISUAL/$EDITOR"))

    def validate(self, where: str = "settings") -> None:
        checks = (("mode", MODES), ("backend", BACKENDS), ("show_thinking", THINKING), ("tool_format", TOOL_FORMATS))
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{where}: {name} must be one of {', '.join(allowed)} (got {getattr(self, name)!r})")
        for name in ("max_steps", "max_skills", "max_num_ctx", "output_cap"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}: {name} must be at least 1")
        if self.max_reply_tokens is not None and self.max_reply_tokens < 1:
            raise ConfigError(f"{where}: max_reply_tokens must be at least 1 (got {self.max_reply_tokens})")
        if self.num_ctx is not None and self.num_ctx < 256:
            raise ConfigError(f"{where}: num_ctx must be at least 256 (got {self.num_ctx})")


_FIELDS = {f.name: f for f in fields(Settings)}
_TYPES = get_type_hints(Settings)


def _coerce(name: str, value: Any, where: str) -> Any:
    """Convert a YAML/env value to the field's type, or raise ConfigError naming it."""
    hint = _TYPES[name]
    optional = "None" in str(hint)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        if optional:
            return None
        raise ConfigError(f"{where}: {name} cannot be empty")
    base = str(hint).replace(" | None", "").replace("Optional[", "").rstrip("]")
    try:
        if "bool" in base:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if "int" in base:
            if isinstance(value, bool):
                raise ValueError
            return int(str(value).strip())
        if "float" in base:
            return float(str(value).strip())
        return str(value)
    except ValueError:
        kind = base.split(".")[-1].strip("'>").replace("<class '", "")
        raise ConfigError(f"{where}: {name} must be {kind} (got {value!r})") from None


def _load_yaml(path: Path) -> dict[str, tuple[Any, int]]:
    """Read a config file into {key: (value, line)}; errors name the file and line."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from e
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}{line}: invalid YAML: {problem}") from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path} line {node.start_mark.line + 1}: expected `key: value` lines")
    out: dict[str, tuple[Any, int]] = {}
    for key_node, value_node in node.value:
        key, line = str(key_node.value), key_node.start_mark.line + 1
        if key not in _FIELDS:
            hint = _closest(key)
            raise ConfigError(f"{path} line {line}: unknown key {key!r}{hint}")
        if not isinstance(value_node, yaml.ScalarNode):
            raise ConfigError(f"{path} line {line}: {key} must be a single value")
        value = yaml.safe_load(yaml.serialize(value_node))
        out[key] = (value, line)
    return out


def _closest(key: str) -> str:
    import difflib

    near = difflib.get_close_matches(key, list(_FIELDS), n=1)
    return f" (did you mean {near[0]!r}?)" if near else f" (known keys: {', '.join(_FIELDS)})"


def config_files(root: Path, home: Path | None = None) -> list[Path]:
    return [(home or joe_home()) / "config.yaml", Path(root) / ".joe" / "config.yaml"]


def load_settings(root: Path, flags: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                  home: Path | None = None) -> Settings:
    """Build Settings from every layer. `flags` holds only the flags the person gave."""
    settings = Settings()
    for path in config_files(root, home):
        if path.is_file():
            for key, (value, line) in _load_yaml(path).items():
                setattr(settings, key, _coerce(key, value, f"{path} line {line}"))
    env = os.environ if env is None else env
    for key in _FIELDS:
        name = "JOE_" + key.upper()
        if name in env:
            setattr(settings, key, _coerce(key, env[name], f"environment variable {name}"))
    if "JOE_HOST" not in env and env.get("OLLAMA_HOST") and settings.backend == "ollama":
        settings.host = env["OLLAMA_HOST"]  # Ollama's own variable beats the config files
    for key, value in (flags or {}).items():
        if value is not None:
            setattr(settings, key, _coerce(key, value, f"--{key.replace('_', '-')}"))
    settings.validate()
    return settings
