"""Which skills fit a request: trigger phrases matched word by word, no embeddings.

Deterministic and explainable: a request and a trigger are both reduced to content-word stems
(stop words dropped, a small suffix stemmer so "converting" meets "convert"); a trigger matches
when its stems occur in the request close together, in any order, with a few words in between.
Strength is the share of the trigger's IDF weight that matched, less small penalties for gaps,
order and a missing word; a single-word trigger fires only when the word is specific. Skills
without triggers (written for other agents) are matched on phrases of their description, at a
discount. An inverted index (stem -> triggers) keeps a request at 10,000 skills to a few ms.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from joe_agent.memory.skillfile import Skill

MAX_GAP = 4  # extra words allowed inside a trigger's span in the request
GAP_COST = 0.04  # strength lost per extra word
ORDER_COST = 0.03  # the request says the words in another order
PARTIAL_COST = 0.85  # one word of a 3+ word trigger is missing
DESCRIPTION_WEIGHT = 0.85  # a phrase from a description is a weaker signal than a trigger
SPECIFIC_SHARE = 0.02  # a single-word trigger must be in at most this share of skills
SHORT_COST = 0.04  # per matched word under 3: a longer phrase matched is stronger evidence

STOP = frozenset("""a an the to of in on for with and or but nor my mine this that these those it its is are
was were be been being am please can could would should will shall may might must you your yours i me we
our ours us they them their from into onto by at as some any all every each do does did how what when
where which who whom why so up down out off about then than there here just also via per too very not
no yes if else let lets want wants wanted need needs needed like help kindly again now one using use
used uses dont doesnt isnt arent cant wont didnt across everywhere whole really""".split())
# Words too common in coding requests to identify a skill on their own.
GENERIC = frozenset("""fix add test code file run update change remove delete create write new bug error
function class method project app build check issue problem feature work thing way page line name type
call return script command value list data set get output input text version support handle implement
improve clean refactor move rename open read show find look try start stop make config module package
service component variable field object string number option user model server client request response
debug tool program repo folder directory path setup install""".split())
_IRREGULAR = {"ran": "run", "written": "write", "wrote": "write", "broken": "break", "broke": "break",
              "built": "build", "children": "child", "indices": "index", "made": "make", "went": "go",
              "gone": "go", "taken": "take", "took": "take", "found": "find", "kept": "keep", "got": "get",
              "gotten": "get", "sent": "send", "thrown": "throw", "threw": "throw", "caught": "catch",
              "linter": "lint", "linters": "lint", "formatter": "format", "formatters": "format",
              "debugger": "debug", "compiler": "compile", "bundler": "bundle", "profiler": "profile",
              "deployment": "deploy", "deployments": "deploy", "requirement": "require",
              "requirements": "require", "improvement": "improve", "improvements": "improve",
              "failure": "fail", "failures": "fail"}
_KEEP = frozenset({"embed"})  # where the -ed rule would misfire (embedding -> embed, embed -> emb)
_ROOTS = {"convers": "convert", "configurat": "configur", "documentat": "document", "installat": "install",
          "implementat": "implement", "informat": "inform", "extens": "extend", "representat": "represent"}
_VOWEL = re.compile(r"[aeiouy]")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_CLAUSE = re.compile(r"[.;:!?()\[\]\"“”]|,|\s-\s|\b(?:and|or|but|e\.g|i\.e)\b")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A small deterministic suffix stemmer (Porter-like): consistent, not linguistic.
    converting/converted/converts -> convert; migration/migrate -> migrat; retries -> retri."""
    w = _IRREGULAR.get(word, word)
    if len(w) <= 2 or not w.isalpha() or w in _KEEP:
        return w
    if w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if w in _KEEP:
        return w
    if w.endswith("ied") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("ing", "ed")) and not w.endswith("eed"):
        base = w[:-3] if w.endswith("ing") else w[:-2]
        if len(base) >= 2 and _VOWEL.search(base):
            # running -> run, but add, pass, call and diff keep their double letter
            if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "aeiouylsfz":
                base = base[:-1]
            w = base
    if w.endswith("ion") and len(w) >= 6 and w[-4] in "st":
        w = w[:-3]
        w = w[:-2] if w.endswith("izat") else w[:-3] if w.endswith("ificat") else w
    if w.endswith("ly") and len(w) >= 7:  # locally -> local, but apply and reply stay
        w = w[:-2]
    if w.endswith("y") and len(w) > 3 and w[-2] not in "aeiou":
        w = w[:-1] + "i"
    if w.endswith("e") and len(w) >= 3:
        w = w[:-1]
    return _ROOTS.get(w, w)


