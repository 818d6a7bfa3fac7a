"""The file tools: read_file, write_file, edit_file, list_files, search.

Files are handled as bytes. Text is decoded with surrogateescape, so a non-UTF-8 file
round-trips byte for byte; the model sees undecodable bytes as U+FFFD, one per byte, so its
view lines up character for character with the real text and edits map back exactly.
"""
from __future__ import annotations

import difflib
import fnmatch
import hashlib
import keyword
import re
from dataclasses import dataclass
from pathlib import Path

from joe_agent.memory.store import atomic_write
from joe_agent.messages import ToolResult
from joe_agent.tools.permissions import ApprovalRequest
from joe_agent.tools.registry import ToolContext, ToolFailure, ask, tool

MAX_READ_LINES = 2_000
MAX_READ_BYTES = 100_000
MAX_FILE_BYTES = 20_000_000  # larger files: read a slice with run_shell (sed -n, head, tail)
MAX_LIST = 500
MAX_MATCHES = 100
MAX_SEARCH_FILE = 5_000_000
_SURROGATES = re.compile("[\udc80-\udcff]")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")  # a name worth following: 3 characters or more
_KEYWORDS = frozenset(keyword.kwlist) | {"self", "cls"}
_MAGIC = ((b"\x89PNG", "PNG image"), (b"\xff\xd8\xff", "JPEG image"), (b"GIF8", "GIF image"),
          (b"%PDF", "PDF document"), (b"PK\x03\x04", "zip archive"), (b"\x7fELF", "ELF executable"),
          (b"\x1f\x8b", "gzip archive"), (b"SQLite format 3", "SQLite database"), (b"\xca\xfe\xba\xbe", "Java class"))


@dataclass
class _Text:
    raw: bytes
    text: str  # lossless (surrogateescape)
    view: str  # what the model sees: same length, undecodable bytes as U+FFFD

    @property
    def bad_bytes(self) -> int:
        return len(_SURROGATES.findall(self.text))

    @property
    def crlf(self) -> bool:
        crlf = self.text.count("\r\n")
        return crlf > 0 and crlf >= self.text.count("\n") - crlf


def _digest(raw: bytes) -> str:
    return hashlib.sha1(raw).hexdigest()


def _decode(raw: bytes) -> _Text:
    text = raw.decode("utf-8", "surrogateescape")
    return _Text(raw, text, _SURROGATES.sub("\ufffd", text))


def _binary_note(rel: str, raw: bytes) -> str:
    kind = next((name for magic, name in _MAGIC if raw.startswith(magic)), "binary data")
    return f"{rel} is a binary file ({len(raw):,} bytes, {kind}); it is not shown as text."


def _load(ctx: ToolContext, real: Path, rel: str) -> bytes:
    if not real.exists():
        raise ToolFailure(f"No such file: {rel}{_suggest(ctx, real)}")
    if real.is_dir():
        raise ToolFailure(f"{rel} is a directory; use list_files to see inside it")
    if not real.is_file():
        raise ToolFailure(f"{rel} is not a regular file")
    size = real.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ToolFailure(f"{rel} is too large to load ({size:,} bytes); use search, or run_shell with "
                          f"sed -n 'A,Bp' {rel} to read a slice")
    try:
        return real.read_bytes()
    except OSError as e:
        raise ToolFailure(f"cannot read {rel}: {e.strerror or e}") from e


def _suggest(ctx: ToolContext, real: Path) -> str:
    folder = real.parent
    if not folder.is_dir():
        return ""
    try:
        names = [p.name for p in folder.iterdir()][:2000]
    except OSError:
        return ""
    close = difflib.get_close_matches(real.name, names, n=3, cutoff=0.6)
    return f" (did you mean: {', '.join(ctx.workspace.rel(folder / n) for n in close)}?)" if close else ""


def _lines(view: str) -> list[str]:
    """Lines without their endings; split on \\n only, so numbers agree with grep and sed."""
    lines = view.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _check_unchanged(ctx: ToolContext, real: Path, rel: str, raw: bytes) -> None:
    seen = ctx.seen.get(real)
    if seen is not None and seen != _digest(raw):
        raise ToolFailure(f"{rel} changed on disk since you last read it; call read_file on it again "
                          "before editing, so you do not overwrite someone else's changes")


