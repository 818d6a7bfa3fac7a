"""The scrubber against a corpus of real-format secrets and ordinary-code look-alikes."""
from __future__ import annotations

import copy
import random

import pytest

from joe_agent.memory.scrub import is_secret_name, scrub, scrub_obj
from data.scrub_corpus import LOOKALIKES, SECRETS


@pytest.fixture(autouse=True)
def _fixed_home(monkeypatch):
    # the corpus must not depend on where the developer's $HOME happens to be
    monkeypatch.setenv("HOME", "/home/joe-tester")


def test_corpus_is_big_enough_and_names_are_unique():
    assert len(SECRETS) >= 40 and len(LOOKALIKES) >= 40
    names = [c.name for c in SECRETS] + [c.name for c in LOOKALIKES]
    assert len(names) == len(set(names))


def test_every_secret_is_redacted():
    failures = []
    for case in SECRETS:
        out = scrub(case.text)
        leaked = [v for v in case.vanish if v in out]
        if leaked:
            failures.append(f"{case.name}: leaked {leaked[0][:24]!r}… in {out[:160]!r}")
        elif case.marker not in out:
            failures.append(f"{case.name}: no {case.marker!r} in {out[:160]!r}")
    assert not failures, "\n".join(failures)


def test_every_lookalike_survives():
    failures = [f"{c.name}: {c.text!r} -> {scrub(c.text)!r}" for c in LOOKALIKES if scrub(c.text) != c.text]
    assert not failures, "\n".join(failures)


def test_idempotent_on_each_case_and_on_a_shuffled_mix():
    texts = [c.text for c in SECRETS] + [c.text for c in LOOKALIKES]
    failures = [t[:80] for t in texts if scrub(scrub(t)) != scrub(t)]
    assert not failures, failures
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(texts)
        for sep in ("\n", " ", "; "):
            doc = sep.join(texts)
            once = scrub(doc)
            assert scrub(once) == once


def test_secrets_inside_a_larger_document_keep_their_surroundings():
    doc = "\n".join(f"line {i}: {c.text}" for i, c in enumerate(SECRETS))
    out = scrub(doc)
    for i, case in enumerate(SECRETS):
        assert f"line {i}: " in out, case.name
        assert not any(v in out for v in case.vanish), case.name


def test_url_password_keeps_scheme_user_and_host():
    assert scrub("mongodb+srv://svc:pa55w0rd@cluster0.acme.io/db") == "mongodb+srv://svc:[REDACTED]@cluster0.acme.io/db"


def test_pem_block_is_redacted_whole_and_text_around_it_kept():
    case = next(c for c in SECRETS if c.name == "pem-rsa")
    out = scrub(case.text)
    assert out == "key file:\n[REDACTED:private-key]\nend"


def test_current_home_is_replaced_on_path_boundaries(monkeypatch, tmp_path):
    home = tmp_path / "someone"
    monkeypatch.setenv("HOME", str(home))
    assert scrub(f"cd {home}/src && ls {home}") == "cd ~/src && ls ~"
    assert scrub(f"{home}2/x and {home}.bak") == f"{home}2/x and {home}.bak"


@pytest.mark.parametrize("home", ["/", "/tmp", ""])
def test_a_system_folder_as_home_is_not_treated_as_personal(monkeypatch, home):
    monkeypatch.setenv("HOME", home)
    assert scrub("/tmp/build/out.o and /usr/bin/env") == "/tmp/build/out.o and /usr/bin/env"


def test_scrub_obj_recurses_keys_values_lists_tuples_and_leaves_input_alone():
    email = next(c for c in SECRETS if c.name == "email").vanish[0]
    ghp = next(c for c in SECRETS if c.name == "github-ghp").vanish[0]
    obj = {
        "content": f"mail {email}",
        "tool_calls": [{"name": "run_shell", "arguments": {"command": f"echo {ghp}", "timeout": 30}}],
        "meta": ("/home/alice/x.py", 3, None, 1.5, True),
        "password": "hunter2",
        "token_type": "bearer",
        f"/home/bob/notes.md": "key names are scrubbed too",
        "api_key": "",
    }
    before = copy.deepcopy(obj)
    out = scrub_obj(obj)
    assert obj == before
    assert out["content"] == "mail [REDACTED:email]"
    assert out["tool_calls"][0]["arguments"] == {"command": "echo [REDACTED:github-token]", "timeout": 30}
    assert out["meta"] == ("~/x.py", 3, None, 1.5, True)
    assert out["password"] == "[REDACTED:secret]"
    assert out["token_type"] == "bearer" and out["api_key"] == ""
    assert "~/notes.md" in out
    assert scrub_obj(out) == out


@pytest.mark.parametrize(
    "name, expected",
    [("DB_PASSWORD", True), ("apiKey", True), ("x-api-key", True), ("PGPASSWORD", True), ("token", True),
     ("clientSecret", True), ("AWS_SECRET_ACCESS_KEY", True), ("SECRET_KEY_BASE", True),
     ("token_type", False), ("max_tokens", False), ("password_prompt", False), ("secretName", False),
     ("PWD", False), ("bypass", False), ("DB_PASS", True), ("pass_rate", False), ("keyboard", False), ("api_key_env", False)],
)
def test_is_secret_name(name, expected):
    assert is_secret_name(name) is expected


@pytest.mark.timeout(30)
def test_pathological_inputs_pass_through_unchanged():
    # long runs that tempt backtracking: a word without '@', '=' chains, near-miss prefixes
    blobs = [
        "a" * 200_000,
        "a." * 100_000 + "@",
        "x=" * 50_000,
        "sk-" * 30_000,
        "-----BEGIN RSA PRIVATE KEY-----" + "=" * 0 + " no body here " * 5_000,
        "http://" + "a:" * 40_000,
        "/home/" * 30_000,
    ]
    for blob in blobs[:4] + blobs[5:6]:
        assert scrub(blob) == blob
    # an unterminated PEM header is still redacted, and the prose after it is kept
    assert scrub(blobs[4]).startswith("[REDACTED:private-key] no body here")
    assert scrub(scrub(blobs[6])) == scrub(blobs[6])