_GENERIC_STEMS = frozenset(stem(w) for w in GENERIC) | GENERIC


def tokens(text: str) -> list[str]:
    """Lowercase words; "don't" -> "dont", "component's" -> "component"."""
    out = []
    for t in _TOKEN.findall(text.lower().replace("’", "'")):
        out.append(t[:-2] if t.endswith("'s") else t.replace("'", ""))
    return out


def content(words: list[str]) -> list[tuple[int, str, str]]:
    """(position, word, stem) of the words that carry meaning."""
    out = []
    for i, w in enumerate(words):
        if w not in STOP:
            out.append((i, w, stem(w)))
    return out


@dataclass
class Match:
    skill: Skill
    strength: float
    trigger: str
    reason: str  # e.g. 'matched "convert to hooks"'


@dataclass
class _Trigger:
    skill: int
    text: str
    stems: tuple[str, ...]  # unique content stems, in trigger order
    weight: float  # 1.0 for a trigger, DESCRIPTION_WEIGHT for a description phrase


class Retriever:
    """Matches requests against the skills' triggers through an inverted index."""

    def __init__(self, skills: list[Skill], scores: dict[str, float] | None = None) -> None:
        self.skills, self.scores = list(skills), dict(scores or {})
        self._triggers: list[_Trigger] | None = None  # the index is built on the first match

    def _build(self) -> None:
        triggers: list[_Trigger] = []
        for i, skill in enumerate(self.skills):
            phrases = [(t, 1.0) for t in skill.triggers] or \
                [(p, DESCRIPTION_WEIGHT) for p in description_phrases(skill.description)]
            for text, weight in phrases:
                stems = tuple(dict.fromkeys(s for _, _, s in content(tokens(text))
                                            if weight == 1.0 or s not in _BOILERPLATE))
                if stems:
                    triggers.append(_Trigger(i, text, stems, weight))
        self._index: dict[str, list[int]] = defaultdict(list)
        owners: dict[str, set[int]] = defaultdict(set)  # stem -> skills using it
        for t_id, trig in enumerate(triggers):
            for s in trig.stems:
                self._index[s].append(t_id)
                owners[s].add(trig.skill)
        n = max(1, len(triggers))
        self._idf = {s: math.log(1 + n / len(ids)) for s, ids in self._index.items()}
        cap = max(2, SPECIFIC_SHARE * len(self.skills))
        self._specific = {s for s, who in owners.items() if len(who) <= cap and s not in _GENERIC_STEMS and len(s) >= 3}
        self._triggers = triggers

    def match(self, request: str, limit: int = 3, threshold: float = 0.6) -> list[Match]:
        """The best `limit` skills whose strength is at least `threshold`, strongest first,
        then by the ledger's score."""
        if self._triggers is None:
            self._build()
        where: dict[str, list[int]] = defaultdict(list)  # stem -> its places among content words
        for k, (_, _, s) in enumerate(content(tokens(request))):
            where[s].append(k)
        hits: dict[int, int] = defaultdict(int)
        for s in where:
            for t_id in self._index.get(s, ()):
                hits[t_id] += 1
        best: dict[int, tuple[float, _Trigger, str]] = {}
        triggers = self._triggers or []
        for t_id, count in hits.items():
            trig = triggers[t_id]
            n = len(trig.stems)
            if count < n and (n < 3 or count < n - 1):
                continue
            strength, reason = self._strength(trig, where)
            old = best.get(trig.skill)
            if strength > 0 and (old is None or (strength, len(trig.stems)) > (old[0], len(old[1].stems))):
                best[trig.skill] = (strength, trig, reason)
        ranked = sorted(best.items(), key=lambda kv: (-round(kv[1][0], 2),
                                                       -self.scores.get(self.skills[kv[0]].name, 0.0),
                                                       self.skills[kv[0]].name))
        return [Match(self.skills[i], round(s, 3), t.text, r) for i, (s, t, r) in ranked if s >= threshold][:limit]

    def _strength(self, trig: _Trigger, where: dict[str, list[int]]) -> tuple[float, str]:
        matched = [s for s in trig.stems if s in where]
        label = "description phrase " if trig.weight < 1 else ""
        if len(trig.stems) == 1:
            ok = trig.stems[0] in self._specific
            return (trig.weight * (1 - 2 * SHORT_COST) if ok else 0.0), f'matched {label}"{trig.text}"'
        total = sum(self._idf[s] for s in trig.stems)
        strength = trig.weight * sum(self._idf[s] for s in matched) / total
        if len(matched) < len(trig.stems):
            if trig.weight < 1 or all(s in _GENERIC_STEMS for s in matched):
                return 0.0, ""  # partial matches only for explicit triggers with a specific word
            strength *= PARTIAL_COST
        start, order = _window(matched, where)
        extra = max(order) - start + 1 - len(matched)  # content words in between; stop words are free
        if extra > MAX_GAP:
            return 0.0, ""
        strength *= (1 - GAP_COST * extra) * (1 - SHORT_COST * max(0, 3 - len(matched)))
        if order != sorted(order):
            strength *= 1 - ORDER_COST
        how = "" if len(matched) == len(trig.stems) else f"{len(matched)} of {len(trig.stems)} words of "
        return strength, f'matched {how}{label}"{trig.text}"'


