"""Deterministic redaction of secrets and personal paths, applied before anything is kept.

Each rule is a regex plus, where a pattern alone would misfire on ordinary code, a check in
Python (does the token look generated? does the name hold a secret?). Rules run from the most
specific (PEM blocks, provider formats) to the most general (assignments, e-mail, home paths);
none matches a marker another wrote, so scrub(scrub(x)) == scrub(x). Markers: `[REDACTED:<kind>]`,
`[REDACTED]` for a URL password, `~` for a home folder (kinds: docs/transcript-format.md).
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Match

from joe_agent.memory.secret_names import _TYPE_WORDS, is_secret_name, secret_kind

MARKER_PREFIX = "[REDACTED"


class _Lazy:
    """A regex compiled on first use: transcript.py imports this module on the startup path,
    where compiling ~50 patterns up front would cost ~10 ms."""

    __slots__ = ("_args", "_rx")

    def __init__(self, pattern: str, flags: int = 0):
        self._args, self._rx = (pattern, flags), None

    def __getattr__(self, name: str) -> Any:
        self._rx = self._rx or re.compile(*self._args)
        return getattr(self._rx, name)


def _mark(kind: str) -> str:
    return f"[REDACTED:{kind}]"


def _randomish(token: str) -> bool:
    """A generated credential, not a word: mixes at least two of upper/lower/digit and has a
    long unbroken alphanumeric run (so `sk-learn-...` or `task-fix-the-parser` never pass)."""
    classes = sum((any(c.isupper() for c in token), any(c.islower() for c in token),
                   any(c.isdigit() for c in token)))
    longest = max((len(p) for p in re.split(r"[^A-Za-z0-9]", token)), default=0)
    return classes >= 2 and longest >= 16


def _on_lines(text: str, anchors: tuple[str, ...], fn: Callable[[str], str]) -> str:
    """Apply `fn` only to the whole lines that hold one of `anchors`. Patterns that cannot
    start with a literal would otherwise try every position of a megabyte of text."""
    spans: set[tuple[int, int]] = set()
    for anchor in anchors:
        i = text.find(anchor)
        while i != -1:
            start = text.rfind("\n", 0, i) + 1
            end = text.find("\n", i)
            end = len(text) if end == -1 else end
            spans.add((start, end))
            i = text.find(anchor, end)
    if not spans:
        return text
    out, last = [], 0
    for start, end in sorted(spans):
        out += [text[last:start], fn(text[start:end])]
        last = end
    out.append(text[last:])
    return "".join(out)


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: _Lazy
    hints: tuple[str, ...] = ()  # the regex runs only if one of these is in the text
    check: Callable[[str], bool] | None = None  # must accept the redacted part
    marker: str = ""  # default: [REDACTED:<kind>]
    by_line: bool = False  # run only on the lines holding a hint

    def apply(self, text: str) -> str:
        if self.by_line:
            return _on_lines(text, self.hints, lambda seg: self.pattern.sub(self._replace, seg))
        if self.hints and not any(h in text for h in self.hints):
            return text
        return self.pattern.sub(self._replace, text)

    def _replace(self, m: Match[str]) -> str:
        # a rule with a `secret` group keeps its context (a name, `Bearer `) and redacts the rest
        has_group = "secret" in self.pattern.groupindex
        secret = m.group("secret") if has_group else m.group(0)
        if MARKER_PREFIX in secret or (self.check and not self.check(secret)):
            return m.group(0)
        marker = self.marker or _mark(self.kind)
        if not has_group:
            return marker
        start, end = m.span("secret")
        return m.string[m.start():start] + marker + m.string[end:m.end()]


_E = r"(?![A-Za-z0-9_-])"  # a token ends here


def _r(kind: str, pattern: str, hints: tuple[str, ...] = (), check=None, flags: int = 0,
       by_line: bool = False, marker: str = "") -> _Rule:
    return _Rule(kind, _Lazy(pattern, flags), hints, check, marker, by_line)


def _tok(kind: str, prefix: str, rest: str, check=None, hints: tuple[str, ...] = ()) -> _Rule:
    """A token that starts with a literal. The literal comes first and the start-of-token test
    after it, so the regex engine can jump between occurrences of the literal (10x faster)."""
    p = re.escape(prefix)
    # a `-` before the literal is a word joint (`task-sk-…`) unless it starts the line: diff lines
    return _r(kind, rf"{p}(?<![A-Za-z0-9_]{p})(?<![^\n]-{p}){rest}{_E}", hints or (prefix,), check)


_PEM_LABEL = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?"

# Provider formats, most specific first (Anthropic's `sk-ant-` before OpenAI's `sk-`).
_TOKEN_RULES: tuple[_Rule, ...] = (
    _r("private-key", rf"-----BEGIN {_PEM_LABEL}-----.*?-----END {_PEM_LABEL}-----",
       ("PRIVATE KEY",), flags=re.S),
    # a block cut short (a capped tool output): the header and the base64 lines after it
    _r("private-key", rf"-----BEGIN {_PEM_LABEL}-----(?:(?:\r?\n|\\n)[ \t]*[A-Za-z0-9+/=:, -]{{16,}})*",
       ("PRIVATE KEY",)),
    _tok("anthropic-key", "sk-ant-", r"[a-z]{2,12}\d{0,3}-[A-Za-z0-9_-]{32,}"),
    _tok("openai-key", "sk-", r"(?:proj|svcacct|admin)-[A-Za-z0-9_-]{32,}", _randomish),
    _tok("openai-key", "sk-", r"[A-Za-z0-9]{32,}", _randomish),
    _tok("github-token", "gh", r"[pousr]_[A-Za-z0-9]{36,255}"),
    _tok("github-token", "github_pat_", r"[A-Za-z0-9_]{60,255}"),
    _tok("gitlab-token", "gl", r"(?:pat|dt|ptt|rt)-[A-Za-z0-9_-]{20,}", _randomish),
    _r("slack-webhook", r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,}",
       ("hooks.slack.com",)),
    _tok("slack-token", "xox", r"[abposre]-\d{6,}(?:-[A-Za-z0-9]+){1,4}"),
    _tok("slack-token", "xapp-", r"\d-[A-Z0-9]{6,}-\d{6,}-[a-z0-9]{32,}"),
    _r("discord-webhook", r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/"
       r"[A-Za-z0-9_-]{40,}", ("discord",)),
    *(_tok("stripe-key", p, r"(?:live|test)_[A-Za-z0-9]{20,}") for p in ("sk_", "rk_", "pk_")),
    _tok("stripe-key", "whsec_", r"[A-Za-z0-9]{24,}"),
    _tok("google-api-key", "AIza", r"[0-9A-Za-z_-]{35}"),
    _tok("huggingface-token", "hf_", r"[A-Za-z0-9]{30,}", _randomish),
    _tok("npm-token", "npm_", r"[A-Za-z0-9]{36}"),
    _tok("pypi-token", "pypi-AgE", r"[A-Za-z0-9_-]{50,}"),
    _tok("sendgrid-key", "SG.", r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
    _tok("twilio-key", "SK", r"[0-9a-fA-F]{32}"),
    _tok("digitalocean-token", "do", r"[opr]_v1_[a-f0-9]{64}", hints=("_v1_",)),
    _tok("shopify-token", "shp", r"(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    _tok("databricks-token", "dapi", r"[a-f0-9]{32}(?:-\d)?"),
    _tok("mailgun-key", "key-", r"[0-9a-f]{32}"),
    _r("telegram-token", r"(?<![\d:])\d{8,10}:AA[A-Za-z0-9_-]{33}" + _E, (":AA",), by_line=True),
    _tok("jwt", "eyJ", r"[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
)

_AWS_HINTS = ("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "AROA", "APKA", "ASCA")
_AWS_ID = r"A(?<![A-Z0-9]A)(?:" + "|".join(h[1:] for h in _AWS_HINTS) + r")[A-Z0-9]{16}(?![A-Z0-9])"
_AWS_SECRET = r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
_AWS_RULES: tuple[_Rule, ...] = (
    # a secret right after its id (credentials.csv, a pasted pair); the id goes next
    _r("aws-secret-key", rf"{_AWS_ID}[\s,;:|=\"']{{1,6}}(?P<secret>{_AWS_SECRET})", _AWS_HINTS, _randomish),
    _r("aws-secret-key", r"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?[ \t]*[:=,][ \t]*"
       rf"[\"']?(?P<secret>{_AWS_SECRET})", ("ecret", "ECRET"), _randomish, by_line=True),
    _r("aws-access-key-id", _AWS_ID, _AWS_HINTS),
)


def _placeholder(value: str) -> bool:  # `${DB_PASS}`, `{{ token }}`, `<your key>`, `$TOKEN`, `***`
    v = value.strip()
    return (not v or v[0] in "$<{%" or v.startswith("process.env") or set(v) <= set("*xX.-_#")
            or MARKER_PREFIX in v)


_URL_PASSWORD = _r("url-password", r"(?<![A-Za-z0-9.])(?<![^\n][+-])[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/?#@\[\]\"'<>]*:"
                   r"(?P<secret>[^\s@/?#\[\]\"'<>]+)(?=@)", ("://",), lambda s: not _placeholder(s),
                   by_line=True, marker="[REDACTED]")
_AUTH_HEADER = (
    _r("auth-header", r"(?i:authorization)[\"']?[ \t]*[:=][ \t]*[\"']?(?i:basic|bearer|token|digest)[ \t]+"
       r"(?P<secret>[^\s\"',;\[]{8,})", ("uthorization", "UTHORIZATION"), lambda s: not _placeholder(s),
       by_line=True),
    # no scheme word: `authorization = self.headers.get(...)` is code, so the value must look generated
    _r("auth-header", r"(?i:authorization)[\"']?[ \t]*[:=][ \t]*[\"']?(?P<secret>[A-Za-z0-9._~+/=-]{16,})"
       r"(?=[\s\"',;]|$)", ("uthorization", "UTHORIZATION"), _randomish, by_line=True),
    _r("bearer-token", r"\b(?i:bearer)[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)", ("earer", "EARER"),
       _randomish, by_line=True),
)
_CLI_ANCHORS = ("-pass", "-PASS", "-Pass", "-token", "-TOKEN", "-api", "-API", "-secret", "-SECRET",
                "-access", "-auth")
_CLI_FLAG = _r(
    "secret", r"(?<![\w-])--?(?i:password|passwd|pass|token|api-key|apikey|secret|access-token|auth-token)"
    r"(?:=|[ \t]+)(?P<secret>[^\s\"'`;&|()<>\[]+)", _CLI_ANCHORS, lambda s: _cli_value(s), by_line=True)


def _cli_value(value: str) -> bool:  # not `--password options` (prose), `--token --next`, `$PW`,
    # nor the `=` of an assignment on a diff line (`-token = get_token()`)
    return (not _placeholder(value) and value[0] not in "-=" and not (value.isalpha() and value.islower()))


# ---- assignments: NAME=value, name: value, "name": "value", name = "value" ------------------

def _literal_ok(value: str) -> bool:
    """Worth redacting at all: not a placeholder, not masked (`****`), not a 1-2 char stub."""
    v = value.strip()
    return len(v) >= 3 and not _placeholder(v) and sum(c in "*•" for c in v) * 2 < len(v)


_ASSIGN = _Lazy(
    r"(?<![\w.$-])(?P<q>\\?[\"']?)(?P<name>-{0,2}[A-Za-z_][\w.-]*)(?P=q)"
    r"(?P<sep>[ \t]*[:=][ \t]*)"
    r"(?:\\\"(?P<eq>[^\"\\\n]*)\\\"|\"(?P<dq>[^\"\n]*)\"|'(?P<sq>[^'\n]*)'"
    r"|(?P<bare>[^\s\"'`,;&(){}\[\]<>#]+)(?=[\s,;&)}\]#]|$))",
    re.M,
)
_SECRETISH = _Lazy(r"(?i)pass|secret|token|key|cred|pwd")


def _form(m: Match[str]) -> str:
    """Where the assignment sits: "env" (`.env`, shell, URL query, connection string), "yaml"
    (`name: value` starting a line), "json" (a quoted name), "code" (a bare word is a variable)."""
    text, name, sep = m.string, m.group("name"), m.group("sep")
    before = text[text.rfind("\n", 0, m.start()) + 1:m.start()].strip()
    after = text[m.end():m.end() + 1]
    if name.startswith("-") or before.endswith(("?", "&", ";")):
        return "env"
    if sep == "=" and (before in ("", "export") or name.isupper()) and after in ("", "\n", "\r", " ", "\t", "#"):
        return "env"  # but `token=x,` alone on a line is a keyword argument
    if m.group("q"):
        return "json"
    return "yaml" if before == "" and ":" in sep else "code"


def _type_like(value: str) -> bool:  # `password: str`, `token: Final`, `self.token: Token | None`
    return value.lower() in _TYPE_WORDS or value[0] == "_" or (value[0].isupper() and value.isalpha())


def _value_is_secret(m: Match[str], key: str, value: str, kind: str) -> bool:
    if not _literal_ok(value):
        return False
    form = _form(m)
    rest = m.string[m.end():].split("\n", 1)[0].strip()
    if key != "bare":
        if form != "code" or kind == "password":
            return True
        # a generated token is one word with digits or mixed case, not `DONE_TOKEN = "done."`
        mixed = any(c.isdigit() for c in value) or value.lower() != value != value.upper()
        return len(value) >= 8 and not any(c.isspace() for c in value) and mixed
    if form != "env" and (_type_like(value) or rest.startswith(("=", "|", "["))):
        return False
    if form == "env":
        return True
    if form == "yaml":  # `password: The password part of the URL.` is a docstring, not YAML
        return not rest or rest.startswith("#")
    return _randomish(value) or (value.isdigit() and len(value) >= 6)


def _assign_repl(m: Match[str]) -> str:
    name = m.group("name").lstrip("-")
    if not _SECRETISH.search(name):
        return m.group(0)
    kind = secret_kind(name)
    if kind is None:
        return m.group(0)
    if not m.group("q") and ":" in m.group("sep") and name[0].isupper() and not name.isupper():
        return m.group(0)  # `Token: "#fff"` (a Python dict key), `AnsiToken: A tuple` (a docstring)
    key = next(k for k in ("eq", "dq", "sq", "bare") if m.group(k) is not None)
    if not _value_is_secret(m, key, m.group(key), kind):
        return m.group(0)
    start, end = m.span(key)
    return m.string[m.start():start] + _mark("secret") + m.string[end:m.end()]


# case variants of _SECRETISH: str.find on each beats one case-insensitive regex scan
_NAME_ANCHORS = tuple(v for w in ("pass", "secret", "token", "key", "cred", "pwd")
                      for v in (w, w.capitalize(), w.upper()))


def _assignments(text: str) -> str:
    return _on_lines(text, _NAME_ANCHORS, lambda seg: _ASSIGN.sub(_assign_repl, seg))


# ---- e-mail addresses and home folders --------------------------------------------------------

_TLDS = {"com", "org", "net", "edu", "gov", "mil", "int", "info", "biz", "app", "dev", "io", "ai",
         "xyz", "tech", "cloud", "online", "site", "email", "mail", "name", "pro", "mobi", "asia",
         "jobs", "travel", "company", "team", "work", "systems", "solutions", "software", "codes"}
_RESERVED_DOMAINS = ("example.com", "example.org", "example.net", ".invalid", ".test", ".example",
                     ".localhost", ".local")
_EMAIL = _Lazy(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@((?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
    r"([A-Za-z]{2,24}))(?![A-Za-z0-9-]|\.[A-Za-z0-9]|:[\w~/])")


def _emails(text: str) -> str:
    def repl(m: Match[str]) -> str:
        domain, tld = m.group(1).lower(), m.group(2).lower()
        if m.string[max(0, m.start() - 3):m.start()] == "://":  # ssh://git@host/...: a login, not mail
            return m.group(0)
        if (len(tld) != 2 and tld not in _TLDS) or domain.endswith(_RESERVED_DOMAINS):
            return m.group(0)
        return _mark("email")

    return _on_lines(text, ("@",), lambda seg: _EMAIL.sub(repl, seg))


_SYSTEM_HOMES = {"linuxbrew", "Shared", "Public", "Default", "All Users", "Default User"}
_POSIX_HOMES = tuple(_Lazy(rf"/{d}/(?<![\w.~-]/{d}/)([A-Za-z0-9_](?:[\w.-]*[\w])?)(?![\w-]|\.\w)")
                     for d in ("home", "Users"))
_WIN_HOME = _Lazy(r"(?<![A-Za-z])[A-Za-z]:(\\{1,2}|/)Users\1([^\\/\s\"'<>:|?*]+)(?=\1|$|[\s\"'])")
_NOT_HOMES = {"/", "/tmp", "/var", "/usr", "/opt", "/srv", "/etc", "/home", "/Users", "/bin",
              "/nonexistent", "/dev/null", "/var/empty"}


@functools.lru_cache(maxsize=8)
def _current_home_re(home: str) -> re.Pattern[str] | None:
    home = home.rstrip("/")
    if not home or home in _NOT_HOMES or not home.startswith("/"):
        return None
    h = re.escape(home)
    return re.compile(rf"{h}(?<![\w.~-]{h})(?![\w-]|\.\w)")


def _home_paths(text: str) -> str:
    home = os.environ.get("HOME", "")
    home_re = _current_home_re(home)
    if home_re is not None and home.rstrip("/") in text:
        text = home_re.sub("~", text)
    for pattern in _POSIX_HOMES:
        text = pattern.sub(lambda m: m.group(0) if m.group(1) in _SYSTEM_HOMES else "~", text)
    return _on_lines(text, ("Users",), lambda seg: _WIN_HOME.sub(
        lambda m: m.group(0) if m.group(2) in _SYSTEM_HOMES else "~", seg))


# ---- the public API -------------------------------------------------------------------------

_STEPS: tuple[Callable[[str], str], ...] = (
    *(r.apply for r in (*_TOKEN_RULES, *_AWS_RULES, _URL_PASSWORD, *_AUTH_HEADER, _CLI_FLAG)),
    _assignments, _emails, _home_paths,
)


_DIFF_RUN = re.compile(r"(?m)(?:^\+(?!\+\+ ).*(?:\n|\Z))+|(?:^-(?!-- ).*(?:\n|\Z))+")


def scrub(text: str) -> str:
    """Redact secrets, e-mail addresses and home paths in `text`. Deterministic, idempotent.
    Runs of unified-diff lines are scrubbed first without their `+`/`-` marker, which would
    otherwise hide an assignment (`+API_KEY=…`) or a token's start from the rules; a run is
    scrubbed as one text, so a private key spread over many `+` lines goes whole."""
    if "\n+" in text or "\n-" in text or text[:1] in ("+", "-"):
        text = _DIFF_RUN.sub(_scrub_run, text)
    return _scrub_steps(text)


def _scrub_run(m: Match[str]) -> str:
    block = m.group(0)
    mark, tail = block[0], ("\n" if block.endswith("\n") else "")
    inner = "\n".join(line[1:] for line in block[: len(block) - len(tail)].split("\n"))
    return "\n".join(mark + line for line in _scrub_steps(inner).split("\n")) + tail


def _scrub_steps(text: str) -> str:
    for step in _STEPS:
        text = step(text)
    return text


def scrub_obj(obj: Any) -> Any:
    """Scrub every string inside dicts, lists and tuples (keys too). A string value under a
    secret's name (`{"password": "hunter2"}`) is redacted whole, since alone it looks like
    any other word."""
    if isinstance(obj, str):
        return scrub(obj)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            key = scrub(k) if isinstance(k, str) else k
            if isinstance(k, str) and isinstance(v, str) and is_secret_name(k) and _literal_ok(v):
                out[key] = _mark("secret")
            else:
                out[key] = scrub_obj(v)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(scrub_obj(v) for v in obj)
    return obj
