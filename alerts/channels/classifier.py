"""Suggest a category and an urgency for a report's Chinese text: keyword rules plus a learnt model.

The rule half reads the keywords of ``report_categories.yaml`` (works from day one, explainable: the
matched words are returned). The learnt half is a scikit-learn pipeline — character 1–3-gram TF-IDF
(Chinese needs no word segmentation this way) into a multinomial logistic regression — trained on the
packaged seed reports plus every correction dispatchers made (weighted higher, newest wins), so it
learns the district's own words. The two are blended; the suggestion always carries its confidence
and the runner-up categories, and a dispatcher's override is stored and used at the next retrain.
Accuracy on the labelled set is measured by ``python -m alerts.channels.evaluate`` (docs/CHANNELS.md).
"""
from __future__ import annotations

import json
import logging
import threading
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import Pipeline

from alerts.channels.categories import URGENCIES, URGENCY_LABELS, Catalog

log = logging.getLogger("alerts.channels")

SEED_FILE = Path(__file__).resolve().parent / "data" / "seed_reports.jsonl"
RULE_WEIGHT = 0.45          # share of the keyword rules in the blended category distribution
URGENCY_RULE_WEIGHT = 0.3
CATEGORY_PRIOR_WEIGHT = 0.3  # the category's configured severity as a prior on urgency
CORRECTION_WEIGHT = 1.0     # a dispatcher's correction counts this many seed examples
MODEL = "lr"                # "lr" (logistic regression) or "cnb" (complement naive Bayes)


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    urgency: str = "normal"
    weight: float = 1.0


def load_examples(path: Path) -> list[Example]:
    """Labelled reports, one JSON object per line: {"text", "category", "urgency"}."""
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(Example(str(row["text"]), str(row["category"]), str(row.get("urgency", "normal"))))
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{path}:{n}: not a labelled report ({exc})") from None
    return out


@dataclass
class Suggestion:
    category: str
    category_name: str
    confidence: float
    urgency: str
    urgency_label: str
    urgency_confidence: float
    handover: str | None
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    method: str = "rules+model"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _norm(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isalnum())


def _make_pipeline(kind: str | None = None) -> Pipeline:
    clf = ComplementNB(alpha=0.3) if (kind or MODEL) == "cnb" else LogisticRegression(C=5.0, max_iter=500)
    return Pipeline([
        ("tfidf", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1)),
        ("clf", clf),
    ])


