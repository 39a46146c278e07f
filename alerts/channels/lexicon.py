"""What people say, as concepts: 臭鸡蛋味/煤气味/一股味 → gas, 喘不上气/叫不醒 → medical, 冒烟/烧起来 → fire.

``data/lexicon.yaml`` lists, per concept, plain words and regular expressions for split phrases, the
categories it is evidence for, whether it is a danger sign (→ critical, with its emergency line) and
``with``/``unless`` context words. A match preceded in its clause by a negation (“没有闻到煤气味”) does not
count. The matches are the classifier's reasons: they are shown to the dispatcher as matched words.
``variants`` maps dialect words and homophone typos to the standard form (``Lexicon.normalise``).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

LEXICON_FILE = Path(__file__).resolve().parent / "data" / "lexicon.yaml"
_CLAUSE_END = re.compile(r"[，,。.!！?？;；、\s]|但是|但|不过|可是")   # spaces too: “未戴头盔 昏迷” is two clauses
NEGATION_WINDOW = 6   # characters before a match, within its clause, searched for a negation


class LexiconError(ValueError):
    """The lexicon file is wrong; the message names the file and the concept."""


class _Concept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    categories: list[str] = Field(default_factory=list)
    danger: bool = False
    clears: bool = False
    handover: str | None = None
    urgency: str | None = None
    strong: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    with_: list[str] = Field(default_factory=list, alias="with")
    unless: list[str] = Field(default_factory=list)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    negations: list[str] = Field(default_factory=list)
    variants: dict[str, str] = Field(default_factory=dict)
    concepts: dict[str, _Concept]


@dataclass(frozen=True)
class Concept:
    name: str
    label: str
    categories: tuple[str, ...]
    danger: bool
    handover: str | None
    urgency: str | None
    strong: tuple[str, ...]
    words: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    with_: tuple[str, ...]
    unless: tuple[str, ...]
    clears: bool = False


@dataclass(frozen=True)
class Hit:
    """One concept found in a report: which words said it (the reason shown to the dispatcher)."""

    concept: str
    label: str
    words: tuple[str, ...]
    danger: bool
    handover: str | None
    categories: tuple[str, ...]
    urgency: str | None
    clears: bool = False   # the report says the danger is not there (“不是着火哈”, “是误会”, “消防演习”)

    @property
    def strength(self) -> float:
        """Longer and more numerous matched words are stronger evidence."""
        return sum(len(w) ** 0.5 for w in self.words)


@dataclass
class Lexicon:
    concepts: dict[str, Concept]
    negations: tuple[str, ...] = ()
    words: set[str] = field(default_factory=set)
    variants: dict[str, str] = field(default_factory=dict)
    _variant_re: re.Pattern[str] | None = None

    def normalise(self, text: str) -> str:
        """Dialect words and common homophone typos to the everyday standard form (咋整 → 怎么办, 拉圾 → 垃圾,
        着活 → 着火), in one pass, longest variant first, so that the model and the concepts see one spelling
        for one meaning whoever typed it."""
        if not self.variants:
            return text
        if self._variant_re is None:
            keys = sorted(self.variants, key=len, reverse=True)
            self._variant_re = re.compile("|".join(re.escape(k) for k in keys))
        return self._variant_re.sub(lambda m: self.variants[m.group(0)], text)

    def mentions(self, text: str, word: str) -> bool:
        """``word`` occurs in ``text`` at least once not negated."""
        i = text.find(word)
        while i >= 0:
            if not self._negated(text, i):
                return True
            i = text.find(word, i + 1)
        return False

    def _negated(self, text: str, start: int) -> bool:
        clause_start = 0
        for m in _CLAUSE_END.finditer(text, 0, start):
            clause_start = m.end()
        # “是不是着火了” asks whether it burns: that 不是 is no denial.
        before = text[max(clause_start, start - NEGATION_WINDOW):start].replace("是不是", "")
        # “打不着火” / “没冒烟”: a 不/没 right before the match negates it too.
        # “怕着火” / “怕漏气” is a fear, not a report of it (“怕是漏气了” — probably — has 是 in between).
        return any(n in before for n in self.negations) or (start > 0 and text[start - 1] in "不没未怕")

    def _find(self, c: Concept, text: str, weak: bool = True) -> list[str]:
        found: list[str] = []
        for w in (c.strong + c.words) if weak else c.strong:
            i = text.find(w)
            while i >= 0:
                if not self._negated(text, i):
                    found.append(w)
                    break
                i = text.find(w, i + 1)
        for p in c.patterns if weak else ():
            for m in p.finditer(text):
                if not self._negated(text, m.start()):
                    found.append(m.group(0))
                    break
        # A word inside a longer matched word is the same evidence: keep the longest.
        found = sorted(set(found), key=len, reverse=True)
        return [w for i, w in enumerate(found) if not any(w in longer for longer in found[:i])]

    def hits(self, text: str) -> list[Hit]:
        """Every concept the text shows, dangers first."""
        out = []
        for c in self.concepts.values():
            # ``unless`` and ``with`` qualify the weak words and patterns; strong words always count.
            weak = not (c.unless and any(u in text for u in c.unless)) and not (c.with_ and not any(w in text for w in c.with_))
            words = self._find(c, text, weak)
            if words:
                out.append(Hit(c.name, c.label, tuple(words), c.danger, c.handover, c.categories, c.urgency, c.clears))
        out.sort(key=lambda h: (not h.danger, -h.strength))
        return out


def _nfkc(node: object) -> object:
    """Every string of the file in NFKC, the form the classifier reads (``，`` → ``,``): without it a full-width
    comma in a pattern's ``[^，。]`` never meets the text's ``,``, so patterns ran across clauses."""
    if isinstance(node, str):
        return unicodedata.normalize("NFKC", node)
    if isinstance(node, list):
        return [_nfkc(x) for x in node]
    if isinstance(node, dict):
        return {_nfkc(k): _nfkc(v) for k, v in node.items()}
    return node


def load_lexicon(path: Path = LEXICON_FILE) -> Lexicon:
    try:
        parsed = _File.model_validate(_nfkc(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}))
    except yaml.YAMLError as exc:
        raise LexiconError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LexiconError(f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    concepts: dict[str, Concept] = {}
    for name, c in parsed.concepts.items():
        try:
            patterns = tuple(re.compile(p) for p in c.patterns)
        except re.error as exc:
            raise LexiconError(f"{path}: concept {name}: bad pattern: {exc}") from None
        concepts[name] = Concept(name, c.label, tuple(c.categories), c.danger, c.handover, c.urgency,
                                 tuple(w for w in c.strong if w), tuple(w for w in c.words if w), patterns, tuple(c.with_), tuple(c.unless),
                                 c.clears)
    words = {w for c in concepts.values() for w in c.strong + c.words if len(w) > 1}
    bad = [k for k in parsed.variants if not k or not parsed.variants[k]]
    if bad:
        raise LexiconError(f"{path}: variants: empty variant or standard form for {bad[0]!r}")
    return Lexicon(concepts, tuple(sorted(parsed.negations, key=len, reverse=True)), words, dict(parsed.variants))


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    return load_lexicon(LEXICON_FILE)
