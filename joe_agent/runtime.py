"""Builds one session's objects from Settings: model, tools, permissions, context, agent,
transcript, and the learning features. The REPL and headless mode both start here.

The model client (ollama imports pydantic and httpx: ~300 ms) and the /api/show call happen
in a background thread, so the REPL can show its prompt while they load; `runtime.agent`
waits for them the first time it is used."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from joe_agent import __version__
from joe_agent.config import Settings
from joe_agent.errors import JoeError
from joe_agent.paths import project_key


def make_model(settings: Settings):
    """The ChatModel for these settings (imports the backend lazily)."""
    if settings.model.startswith("scripted:"):
        from joe_agent.models.scripted import ScriptedModel

        return ScriptedModel.from_file(Path(settings.model.split(":", 1)[1]).expanduser())
    options = {"temperature": settings.temperature} if settings.temperature is not None else {}
    if settings.max_reply_tokens is not None:
        options["num_predict"] = settings.max_reply_tokens  # /v1 backends send it as max_tokens
    options = options or None
    if settings.backend == "openai":
        from joe_agent.models.openai_compat import OpenAICompatModel

        return OpenAICompatModel(settings.model, host=settings.host, options=options, num_ctx=settings.num_ctx)
    from joe_agent.models.ollama import OllamaModel

    return OllamaModel(settings.model, host=settings.host, num_ctx=settings.num_ctx,
                       keep_alive=settings.keep_alive, options=options, max_num_ctx=settings.max_num_ctx)


@dataclass
class Runtime:
    settings: Settings
    root: Path
    home: Path
    permissions: Any
    transcript: Any
    features: dict[str, Callable[..., Any]] = field(default_factory=dict)
    resume_messages: list = field(default_factory=list)
    resume_turn: int = 0
    learning: Any = None
    notes: list = field(default_factory=list)  # background messages for the person (the REPL shows them)
    started: float = field(default_factory=time.monotonic)
    _agent: Any = None
    _model: Any = None
    _error: JoeError | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def create(cls, settings: Settings, root: Path, home: Path, headless: bool = False,
               approver=None, resume: Path | None = None) -> "Runtime":
        from joe_agent.memory.transcript import Transcript, new_session_id
        from joe_agent.tools.permissions import Permissions

        root = root.resolve()
        folder = home / "transcripts" / project_key(root)
        mode = settings.mode
        permissions = Permissions(mode=mode, approver=approver, headless=headless)
        if resume is not None:
            transcript = Transcript.open_existing(resume)
            messages, turn = transcript.messages(), transcript.last_turn()
        else:
            transcript, messages, turn = Transcript(folder, new_session_id()), [], 0
        rt = cls(settings, root, home, permissions, transcript, resume_messages=messages, resume_turn=turn)
        from joe_agent.features import install

        install(rt)
        return rt

    def start(self, background: bool = True) -> "Runtime":
        """Connect to the model and build the agent (in a thread when `background`)."""
        if background:
            threading.Thread(target=self._build, name="joe-model-init", daemon=True).start()
        else:
            self._build()
        return self

    def _build(self) -> None:
        try:
            self._model = make_model(self.settings)
            self._agent = self._build_agent(self._model)
        except JoeError as e:
            self._error = e
        except Exception as e:  # a bug, but the person still gets a line, not a hang
            self._error = JoeError(f"could not start the model client: {type(e).__name__}: {e}")
        finally:
            self._ready.set()

    def _has_past_sessions(self) -> bool:
        """Whether any other session was logged: search_history with nothing to search is only
        a distraction (a small model calls whatever tool the prompt names)."""
        mine = Path(self.transcript.path).resolve()
        folder = mine.parent.parent  # transcripts/<project>/<session>.jsonl
        try:
            for project in os.scandir(folder):
                if project.is_dir() and any(f.name.endswith(".jsonl") and Path(f.path).resolve() != mine
                                            for f in os.scandir(project.path)):
                    return True
        except OSError:
            return False
        return False

    def _build_agent(self, model):
        from joe_agent.agent import Agent
        from joe_agent.context import Context, PromptParts, load_prompt, read_agents_md
        from joe_agent.learning import Learning, read_skill_tool
        from joe_agent.mentions import attacher
        from joe_agent.toolformat import text_reason
        from joe_agent.models.toolprompt import tool_protocol_prompt
        from joe_agent.tools.registry import Registry, ToolContext
        from joe_agent.tools.workspace import Workspace

        info = model.info()
        workspace = Workspace(self.root, protected=[self.home, self.root / ".joe"])
        registry = Registry(ToolContext(workspace, self.permissions, shell_timeout=self.settings.shell_timeout,
                                        output_cap=self.settings.output_cap))
        if self.learning is None:
            self.learning = Learning(self.settings, self.root, self.home, self.transcript.id, self.transcript.path)
        hooks = self.learning.hooks(model.name)
        self.notes.extend(self.learning.notes)
        self.learning.notes = []
        advisor = self.learning.advisor
        base = load_prompt("system").format(root=self.root)
        if self.learning.history is not None and self._has_past_sessions():
            from joe_agent.history_cli import SEARCH_HISTORY_HINT

            registry.add(self.learning.history.tool(self.root, self.transcript.id))
            base = (base.rstrip("\n") + "\nRarely needed, only when the user speaks of an earlier session:\n- "
                    + SEARCH_HISTORY_HINT + "\n")
        parts = PromptParts(base=base, agents_md=read_agents_md(self.root),
                            rules=self.learning.rules_text(),
                            catalog=advisor.catalog_text(model.num_ctx, self.settings.catalog_share))
        if advisor.skills:
            registry.add(read_skill_tool(advisor))
        why_text = text_reason(self.settings.tool_format, self.settings.backend, model.name, self.home)
        native = info.supports_tools and why_text is None
        if info.supports_tools and why_text:
            self.notes.append(f"tools as text in the prompt ({why_text}); tool_format: native changes it")
        if not native:
            parts.tool_protocol = tool_protocol_prompt(registry.schemas())
        context = Context(parts, registry.schemas() if native else None, model.num_ctx)
        context.replace_history(self.resume_messages)
        # named files may take about a quarter of the context (~4 bytes a token)
        attach = attacher(workspace, registry.run, budget=model.num_ctx) if self.settings.attach_files else None
        agent = Agent(model, registry, context, transcript=self.transcript, max_steps=self.settings.max_steps,
                      hooks=hooks, pick_skills=advisor.pick, native_tools=native, text_protocol=tool_protocol_prompt,
                      attach=attach)
        agent.turn = self.resume_turn
        if not self.resume_messages:
            self.transcript.write_session_start(self.root, model.name, self.settings.backend, model.num_ctx,
                                                __version__, native_tools=native)
        return agent

    # ---- use ----------------------------------------------------------------------------
    def ready(self) -> bool:
        """True once the model client and agent are built (or failed): never blocks."""
        return self._ready.is_set()

    @property
    def error(self) -> JoeError | None:
        return self._error

    def wait(self) -> None:
        """Block until the agent is built. A failed start (Ollama was down) is retried here,
        so starting `ollama serve` later is enough; the person never has to restart joe."""
        self._ready.wait()
        if self._error is not None:
            self._error = None
            self._ready.clear()
            self._build()
        if self._error is not None:
            raise self._error

    @property
    def agent(self):
        self.wait()
        return self._agent

    @property
    def model(self):
        self.wait()
        return self._model

    def model_name(self) -> str:
        return self._model.name if self._model is not None else self.settings.model

    def list_models(self) -> list[str]:
        return (self._model or make_model(self.settings)).list_models()

    def switch_model(self, name: str) -> None:
        """Use another model from the next turn on, keeping the conversation."""
        history, turn = (list(self._agent.history), self._agent.turn) if self._agent else ([], 0)
        old = self.settings.model
        self.settings.model = name
        try:
            model = make_model(self.settings)
            self.resume_messages, self.resume_turn = history, turn
            agent = self._build_agent(model)
        except JoeError:
            self.settings.model = old
            raise
        self._model, self._agent, self._error = model, agent, None
        self.transcript.write("notice", turn, text=f"model switched to {name}", topic="model")

    def distiller(self):
        """The background rules distiller (one per session)."""
        if getattr(self, "_distiller", None) is None:
            from joe_agent.memory.distill import Distiller

            self._distiller = Distiller(self.home, lambda: self.model, notify=self.notes.append)
        return self._distiller

    def close(self) -> None:
        """Session end."""
        if self.learning is not None:
            for part in (self.learning.advisor, self.learning.history):
                if part is not None:
                    part.session_end()
        if self._agent is not None and self._agent.text_calls_while_native and self.settings.tool_format == "auto":
            from joe_agent.toolformat import remember_text_writer

            try:  # next session, this model gets the text protocol (toolformat.py)
                remember_text_writer(self.home, self.settings.backend, self._agent.model.name)
            except JoeError:
                pass  # a cache that cannot be written only means the lesson is not kept
        turn = self._agent.turn if self._agent is not None else self.resume_turn
        self.transcript.write("session_end", turn, turns=turn,
                              duration_s=round(time.monotonic() - self.started, 3))