class ReportClassifier:
    """Category + urgency suggestions; ``fit`` may be called again at any time (thread-safe swap)."""

    def __init__(self, catalog: Catalog, *, rule_weight: float = RULE_WEIGHT, use_model: bool = True):
        self.catalog = catalog
        self.labels = catalog.labels()
        self.rule_weight = rule_weight
        self.use_model = use_model
        self._cat_model: Pipeline | None = None
        self._urg_model: Pipeline | None = None
        self._lock = threading.Lock()
        self.trained_on = 0
        self.memory: dict[str, tuple[str, str]] = {}   # normalised text → (category, urgency) a dispatcher chose
        self._kw = {c: [k for k in catalog.get(c).keywords] for c in self.labels}

    # -- training ----------------------------------------------------------------------------
    def fit(self, examples: Iterable[Example]) -> "ReportClassifier":
        """Train on these examples (those of unknown categories are skipped); returns self."""
        rows = [e for e in examples if e.category in self._kw and e.text.strip()]
        cat_model = urg_model = None
        if self.use_model and len({e.category for e in rows}) >= 2:
            texts = [e.text for e in rows]
            weights = np.array([e.weight for e in rows])
            cat_model = _make_pipeline().fit(texts, [e.category for e in rows], clf__sample_weight=weights)
            urg = [e.urgency if e.urgency in URGENCIES else "normal" for e in rows]
            if len(set(urg)) >= 2:
                urg_model = _make_pipeline().fit(texts, urg, clf__sample_weight=weights)
        with self._lock:
            self._cat_model, self._urg_model, self.trained_on = cat_model, urg_model, len(rows)
        log.info("report classifier trained on %d examples", len(rows))
        return self

    def remember(self, corrections: dict[str, tuple[str, str]]) -> None:
        """Texts dispatchers classified by hand: the same text again gets their answer, not a guess."""
        self.memory = {_norm(t): v for t, v in corrections.items() if v[0] in self._kw}

    # -- the two halves ------------------------------------------------------------------------
    def rule_scores(self, text: str) -> tuple[np.ndarray, list[str]]:
        """Keyword evidence per label (longer keywords weigh more), normalised; zeros when nothing matched."""
        scores = np.zeros(len(self.labels))
        matched: list[str] = []
        for i, code in enumerate(self.labels):
            for kw in self._kw[code]:
                if kw and kw in text:
                    scores[i] += len(kw) ** 0.5
                    matched.append(kw)
        total = scores.sum()
        return (scores / total if total else scores), sorted(set(matched), key=matched.index)

    def _model_probs(self, model: Pipeline | None, text: str, classes: list[str]) -> np.ndarray | None:
        if model is None:
            return None
        proba = model.predict_proba([text])[0]
        out = np.zeros(len(classes))
        index = {c: i for i, c in enumerate(classes)}
        for c, p in zip(model.classes_, proba):
            if c in index:
                out[index[c]] = p
        return out

    def category_probs(self, text: str) -> tuple[np.ndarray, list[str], str]:
        rules, matched = self.rule_scores(text)
        with self._lock:
            model = self._cat_model
        probs = self._model_probs(model, text, self.labels)
        if probs is None:
            if rules.sum() == 0:
                return np.full(len(self.labels), 1.0 / len(self.labels)), matched, "none"
            return rules, matched, "rules"
        if rules.sum() == 0:
            return probs, matched, "model"
        return (1 - self.rule_weight) * probs + self.rule_weight * rules, matched, "rules+model"

    def urgency_probs(self, text: str, category: str) -> np.ndarray:
        rules = np.zeros(len(URGENCIES))
        for i, level in enumerate(URGENCIES):
            for kw in self.catalog.urgency_keywords.get(level, ()):
                if kw in text:
                    rules[i] += 1.0
        with self._lock:
            model = self._urg_model
        probs = self._model_probs(model, text, list(URGENCIES))
        cat = self.catalog.get(category)
        prior = np.array([1.0 if u == (cat.severity if cat else "normal") else 0.0 for u in URGENCIES])
        probs = prior if probs is None else (1 - CATEGORY_PRIOR_WEIGHT) * probs + CATEGORY_PRIOR_WEIGHT * prior
        if rules.sum():
            # The most severe level whose words appear dominates the rule half.
            top = max(i for i, v in enumerate(rules) if v)
            rule_dist = np.zeros(len(URGENCIES))
            rule_dist[top] = 1.0
            probs = (1 - URGENCY_RULE_WEIGHT) * probs + URGENCY_RULE_WEIGHT * rule_dist
        return probs

    # -- the suggestion ------------------------------------------------------------------------
    def suggest(self, text: str) -> Suggestion:
        """The best category and urgency for ``text``, with confidences, runner-ups and the matched words."""
        text = (text or "").strip()
        known = self.memory.get(_norm(text))
        if known is not None:
            cat, urg = known
            return Suggestion(category=cat, category_name=self.catalog.name(cat), confidence=1.0, urgency=urg,
                              urgency_label=URGENCY_LABELS.get(urg, urg), urgency_confidence=1.0,
                              handover=self.catalog.handover(cat), method="correction")
        probs, matched, method = self.category_probs(text)
        order = np.argsort(-probs)
        best = self.labels[int(order[0])]
        urg = self.urgency_probs(text, best)
        u = int(np.argmax(urg))
        alts = [{"code": self.labels[int(i)], "name": self.catalog.name(self.labels[int(i)]),
                 "confidence": round(float(probs[int(i)]), 3)} for i in order[1:4] if probs[int(i)] > 0.01]
        return Suggestion(category=best, category_name=self.catalog.name(best), confidence=round(float(probs[order[0]]), 3),
                          urgency=URGENCIES[u], urgency_label=URGENCY_LABELS[URGENCIES[u]],
                          urgency_confidence=round(float(urg[u]), 3), handover=self.catalog.handover(best),
                          alternatives=alts, matched=matched[:10], method=method)

    def predict(self, texts: Iterable[str]) -> list[tuple[str, str]]:
        out = []
        for t in texts:
            s = self.suggest(t)
            out.append((s.category, s.urgency))
        return out
