"""Measure the report classifier on a labelled set: ``python -m alerts.channels.evaluate [labelled.jsonl]``.

Two numbers, both printed with the method: (1) held-out — trained on the packaged seed only, tested on
every labelled report (what a new deployment gets on day one); (2) stratified k-fold cross-validation —
trained on the seed plus the other folds, as if dispatchers had corrected those reports (what it
reaches after corrections). Rules alone and the model alone are shown for comparison.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from sklearn.model_selection import StratifiedKFold

from alerts.channels.categories import Catalog, load_catalog
from alerts.channels.classifier import CORRECTION_WEIGHT, SEED_FILE, Example, ReportClassifier, load_examples
from alerts.config import AlertsConfig

REPO = Path(__file__).resolve().parents[2]


def demo_catalog() -> Catalog:
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text(encoding="utf-8"))
    return load_catalog(REPO / "config" / "report_categories.yaml", AlertsConfig.model_validate(demo["alerts"]))


def _score(clf: ReportClassifier, rows: list[Example]) -> tuple[float, float]:
    pred = clf.predict([r.text for r in rows])
    cat = sum(p[0] == r.category for p, r in zip(pred, rows)) / len(rows)
    urg = sum(p[1] == r.urgency for p, r in zip(pred, rows)) / len(rows)
    return cat, urg


def evaluate(labelled: list[Example], catalog: Catalog, seed: list[Example], folds: int = 5,
             random_state: int = 0) -> dict[str, dict[str, float]]:
    """Accuracy of category and urgency: held-out (seed → labelled) and k-fold CV (seed + folds → fold)."""
    out: dict[str, dict[str, float]] = {}
    variants = {"rules": dict(use_model=False), "model": dict(rule_weight=0.0), "rules+model": {}}
    for name, kw in variants.items():
        clf = ReportClassifier(catalog, **kw).fit(seed)
        cat, urg = _score(clf, labelled)
        out[f"heldout/{name}"] = {"category": round(cat, 4), "urgency": round(urg, 4), "n": len(labelled)}
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
        cats, urgs = [], []
        y = [r.category for r in labelled]
        for train, test in skf.split(labelled, y):
            corrections = [Example(labelled[i].text, labelled[i].category, labelled[i].urgency, CORRECTION_WEIGHT) for i in train]
            clf = ReportClassifier(catalog, **kw).fit(seed + corrections)
            c, u = _score(clf, [labelled[i] for i in test])
            cats.append(c * len(test))
            urgs.append(u * len(test))
        out[f"cv{folds}/{name}"] = {"category": round(sum(cats) / len(labelled), 4),
                                    "urgency": round(sum(urgs) / len(labelled), 4), "n": len(labelled)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("labelled", nargs="?", default=str(REPO / "tests" / "channels" / "data" / "labelled_reports.jsonl"))
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)
    result = evaluate(load_examples(Path(args.labelled)), demo_catalog(), load_examples(SEED_FILE), folds=args.folds)
    json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