def _diff(rel: str, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        f"a/{rel}", f"b/{rel}"))


@tool("read")
def read_file(ctx: ToolContext, path: str, start_line: int | None = None, end_line: int | None = None) -> str:
    """Read a text file in the project. Long files come in pages: the reply says how to read on.

    Args:
        path: file path relative to the project root
        start_line: first line to read (1-based, default 1)
        end_line: last line to read (inclusive, default: as far as the page limit allows)
    """
    real = ctx.workspace.resolve(path)
    rel = ctx.workspace.rel(real)
    raw = _load(ctx, real, rel)
    ctx.seen[real] = _digest(raw)
    if b"\0" in raw:
        return _binary_note(rel, raw)
    doc = _decode(raw)
    lines = _lines(doc.view)
    if not lines:
        return f"({rel} is empty)"
    first = max(1, start_line or 1)
    last = min(len(lines), end_line or len(lines))
    if first > len(lines):
        raise ToolFailure(f"start_line {first} is past the end of {rel} ({len(lines)} lines)")
    if last < first:
        raise ToolFailure(f"end_line {last} is before start_line {first}")
    shown, size = [], 0
    for number in range(first, min(last, first + MAX_READ_LINES - 1) + 1):
        line = lines[number - 1]
        if size + len(line) + 1 > MAX_READ_BYTES:
            if not shown:  # one giant line: show its start rather than nothing
                shown.append(line[:MAX_READ_BYTES] + f" [... line {number} cut at {MAX_READ_BYTES:,} characters]")
            break
        shown.append(line)
        size += len(line) + 1
    out = "\n".join(shown)
    end_shown = first + len(shown) - 1
    if end_shown < len(lines) and (end_line is None or end_shown < last):
        out += (f"\n[lines {first}-{end_shown} of {len(lines)} shown; call read_file with "
                f"start_line={end_shown + 1} to read on]")
    elif first > 1 or end_shown < len(lines):
        out += f"\n[lines {first}-{end_shown} of {len(lines)}]"
    if doc.bad_bytes:
        out += (f"\n[note: {rel} is not valid UTF-8; {doc.bad_bytes} undecodable byte(s) are shown as \ufffd. "
                "edit_file keeps the original bytes outside the text you replace]")
    return out


@tool("write")
def write_file(ctx: ToolContext, path: str, content: str) -> ToolResult:
    """Create a file, or replace all of an existing file's content. Folders are created as needed.

    Args:
        path: file path relative to the project root
        content: the complete new content of the file
    """
    real = ctx.workspace.resolve(path, for_write=True)
    rel = ctx.workspace.rel(real)
    created = not real.exists()
    old = _decode(b"") if created else _decode(_load(ctx, real, rel))
    if not created:
        _check_unchanged(ctx, real, rel, old.raw)
        if old.crlf and "\r" not in content:
            content = content.replace("\n", "\r\n")  # keep the file's line endings
    try:
        new_raw = content.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as e:
        raise ToolFailure(f"content has characters that cannot be written as UTF-8: {e.reason}") from e
    if not created and new_raw == old.raw:
        return ToolResult(f"{rel} already has exactly this content; nothing written.", meta={"path": rel, "diff": "", "created": False})
    before = f"[binary file, {len(old.raw):,} bytes]\n" if b"\0" in old.raw else old.view
    diff = _diff(rel, before, _decode(new_raw).view)
    denied = ask(ctx, ApprovalRequest("write_file", "write", rel, diff, str(real)))
    if denied:
        return denied
    atomic_write(real, new_raw)
    ctx.seen[real] = _digest(new_raw)
    lines = len(_lines(content))
    return ToolResult(f"{'Created' if created else 'Rewrote'} {rel} ({lines} lines).",
                      meta={"path": rel, "diff": diff, "created": created})


