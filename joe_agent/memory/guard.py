"""The guard on learned text: finds what a rule or a skill must not smuggle in.

Preference rules (memory/rules.py) and skills (memory/skills.py, at load) are text that ends
up in the model's prompt. Anything in that text that tries to widen what the agent may do,
to ship the person's data elsewhere, or to hide instructions from the person reading the file
is reported here, so the caller can hold it back until the person has seen and accepted it.

Three kinds of finding:

- GRANTS: grants permissions or disables checks ("auto-approve", "never ask before running
  commands", "--yes", "skip the tests", "ignore previous instructions", "disable the sandbox").
  A negation in front ("never auto-approve", "don't skip the tests") makes it harmless.
- SENDS: sends data out (curl/wget/nc uploading files or command output, `base64 ... | curl`,
  reading `.env`, `~/.ssh`, `id_rsa`, key and credential files). A plain `curl` of a health
  endpoint or "read the README" is not a finding.
- HIDES: hides instructions from a human reader: zero-width and other invisible characters,
  bidi controls (U+202A-U+202E, U+2066-U+2069), Unicode tag characters, and HTML comments
  that carry instructions (a comment addressing the model, or whose body trips the other
  checks).

Matching runs on a normalised copy (invisible characters removed, NFKC, so full-width letters
and `auto\\u200bapprove` do not slip past); line numbers refer to the original text. This is
a screen for learned text, not a sandbox: the permission layer still decides every action.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

GRANTS = "grants permissions"
SENDS = "sends data out"
HIDES = "hides instructions"
KINDS = (GRANTS, SENDS, HIDES)

EXCERPT_CHARS = 80

# ---- invisible characters -------------------------------------------------------------------

_BIDI = {*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C}
_ZERO_WIDTH = {0x200B, 0x200C, 0x200D, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF, 0x180E,
               0x00AD, 0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, 0x17B4, 0x17B5}
_TAGS = range(0xE0000, 0xE0080)  # "ASCII smuggling": invisible copies of ASCII letters


_JOINERS = {0x200C, 0x200D}  # legitimate between emoji (family 👨‍👩‍👧) and in Indic/Persian words


def _invisible(ch: str) -> bool:
    cp = ord(ch)
    return cp in _ZERO_WIDTH or cp in _BIDI or cp in _TAGS


_INVISIBLE_RE = re.compile("[" + "".join(
    re.escape(chr(cp)) for cp in sorted(_ZERO_WIDTH | _BIDI)) + "\U000E0000-\U000E007F]")


def _hidden_at(line: str, i: int) -> bool:
    """An invisible character that is not a joiner doing its job between two non-ASCII
    visible characters."""
    if not _invisible(line[i]):
        return False
    if ord(line[i]) in _JOINERS and 0 < i < len(line) - 1:
        before, after = line[i - 1], line[i + 1]
        return not (ord(before) > 0x7F and ord(after) > 0x7F and not _invisible(before) and not _invisible(after))
    return True


def _visible_form(text: str) -> str:
    """The text with every invisible character spelled out, so a person can see it."""
    return "".join(f"<U+{ord(c):04X}>" if _invisible(c) else c for c in text)


# ---- phrase patterns ------------------------------------------------------------------------

# A negation right before a phrase turns "auto-approve" into "never auto-approve".
_NEGATION = re.compile(r"(?:\b(?:never|not|no|don't|dont|do not|doesn't|does not|shouldn't|"
                       r"should not|must not|mustn't|avoid|stop|without)\s+(?:\w+\s+){0,2})$")

_W = r"[\s_-]*"  # "auto-approve", "auto approve", "autoapprove", "auto_approve"


@dataclass(frozen=True)
class _Phrase:
    kind: str
    pattern: re.Pattern[str]
    negatable: bool = True  # a negation in front makes it harmless


def _p(kind: str, pattern: str, negatable: bool = True) -> _Phrase:
    return _Phrase(kind, re.compile(pattern, re.I), negatable)


_CHECKS = r"(?:safety|sandbox(?:ing)?|guard(?:rail)?s?|checks?|confirmations?|approvals?|permissions?|" \
          r"security|verification|hooks?|the\s+linter|linting|tests?|ci|scrub(?:bing|ber)?|prompts?)"
_RUN = r"(?:run(?:ning)?|execut(?:e|ing)|commands?|shell|edit(?:ing|s)?|writ(?:e|ing)|delet(?:e|ing)|" \
       r"chang(?:e|ing)|install(?:ing)?|push(?:ing)?|anything|actions?|tools?)"

_GRANT_PHRASES: tuple[_Phrase, ...] = (
    _p(GRANTS, rf"\bauto{_W}(?:approv\w*|accept\w*|confirm\w*|allow\w*|run\w*)"),
    _p(GRANTS, r"\b(?:always|automatically)\s+(?:approve|accept|allow|say\s+yes|confirm)\w*"),
    _p(GRANTS, r"\bapprove\s+(?:everything|all|any(?:thing)?)\b"),
    _p(GRANTS, r"\bfull[\s_-]*auto\b"),
    _p(GRANTS, r"(?<![\w-])(?:--yes|--yes-always|--assume-yes|--no-verify|--no-confirm|--force-yes|"
               r"--dangerously[\w-]*|--skip-permissions|--allow-all|--trust-all)\b", negatable=False),
    _p(GRANTS, rf"\b(?:never|don't|dont|do\s+not|no\s+need\s+to|stop|without)\s+(?:ask(?:ing)?|prompt(?:ing)?|"
               rf"confirm(?:ing)?|check(?:ing)?\s+with)\b(?:\s+(?:the\s+user|me|anyone))?"
               rf"(?!\s+(?:clarifying|questions?|about|for\s+clarification|what|which|whether|how))",
       negatable=False),
    _p(GRANTS, rf"\bwithout\s+(?:asking|approval|confirmation|permission|review|checking)\b", negatable=False),
    _p(GRANTS, r"\bskip(?:ping)?\s+(?:the\s+|all\s+|any\s+)?(?:unit\s+|failing\s+)?"
               r"(?:tests?|testing|checks?|ci|linters?|linting|hooks?|verification|review|confirmation|"
               r"approvals?|permission\s+checks?|pre-commit)\b"),
    _p(GRANTS, r"\b(?:don't|dont|do\s+not|never|no\s+need\s+to)\s+(?:bother\s+)?(?:to\s+)?run\s+"
               r"(?:the\s+|any\s+)?(?:tests?|checks?|linters?)\b", negatable=False),
    _p(GRANTS, r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+)?"
               r"(?:previous|prior|above|earlier|system|original|existing|safety|other)?\s*"
               r"(?:instructions?|rules|prompts?|guidelines|directives|constraints)\b"),
    _p(GRANTS, rf"\b(?:disable|turn\s+off|switch\s+off|deactivate|bypass|circumvent|remove|get\s+around)\s+"
               rf"(?:the\s+|all\s+|any\s+|your\s+)?{_CHECKS}\b"),
    _p(GRANTS, rf"\bno\s+(?:more\s+)?(?:confirmations?|approvals?|permission\s+prompts?|sandbox)\b", negatable=False),
    _p(GRANTS, rf"\b(?:you\s+(?:have|are\s+granted|now\s+have)|grant\s+(?:yourself|you))\s+"
               rf"(?:full\s+|unrestricted\s+|root\s+|admin\s+)?(?:permission|access|rights)\b"),
    _p(GRANTS, rf"\b(?:allowed|permitted|free)\s+to\s+{_RUN}\s+(?:\w+\s+){{0,3}}without\b", negatable=False),
    _p(GRANTS, r"\bchmod\s+(?:-R\s+)?777\b"),
)

# ---- data going out -------------------------------------------------------------------------

# Files that hold secrets; `.env.example` and friends are templates, not secrets.
_SECRET_FILES = (r"(?:\.env\b(?!\.(?:example|sample|template|dist|defaults?)\b)(?:\.\w+)?|\.ssh\b|"
                 r"\bid_(?:rsa|dsa|ecdsa|ed25519)\b|[\w-]+\.pem\b|[\w-]+\.key\b|\.aws/credentials|\.netrc\b|"
                 r"\.pgpass\b|\.git-credentials|\.npmrc\b|\.pypirc\b|\.docker/config\.json|\.kube/config|"
                 r"/etc/shadow|\bkeychain\b|\bcredentials\s+files?\b|\bprivate\s+keys?\b)")
# Words for secrets in prose: suspicious when sent somewhere, not when merely mentioned.
_SECRET_WORDS = (r"(?:secrets?|credentials?|api[\s_-]?keys?|private[\s_-]?keys?|ssh[\s_-]?keys?|"
                 r"passwords?|tokens?|env(?:ironment)?\s+variables?|\.env|cookies?)")
_READ_VERBS = (r"(?:cat|read|print|show|dump|echo|type|open|less|more|head|tail|copy|cp|scp|rsync|tar|zip|"
               r"base64|xxd|send|upload|post|exfiltrate|leak|share|paste|include|attach|collect|gather|"
               r"output|email|forward|transmit|load)")
_SEND_VERBS = r"(?:send|upload|post|exfiltrate|leak|forward|transmit|email|paste|share|submit|report)"
_DEST = (r"(?:https?://|ftp://|[\w.-]+\.(?:com|net|org|io|sh|xyz|ru|cn|me|site|app|dev)\b|\d{1,3}(?:\.\d{1,3}){3}|"
         r"(?:a\s+|the\s+|my\s+|this\s+|an\s+)?(?:webhook|pastebin|requestbin|ngrok|gist|remote\s+server|"
         r"external\s+(?:server|service|url|host)|server\s+at|my\s+server))")

_SEND_PHRASES: tuple[_Phrase, ...] = (
    # curl/wget uploading a file or a command's output
    _p(SENDS, r"\bcurl\b[^\n|;&]*?(?:\s(?:-d|--data(?:-binary|-raw|-urlencode)?|-F|--form)\s*['\"]?[\w.-]*=?@"
              r"|\s(?:-T|--upload-file)\s|\$\(|`)", negatable=False),
    _p(SENDS, r"\bwget\b[^\n|;&]*?--(?:post|body)-(?:file|data)\b", negatable=False),
    _p(SENDS, r"\|\s*(?:curl|wget|nc|ncat|netcat|socat)\b", negatable=False),
    _p(SENDS, r"\b(?:nc|ncat|netcat|socat)\s+(?:-\w+\s+)*[\w.-]+\s+\d{2,5}\b|/dev/(?:tcp|udp)/", negatable=False),
    _p(SENDS, r"\b(?:scp|rsync)\b[^\n]*\s[\w.-]+@[\w.-]+:", negatable=False),
    _p(SENDS, r"\b(?:env|printenv)\s*\|", negatable=False),
    _p(SENDS, rf"\b{_READ_VERBS}\b\s+(?:-\w+\s+)*(?:the\s+|all\s+|any\s+|your\s+|every\s+|their\s+|my\s+)?"
              rf"(?:contents?\s+of\s+(?:the\s+)?)?['\"`]?(?:\./|~/|\$HOME/|/root/|[\w/.-]*/)?{_SECRET_FILES}"),
    _p(SENDS, rf"\b{_SEND_VERBS}\b[^\n]{{0,60}}?\b{_SECRET_WORDS}[^\n]{{0,60}}?\bto\s+{_DEST}"),
    _p(SENDS, rf"\b{_SEND_VERBS}\s+(?:\w+\s+){{0,5}}?to\s+{_DEST}[^\n]{{0,40}}?\b{_SECRET_WORDS}"),
)

# ---- instructions hidden in HTML comments ---------------------------------------------------

_COMMENT = re.compile(r"<!--(.*?)(?:-->|\Z)", re.S)
_CODE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?(?:^ {0,3}\1|\Z)|`[^`\n]+`", re.S | re.M)
_ADDRESSING = re.compile(
    r"\b(?:you\s+(?:must|should|will|are|shall|need)|assistant|\bai\b|llm|language\s+model|the\s+model|"
    r"the\s+agent|system\s+prompt|instructions?|ignore|disregard|pretend|secretly|silently|"
    r"(?:do\s+not|don't|never)\s+(?:tell|mention|reveal|show|inform)|without\s+telling|"
    r"always|from\s+now\s+on|execute|approve)\b", re.I)


@dataclass(frozen=True)
class Finding:
    kind: str  # GRANTS | SENDS | HIDES
    excerpt: str  # the offending text, invisible characters spelled out
    line: int  # 1-based, in the text given to check_text

    def describe(self) -> str:
        return f"line {self.line}: {self.kind}: {self.excerpt}"


def check_text(text: str) -> list[Finding]:
    """Every finding in `text`, in line order (empty for harmless text)."""
    if not text:
        return []
    findings = _hidden_characters(text)
    norm = _normalise(text)
    findings += _phrases(norm, _GRANT_PHRASES + _SEND_PHRASES)
    findings += _comments(norm)
    return _dedupe(findings)


def summary(findings: Iterable[Finding]) -> str:
    """One line naming the kinds found, e.g. "grants permissions, sends data out"."""
    kinds = []
    for f in findings:
        if f.kind not in kinds:
            kinds.append(f.kind)
    return ", ".join(kinds)


def _normalise(text: str) -> str:
    # Removing the invisibles first keeps offsets per line stable enough: the line count is
    # unchanged because no invisible character is a newline.
    stripped = _INVISIBLE_RE.sub("", text)
    return unicodedata.normalize("NFKC", stripped).replace("\u2019", "'")


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _excerpt(text: str, start: int, end: int) -> str:
    s = max(0, start - 15)
    e = min(len(text), max(end, start + 20) + 15)
    piece = " ".join(_visible_form(text[s:e]).split())
    return piece if len(piece) <= EXCERPT_CHARS else piece[:EXCERPT_CHARS - 1] + "…"


def _hidden_characters(text: str) -> list[Finding]:
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if n == 1 and line.startswith("\ufeff"):  # a byte-order mark opening a file is harmless
            line = line[1:]
        hidden = [m.start() for m in _INVISIBLE_RE.finditer(line) if _hidden_at(line, m.start())]
        if hidden:
            names = sorted({_name(line[i]) for i in hidden})
            pos = hidden[0]
            out.append(Finding(HIDES, f"{', '.join(names)}: " + _excerpt(line, pos, pos + 1), n))
    return out


def _name(ch: str) -> str:
    cp = ord(ch)
    if cp in _BIDI:
        return "bidi control"
    if cp in _TAGS:
        return "invisible tag characters"
    return "zero-width/invisible character"


def _phrases(norm: str, phrases: tuple[_Phrase, ...]) -> list[Finding]:
    out = []
    for ph in phrases:
        for m in ph.pattern.finditer(norm):
            if ph.negatable and _negated(norm, m.start()):
                continue
            out.append(Finding(ph.kind, _excerpt(norm, m.start(), m.end()), _line_of(norm, m.start())))
    return out


def _negated(text: str, start: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    before = text[max(line_start, start - 40):start]
    return bool(_NEGATION.search(before.lower()))


def _comments(norm: str) -> list[Finding]:
    # A comment shown as code (a fenced block, `<!-- -->` in backticks) hides nothing: blank
    # code out, keeping newlines so line numbers stay right.
    norm = _CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), norm)
    out = []
    for m in _COMMENT.finditer(norm):
        body = m.group(1)
        nested = _phrases(body, _GRANT_PHRASES + _SEND_PHRASES)
        if _ADDRESSING.search(body) or nested:
            out.append(Finding(HIDES, "instructions in an HTML comment: " + _excerpt(norm, m.start(), m.end()),
                               _line_of(norm, m.start())))
    return out


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, int]] = set()
    out = []
    for f in sorted(findings, key=lambda f: (f.line, KINDS.index(f.kind))):
        if (f.kind, f.line) not in seen:
            seen.add((f.kind, f.line))
            out.append(f)
    return out
