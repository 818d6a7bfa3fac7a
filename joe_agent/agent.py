"""The agent loop: ask the model, run the tools it calls, show it the results, repeat until it
answers without tool calls or the step limit is reached. Everything else (prompt layout,
tools, permissions, transcripts, checkpoints, skills) lives in its own module."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, Sequence

from joe_agent.context import Context, Injection
from joe_agent.errors import ModelError, StreamError, ToolsUnsupported
from joe_agent.messages import (ErrorEvent, Event, Message, Notice, TextDelta, ThinkingDelta,
                                ToolCall, ToolCallEvent, ToolResult, ToolResultEvent, TurnDone)
from joe_agent.mentions import Attachment, render
from joe_agent.models.base import ChatModel
from joe_agent.nudges import Progress, nudge_for

LOOP_LIMIT = 3  # the same call failing this many times in one turn stops it


def _invented_names(text: str) -> set[str]:
    """Names in call-shaped JSON: a small model sometimes calls a tool it imagined
    (`add_function`). Parsed like any text call (position and shape decide), such a call gets
    the registry's "unknown tool, the tools are …" result instead of silently ending the turn."""
    import re

    return set(re.findall(r'"name"\s*:\s*"([A-Za-z_][\w-]{0,63})"', text)) if '"name"' in text else set()


class TurnHook(Protocol):
    """Something that acts around each turn (checkpoints, the skills ledger)."""

    def before_turn(self, turn: int, text: str) -> list[str]: ...

    def after_turn(self, turn: int, done: TurnDone) -> list[str]: ...


SkillPicker = Callable[[int, str, Sequence[str]], "list[Injection]"]


@dataclass
class _Turn:
    """What the current turn has produced so far, so an interrupt can close it cleanly."""

    start: float = field(default_factory=time.monotonic)
    steps: int = 0
    content: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    streaming: bool = False
    open_calls: list[ToolCall] = field(default_factory=list)  # called but not yet answered
    prompt_tokens: int = 0
    completion_tokens: int = 0
    eval_seconds: float = 0.0
    final_text: str = ""
    failures: dict[str, int] = field(default_factory=dict)  # failing call -> times it failed this turn
    fail_count: int = 0  # how often the last call has failed this turn (0: it succeeded)
    denied: int = 0
    seen_reads: dict[str, int] = field(default_factory=dict)  # read-only call -> times run this turn
    progress: Progress = field(default_factory=Progress)  # for reminders against stopping early