@tool("write")
def edit_file(ctx: ToolContext, path: str, old_text: str, new_text: str) -> ToolResult:
    """Replace one exact piece of text in a file. old_text must appear exactly once: copy it from read_file, with its exact whitespace and enough lines to be unique.

    Args:
        path: file path relative to the project root
        old_text: the exact text to replace (must occur exactly once)
        new_text: the text to put in its place
    """
    real = ctx.workspace.resolve(path, for_write=True)
    rel = ctx.workspace.rel(real)
    doc = _decode(_load(ctx, real, rel))
    if b"\0" in doc.raw:
        raise ToolFailure(_binary_note(rel, doc.raw) + " edit_file only edits text.")
    _check_unchanged(ctx, real, rel, doc.raw)
    if not old_text:
        raise ToolFailure("old_text is empty; give the exact text to replace (use write_file for a whole file)")
    if old_text == new_text:
        raise ToolFailure("old_text and new_text are the same; nothing to change")
    old, new = old_text, new_text
    if doc.crlf and "\r" not in old and doc.view.count(old) == 0:
        old = old.replace("\n", "\r\n")  # the model sees LF; the file keeps CRLF
        new = new if "\r" in new else new.replace("\n", "\r\n")
    if old not in doc.view and new.strip() and new in doc.view:  # small models repeat a done edit
        line = doc.view.count("\n", 0, doc.view.find(new)) + 1
        raise ToolFailure(f"old_text is not in {rel}, but new_text already is (line {line}): "
                          "this change is already made. Go on with the next step, or answer.")
    _require_one_match(doc, old, old_text, rel)
    start = doc.view.find(old)
    new = _restore_bytes(doc.text[start:start + len(old)], new)
    text = doc.text[:start] + new + doc.text[start + len(old):]
    try:
        new_raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as e:
        raise ToolFailure(f"new_text has characters that cannot be written as UTF-8: {e.reason}") from e
    diff = _diff(rel, doc.view, _decode(new_raw).view)
    denied = ask(ctx, ApprovalRequest("edit_file", "write", rel, diff, str(real)))
    if denied:
        return denied
    atomic_write(real, new_raw)
    ctx.seen[real] = _digest(new_raw)
    line = doc.view.count("\n", 0, start) + 1
    left = _still_there(old_text, new_text, _decode(new_raw).view, rel)
    return ToolResult(f"Edited {rel} at line {line}.{left}", meta={"path": rel, "diff": diff, "created": False})


def _still_there(old_text: str, new_text: str, view: str, rel: str, limit: int = 3) -> str:
    """Names the edit took out (a rename: `calc_total` -> `compute_total`) that the file still
    uses elsewhere, with their lines, so a rename done in one place is seen as unfinished."""
    gone = sorted(set(_IDENT.findall(old_text)) - set(_IDENT.findall(new_text)) - _KEYWORDS)
    notes = []
    for name in gone[:limit]:
        pattern = re.compile(rf"(?<![\w]){re.escape(name)}(?![\w])")
        hits = [f"{i}: {text.strip()[:120]}" for i, text in enumerate(view.splitlines(), 1) if pattern.search(text)]
        if hits:
            notes.append(f"{name} still appears in {rel} at line " + "; line ".join(hits[:limit])
                         + (f" (and {len(hits) - limit} more)" if len(hits) > limit else ""))
    return ("\n(" + "\n".join(notes) + ")") if notes else ""


def _restore_bytes(region: str, new: str) -> str:
    """Put the original undecodable bytes back where the model kept their U+FFFD marks,
    so editing next to a Latin-1 'é' does not turn it into a UTF-8 replacement character."""
    originals = _SURROGATES.findall(region)
    if not originals or new.count("\ufffd") != len(originals):
        return new
    it = iter(originals)
    return re.sub("\ufffd", lambda _m: next(it), new)


def _require_one_match(doc: _Text, old: str, shown: str, rel: str) -> None:
    count = doc.view.count(old)
    if count == 1:
        return
    if count > 1:
        starts, pos = [], doc.view.find(old)
        while pos >= 0 and len(starts) < 5:
            starts.append(doc.view.count("\n", 0, pos) + 1)
            pos = doc.view.find(old, pos + 1)
        lines = _lines(doc.view)
        where = "\n".join(f"  line {n}: {lines[n - 1].strip()[:120]}" for n in starts)
        raise ToolFailure(f"old_text matches {count} times in {rel}; it must match exactly once. Include more "
                          f"surrounding lines to make it unique. Matches start at:\n{where}")
    raise ToolFailure(f"old_text was not found in {rel} (0 matches).{_closest(doc, shown)}")


