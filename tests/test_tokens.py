import hashlib
import os
import time

from joe_agent import tokens
from joe_agent.tokens import TokenCounter, encoding_on_disk, encoding_status, estimate


def test_no_encoding_on_disk_means_estimator_and_no_network(monkeypatch):
    # conftest points TIKTOKEN_CACHE_DIR at an empty folder; any download attempt would hang
    # or fail here, so make one impossible and loud.
    import tiktoken.load

    def boom(*a, **k):
        raise AssertionError("tiktoken tried to download")

    monkeypatch.setattr(tiktoken.load, "read_file", boom)
    assert not encoding_on_disk()
    c = TokenCounter()
    t0 = time.monotonic()
    assert c.count("def add(a, b):\n    return a + b\n") > 5
    assert time.monotonic() - t0 < 5
    assert c.method == "estimate"
    assert "estimator" in encoding_status()


def test_corrupt_cached_encoding_is_not_used(monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    (tmp_path / hashlib.sha1(tokens._BLOB.encode()).hexdigest()).write_bytes(b"not an encoding")
    assert not encoding_on_disk()  # a bad hash would make tiktoken re-download: never hand it over
    assert TokenCounter().method == "estimate"


def test_estimate_is_in_a_sane_range_for_code_and_prose():
    prose = "The quick brown fox jumps over the lazy dog. " * 20
    code = "for i in range(10):\n    print(i, i ** 2)\n" * 20
    assert 150 <= estimate(prose) <= 260  # tiktoken: 200
    assert 200 <= estimate(code) <= 400   # tiktoken: 280


def test_calibration_moves_toward_server_counts():
    c = TokenCounter(use_tiktoken=False)
    raw = c.raw("word " * 400)
    c.calibrate(raw, raw * 2)
    assert c.count("word " * 400) == raw * 2
    c.calibrate(raw, None)  # no data, no change
    c.calibrate(10, 1000)  # tiny prompts are too noisy to learn from
    assert abs(c.scale - 2.0) < 1e-9
