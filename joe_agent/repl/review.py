"""Review of a proposed skill: the person sees it and chooses accept, edit in $EDITOR, or reject.

Input and output are injected (`show(text)`, `ask(prompt) -> str`): the REPL passes its
renderer and prompt, tests pass lists, and nothing here imports rich. Nothing is written
without acceptance; an edit is re-validated when the editor closes, and a broken edit reopens
the editor or is abandoned (back to the proposal), never a traceback. Accepting writes the
skill atomically and commits it (SkillLibrary.save).
"""
from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

from joe_agent.errors import JoeError

Show = Callable[[str], None]
Ask = Callable[[str], str]
MENU = "[a]ccept  [e]dit in $EDITOR  [r]eject › "
BROKEN_MENU = "[e]dit again  [a]bandon the edit › "
MAX_TRIES = 5  # unclear answers before we take it as a no


# ---- the review ---------------------------------------------------------------------------------


def review(proposal: Any, library: Any, show: Show, ask: Ask, editor: str | None = None) -> str:
    """Show the proposal and act on the answer. Returns "accepted", "rejected", "conflict" (the
    skill changed on disk meanwhile) or "failed" (it could not be saved)."""
    text = proposal.skill_md
    while True:
        show(render_proposal(proposal, text))
        choice = choose(ask, MENU, {"a": "accept", "e": "edit", "r": "reject", "y": "accept", "n": "reject"})
        if choice == "accept":
            return _accept(proposal, text, library, show)
        if choice != "edit":
            show("rejected: nothing was written")
            return "rejected"
        edited = _edit(proposal, text, library, show, ask, editor)
        if edited is None:
            show("back to the proposal as it was")
        else:
            text = edited


def render_proposal(proposal: Any, text: str) -> str:
    """What the person reads: why, then the whole new SKILL.md or the diff of an update."""
    from joe_agent.memory.guard import check_text
    from joe_agent.memory.synthesize import skill_diff

    base = set(proposal.base.splitlines())
    warnings = "".join(f"\nwarning: {f.kind}: {f.excerpt}" for f in
                       check_text("\n".join(x for x in text.splitlines() if x not in base)))
    if proposal.kind == "update":
        diff = proposal.diff if text == proposal.skill_md else skill_diff(proposal.base, text, proposal.name)
        return f'Proposed update to the skill "{proposal.name}" ({proposal.reason})\n\n{diff}{warnings}'
    return f'Proposed new skill "{proposal.name}" ({proposal.reason})\n\n{text}{warnings}'


def choose(ask: Ask, prompt: str, answers: dict[str, str]) -> str:
    """The first letter of the answer, mapped; an unclear answer asks again, then means no."""
    for _ in range(MAX_TRIES):
        try:
            answer = ask(prompt).strip().lower()
        except (EOFError, KeyboardInterrupt):
            return ""
        if answer and answer[0] in answers:
            return answers[answer[0]]
    return ""


def check_skill_text(text: str, proposal: Any, library: Any) -> tuple[str, list[str]]:
    """(the skill's name, its problems) for text the person edited: it must parse as a skill
    with frontmatter, keep to the proposal schema (a new skill) or keep its name (an update),
    and hold no secrets, home paths or session trivia in what was added."""
    from joe_agent.memory.skillfile import DESCRIPTION_MAX, SkillParseError, parse_skill
    from joe_agent.memory.synthesize import content_problems, validate_fields

    if not text.lstrip("\ufeff").startswith("---"):
        return proposal.name, ["the frontmatter (--- name, description, metadata ---) is missing; put it back"]
    try:
        skill = parse_skill(text, Path(f"{proposal.name}.md"))
    except SkillParseError as e:
        return proposal.name, [f"line {e.line}: {e}" if e.line else str(e)]
    if proposal.kind == "update":
        problems = [] if skill.name == proposal.name else [
            f'keep the name "{proposal.name}": this is an update to that skill']
        if len(skill.description) > DESCRIPTION_MAX:
            problems.append(f"description is {len(skill.description)} characters; the limit is {DESCRIPTION_MAX}")
        base = set(proposal.base.splitlines())
        return skill.name, problems + content_problems([x for x in text.splitlines() if x not in base],
                                                        proposal.session)
    fields = {"name": skill.name, "title": skill.title, "description": skill.description,
              "triggers": skill.triggers, "steps": skill.steps, "pitfalls": skill.pitfalls}
    problems = validate_fields(fields, proposal.session, human=True)
    library.load()
    if skill.name != proposal.name and library.get(skill.name) is not None:
        problems.append(f'a skill named "{skill.name}" already exists; pick another name')
    return skill.name, problems


# ---- editing ------------------------------------------------------------------------------------


def _edit(proposal: Any, text: str, library: Any, show: Show, ask: Ask, editor: str | None) -> str | None:
    """The edited text once it validates, or None when the edit is abandoned or fails."""
    return edit_until_valid(proposal.name, text, lambda t: check_skill_text(t, proposal, library)[1],
                            show, ask, editor)


