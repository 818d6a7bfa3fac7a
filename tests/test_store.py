import multiprocessing
import os
import stat

import pytest

from joe_agent.errors import StoreError
from joe_agent.memory.store import append_line, atomic_write, locked, repair_torn_tail


def test_atomic_write_replaces_and_keeps_mode(tmp_path):
    p = tmp_path / "a" / "f.txt"
    atomic_write(p, "one")
    os.chmod(p, 0o640)
    atomic_write(p, "two")
    assert p.read_text() == "two"
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert [x.name for x in p.parent.iterdir()] == ["f.txt"]  # no temp files left


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "f.txt"
    atomic_write(p, "old")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StoreError, match="No space left"):
        atomic_write(p, "new")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]  # the temp file was removed


def test_atomic_write_to_a_folder_path_is_a_store_error(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(StoreError, match="could not write"):
        atomic_write(tmp_path / "d", "x")


def _appender(path, n, tag):
    for i in range(n):
        append_line(path, f'{{"w": "{tag}", "i": {i}, "pad": "{"x" * 300}"}}')


def test_concurrent_appends_never_interleave(tmp_path):
    p = tmp_path / "log.jsonl"
    procs = [multiprocessing.Process(target=_appender, args=(p, 300, t)) for t in "ab"]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()
    lines = p.read_text().splitlines()
    assert len(lines) == 600
    assert all(line.startswith('{"w": ') and line.endswith('"}') for line in lines)


def test_append_rejects_multiline(tmp_path):
    with pytest.raises(ValueError):
        append_line(tmp_path / "x", "a\nb")


def test_repair_torn_tail(tmp_path):
    p = tmp_path / "t.jsonl"
    assert repair_torn_tail(p) is False  # missing file is fine
    p.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')
    assert repair_torn_tail(p) is True
    assert p.read_bytes() == b'{"a": 1}\n{"b": 2}\n'
    assert repair_torn_tail(p) is False
    p.write_bytes(b'{"only": "torn')
    assert repair_torn_tail(p) is True and p.read_bytes() == b""
    big = b"x" * 10000
    p.write_bytes(b"ok\n" + big)
    assert repair_torn_tail(p) and p.read_bytes() == b"ok\n"


def test_locked_serialises_read_modify_write(tmp_path):
    p = tmp_path / "counter"
    p.write_text("0")
    procs = [multiprocessing.Process(target=_bump, args=(p, 50)) for _ in range(2)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()
    assert p.read_text() == "100"


def _bump(p, n):
    for _ in range(n):
        with locked(p):
            atomic_write(p, str(int(p.read_text()) + 1))
