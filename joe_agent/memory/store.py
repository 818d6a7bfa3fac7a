"""Durable file primitives used by every writer under JOE_HOME.

- atomic_write: temp file in the same folder + fsync + rename, so a crash or a full disk
  leaves the old file intact.
- locked: an inter-process lock (filelock) beside the file, for read-modify-write cycles.
- append_line: one O_APPEND write per line, so concurrent appenders never interleave.
- repair_torn_tail: drop a partial last line left by a crash.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from joe_agent.errors import StoreError

LOCK_TIMEOUT_S = 30.0


def atomic_write(path: Path, data: str | bytes, mode: int | None = None) -> None:
    """Replace `path` with `data` atomically. Raises StoreError with the path on failure."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if mode is None and path.exists():
            mode = path.stat().st_mode & 0o7777
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as e:
        raise StoreError(f"could not write {path}: {e.strerror or e}") from e


@contextlib.contextmanager
def locked(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive inter-process lock for `path` (a `<name>.lock` file beside it)."""
    from filelock import FileLock, Timeout  # small import, but off the startup path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path.with_name(path.name + ".lock")), timeout=timeout)
    try:
        with lock:
            yield
    except Timeout as e:
        raise StoreError(f"{path} is locked by another joe process (waited {timeout:.0f}s)") from e


def append_line(path: Path, line: str) -> None:
    """Append one line (a newline is added) with a single O_APPEND write, then flush."""
    if "\n" in line:
        raise ValueError("append_line takes a single line")
    data = (line + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, data)
            if written != len(data):  # never leave a short write looking like a full line
                raise OSError(f"short write ({written} of {len(data)} bytes)")
        finally:
            os.close(fd)
    except OSError as e:
        raise StoreError(f"could not append to {path}: {e}") from e


def repair_torn_tail(path: Path) -> bool:
    """If the file's last line has no newline (a crash mid-append), cut it off.
    Returns True when something was repaired. Safe to call on a missing file."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size == 0:
        return False
    with open(path, "rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return False
        # walk back to the previous newline
        pos = size - 1
        block = 4096
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                fh.truncate(start + idx + 1)
                return True
            pos = start
        fh.truncate(0)
        return True