def edit_until_valid(name: str, text: str, check: Callable[[str], list[str]], show: Show, ask: Ask,
                     editor: str | None) -> str | None:
    """Open `text` as <name>/SKILL.md in the editor until `check` finds no problem; None when
    the person abandons the edit or the editor fails. Shared by /synthesize and amendments."""
    with tempfile.TemporaryDirectory(prefix="joe-skill-") as tmp:
        path = Path(tmp) / name / "SKILL.md"  # the real file name: editors pick Markdown
        path.parent.mkdir()
        current = text
        while True:
            path.write_text(current, encoding="utf-8", newline="")
            failure = run_editor(editor, path)
            if failure:
                show(failure)
                return None
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                show("the edited file was deleted; the edit was discarded")
                return None
            current = raw.decode("utf-8", "replace")
            problems = (["the file is not UTF-8 text (the undecodable bytes now show as U+FFFD)"]
                        if current.encode("utf-8") != raw else check(current))
            if not problems:
                return current
            show("the edited skill has problems:\n" + "\n".join(f"- {p}" for p in problems))
            if choose(ask, BROKEN_MENU, {"e": "edit", "a": "abandon"}) != "edit":
                return None


def run_editor(editor: str | None, path: Path) -> str:
    """Open `path` in the editor and wait; "" on success, else a line saying what went wrong."""
    command = editor or os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not command:
        return "no editor is set: set $EDITOR (or `editor` in config.yaml), then choose edit again"
    try:
        argv = shlex.split(command) + [str(path)]
    except ValueError as e:
        return f"cannot read the editor command {command!r}: {e}"
    try:
        code = subprocess.run(argv, check=False).returncode
    except OSError as e:
        return f"could not start the editor {argv[0]!r}: {e.strerror or e}; check $EDITOR"
    return "" if code == 0 else f"the editor exited with status {code}; the edit was discarded"


# ---- saving -------------------------------------------------------------------------------------


def _accept(proposal: Any, text: str, library: Any, show: Show) -> str:
    from joe_agent.memory.synthesize import read_skill_text

    name, problems = check_skill_text(text, proposal, library)
    if problems:  # the proposal itself was validated; this guards a stale or hand-built one
        show("cannot save: " + "; ".join(problems))
        return "failed"
    library.load()
    existing = library.get(name)
    if proposal.kind == "update" and (existing is None or read_skill_text(existing) != proposal.base):
        show(f'the skill "{name}" changed since this proposal was made; nothing was written (run /synthesize again)')
        return "conflict"
    if proposal.kind == "new" and existing is not None:
        show(f'a skill named "{name}" appeared since this proposal was made; nothing was written')
        return "conflict"
    verb = "update" if proposal.kind == "update" else "add"
    try:
        sha = library.save(name, text, f"{verb} {name} (synthesized from session {proposal.session})")
    except JoeError as e:
        show(f"could not save the skill: {e}")
        return "failed"
    show(f'saved the skill "{name}" (commit {sha[:8]})')
    return "accepted"


# ---- `joe synthesize [--session ID]` and /synthesize ---------------------------------------------


def synthesize_cli(session: str | None, home: Path, root: Path, model: Any, show: Show, ask: Ask,
                   editor: str | None) -> int:
    """Propose a skill from a session of this project (the newest when `session` is None) and
    review it. 0 when the review ended (accepted, rejected, or nothing to propose), else 1."""
    from joe_agent.memory.skills import SkillLibrary
    from joe_agent.memory.synthesize import synthesize
    from joe_agent.memory.transcript import read_records

    try:
        path = session_path(home, root, session)
        records, _ = read_records(path)
        library = SkillLibrary(home / "skills")
        sid = path.name.removesuffix(".jsonl")
        show(f"looking for a reusable procedure in session {sid} …")
        result = synthesize(records, model, library, sid)
    except JoeError as e:
        show(f"/synthesize: {e}")
        return 1
    if result.proposal is None:
        show(f"nothing to propose: {result.refused}")
        return 0
    return 0 if review(result.proposal, library, show, ask, editor) in ("accepted", "rejected") else 1


def session_path(home: Path, root: Path, session: str | None) -> Path:
    """The transcript of `session` (an id or unique prefix; this project first, then any
    project), or this project's newest. Raises JoeError naming what to do."""
    from joe_agent.memory.transcript import list_sessions, matching_sessions
    from joe_agent.paths import project_key

    base = Path(home) / "transcripts"
    here = base / project_key(root)
    if not session:
        sessions = list_sessions(here)
        if not sessions:
            raise JoeError("no session in this project yet; work with `joe` first, then synthesize")
        return sessions[0].path
    others = sorted(p for p in base.iterdir() if p.is_dir() and p != here) if base.is_dir() else []
    for folder in [here, *others]:
        found = matching_sessions(folder, session)
        if len(found) > 1:
            ids = ", ".join(p.name.removesuffix(".jsonl") for p in found[:5])
            raise JoeError(f"{session!r} names several sessions ({ids}); give more of the id")
        if found:
            return found[0]
    raise JoeError(f"no session {session!r}; `joe sessions` lists them")


def feature(runtime: Any, show: Show, ask: Ask) -> Callable[[str], None]:
    """The /synthesize command for runtime.features: `/synthesize [ID]`, this session by default."""
    def run(args: str) -> None:
        words = [w for w in args.split() if w != "--session"]
        session = words[0] if words else runtime.transcript.id
        synthesize_cli(session, runtime.home, runtime.root, runtime.model, show, ask, runtime.settings.editor)

    return run