def _closest(doc: _Text, old: str) -> str:
    lines = _lines(doc.view)
    want = [ln.rstrip("\r") for ln in old.split("\n")]
    anchor_i = max(range(len(want)), key=lambda i: len(want[i].strip()))
    anchor = want[anchor_i].strip()
    stripped = [ln.strip() for ln in lines]
    close = difflib.get_close_matches(anchor, stripped, n=1, cutoff=0.5) if anchor else []
    if not close:
        return " No similar lines either; read_file the file again and copy the text exactly."
    hit = stripped.index(close[0]) - anchor_i
    lo, hi = max(0, hit - 1), min(len(lines), hit + len(want) + 1)
    window = "\n".join(f"{n + 1:>5}| {lines[n]}" for n in range(lo, hi))
    hint = ""
    if [w.strip() for w in want] == stripped[max(0, hit):max(0, hit) + len(want)]:
        hint = " They match if whitespace is ignored: copy the exact indentation."
    return f" The closest lines are {lo + 1}-{hi}:{hint}\n{window}"


def _matches(rel_from_base: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    if "/" in pattern:
        return fnmatch.fnmatch(rel_from_base, pattern.lstrip("./")) or fnmatch.fnmatch(rel_from_base, pattern.replace("**/", ""))
    return fnmatch.fnmatch(rel_from_base.rsplit("/", 1)[-1], pattern)


@tool("read")
def list_files(ctx: ToolContext, path: str | None = None, pattern: str | None = None) -> str:
    """List the files under a folder of the project (files ignored by .gitignore are left out).

    Args:
        path: folder relative to the project root (default: the root)
        pattern: glob on file names, e.g. "*.py", or on paths, e.g. "src/*/test_*.py"
    """
    ws = ctx.workspace
    base = ws.resolve(path or ".")
    if not base.exists():
        raise ToolFailure(f"No such folder: {path}{_suggest(ctx, base)}")
    if base.is_file():
        return ws.rel(base)
    found, total = [], 0
    for f in ws.walk(base):
        if _matches(f.relative_to(base).as_posix(), pattern):
            total += 1
            if len(found) < MAX_LIST:
                found.append(ws.rel(f))
    where = ws.rel(base) + (f" matching {pattern!r}" if pattern else "")
    if not found:
        return f"No files under {where}."
    out = "\n".join(sorted(found))
    if total > len(found):
        out += f"\n[{len(found)} of {total} files shown; narrow with path or pattern]"
    return out


@tool("read")
def search(ctx: ToolContext, pattern: str, path: str | None = None, glob: str | None = None) -> str:
    """Search file contents with a regular expression (Python syntax). Returns file:line: text for each matching line; .gitignore'd files are skipped.

    Args:
        pattern: regular expression, e.g. "def \\w+_user" or "(?i)todo"
        path: folder or file to search, relative to the project root (default: the root)
        glob: only search files whose name matches this glob, e.g. "*.py"
    """
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ToolFailure(f"invalid regular expression {pattern!r}: {e}") from e
    ws = ctx.workspace
    base = ws.resolve(path or ".")
    if not base.exists():
        raise ToolFailure(f"No such file or folder: {path}")
    files = [base] if base.is_file() else (f for f in ws.walk(base) if _matches(f.relative_to(base).as_posix(), glob))
    hits: list[str] = []
    skipped = 0
    for f in files:
        try:
            if f.stat().st_size > MAX_SEARCH_FILE:
                skipped += 1
                continue
            raw = f.read_bytes()
        except OSError:
            continue
        if b"\0" in raw:
            continue
        for number, line in enumerate(_lines(raw.decode("utf-8", "replace")), 1):
            if regex.search(line):
                hits.append(f"{ws.rel(f)}:{number}: {line.strip()[:300]}")
                if len(hits) >= MAX_MATCHES:
                    return "\n".join(hits) + f"\n[stopped at {MAX_MATCHES} matches; narrow with path or glob]"
    note = f"\n[{skipped} file(s) over {MAX_SEARCH_FILE:,} bytes not searched]" if skipped else ""
    if not hits:
        return f"No matches for {pattern!r} under {ws.rel(base)}{' in ' + glob if glob else ''}.{note}"
    return "\n".join(hits) + note