class Agent:
    def __init__(self, model: ChatModel, registry, context: Context, transcript=None,
                 max_steps: int = 30, hooks: Sequence[TurnHook] = (), pick_skills: SkillPicker | None = None,
                 native_tools: bool = True, text_protocol: Callable[[list[dict]], str] | None = None,
                 attach: Callable[[str], list[Attachment]] | None = None) -> None:
        self.model, self.registry, self.context, self.transcript = model, registry, context, transcript
        self.attach = attach  # files the request names, read for it (mentions.py)
        self.max_steps, self.hooks, self.pick_skills = max_steps, list(hooks), pick_skills
        self.native_tools, self.text_protocol = native_tools, text_protocol
        self.turn = 0
        self.last_turn_tokens_per_s: float | None = None
        self._notes: list[str] = []
        self._first_only = ""  # said with the next tool result when later text calls were dropped
        self.text_calls_while_native = 0  # replies with calls written as text although tools were native

    @property
    def history(self) -> list[Message]:
        return self.context.history

    # ---- the loop -----------------------------------------------------------------------
    def run_turn(self, text: str, forced_skills: Sequence[str] = ()) -> Iterator[Event]:
        self.turn += 1
        t = _Turn()
        try:
            yield from self._begin(text, forced_skills, t)
            while t.steps < self.max_steps:
                t.steps += 1
                for note in self.context.fit():
                    yield self._notice(note, "compaction")
                reply = yield from self._ask_model(t)
                if reply is None:
                    return (yield from self._finish(t, "error"))
                if not reply.tool_calls and self._nudge(reply, t):
                    continue
                if not reply.tool_calls:
                    t.final_text = reply.content
                    return (yield from self._finish(t, "done"))
                t.open_calls = list(reply.tool_calls)
                for call in reply.tool_calls:
                    yield from self._run_tool(call, t)
                    if t.fail_count and call.source == "text" and t.open_calls:  # the plan went wrong
                        yield from self._close_open_calls(t, f"Skipped: the call before it ({call.name}) failed.", False)
                        break
                    if t.fail_count >= LOOP_LIMIT:
                        yield from self._close_open_calls(t, "Skipped: the turn was stopped.")
                        yield self._notice(f"stopped: {call.name} failed {LOOP_LIMIT} times this turn with the same arguments", "loop")
                        return (yield from self._finish(t, "loop"))
            yield self._notice(f"stopped after {self.max_steps} steps (max_steps); say 'continue' to go on", "max_steps")
            yield from self._finish(t, "max_steps")
        except KeyboardInterrupt:
            self._settle_interrupt(t)
            yield self._notice("interrupted", "interrupt")
            yield from self._finish(t, "interrupted")
        except GeneratorExit:  # the consumer stopped iterating (its own Ctrl-C): no more yields
            self._settle_interrupt(t)
            for note in self._after_hooks(self._log_done(t, "interrupted")):
                self._log("notice", text=note, topic="checkpoint")
            raise

    # ---- steps --------------------------------------------------------------------------
    def _begin(self, text: str, forced: Sequence[str], t: _Turn) -> Iterator[Event]:
        for hook in self.hooks:
            for note in hook.before_turn(self.turn, text):
                yield self._notice(note, "checkpoint")
        injections = self.pick_skills(self.turn, text, forced) if self.pick_skills else []
        for inj in injections:
            yield self._notice(f"used skill: {inj.name} ({inj.reason})", "skills", {"skill": inj.name, "reason": inj.reason})
        attached = self.attach(text) if self.attach else []
        for a in attached:
            yield self._notice(f"attached {a.path}" if a.attached else a.text, "mentions")
        t.progress.named = [a.path for a in attached if a.attached]
        notes, self._notes = self._notes, []
        request = "\n".join([*notes, text]) if notes else text
        self._append(Message("user", Context.user_content(request, injections, render(attached))), request=text)

    def _ask_model(self, t: _Turn) -> Iterator[Event]:
        """Stream one reply. Returns the assistant Message, or None after an error event."""
        t.content, t.thinking, calls, last = [], [], [], None
        raw_prompt = self.context.raw_tokens()
        t.streaming = True
        try:
            for chunk in self.model.stream(self.context.messages(), self.context.tools if self.native_tools else None):
                if chunk.thinking:
                    t.thinking.append(chunk.thinking)
                    yield ThinkingDelta(chunk.thinking)
                if chunk.content:
                    t.content.append(chunk.content)
                    yield TextDelta(chunk.content)
                calls.extend(chunk.tool_calls)
                last = chunk if chunk.done else last
        except ToolsUnsupported:
            t.streaming = False
            yield self._notice(f"{self.model.name} does not support native tool calls; using text tool calls", "textcalls")
            self._use_text_protocol()
            return (yield from self._ask_model(t))
        except StreamError as e:
            t.streaming = False
            yield self._error(str(e), "stream", partial=self._keep_partial(t, interrupted=False))
            return None
        except ModelError as e:
            t.streaming = False
            yield self._error(str(e), type(e).__name__)
            return None
        t.streaming = False
        if last is not None:
            self.context.counter.calibrate(raw_prompt, last.prompt_tokens)
            t.prompt_tokens = last.prompt_tokens or t.prompt_tokens
            t.completion_tokens += last.completion_tokens or 0
            t.eval_seconds += last.eval_duration_s or 0.0
        raw = "".join(t.content)
        msg = self._assistant_message(raw, "".join(t.thinking), calls)
        self._append(msg, **({"raw_content": raw} if raw != msg.content else {}))  # calls read from the text
        return msg

    def _run_tool(self, call: ToolCall, t: _Turn) -> Iterator[Event]:
        yield ToolCallEvent(call)
        self._log("tool_call", call=call.to_dict())
        began = time.monotonic()
        result = self._repeat_guard(call, t) or self.registry.run(call)
        if self._first_only:
            result.content, self._first_only = result.content + self._first_only, ""
        t.open_calls.remove(call)
        self._log("tool_result", call_id=call.id, name=call.name, ok=result.ok, meta=result.meta,
                  duration_s=round(time.monotonic() - began, 3), chars=len(result.content))
        self._append(self._result_message(call, result))
        yield ToolResultEvent(call, result)
        t.denied += bool(result.meta.get("denied"))
        t.progress.calls += 1
        if result.ok and "diff" in result.meta and result.meta.get("path"):
            t.progress.note_change(result.meta["path"])
        sig = call.name + json.dumps(call.arguments, sort_keys=True, default=str) + call.arguments_error
        if result.ok:
            t.fail_count = 0
        else:  # counted over the turn: a model alternating two failing calls is still looping
            t.failures[sig] = t.fail_count = t.failures.get(sig, 0) + 1

    def _repeat_guard(self, call: ToolCall, t: _Turn) -> ToolResult | None:
        """The same file or search call a third time in one turn is not run again: small models
        circle on a search or rewrite the same file; the reminder (a failure) lets loop
        detection stop a real loop."""
        tool = self.registry.get(call.name)
        if tool is None or tool.kind == "shell":  # rerunning the tests after a change is normal
            return None
        sig = call.name + json.dumps(call.arguments, sort_keys=True, default=str)
        t.seen_reads[sig] = t.seen_reads.get(sig, 0) + 1
        if t.seen_reads[sig] < 3:
            return None
        return ToolResult(f"You already called {call.name} with these arguments {t.seen_reads[sig] - 1} times in "
                          "this turn; the result is above. Use it and do the next step, or answer.", ok=False)

    def _nudge(self, reply: Message, t: _Turn) -> bool:
        """A reply that would end the turn too early (empty mid-task, announcing a call instead
        of making it, named files left unchanged) gets one reminder of each kind (nudges.py)."""
        if t.steps >= self.max_steps:
            return False
        reminder = nudge_for(reply.content, t.progress, set(self.registry.names()))
        if reminder is None:
            return False
        self._append(Message("user", reminder))
        return True

    def _finish(self, t: _Turn, reason: str) -> Iterator[Event]:
        done = self._log_done(t, reason)
        for note in self._after_hooks(done):
            yield self._notice(note, "checkpoint")
        yield done

    def _after_hooks(self, done: TurnDone) -> list[str]:
        return [note for hook in self.hooks for note in hook.after_turn(self.turn, done)]

    # ---- helpers ------------------------------------------------------------------------
    def _assistant_message(self, text: str, thinking: str, calls: list[ToolCall]) -> Message:
        """Native calls as they came; otherwise look for calls written as text. With native
        tools on, a text call is stored as a structured call (the prose stays the content),
        so the model's next turn sees the conversation in its own native format."""
        if not calls:
            from joe_agent.models.textcalls import parse_text_calls

            parsed = parse_text_calls(text, set(self.registry.names()) | _invented_names(text))
            if parsed.calls:
                self.text_calls_while_native += self.native_tools
                calls = self._runnable(parsed.calls)
                text = parsed.prose if self.native_tools else text
        return Message("assistant", text, thinking, calls)

    def _runnable(self, calls: list[ToolCall]) -> list[ToolCall]:
        """A model that writes calls as text often plans several at once. Those up to the first
        read are run; the ones after it were written before seeing what it returns (a guessed
        edit would clobber the file just read), so they are dropped, and the model is told."""
        for i, call in enumerate(calls[:-1]):
            tool = self.registry.get(call.name)
            if tool is not None and tool.kind == "read":
                later = len(calls) - i - 1
                self._first_only = (f"\n({later} more tool call{'s' if later > 1 else ''} after this {call.name} "
                                    "did not run: written before seeing this result. Make them again if "
                                    "they still fit.)")
                return calls[:i + 1]
        return calls

    def _result_message(self, call: ToolCall, result: ToolResult) -> Message:
        body = result.content if result.ok else f"ERROR: {result.content}"
        if self.native_tools:
            return Message("tool", body, tool_name=call.name, tool_call_id=call.id)
        return Message("user", f"[result of {call.name}]\n{body}", tool_name=call.name)

    def _use_text_protocol(self) -> None:
        self.native_tools = False
        if self.text_protocol is not None:
            self.context.set_tool_protocol(self.text_protocol(self.registry.schemas()), None)

    def _keep_partial(self, t: _Turn, interrupted: bool) -> bool:
        """Keep whatever streamed before an error or interrupt, marked as such."""
        text, thinking = "".join(t.content), "".join(t.thinking)
        if not (text or thinking):
            return False
        flags = {"partial": True, "interrupted": True} if interrupted else {"partial": True}
        self._append(Message("assistant", text, thinking), **flags)
        return True

    def _close_open_calls(self, t: _Turn, why: str, interrupted: bool = True) -> Iterator[Event]:
        for call in list(t.open_calls):
            result = ToolResult(why, ok=False, meta={"interrupted": True} if interrupted else {"skipped": True})
            t.open_calls.remove(call)
            self._append(self._result_message(call, result))
            yield ToolResultEvent(call, result)

    def _settle_interrupt(self, t: _Turn) -> None:
        """Leave the conversation valid: the partial reply kept and every call answered."""
        if t.streaming:
            t.streaming = False
            self._keep_partial(t, interrupted=True)
        for _ in self._close_open_calls(t, "Interrupted by the user before this finished."):
            pass

    def _log_done(self, t: _Turn, reason: str) -> TurnDone:
        tps = t.completion_tokens / t.eval_seconds if t.eval_seconds > 0 else None
        if tps is not None:
            self.last_turn_tokens_per_s = tps
        done = TurnDone(reason=reason, steps=t.steps, prompt_tokens=t.prompt_tokens,
                        completion_tokens=t.completion_tokens, duration_s=time.monotonic() - t.start,
                        tokens_per_s=tps, final_text=t.final_text, denied=t.denied)
        self._log("turn_done", reason=reason, steps=t.steps, prompt_tokens=t.prompt_tokens,
                  completion_tokens=t.completion_tokens, duration_s=round(done.duration_s, 3),
                  tokens_per_s=round(tps, 2) if tps else None)
        return done

    def _append(self, msg: Message, **flags) -> None:
        self.context.append(msg)
        if self.transcript is not None:
            self.transcript.write_message(msg, self.turn, **flags)

    def _log(self, type_: str, **fields) -> None:
        if self.transcript is not None:
            self.transcript.write(type_, self.turn, **fields)

    def _notice(self, text: str, topic: str, data: dict | None = None) -> Notice:
        self._log("notice", text=text, topic=topic, **({"data": data} if data else {}))
        return Notice(text, topic, data or {})

    def _error(self, message: str, kind: str, partial: bool = False) -> ErrorEvent:
        self._log("error", message=message, error_type=kind, partial=partial)
        return ErrorEvent(message, kind, partial)

    def add_note(self, text: str) -> None:
        """Something the model should hear with the next request (e.g. files reverted by /undo);
        carried in that user message, so the prompt prefix stays append-only."""
        self._notes.append(text)

    def clear(self) -> None:
        """A new conversation in the same session log."""
        self.context.replace_history([])
        self._log("notice", text="conversation cleared", topic="clear")

    def context_usage(self) -> dict:
        return self.context.usage()
