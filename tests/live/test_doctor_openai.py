"""`joe doctor --backend openai` against a real HTTP server speaking llama.cpp's /v1 and /props
(tests/fake_openai.py). Not marked live: runs everywhere, fast."""
from __future__ import annotations

from fake_openai import FakeOpenAI
from fake_ollama import closed_port_url

from joe_agent.config import Settings
from joe_agent.doctor import run_checks

GGUF = "/models/qwen2.5-coder-1.5b-instruct.gguf"


def llama_cpp(n_ctx: int) -> FakeOpenAI:
    return FakeOpenAI(models=[{"id": GGUF, "meta": {"n_ctx_train": 32768}}], strict_models=False,
                      props={"default_generation_settings": {"n_ctx": n_ctx},
                             "chat_template_caps": {"supports_tools": True}})


def checks(url: str, tmp_path, model: str = "qwen2.5-coder-1.5b", num_ctx: int | None = None) -> dict:
    s = Settings(model=model, host=url, backend="openai", num_ctx=num_ctx)
    return {c.name: c for c in run_checks(s, tmp_path / "home", tmp_path)}


def test_a_llama_cpp_server_serves_its_one_model_under_any_name_and_tells_its_context(tmp_path):
    with llama_cpp(16384) as fake:
        got = checks(fake.url, tmp_path)
    assert got["model server reachable"].ok is True
    assert got["model available"].ok is True and GGUF in got["model available"].detail
    assert got["tool calls"].ok is True
    assert got["context"].ok is True and "16,384" in got["context"].detail and "32,768" in got["context"].detail


def test_a_small_served_context_or_an_unsettable_num_ctx_is_a_warning_with_the_fix(tmp_path):
    with llama_cpp(2048) as fake:
        small = checks(fake.url, tmp_path)
        asked = checks(fake.url, tmp_path, num_ctx=32768)
    assert small["context"].ok is None and "2,048" in small["context"].detail and "-c" in small["context"].fix
    assert asked["context"].ok is None and "cannot be set through /v1" in asked["context"].detail
    assert "-c 32768" in asked["context"].fix


def test_a_server_that_lists_other_models_names_them(tmp_path):
    with FakeOpenAI(models=[{"id": "llama-3.2-3b"}, {"id": "phi-4"}]) as fake:  # LM Studio style, no /props
        got = checks(fake.url, tmp_path)
    assert got["model available"].ok is False and "llama-3.2-3b" in got["model available"].detail
    assert "--model" in got["model available"].fix


def test_a_stopped_server_is_one_red_line_with_the_fix(tmp_path):
    got = checks(closed_port_url(), tmp_path)
    assert got["model server reachable"].ok is False and "llama-server" in got["model server reachable"].fix
    assert "model available" not in got
