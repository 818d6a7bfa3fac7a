"""No secret of the scrub corpus reaches any file under JOE_HOME that joe writes from a session:
transcripts, corrections, rules, the ledger, the history index, skills.

The one deliberate exception is checkpoints/: the shadow repository is a backup of the
project's own files (so /undo can put them back byte for byte), not something joe learned.
"""
from __future__ import annotations

import subprocess

from data.scrub_corpus import SECRETS
from fake_ollama import FakeOllama, Reply
from joe_agent.config import load_settings
from joe_agent.repl import render
from joe_agent.runtime import Runtime


def every_file(home):
    for path in home.rglob("*"):
        if path.is_file() and "checkpoints" not in path.relative_to(home).parts:
            yield path


def test_no_corpus_secret_lands_under_joe_home(tmp_path, _isolated_home):
    home = _isolated_home
    project = tmp_path / "proj"
    project.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    leaky = "\n".join(s.text for s in SECRETS)
    (project / "config.txt").write_text(leaky + "\n")
    with FakeOllama() as fake:
        settings = load_settings(project, {"host": fake.url, "mode": "full-auto"}, env={}, home=home)
        rt = Runtime.create(settings, project, home, headless=True).start(background=False)
        fake.queue(Reply(text="Reading it.", tool_calls=[{"name": "read_file", "arguments": {"path": "config.txt"}}]),
                   Reply(text="Found these: " + leaky[:3000],
                         tool_calls=[{"name": "write_file", "arguments": {"path": "out.txt", "content": leaky}}]),
                   Reply(text="Copied the settings, including " + SECRETS[0].vanish[0]))
        list(rt.agent.run_turn("read config.txt and copy it; my key is " + SECRETS[1].vanish[0]))
        answer = "never copy secrets like " + SECRETS[2].vanish[0] + " into new files"
        render.set_asker(lambda q: answer)
        fake.queue(Reply(text='{"rule": "Never copy credentials into new files; ' + SECRETS[3].vanish[0] + '", "merge_with": null, "scope": "global"}'))
        try:
            rt.features["undo"]("")
        finally:
            render.set_asker(None)
        assert rt.distiller().wait(30)
        rt.close()
    from joe_agent.memory.history import HistoryIndex

    index = HistoryIndex(home / "history.db", home / "transcripts")
    index.update_all()
    index.close()

    files = list(every_file(home))
    names = {p.name for p in files}
    assert any(n.endswith(".jsonl") for n in names) and "history.db" in names and "rules.md" in names
    leaks = []
    for path in files:
        data = path.read_bytes()
        for s in SECRETS:
            for value in s.vanish:
                if len(value) >= 8 and value.encode() in data:
                    leaks.append(f"{s.name} in {path.relative_to(home)}")
    assert not leaks, leaks[:20]
