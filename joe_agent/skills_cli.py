"""`joe skills …` and `/skills`: the library as a table with the ledger's evidence, one skill's
file and history, pruning of losers (archived, restorable), checks, trust and sync.

Output goes through joe_agent.repl.render's module functions, so the same code serves the
CLI and the REPL."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from joe_agent.errors import JoeError


class SkillsAdmin:
    def __init__(self, settings, home: Path, root: Path) -> None:
        from joe_agent.learning import Learning

        self.settings, self.home, self.root = settings, home, root
        self.learning = Learning(settings, root, home, session_id="")
        self.library, self.ledger = self.learning.library, self.learning.ledger

    # ---- views --------------------------------------------------------------------------
    def rows(self) -> list[list[str]]:
        # scores weigh the current version's evidence fully (a repaired skill is judged anew)
        current = {sk.name: self.library.version(sk.name) for sk in self.library.load()}
        stats = self.ledger.stats(current) if self.ledger else {}
        rows = []
        for sk in self.library.load():
            st = stats.get(sk.name)
            status = "flagged" if self.learning.blocked(sk) else ("project" if sk.scope == "project" else "active")
            if st is None:
                rows.append([sk.name, sk.origin, "0", "0", "0", "0", "–", "never", status])
                continue
            last = st.last_used.strftime("%Y-%m-%d") if st.last_used else "never"
            rows.append([sk.name, sk.origin, str(st.uses), str(st.accepted), str(st.corrected), str(st.ignored),
                         f"{st.score:.2f}", last, status])
        for name in self.library.archived():
            rows.append([name, "", "", "", "", "", "", "", "archived"])
        return rows

    def list(self) -> int:
        from joe_agent.repl import render

        rows = self.rows()
        if not rows:
            render.print_line(f"no skills yet in {self.home / 'skills'}; /synthesize after a session that worked")
            return 0
        render.table("skills", ["name", "origin", "uses", "accepted", "corrected", "ignored", "score", "last used", "status"], rows)
        return 0

    def show(self, name: str) -> int:
        from joe_agent.repl import render

        skill = self._skill(name)
        render.print_line(str(skill.path), "dim")
        render.print_markdown(self.library.body(name))
        if skill.files:
            render.print_line("files: " + ", ".join(skill.files))
        why = self.learning.blocked(skill)
        if why:
            render.print_line(f"held back from the model: {why} (edit it, or `joe skills trust {name}`)", "yellow")
        history = self.ledger.history(name) if self.ledger else []
        if history:
            rows = [[h["used_at"][:16].replace("T", " "), h["session"], str(h["turn"]), h["how"], h["outcome"],
                     (h["version"] or "")[:8], "yes" if h["verified"] else ""] for h in history[-30:]]
            render.table(f"{name}: outcomes", ["when", "session", "turn", "how", "outcome", "version", "verified"], rows)
            st = self.ledger.stats().get(name)
            if st and st.by_version:
                vrows = [[v[:8] or "(unknown)", str(a), str(c), str(i)] for v, (a, c, i) in st.by_version.items()]
                render.table(f"{name}: outcomes per version", ["version", "accepted", "corrected", "ignored"], vrows)
        log = self.library.log(name, limit=10)
        if log:
            render.table(f"{name}: history", ["commit", "date", "change"], [[c[:8], d, m] for c, d, m in log])
        return 0

    # ---- pruning ------------------------------------------------------------------------
    def losers(self, now: datetime | None = None):
        return find_losers(self.library, self.ledger, self.settings, now)

    def prune(self, dry_run: bool = False, now: datetime | None = None) -> int:
        from joe_agent.repl import render

        decisions = self.losers(now)
        if not decisions:
            render.print_line("nothing to prune: every skill is new, unused for less than "
                              f"{self.settings.prune_unused_days} days, or scoring well enough")
            return 0
        verb = "would archive" if dry_run else "archived"
        for d in decisions:
            if not dry_run:
                self.library.archive(d.name, d.reason)
            render.print_line(f"{verb} {d.name}: {d.reason}")
        if not dry_run:
            render.print_line("restore any of them with `joe skills restore NAME`")
        return 0

    def restore(self, name: str) -> int:
        from joe_agent.repl import render

        if name not in self.library.archived():
            raise JoeError(f"no archived skill {name!r}; archived: {', '.join(self.library.archived()) or 'none'}")
        self.library.restore(name)
        render.print_line(f"restored {name} (its ledger history is kept)")
        return 0

    # ---- checks, trust, sync --------------------------------------------------------------
    def check(self) -> int:
        from joe_agent.repl import render

        problems = self.library.check()
        rows = [[str(p.path), str(p.line or ""), p.severity, p.message] for p in problems]
        for sk in self.library.load():
            why = self.learning.blocked(sk)
            if why:
                rows.append([str(sk.path), "", "flagged", f"{why} — edit it, or `joe skills trust {sk.name}` if it is fine"])
        if not rows:
            render.print_line(f"all {len(self.library.load())} skills load cleanly")
            return 0
        render.table("skill problems", ["file", "line", "severity", "problem"], rows)
        return 1 if any(r[2] in ("error", "flagged") for r in rows) else 0

    def trust(self, name: str) -> int:
        from joe_agent.repl import render
        from joe_agent.trust import trust_skill

        self._skill(name)
        trust_skill(self.home, name, self.library.body(name))
        render.print_line(f"trusted {name} as it is now; any later edit is checked again")
        return 0

    def sync(self) -> int:
        from joe_agent.repl import render

        render.print_line(self.library.sync())
        return 0

    def _skill(self, name: str):
        skill = self.library.get(name)
        if skill is None:
            names = [s.name for s in self.library.load()]
            import difflib

            near = difflib.get_close_matches(name, names, n=1)
            raise JoeError(f"no skill {name!r}" + (f"; did you mean {near[0]!r}?" if near else "; `joe skills` lists them"))
        return skill


def find_losers(library, ledger, settings, now: datetime | None = None):
    """The skills that earned pruning (ledger.losers over the global library)."""
    from joe_agent.memory.ledger import SkillRef

    if ledger is None:
        return []
    refs = [SkillRef(sk.name, sk.origin, sk.created, library.version(sk.name))
            for sk in library.load() if sk.scope == "global"]
    return ledger.losers(refs, now=now or datetime.now(timezone.utc), min_uses=settings.prune_min_uses,
                         threshold=settings.prune_threshold, unused_days=settings.prune_unused_days,
                         include_hand=settings.prune_hand_written)


def auto_prune(library, ledger, settings) -> list[str]:
    """`auto_prune: true`: archive losers at session start; one note per skill."""
    notes = []
    for d in find_losers(library, ledger, settings):
        library.archive(d.name, d.reason)
        notes.append(f"archived skill {d.name}: {d.reason} (`joe skills restore {d.name}`)")
    return notes


def skills_main(action: str | None, arg: str | None, settings, home: Path, root: Path, dry_run: bool = False) -> int:
    admin = SkillsAdmin(settings, home, root)
    needs_name = {"show", "restore", "trust"}
    if action in needs_name and not arg:
        raise JoeError(f"usage: joe skills {action} NAME")
    if action in (None, "list"):
        return admin.list()
    handlers = {"show": lambda: admin.show(arg), "prune": lambda: admin.prune(dry_run), "restore": lambda: admin.restore(arg),
                "check": admin.check, "trust": lambda: admin.trust(arg), "sync": admin.sync}
    if action not in handlers:
        raise JoeError(f"unknown skills action {action!r}; use one of: list, {', '.join(handlers)}")
    return handlers[action]()
