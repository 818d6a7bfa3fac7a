from pathlib import Path

import pytest

from joe_agent.config import Settings, load_settings
from joe_agent.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_files(tmp_path):
    s = load_settings(tmp_path, env={}, home=tmp_path / "home")
    assert s == Settings()


def test_precedence_home_project_env_flags(tmp_path):
    home = tmp_path / "home"
    write(home / "config.yaml", "model: from-home\nmax_steps: 5\nmode: auto-edit\n")
    write(tmp_path / ".joe" / "config.yaml", "model: from-project\n")
    s = load_settings(tmp_path, env={}, home=home)
    assert (s.model, s.max_steps, s.mode) == ("from-project", 5, "auto-edit")
    s = load_settings(tmp_path, env={"JOE_MODEL": "from-env", "JOE_MAX_STEPS": "7"}, home=home)
    assert (s.model, s.max_steps) == ("from-env", 7)
    s = load_settings(tmp_path, flags={"model": "from-flag", "max_steps": None}, env={"JOE_MODEL": "e"}, home=home)
    assert (s.model, s.max_steps) == ("from-flag", 5)


def test_host_flag_then_ollama_host_then_config(tmp_path):
    home = tmp_path / "home"
    write(home / "config.yaml", "host: http://config:1\n")
    assert load_settings(tmp_path, env={}, home=home).host == "http://config:1"
    env = {"OLLAMA_HOST": "http://env:2"}
    assert load_settings(tmp_path, env=env, home=home).host == "http://env:2"
    assert load_settings(tmp_path, flags={"host": "http://flag:3"}, env=env, home=home).host == "http://flag:3"


def test_unknown_key_names_file_line_and_key(tmp_path):
    home = tmp_path / "home"
    path = write(home / "config.yaml", "model: x\n\nmax_step: 4\n")
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, env={}, home=home)
    msg = str(e.value)
    assert str(path) in msg and "line 3" in msg and "'max_step'" in msg and "max_steps" in msg


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path / ".joe" / "config.yaml", "model: x\nmode: [ask\n")
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, env={}, home=tmp_path / "home")
    assert str(path) in str(e.value) and "line" in str(e.value) and "invalid YAML" in str(e.value)


@pytest.mark.parametrize("text, words", [
    ("max_steps: many\n", ["max_steps", "line 1"]),
    ("mode: yolo\n", ["mode must be one of"]),
    ("num_ctx: 10\n", ["num_ctx must be at least"]),
    ("- a\n- b\n", ["expected `key: value`"]),
    ("model: {a: 1}\n", ["model must be a single value"]),
])
def test_bad_values(tmp_path, text, words):
    write(tmp_path / "home" / "config.yaml", text)
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, env={}, home=tmp_path / "home")
    for w in words:
        assert w in str(e.value)


def test_bad_env_value_names_variable(tmp_path):
    with pytest.raises(ConfigError, match="JOE_NUM_CTX"):
        load_settings(tmp_path, env={"JOE_NUM_CTX": "lots"}, home=tmp_path / "home")


def test_bool_and_none_values(tmp_path):
    write(tmp_path / "home" / "config.yaml", "auto_prune: yes\nnum_ctx: null\n")
    s = load_settings(tmp_path, env={"JOE_PRUNE_HAND_WRITTEN": "true"}, home=tmp_path / "home")
    assert s.auto_prune is True and s.num_ctx is None and s.prune_hand_written is True


def test_every_setting_is_documented():
    from dataclasses import fields
    doc = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    missing = [f.name for f in fields(Settings) if f"`{f.name}`" not in doc]
    assert not missing, f"document these settings in docs/configuration.md: {missing}"
