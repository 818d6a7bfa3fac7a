"""What each request to the model contains, and keeping it inside num_ctx.

Layout (DESIGN.md "Prompt layout and the KV cache"): one system message built once per
session (prompt, preference rules, AGENTS.md, skill catalog, and the tool protocol for models
without native tools), the same tool list every request, then the history, append-only.
Skills picked for a turn ride inside that turn's user message. So every request is a
byte-identical prefix of the next, and Ollama's KV cache is reused; the only exception is
compaction, a rare event that the person is told about.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from joe_agent.messages import Message
from joe_agent.tokens import MESSAGE_OVERHEAD, TokenCounter

AGENTS_MD_CAP = 16_000
COMPACTED = "[output compacted to save context: {n} characters of {tool} output removed; run the tool again if you need it]"
DROPPED_PREFIX = "[context: "
DROPPED = DROPPED_PREFIX + "{n} earlier messages were removed to fit the context window]"


def load_prompt(name: str) -> str:
    return resources.files("joe_agent.prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")


def read_agents_md(root: Path) -> str:
    """The project's AGENTS.md, if any, capped (it goes into every request)."""
    for name in ("AGENTS.md", "agents.md"):
        path = root / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            return text[:AGENTS_MD_CAP]
    return ""


@dataclass
class Injection:
    """A skill's text added to one user message, and why (shown to the person)."""

    name: str
    text: str
    reason: str = ""


@dataclass
class PromptParts:
    base: str
    rules: str = ""
    agents_md: str = ""
    catalog: str = ""
    tool_protocol: str = ""  # only for models without native tool calls

    def render(self) -> str:
        parts = [self.base.strip()]
        if self.rules.strip():
            parts.append("The user's standing preferences (follow them):\n" + self.rules.strip())
        if self.agents_md.strip():
            parts.append("Project instructions from AGENTS.md:\n" + self.agents_md.strip())
        if self.catalog.strip():
            parts.append("Skills you can read with read_skill(name) when one fits the task:\n" + self.catalog.strip())
        if self.tool_protocol.strip():
            parts.append(self.tool_protocol.strip())
        return "\n\n".join(parts) + "\n"


@dataclass
class Context:
    parts: PromptParts
    tools: list[dict] | None
    num_ctx: int
    counter: TokenCounter = field(default_factory=TokenCounter)
    history: list[Message] = field(default_factory=list)
    keep_recent_turns: int = 2  # tool outputs of the last N user turns are never compacted

    def __post_init__(self) -> None:
        self._system = Message("system", self.parts.render())
        self._fixed_raw = self.counter.raw(self._system.content) + self.counter.raw(json.dumps(self.tools or []))
        self._raw: list[int] = [self._msg_raw(m) for m in self.history]

    # ---- building ------------------------------------------------------------------------
    def set_tool_protocol(self, protocol: str, tools: list[dict] | None) -> None:
        """Switch to text tool calls (the server refused native tools). Changes the prefix
        once, at the point where the old prefix failed anyway."""
        self.parts.tool_protocol = protocol
        self.tools = tools
        self.__post_init__()

    def messages(self) -> list[Message]:
        return [self._system, *self.history]

    def append(self, msg: Message) -> None:
        self.history.append(msg)
        self._raw.append(self._msg_raw(msg))

    def replace_history(self, history: list[Message]) -> None:
        self.history = list(history)
        self._raw = [self._msg_raw(m) for m in self.history]

    @staticmethod
    def user_content(text: str, injections: list[Injection], files: str = "") -> str:
        """The user message of a turn: the request, the files it names, then any skills picked
        for it."""
        if files:
            text = f"{text}\n\n{files}"
        if not injections:
            return text
        blocks = "\n\n".join(i.text.strip() for i in injections)
        return f"{text}\n\n<skills>\nSkills that matched this request (use them if they fit):\n{blocks}\n</skills>"

    # ---- budget --------------------------------------------------------------------------
    def _msg_raw(self, m: Message) -> int:
        calls = json.dumps([c.to_dict() for c in m.tool_calls]) if m.tool_calls else ""
        return self.counter.raw(m.content) + self.counter.raw(m.thinking) + self.counter.raw(calls) + MESSAGE_OVERHEAD

    def raw_tokens(self) -> int:
        return self._fixed_raw + sum(self._raw)

    def tokens(self) -> int:
        """Estimated size of the next request, scaled by what the server has reported."""
        return int(self.raw_tokens() * self.counter.scale) + MESSAGE_OVERHEAD

    def budget(self) -> int:
        """Prompt tokens allowed: num_ctx less room for the reply."""
        return self.num_ctx - min(4096, self.num_ctx // 4)

    def usage(self) -> dict:
        s = self.counter.scale
        return {
            "used": self.tokens(),
            "num_ctx": self.num_ctx,
            "breakdown": {
                "system": int(self.counter.raw(self._system.content) * s),
                "tools": int(self.counter.raw(json.dumps(self.tools or [])) * s),
                "history": int(sum(self._raw) * s),
                "messages": len(self.history),
            },
        }

    def fit(self) -> list[str]:
        """Compact when the request nears the budget; returns notices for the person.
        Aims well below the budget so that compaction stays rare."""
        if self.tokens() <= self.budget():
            return []
        target = int(self.budget() * 0.6)
        notices = []
        saved = self._compact_tool_outputs(target)
        if saved:
            notices.append(f"context nearly full: compacted {saved} old tool outputs (now ~{self.tokens()} of {self.num_ctx} tokens)")
        if self.tokens() > self.budget():
            dropped = self._drop_oldest(target)
            notices.append(f"context still too full: removed the {dropped} oldest messages (now ~{self.tokens()} of {self.num_ctx} tokens)")
        return notices

    def _recent_start(self) -> int:
        """Index of the first message of the last `keep_recent_turns` user turns."""
        seen = 0
        for i in range(len(self.history) - 1, -1, -1):
            if _is_turn_start(self.history[i]):
                seen += 1
                if seen == self.keep_recent_turns:
                    return i
        return 0

    def _compact_tool_outputs(self, target: int) -> int:
        count = 0
        for i in range(self._recent_start()):
            if self.tokens() <= target:
                break
            m = self.history[i]
            if m.role == "tool" and len(m.content) > 200 and not m.content.startswith("[output compacted"):
                stub = COMPACTED.format(n=len(m.content), tool=m.tool_name or "tool")
                self.history[i] = Message("tool", stub, tool_name=m.tool_name, tool_call_id=m.tool_call_id)
                self._raw[i] = self._msg_raw(self.history[i])
                count += 1
        return count

    def _drop_oldest(self, target: int) -> int:
        """Drop whole turns from the front (never the current turn), leaving one marker."""
        body = self.history
        already = 0
        if body and body[0].role == "user" and body[0].content.startswith(DROPPED_PREFIX):
            already = int(body[0].content[len(DROPPED_PREFIX):].split()[0])
            body = body[1:]
        dropped = 0
        while self.tokens() > target:
            cut = next((i for i, m in enumerate(body) if i > 0 and _is_turn_start(m)), None)
            if cut is None:
                break  # only the current turn is left; the server will truncate it, and we said so
            body, dropped = body[cut:], dropped + cut
            self.replace_history([Message("user", DROPPED.format(n=already + dropped)), *body])
        return dropped


def _is_turn_start(m: Message) -> bool:
    """A person's request (text tool results also travel as user messages, with tool_name)."""
    return m.role == "user" and not m.tool_name
