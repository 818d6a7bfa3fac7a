"""The learning loops, attached to the agent's turns.

- CheckpointHook: a snapshot before each turn and after it, so /undo can take the turn back.
- SkillAdvisor: picks the skills a request matches (with the ledger's scores), offers the
  rest through a catalog and `read_skill`, and records in the ledger what each turn used and
  how it settled: accepted when the person moves on, ignored when the turn was abandoned or
  denied, corrected by /undo (undo.py). Attribution is by turn, never by clock time.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Sequence

from joe_agent.context import Injection
from joe_agent.errors import StoreError
from joe_agent.messages import TurnDone

# caches nobody expects /undo to restore: skipped silently (node_modules, .venv, big files are named)
QUIET_SKIPS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".cache"}
NEAR_MISS = 0.5  # share of the threshold at which a skill counts as offered (catalog) but not injected
READ_CAP = 20_000


class CheckpointHook:
    def __init__(self, checkpoints, session_id: str) -> None:
        self.checkpoints, self.session_id = checkpoints, session_id
        self._told_skipped = False
        self.broken = ""

    def before_turn(self, turn: int, text: str) -> list[str]:
        try:
            snap = self.checkpoints.begin_turn(self.session_id, turn, text)
        except StoreError as e:
            self.broken = str(e)
            return [f"checkpoint failed, /undo will not cover this turn: {e}"]
        self.broken = ""
        worth_saying = [p for p in snap.skipped if Path(p.rstrip("/")).name not in QUIET_SKIPS]
        if worth_saying and not self._told_skipped:
            self._told_skipped = True
            shown = ", ".join(worth_saying[:5]) + (f" and {len(worth_saying) - 5} more" if len(worth_saying) > 5 else "")
            return [f"not covered by /undo (too big or generated): {shown}"]
        return []

    def after_turn(self, turn: int, done: TurnDone) -> list[str]:
        if self.broken:
            return []
        try:
            self.checkpoints.end_turn(self.session_id, turn)
        except StoreError as e:
            return [f"checkpoint after the turn failed, /undo may not cover it: {e}"]
        return []


class HistoryHook:
    """Keeps history.db (session search) current: the transcript is indexed in a background
    thread after every turn, so a turn never waits on SQLite."""

    def __init__(self, home: Path, transcript_path: Path, notes: list) -> None:
        from joe_agent.history_cli import IndexerThread, open_index

        self.index = open_index(home)
        self.path = transcript_path
        self.indexer = IndexerThread(self.index, on_error=notes.append)

    def before_turn(self, turn: int, text: str) -> list[str]:
        return []

    def after_turn(self, turn: int, done: TurnDone) -> list[str]:
        self.indexer.submit(self.path)
        return []

    def session_end(self) -> None:
        self.indexer.submit(self.path)
        self.indexer.close()

    def tool(self, root: Path, session_id: str):
        from joe_agent.history_cli import search_history_tool

        return search_history_tool(self.index, root, exclude_session=session_id)


class SkillAdvisor:
    def __init__(self, library, ledger, session_id: str, model_name: str, max_skills: int = 3,
                 threshold: float = 0.6, skills: list | None = None, blocked=None) -> None:
        from joe_agent.memory.retrieval import Retriever

        self.library, self.ledger, self.session_id, self.model_name = library, ledger, session_id, model_name
        self.max_skills, self.threshold = max_skills, threshold
        self.skills = list(skills if skills is not None else library.load())
        scores = {name: st.score for name, st in ledger.stats().items()} if ledger else {}
        self.retriever = Retriever(self.skills, scores)
        self.by_name = {s.name: s for s in self.skills}
        self.used: set[str] = set()
        self.turn = 0
        self.blocked = blocked or (lambda skill: "")
        self.withheld: dict[str, str] = {}  # skill -> why the load guard kept it from the model

    # ---- per turn ---------------------------------------------------------------------
    def pick(self, turn: int, text: str, forced: Sequence[str] = ()) -> list[Injection]:
        from joe_agent.memory.retrieval import injection_block

        self.turn = turn
        out = []
        for name in forced:
            skill = self.by_name.get(name)
            if skill is not None and not self._withhold(skill):
                out.append(Injection(name, injection_block(skill), "asked for with /skill"))
                self._record(turn, name, "injected")
        # one match down to the near-miss level: strong matches are injected, the rest were
        # only offered through the catalog (ignored unless the model reads them)
        matches = self.retriever.match(text, limit=2 * self.max_skills, threshold=self.threshold * NEAR_MISS)
        strong = [m for m in matches if m.strength >= self.threshold][: self.max_skills]
        for m in strong:
            if m.skill.name not in forced and not self._withhold(m.skill):
                out.append(Injection(m.skill.name, injection_block(m.skill, m), m.reason))
                self._record(turn, m.skill.name, "injected")
        skip = {i.name for i in out} | {m.skill.name for m in strong}
        for m in matches:
            if m.skill.name not in skip:
                self._record(turn, m.skill.name, "catalog")
        return out

    def _withhold(self, skill) -> bool:
        why = self.withheld.get(skill.name)
        if why is None:
            why = self.withheld[skill.name] = self.blocked(skill)
        return bool(why)

    def before_turn(self, turn: int, text: str) -> list[str]:
        """A new request means the person moved on: earlier turns were accepted."""
        if self.ledger is not None:
            for t in self.ledger.pending_turns(self.session_id):
                if t < turn:
                    self.ledger.settle(self.session_id, t, "accepted")
        return []

    def after_turn(self, turn: int, done: TurnDone) -> list[str]:
        if self.ledger is None:
            return []
        from joe_agent.memory.ledger import outcome_of_turn_end

        outcome = "ignored" if done.denied else outcome_of_turn_end(done.reason)
        if outcome is not None:
            self.ledger.settle(self.session_id, turn, outcome)
        return []

    def mark_good(self) -> int:
        """/good: the person says the last turn was right."""
        return self.ledger.settle(self.session_id, self.turn, "accepted") if self.ledger and self.turn else 0

    def session_end(self) -> None:
        if self.ledger is None:
            return
        self.ledger.settle_session(self.session_id, "accepted")
        self.refresh_stats(self.used)

    def refresh_stats(self, names) -> None:
        """Write the ledger's view into the skill files' Last Used / Success Rate sections."""
        stats = self.ledger.stats()
        for name in names:
            st = stats.get(name)
            if st is not None and self.library.get(name) is not None:
                lines = st.summary_lines()
                try:
                    self.library.update_stats(name, lines["Last Used"], lines["Success Rate"])
                except (StoreError, OSError):
                    pass  # a read-only skill file keeps its old numbers; the ledger is the truth

    def _record(self, turn: int, name: str, how: str) -> None:
        self.used.add(name)
        if self.ledger is not None:
            self.ledger.record_use(self.session_id, turn, name, how, self.model_name, self.library.version(name))

    # ---- the catalog and the read_skill tool --------------------------------------------
    def catalog_text(self, num_ctx: int, share: float) -> str:
        from joe_agent.memory.retrieval import catalog

        return catalog(self.skills, max_chars=int(num_ctx * share * 4)) if self.skills else ""

    def read_skill(self, name: str, file: str | None = None) -> str:
        """Read a skill: its SKILL.md, or one file of its folder (references/, scripts/...)."""
        from joe_agent.tools.registry import ToolFailure

        skill = self.by_name.get(name)
        if skill is None:
            near = ", ".join(sorted(self.by_name)[:30]) or "none"
            raise ToolFailure(f"no skill named {name!r}; skills: {near}")
        if self._withhold(skill):
            raise ToolFailure(f"skill {name!r} is held back by the safety check ({self.withheld[name]}); "
                              "the person can review it with `joe skills check`")
        self._record(self.turn, name, "read")
        if not file:
            return self.library.body(name)[:READ_CAP]
        folder = Path(skill.path).parent.resolve()
        target = (folder / file).resolve()
        if Path(file).is_absolute() or ".." in Path(file).parts or not target.is_relative_to(folder):
            raise ToolFailure(f"{file!r} is outside the skill's folder; files: {', '.join(skill.files) or 'none'}")
        if not target.is_file():
            raise ToolFailure(f"{name} has no file {file!r}; files: {', '.join(skill.files) or 'none'}")
        data = target.read_bytes()[:READ_CAP]
        if b"\0" in data:
            raise ToolFailure(f"{file} is a binary file ({target.stat().st_size} bytes)")
        return data.decode("utf-8", errors="replace")


def read_skill_tool(advisor: SkillAdvisor):
    """The read_skill tool for the registry."""
    from joe_agent.tools.registry import Tool

    def read_skill(ctx, name: str, file: str | None = None) -> str:
        return advisor.read_skill(name, file)

    return Tool(
        name="read_skill",
        description="Read a skill from the skill library by name (its steps), or one file of its folder.",
        parameters={"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "description": "the skill's name, from the catalog"},
            "file": {"type": "string", "description": "optional: a file in the skill's folder, e.g. references/api.md"}}},
        fn=read_skill, kind="read")


def today() -> str:
    return datetime.now().strftime("%Y-%m-%d")


class Learning:
    """The session's learning parts, built once per session (and again on /model)."""

    def __init__(self, settings, root: Path, home: Path, session_id: str, transcript_path: Path | None = None) -> None:
        self.settings, self.root, self.home, self.session_id = settings, root, home, session_id
        self.transcript_path = transcript_path
        self.notes: list[str] = []
        self.checkpoints = self._checkpoints()
        self.ledger = self._ledger()
        self.library = self._library()
        self.advisor: SkillAdvisor | None = None
        self.history: HistoryHook | None = None

    def _checkpoints(self):
        from joe_agent.memory.checkpoints import Checkpoints

        try:
            return Checkpoints(self.root, self.home / "checkpoints")
        except StoreError as e:
            self.notes.append(f"/undo is off this session: {e}")
            return None

    def _ledger(self):
        from joe_agent.memory.ledger import Ledger

        try:
            return Ledger(self.home / "ledger.db")
        except StoreError as e:
            self.notes.append(f"skill outcomes are not recorded this session: {e}")
            return None

    def _library(self):
        from joe_agent.memory.skills import SkillLibrary

        return SkillLibrary(self.home / "skills", project_dir=self.root, trust_project=self._trusted())

    def _trusted(self) -> bool:
        from joe_agent.trust import is_trusted, needs_trust

        if needs_trust(self.home, self.root):
            self.notes.append("this project carries its own skills in .joe/skills; they are not used "
                              "until you trust the project with `joe trust`")
        return is_trusted(self.home, self.root)

    def hooks(self, model_name: str) -> list:
        s = self.settings
        if s.auto_prune and self.advisor is None:
            from joe_agent.skills_cli import auto_prune

            try:
                self.notes += auto_prune(self.library, self.ledger, s)
            except StoreError as e:
                self.notes.append(f"auto-prune skipped: {e}")
        self.advisor = SkillAdvisor(self.library, self.ledger, self.session_id, model_name,
                                    max_skills=s.max_skills, threshold=s.skill_threshold,
                                    skills=self.usable_skills(), blocked=self.blocked)
        hooks: list = [self.advisor]
        if self.checkpoints is not None:
            hooks.insert(0, CheckpointHook(self.checkpoints, self.session_id))
        if self.history is None:
            try:
                self.history = HistoryHook(self.home, self.transcript_path, self.notes)
            except StoreError as e:
                self.notes.append(f"session search is off this session: {e}")
        if self.history is not None:
            hooks.append(self.history)
        return hooks

    def usable_skills(self) -> list:
        """Loaded skills minus those the load guard flags: a flagged skill is neither injected,
        nor listed in the catalog, nor readable, until the person edits or trusts it. Verdicts
        are cached by file size and mtime, so 10,000 skills are not re-read every start."""
        import json

        cache_path = self.home / "cache" / "guard.json"
        try:
            cache = json.loads(cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cache = {}
        fresh, out = {}, []
        for sk in self.library.load():
            try:
                st = Path(sk.path).stat()
            except OSError:
                continue
            key = f"{sk.path}:{st.st_mtime_ns}:{st.st_size}"
            verdict = cache[key] if key in cache else self.blocked(sk)
            fresh[key] = verdict
            if not verdict or self._trusted_now(sk):
                out.append(sk)
        if fresh != cache:
            from joe_agent.memory.store import atomic_write

            try:
                atomic_write(cache_path, json.dumps(fresh))
            except StoreError:
                pass  # only a cache
        return out

    def _trusted_now(self, skill) -> bool:
        from joe_agent.trust import skill_trusted

        return skill_trusted(self.home, skill.name, self.library.body(skill.name))

    def blocked(self, skill) -> str:
        """Why this skill must not reach the model ("" when it may): text that grants
        permissions, sends data out or hides instructions, unless the person trusted it."""
        from joe_agent.memory.guard import check_text
        from joe_agent.trust import skill_trusted

        body = self.library.body(skill.name)
        findings = check_text(body)
        if not findings or skill_trusted(self.home, skill.name, body):
            return ""
        return "; ".join(f.describe() for f in findings[:3])

    def rules_text(self) -> str:
        """Active preference rules for the system prompt (fixed for the session)."""
        try:
            from joe_agent.memory.rules import rules_prompt_text
        except ImportError:  # the rules module lands with the /undo issue
            return ""
        return rules_prompt_text(self.home, self.root)
