"""One JSONL file per session: `<folder>/<session_id>.jsonl`, the record of what happened.

Every line is one JSON object `{"v": 1, "ts": ..., "type": ..., "turn": n, ...}` written with a
single O_APPEND write (store.append_line), so concurrent writers never interleave and a crash
leaves at most one torn last line. Everything passes scrub_obj before it reaches the disk.
Reading never crashes on a damaged file: a torn tail is ignored (and cut off when the file is
next opened for append), a corrupt middle line is skipped and counted. The format is
documented in docs/transcript-format.md.
"""
from __future__ import annotations

import json
import re
import os
import threading
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from joe_agent.errors import StoreError
from joe_agent.memory.scrub import scrub_obj
from joe_agent.memory.store import append_line, repair_torn_tail
from joe_agent.messages import Event, Message, ToolCall

VERSION = 1
KNOWN_TYPES = frozenset({
    "session_start", "message", "tool_call", "tool_result", "error", "notice", "turn_done",
    "undo", "correction", "skill_use", "session_end",
})
_ENVELOPE = ("v", "ts", "type", "turn")
_TYPE_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_ROLES = {"system", "user", "assistant", "tool"}
NO_RESULT = "(no result: the session stopped before this tool call finished)"


def new_session_id(now: datetime | None = None) -> str:
    """`YYYYMMDD-HHMMSS-xxxx` in UTC: sorts by start time; 4 hex digits keep two sessions
    started in the same second apart."""
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is not None:
        now = now.astimezone(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{os.urandom(2).hex()}"


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(obj: Any) -> Any:
    """JSON-ready primitives, so scrub_obj sees every string (a dataclass would hide them)."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [_plain(v) for v in items]
    if is_dataclass(obj) and not isinstance(obj, type):
        return _plain(asdict(obj))
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)  # Path, enums and the like


def _dump(record: dict[str, Any]) -> str:
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        # lone surrogates (undecodable tool output): write them as JSON \udcxx escapes, which
        # read back as the same string
        line = line.encode("utf-8", "backslashreplace").decode("utf-8")
    return line


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    try:
        rec = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("type"), str):
        return None
    return rec


def read_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """All valid records of a transcript and how many damaged lines were skipped. A torn last
    line (no newline yet) is neither returned nor counted: a writer may still be finishing it."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return [], 0
    except OSError as e:
        raise StoreError(f"could not read transcript {path}: {e.strerror or e}") from e
    lines = data.split(b"\n")[:-1]  # U+2028 and friends are not line breaks here, only \n is
    records, skipped = [], 0
    for raw in lines:
        if not raw.strip():
            continue
        rec = _parse_line(raw)
        if rec is None:
            skipped += 1
        else:
            records.append(rec)
    return records, skipped


def _tail_is_torn(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            if fh.tell() == 0:
                return False
            fh.seek(-1, 2)
            return fh.read(1) != b"\n"
    except FileNotFoundError:
        return False


class Transcript:
    """Appends records to one session's file; reads them back for /resume and /synthesize."""

    def __init__(self, folder: Path, session_id: str):
        if not _ID_RE.match(session_id):
            raise StoreError(f"not a session id: {session_id!r} (letters, digits, '.', '-', '_')")
        self.folder = Path(folder)
        self.id = session_id
        self.path = self.folder / f"{session_id}.jsonl"
        self.skipped_lines = 0  # damaged lines seen by the last records() call
        self._ready = False
        self._ready_lock = threading.Lock()

    @classmethod
    def open_existing(cls, path: Path) -> "Transcript":
        """Continue a session (--resume, --continue): cuts off a torn last line from a crash."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"no transcript at {path}")
        t = cls(path.parent, path.name.removesuffix(".jsonl"))
        t._prepare(cut_torn_tail=True)
        return t

    def _prepare(self, cut_torn_tail: bool = False) -> None:
        """Before the first append: make the folder, and deal with a torn last line. Resuming
        cuts it off (the session that wrote it is over). A plain writer only ends it with a
        newline, because the "torn" line may be another live writer's append still landing:
        cutting it would lose lines (seen in the 8-thread test), while an extra newline after
        a finished line is just a blank line that readers skip."""
        with self._ready_lock:
            if self._ready:
                return
            try:
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # transcripts are private
                if cut_torn_tail:
                    repair_torn_tail(self.path)
                elif _tail_is_torn(self.path):
                    append_line(self.path, "")
            except OSError as e:
                raise StoreError(f"could not open transcript {self.path}: {e.strerror or e}") from e
            self._ready = True

    # ---- writing ----------------------------------------------------------------------------

    def write(self, type: str, turn: int = 0, **fields: Any) -> None:
        """Append one record. Fields are made JSON-ready and scrubbed first."""
        if not _TYPE_RE.match(type):
            raise ValueError(f"bad record type {type!r}")
        clash = set(fields) & set(_ENVELOPE)
        if clash:
            raise ValueError(f"fields {sorted(clash)} are reserved for the record envelope")
        record: dict[str, Any] = {"v": VERSION, "ts": _now_iso(), "type": type, "turn": int(turn)}
        record.update(scrub_obj(_plain(fields)))
        self._prepare()
        append_line(self.path, _dump(record))

    def write_message(self, msg: Message, turn: int, **flags: Any) -> None:
        """A chat message; flags such as partial=True or interrupted=True ride beside it."""
        self.write("message", turn, message=msg.to_dict(), **flags)

    def write_session_start(self, project_root: Path, model: str, backend: str,
                            num_ctx: int | None, joe_version: str | None = None, **extra: Any) -> None:
        if joe_version is None:
            from joe_agent import __version__ as joe_version
        self.write("session_start", 0, session_id=self.id, project_root=str(project_root), model=model,
                   backend=backend, joe_version=joe_version, num_ctx=num_ctx, **extra)

    def write_event(self, ev: Event, turn: int) -> None:
        """Record an agent event. Text and thinking deltas are skipped: the finished message is
        written once with write_message, not token by token."""
        kind = getattr(ev, "kind", "")
        if kind == "tool_call":
            self.write("tool_call", turn, call=ev.call.to_dict())
        elif kind == "tool_result":
            meta = dict(ev.result.meta)
            self.write("tool_result", turn, call_id=ev.call.id, name=ev.call.name, ok=ev.result.ok,
                       meta=meta, duration_s=meta.get("duration_s"), chars=len(ev.result.content))
        elif kind == "notice":
            self.write("notice", turn, text=ev.text, topic=ev.topic, data=ev.data)
        elif kind == "error":
            self.write("error", turn, message=ev.message, error_type=ev.error_type, partial=ev.partial)
        elif kind == "turn_done":
            self.write("turn_done", turn, reason=ev.reason, steps=ev.steps, prompt_tokens=ev.prompt_tokens,
                       completion_tokens=ev.completion_tokens, duration_s=ev.duration_s,
                       tokens_per_s=ev.tokens_per_s)

    # ---- reading ----------------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        records, self.skipped_lines = read_records(self.path)
        return records

    def messages(self) -> list[Message]:
        """The chat history to resume, in order. A message record that is not a valid message
        is skipped (and counted); tool calls left without a result get a placeholder result so
        the history stays balanced for the model."""
        out: list[Message] = []
        for rec in self.records():
            if rec["type"] != "message":
                continue
            d = rec.get("message")
            if not isinstance(d, dict) or d.get("role") not in _ROLES:
                self.skipped_lines += 1
                continue
            out.append(Message.from_dict(d))
        return _balance(out)

    def last_turn(self) -> int:
        return max((_as_int(r.get("turn")) for r in self.records()), default=0)


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _balance(history: list[Message]) -> list[Message]:
    """Give every tool call exactly one result: a crash between a call and its result would
    otherwise leave a history some servers reject."""
    out: list[Message] = []
    pending: list[ToolCall] = []
    for msg in history:
        if msg.role == "tool":
            _answer(pending, msg)
            out.append(msg)
            continue
        out += [_missing_result(c) for c in pending]
        pending = list(msg.tool_calls) if msg.role == "assistant" else []
        out.append(msg)
    out += [_missing_result(c) for c in pending]
    return out


def _answer(pending: list[ToolCall], result: Message) -> None:
    for match in (lambda c: result.tool_call_id and c.id == result.tool_call_id,
                  lambda c: c.name == result.tool_name, lambda c: True):
        for i, call in enumerate(pending):
            if match(call):
                del pending[i]
                return


def _missing_result(call: ToolCall) -> Message:
    return Message(role="tool", content=NO_RESULT, tool_name=call.name, tool_call_id=call.id)


# ---- listing sessions ---------------------------------------------------------------------------

_HEAD_BYTES = 256 * 1024
_TAIL_BYTES = 64 * 1024


@dataclass
class SessionInfo:
    id: str
    path: Path
    started: datetime
    first_prompt: str
    turns: int
    model: str


def _head_records(fh: Any) -> list[dict[str, Any]]:
    """Records from the start of the file, up to the first user prompt (bounded in bytes)."""
    out, read = [], 0
    for raw in fh:
        read += len(raw)
        if not raw.endswith(b"\n") or read > _HEAD_BYTES:
            break
        rec = _parse_line(raw)
        if rec is None:
            continue
        out.append(rec)
        if rec["type"] == "message" and (rec.get("message") or {}).get("role") == "user":
            break
    return out


def _tail_turn(fh: Any, size: int) -> int:
    """The highest turn number among the last complete lines: turns only grow in a session."""
    start = max(0, size - _TAIL_BYTES)
    fh.seek(start)
    lines = fh.read(size - start).split(b"\n")[:-1]
    if start > 0:
        lines = lines[1:]  # the first piece is the end of a line cut by the seek
    return max((_as_int(r.get("turn")) for r in map(_parse_line, lines) if r), default=0)


def _started(head: list[dict[str, Any]], session_id: str, path: Path) -> datetime:
    try:
        started = datetime.fromisoformat(str(head[0].get("ts")).replace("Z", "+00:00"))
        return started if started.tzinfo else started.replace(tzinfo=timezone.utc)
    except (IndexError, ValueError):
        pass
    try:
        return datetime.strptime(session_id[:15], "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


def _session_info(path: Path) -> SessionInfo:
    with open(path, "rb") as fh:
        size = path.stat().st_size
        head = _head_records(fh)
        turns = _tail_turn(fh, size)
    start = next((r for r in head if r["type"] == "session_start"), {})
    prompt = next((r["message"].get("content", "") for r in head if r["type"] == "message"
                   and (r.get("message") or {}).get("role") == "user"), "")
    sid = path.name.removesuffix(".jsonl")
    return SessionInfo(id=sid, path=path, started=_started(head, sid, path),
                       first_prompt=str(prompt), turns=turns, model=str(start.get("model", "")))


def list_sessions(folder: Path) -> list[SessionInfo]:
    """Sessions in `folder`, newest first. Reads only the head (up to the first prompt) and a
    tail block of each file, so a folder of long sessions lists quickly."""
    folder = Path(folder)
    infos = []
    try:
        paths = sorted(folder.glob("*.jsonl"))
    except OSError:
        return []
    for path in paths:
        try:
            infos.append(_session_info(path))
        except OSError:
            continue  # vanished or unreadable: not worth failing the whole listing
    infos.sort(key=lambda s: (s.started.timestamp(), s.id), reverse=True)
    return infos


def matching_sessions(folder: Path, prefix: str) -> list[Path]:
    """Transcripts whose id is `prefix` exactly, else those whose id starts with it."""
    prefix = prefix.strip().removesuffix(".jsonl")
    folder = Path(folder)
    if not prefix or not _ID_RE.match(prefix):
        return []
    exact = folder / f"{prefix}.jsonl"
    if exact.is_file():
        return [exact]
    try:
        return sorted(p for p in folder.glob("*.jsonl") if p.name.startswith(prefix))
    except OSError:
        return []


def find_session(folder: Path, prefix: str) -> Path | None:
    """The transcript named by a full id or a unique id prefix; None if none or ambiguous
    (matching_sessions lists the candidates for a helpful message)."""
    matches = matching_sessions(folder, prefix)
    return matches[0] if len(matches) == 1 else None
