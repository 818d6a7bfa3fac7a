"""Who says yes: the permission modes, the few commands that may run unasked, and the
commands that always need a person.

`ask` (default): writes and shell need a yes, except plain read-only command lines.
`auto-edit`: writes run unasked (except to .joe/, which can change joe's own settings);
shell still asks. `full-auto`: everything runs, except the dangerous commands below,
which always need a person. Headless without --yes: whatever would ask is denied and the
model is told why.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Callable, Literal

Mode = Literal["ask", "auto-edit", "full-auto"]
MODES: tuple[str, ...] = ("ask", "auto-edit", "full-auto")
Decision = Literal["allow", "ask", "deny"]


@dataclass
class ApprovalRequest:
    tool: str  # "write_file" | "edit_file" | "run_shell"
    action: Literal["write", "shell"]
    target: str  # resolved path relative to root, or the full command line
    detail: str = ""  # unified diff for writes; the command for shell
    abs_path: str = ""  # resolved absolute target for writes


@dataclass
class Approval:
    granted: bool
    message: str = ""  # the person's reason / explanation, sent to the model on refusal
    always: bool = False  # "yes, and don't ask again for this kind of action this session"


Approver = Callable[[ApprovalRequest], Approval]

# ---- parsing a command line -----------------------------------------------------------------

_OPERATOR_CHARS = set(";&|<>()\n\r")
_ALWAYS_UNSAFE = set("`$\\\0")  # substitution/escapes: active even inside double quotes


def _unquoted_operators(command: str) -> bool:
    """True when the line has a shell operator outside quotes (or quotes never close)."""
    quote = ""
    for i, ch in enumerate(command):
        if quote:
            if ch == quote:
                quote = ""
            elif ch in "\n\r":
                return True  # a newline is never harmless to us, quoted or not
            continue
        if ch in "'\"":
            quote = ch
        elif ch in _OPERATOR_CHARS:
            return True
        elif ch == "#" and (i == 0 or command[i - 1].isspace()):
            return True  # a comment hides the rest of the line from the reader
    return bool(quote)


def split_segments(command: str) -> list[list[str]]:
    """Rough split into simple commands at unquoted operators, `$(` and backticks, each
    tokenised with shlex. For spotting dangerous commands anywhere in a chain."""
    segments, buf, quote = [], [], ""
    for ch in command:
        if quote:
            if ch == quote:
                quote = ""
            if quote == '"' and (ch == "`" or (ch == "(" and buf and buf[-1] == "$")):
                segments.append("".join(buf)), buf.clear()
                continue
            buf.append(ch)
            continue
        if ch in "'\"":
            quote = ch
            buf.append(ch)
        elif ch in _OPERATOR_CHARS or ch == "`":
            segments.append("".join(buf))
            buf.clear()
        else:
            buf.append(ch)
    segments.append("".join(buf))
    out = []
    for seg in segments:
        seg = seg.rstrip("$")
        try:
            toks = shlex.split(seg)
        except ValueError:
            toks = seg.split()
        if toks:
            out.append(toks)
    return out


# ---- the read-only allowlist ----------------------------------------------------------------

_PLAIN_SAFE = {"ls", "pwd", "cat", "head", "tail", "wc", "echo", "grep", "egrep", "fgrep", "tree",
               "file", "stat", "du", "which", "basename", "dirname", "realpath", "diff", "cmp",
               "nl", "sort", "uname", "whoami", "date", "true", "rg", "find", "git"}
_GIT_READONLY = {"status", "diff", "log", "show"}
# options that turn a reader into a writer or a launcher
_BAD_OPTIONS = {
    "find": ("-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf", "-fls"),
    "rg": ("--pre",),
    "sort": ("-o", "--output", "--compress-program"),
    "file": ("-C", "--compile"),
    "tree": ("-o",),
    "date": ("-s", "--set"),
    "git": ("--output", "--ext-diff", "--textconv"),
}


def is_safe_readonly(command: str) -> bool:
    """True only for a plain, read-only command line that may run without asking: one
    allowlisted command, no chaining, pipes, redirection, substitution or newline, and no
    argument reaching outside the project (absolute, ~ or ..). When in doubt, False."""
    if not command.strip() or any(ch in _ALWAYS_UNSAFE for ch in command):
        return False
    if _unquoted_operators(command):
        return False
    try:
        toks = shlex.split(command)
    except ValueError:
        return False
    if not toks or toks[0] not in _PLAIN_SAFE:
        return False
    if toks[0] == "git" and (len(toks) < 2 or toks[1] not in _GIT_READONLY):
        return False  # also refuses global options such as `git -c core.pager=sh status`
    bad = _BAD_OPTIONS.get(toks[0], ())
    for tok in toks[1:]:
        if any(tok == b or tok.startswith(b + "=") or (b.startswith("--") and tok.startswith(b)) for b in bad):
            return False
        if toks[0] == "sort" and tok.startswith("-") and not tok.startswith("--") and "o" in tok:
            return False  # sort -uo out.txt
        if _leaves_project(tok):
            return False
    return True


def _leaves_project(tok: str) -> bool:
    value = tok.split("=", 1)[1] if tok.startswith("-") and "=" in tok else tok
    if value.startswith(("/", "~", ".*", ".?", ".[")):  # `ls .*` reaches `..` in sh
        return True
    return ".." in value.replace("\\", "/").split("/")


# ---- dangerous commands ---------------------------------------------------------------------

_WRAPPERS = {"command", "env", "nohup", "time", "nice", "exec", "xargs", "timeout", "stdbuf"}
_SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "fish"}


def is_dangerous(command: str) -> bool:
    """Commands that always need a person, in every mode: recursive/forced rm of home,
    root or parents, history-destroying git, privilege escalation, piping into a shell."""
    segments = split_segments(command)
    if ":|:" in command.replace(" ", ""):
        return True  # the classic fork bomb
    for i, toks in enumerate(segments):
        toks = _strip_wrappers(toks)
        if not toks:
            continue
        name = toks[0].rsplit("/", 1)[-1]
        if name in _SHELLS and i > 0 and len(toks) == 1:
            return True  # `curl x | sh`
        if name in _SHELLS and "-c" in toks[1:]:
            inner = toks[toks.index("-c") + 1:]
            if inner and is_dangerous(inner[0]):
                return True
        if name == "eval" and is_dangerous(" ".join(toks[1:])):
            return True
        if _dangerous_simple(name, toks[1:]):
            return True
    return False


def _strip_wrappers(toks: list[str]) -> list[str]:
    toks = list(toks)
    while toks and ("=" in toks[0] and not toks[0].startswith("-") or toks[0] in _WRAPPERS):
        toks.pop(0)
        while toks and toks[0].startswith("-"):  # the wrapper's own options
            toks.pop(0)
        if toks and toks[0].replace(".", "").isdigit():  # timeout 10 cmd
            toks.pop(0)
    return toks


def _dangerous_simple(name: str, args: list[str]) -> bool:
    if name in {"sudo", "su", "doas", "mkfs", "shred", "shutdown", "reboot", "halt", "poweroff"}:
        return True
    if name.startswith("mkfs."):
        return True
    if name == "dd" and any(a.startswith("of=") for a in args):
        return True
    if name == "rm":
        flags = "".join(a.lstrip("-") for a in args if a.startswith("-") and not a.startswith("--"))
        forceful = "r" in flags.lower() or "f" in flags or "--recursive" in args or "--force" in args
        targets = [a for a in args if not a.startswith("-")]
        risky = any(t in {".", "..", "*", "./*"} or t.startswith(("/", "~", "$")) or ".." in t.split("/")
                    for t in targets)
        return ("--no-preserve-root" in args) or (forceful and risky)
    if name in {"chmod", "chown"} and any(a in {"-R", "--recursive"} for a in args):
        return any(a.startswith(("/", "~")) for a in args)
    if name == "git":
        return _dangerous_git(args)
    return False


def _dangerous_git(args: list[str]) -> bool:
    while args and args[0].startswith("-"):  # git -C dir / -c k=v
        args = args[2:] if args[0] in {"-C", "-c"} else args[1:]
    if not args:
        return False
    sub, rest = args[0], args[1:]
    if sub == "reset" and "--hard" in rest:
        return True
    if sub == "push":
        force = {"-f", "--force", "--mirror", "--delete", "-d", "--prune"}
        return any(a in force or a.startswith("--force") or a.startswith(("+", ":")) for a in rest)
    if sub == "clean":
        return any(a.startswith("-") and not a.startswith("--") and "f" in a or a == "--force" for a in rest)
    if sub in {"filter-branch", "filter-repo"}:
        return True
    if sub == "branch" and ("-D" in rest or ("--force" in rest and bool({"-d", "--delete"} & set(rest)))):
        return True
    return sub == "stash" and bool(rest) and rest[0] in {"drop", "clear"}


# ---- the policy -----------------------------------------------------------------------------

# Commands whose second (or third) word picks the action, so "always allow" remembers more.
_MULTI_WORD = {"git": 2, "npm": 2, "pnpm": 2, "yarn": 2, "cargo": 2, "go": 2, "uv": 2, "poetry": 2,
               "docker": 2, "make": 2, "python": 3, "python3": 3}


def command_prefix(command: str) -> tuple[str, ...]:
    """The words "always allow" remembers: `pytest`, `git commit`, `python -m pytest`."""
    try:
        toks = shlex.split(command)
    except ValueError:
        return ()
    n = _MULTI_WORD.get(toks[0], 1) if toks else 0
    if n == 3 and len(toks) > 1 and toks[1] != "-m":
        n = 2
    return tuple(toks[:n])


@dataclass
class Permissions:
    """Decides allow / ask / deny for one session and keeps its "always" answers."""

    mode: Mode = "ask"
    approver: Approver | None = None
    headless: bool = False
    _always_write: bool = field(default=False, repr=False)
    _always_shell: set[tuple[str, ...]] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown permission mode {self.mode!r}; use one of {', '.join(MODES)}")

    def decide(self, req: ApprovalRequest) -> Decision:
        verdict = self._policy(req)
        if verdict == "ask" and (self.headless or self.approver is None):
            return "deny"  # nobody to ask: refusing is the only safe answer
        return verdict

    def _policy(self, req: ApprovalRequest) -> Decision:
        if req.action == "write":
            if self.mode == "full-auto" or self._always_write:
                return "allow"
            if self.mode == "auto-edit" and not _is_joe_config(req.target):
                return "allow"
            return "ask"
        command = req.target
        if is_dangerous(command):
            return "ask"
        if self.mode == "full-auto" or is_safe_readonly(command):
            return "allow"
        if self._remembered(command):
            return "allow"
        return "ask"

    def _remembered(self, command: str) -> bool:
        # only a plain line may ride on a remembered prefix: `pytest; rm -rf x` must still ask
        if any(ch in _ALWAYS_UNSAFE for ch in command) or _unquoted_operators(command):
            return False
        prefix = command_prefix(command)
        return any(prefix[: len(p)] == p for p in self._always_shell)

    def request(self, req: ApprovalRequest) -> Approval:
        """Decide, and ask the approver when needed. A denial carries a message for the model."""
        verdict = self.decide(req)
        if verdict == "allow":
            return Approval(True)
        if verdict == "deny":
            return Approval(False, self._deny_reason(req))
        approval = self.approver(req)  # type: ignore[misc]  # decide() guarantees an approver
        if approval.granted and approval.always:
            self.allow_always(req)
        return approval

    def _deny_reason(self, req: ApprovalRequest) -> str:
        what = "writing files" if req.action == "write" else "this command"
        if self.headless:
            return (f"running non-interactively without --yes, so {what} needs approval nobody can give; "
                    "do not retry, describe the change or command for the person instead")
        return f"no one is available to approve {what}; do not retry"

    def allow_always(self, req: ApprovalRequest) -> None:
        """Remember for this session: every write, or commands starting with the same words.
        Dangerous commands are never remembered."""
        if req.action == "write":
            self._always_write = True
            return
        if is_dangerous(req.target):
            return
        prefix = command_prefix(req.target)
        if prefix:
            self._always_shell.add(prefix)


def _is_joe_config(rel_target: str) -> bool:
    parts = [p for p in rel_target.replace("\\", "/").split("/") if p not in ("", ".")]
    return bool(parts) and parts[0] == ".joe"
