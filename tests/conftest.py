"""Shared test setup: every test gets its own JOE_HOME and never touches ~/.joe-agent,
never reaches the internet, and never sees the developer's Ollama or editor settings."""
from __future__ import annotations

import os

import pytest

_SCRUBBED_ENV = ("OLLAMA_HOST", "JOE_MODEL", "JOE_HOST", "JOE_MODE", "JOE_NUM_CTX", "EDITOR", "VISUAL")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("joe_home")
    monkeypatch.setenv("JOE_HOME", str(home))
    for name in _SCRUBBED_ENV:
        monkeypatch.delenv(name, raising=False)
    # tiktoken must never try to download: point its cache at an empty folder
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path_factory.mktemp("tiktoken_cache")))
    # git commits in tests need an identity, and must not read the developer's config
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "joe-test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "joe-test@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "joe-test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "joe-test@example.invalid")
    yield home