def _window(stems: list[str], where: dict[str, list[int]]) -> tuple[int, list[int]]:
    """The tightest span of the request holding each stem once: (start, position per stem)."""
    events = sorted((p, i) for i, s in enumerate(stems) for p in where[s])
    need, have, counts = len(stems), 0, [0] * len(stems)
    best: tuple[int, int] | None = None
    lo = 0
    for pos, i in events:
        counts[i] += 1
        have += counts[i] == 1
        while have == need:
            if best is None or pos - events[lo][0] < best[1] - best[0]:
                best = (events[lo][0], pos)
            j = events[lo][1]
            counts[j] -= 1
            have -= counts[j] == 0
            lo += 1
    assert best is not None
    start, end = best
    order = [min((p for p in where[s] if start <= p <= end), default=start) for s in stems]
    return start, order


def description_phrases(description: str) -> list[str]:
    """Phrases of a description for skills that have no triggers: each pair of neighbouring
    content words inside a clause ("fill in PDF forms" -> "fill in PDF", "PDF forms"). A lone
    word of a description is too weak a signal to fire on its own."""
    out: list[str] = []
    for clause in _CLAUSE.split(description or ""):
        words = tokens(clause)
        keep = [pos for pos, _, s in content(words) if s not in _BOILERPLATE]
        out += [" ".join(words[a:b + 1]) for a, b in zip(keep, keep[1:])]
    return list(dict.fromkeys(out))


_BOILERPLATE = frozenset(stem(w) for w in """skill skills claude agent ask asked asks whenever user
anything something task tasks request requests trigger triggers mention mentions including include
includes such other etc""".split())


def substring_baseline(skills: list[Skill], request: str) -> list[Skill]:
    """The seed article's matching, `trigger.lower() in query.lower()`, for the benchmark."""
    q = request.lower()
    return [s for s in skills if any(t.lower() in q for t in s.triggers)]


def catalog(skills: list[Skill], max_chars: int) -> str:
    """`- name: description` lines within max_chars: descriptions are shortened first, then
    the tail is summarised, so a big library never takes over the system prompt."""
    lines = [f"- {s.name}: {' '.join(s.description.split())}" for s in skills]
    if sum(len(x) + 1 for x in lines) <= max_chars:
        return "\n".join(lines)
    lines = [x if len(x) <= 100 else x[:99].rsplit(" ", 1)[0] + "…" for x in lines]
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        tail = f"- … and {len(lines) - i} more (`joe skills` lists them)"
        if used + len(line) + 1 + (len(tail) + 1 if i < len(lines) - 1 else 0) > max_chars:
            if used + len(tail) <= max_chars:
                out.append(tail)
            break
        out.append(line)
        used += len(line) + 1
    return "\n".join(out)


def injection_block(skill: Skill, match: Match | None = None, max_body: int = 1500) -> str:
    """The compact text a matched skill adds to the user message: title, why, steps, pitfalls,
    and the files beside it. A skill without steps (a public one) brings its body, capped."""
    out = [f"### Skill: {skill.title} ({skill.name})"]
    if match is not None:
        out.append(f"Why: {match.reason}")
    if skill.steps:
        out += ["Steps:"] + [f"{i}. {s}" for i, s in enumerate(skill.steps, 1)]
    else:
        body = "\n\n".join([skill.intro.strip()] + [f"## {h}\n{b.strip()}" for h, b in skill.sections.items()])
        body = body.strip() or skill.description
        out.append(body if len(body) <= max_body else body[:max_body].rsplit("\n", 1)[0] +
                   f"\n[… cut; read_skill(\"{skill.name}\") has the rest]")
    if skill.pitfalls:
        out += ["Pitfalls:"] + [f"- {p}" for p in skill.pitfalls]
    if skill.files:
        out.append(f"Files in its folder (read_skill(\"{skill.name}\", file) opens one): {', '.join(skill.files[:20])}")
    return "\n".join(out)
