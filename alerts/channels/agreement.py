"""How far two careful people agree on a report's category and urgency — the ceiling a classifier is judged against
(issue #16): ``python -m alerts.channels.agreement [--json]``.

A second annotator relabelled independent writers' held-out reports from the same brief the writers had (the 18
categories and the urgency rules of tests/channels/data/README.md), without their labels. Their labels are in
``SECOND_ANNOTATOR`` by file and line (no text: the reports stay in their own files). Printed per file: agreement of
the two people (and Cohen's kappa), and the classifier's day-one accuracy against each of them, and how often the
annotator and the classifier call critical what the writer did not. Why: the urgency target (0.85), the category
target and "at most 1 in 10 other reports raised" were set without knowing what two people reach on the same wording;
where people reach it, the classifier's gap is the classifier's.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from sklearn.metrics import cohen_kappa_score

from alerts.channels.classifier import SEED_FILE, Example, ReportClassifier, load_examples
from alerts.channels.evaluate import DATA, demo_catalog

SECOND_ANNOTATOR = DATA / "second_annotator.jsonl"


@dataclass(frozen=True)
class Relabel:
    """The second annotator's labels for line ``line`` (1-based) of ``file``."""
    file: str
    line: int
    category: str
    urgency: str


@dataclass(frozen=True)
class Agreement:
    n: int
    category: float          # the two people on category
    category_kappa: float
    urgency: float           # the two people on urgency
    urgency_kappa: float
    critical_both: float     # of the writer's critical reports, the share the annotator also called critical
    raised_by_annotator: float  # of the writer's other reports, the share the annotator called critical
    classifier_category_writer: float
    classifier_category_annotator: float
    classifier_urgency_writer: float
    classifier_urgency_annotator: float
    classifier_raised_writer: float  # of the writer's other reports, the share the classifier called critical
    classifier_raised_both: float    # of the reports neither person called critical, the share the classifier did


def load_relabels(path: Path = SECOND_ANNOTATOR) -> list[Relabel]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(Relabel(**json.loads(line)))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{n}: not a relabel ({exc})") from None
    return rows


def pairs(relabels: list[Relabel]) -> dict[str, list[tuple[Example, Relabel]]]:
    """Writer's row and annotator's labels, by file."""
    out: dict[str, list[tuple[Example, Relabel]]] = {}
    cache: dict[str, list[str]] = {}
    for r in relabels:
        lines = cache.setdefault(r.file, (DATA / r.file).read_text(encoding="utf-8").splitlines())
        row = json.loads(lines[r.line - 1])
        out.setdefault(r.file, []).append((Example(row["text"], row["category"], row["urgency"]), r))
    return out


def agreement(rows: list[tuple[Example, Relabel]], suggested: list[tuple[str, str]]) -> Agreement:
    """``suggested``: the classifier's (category, urgency) for each row, in order."""
    n = len(rows)
    w_cat, a_cat = [w.category for w, _ in rows], [a.category for _, a in rows]
    w_urg, a_urg = [w.urgency for w, _ in rows], [a.urgency for _, a in rows]
    share = lambda xs, ys: sum(x == y for x, y in zip(xs, ys)) / n
    c_cat, c_urg = [c for c, _ in suggested], [u for _, u in suggested]
    critical = lambda u: u == "critical"
    writer_other = [(a, c) for w, a, c in zip(w_urg, a_urg, c_urg) if not critical(w)]
    return Agreement(n, share(w_cat, a_cat), float(cohen_kappa_score(w_cat, a_cat)), share(w_urg, a_urg),
                     float(cohen_kappa_score(w_urg, a_urg)),
                     _rate(critical(a) for w, a in zip(w_urg, a_urg) if critical(w)),
                     _rate(critical(a) for a, _ in writer_other),
                     share(c_cat, w_cat), share(c_cat, a_cat), share(c_urg, w_urg), share(c_urg, a_urg),
                     _rate(critical(c) for _, c in writer_other),
                     _rate(critical(c) for a, c in writer_other if not critical(a)))


def _rate(flags: Iterable[bool]) -> float:
    """The share of true flags (0 for none)."""
    flags = list(flags)
    return sum(flags) / max(1, len(flags))


def measure(relabels: list[Relabel]) -> dict[str, Agreement]:
    """Per file and ``all``: the two people, and the seed-only classifier against each."""
    clf = ReportClassifier(demo_catalog()).fit(load_examples(SEED_FILE))
    by_file = pairs(relabels)
    out, everything, suggested_all = {}, [], []
    for name, rows in by_file.items():
        suggested = clf.predict(w.text for w, _ in rows)
        out[name] = agreement(rows, suggested)
        everything += rows
        suggested_all += suggested
    out["all"] = agreement(everything, suggested_all)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    result = measure(load_relabels())
    if args.json:
        json.dump({k: asdict(v) for k, v in result.items()}, sys.stdout, indent=2)
        print()
        return 0
    print("two people = the writer and the second annotator; classifier = seed only, day one, against each of them")
    print("raised = of the other reports, the share called critical: by the annotator (of the writer's other), by the"
          " classifier (of the writer's other / of those neither person called critical)")
    print(f"{'file':<28}{'n':>5} │ {'two people: category (κ)':>25} {'urgency (κ)':>14} {'critical both':>14}"
          f" {'raised':>7} │ {'classifier category w / a':>27} {'urgency w / a':>15} {'raised w / both':>16}")
    for name, a in result.items():
        print(f"{name:<28}{a.n:>5} │ {a.category:>18.3f} ({a.category_kappa:.2f}) {a.urgency:>7.3f} ({a.urgency_kappa:.2f})"
              f" {a.critical_both:>14.3f} {a.raised_by_annotator:>7.3f} │ {a.classifier_category_writer:>19.3f} /"
              f" {a.classifier_category_annotator:.3f} {a.classifier_urgency_writer:>7.3f} / {a.classifier_urgency_annotator:.3f}"
              f" {a.classifier_raised_writer:>8.3f} / {a.classifier_raised_both:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
