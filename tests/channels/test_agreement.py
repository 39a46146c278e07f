"""The second annotator's labels (``alerts.channels.agreement``): they point at real held-out rows, use only the
catalog's labels, and the agreement figures are computed as their definitions say."""
from __future__ import annotations

from collections import Counter

import pytest

from alerts.channels.agreement import Relabel, agreement, load_relabels, pairs
from alerts.channels.categories import URGENCIES
from alerts.channels.classifier import Example
from alerts.channels.evaluate import demo_catalog


def test_relabels_cover_independent_writers_files_with_valid_labels():
    relabels = load_relabels()
    labels = set(demo_catalog().labels())
    assert all(r.category in labels and r.urgency in URGENCIES for r in relabels)
    assert len({(r.file, r.line) for r in relabels}) == len(relabels)        # one relabel per report
    per_file = Counter(r.file for r in relabels)
    assert len(per_file) >= 6 and sum(per_file.values()) >= 830, per_file
    for name, rows in pairs(relabels).items():                               # every line is a labelled report
        assert all(w.text and w.category in labels for w, _ in rows), name


def test_agreement_counts_as_defined():
    rows = [(Example("a", "0102", "low"), Relabel("f", 1, "0102", "normal")),
            (Example("b", "0303", "critical"), Relabel("f", 2, "0303", "critical")),
            (Example("c", "0303", "critical"), Relabel("f", 3, "0302", "high")),
            (Example("d", "0205", "normal"), Relabel("f", 4, "0205", "normal"))]
    got = agreement(rows, [("0102", "low"), ("0303", "critical"), ("0302", "critical"), ("0206", "normal")])
    assert (got.n, got.category, got.urgency, got.critical_both) == (4, 0.75, 0.5, 0.5)
    assert (got.classifier_category_writer, got.classifier_category_annotator) == (0.5, 0.75)
    assert (got.classifier_urgency_writer, got.classifier_urgency_annotator) == (1.0, 0.5)
    assert got.category_kappa == pytest.approx(2 / 3)   # p_o 0.75, p_e (1·1 + 2·1 + 1·1) / 16 = 0.25


def test_raised_shares_count_as_defined():
    """How often a person, and the classifier, call critical what the writer did not: the human side of the target
    "at most 1 in 10 other reports raised"."""
    rows = [(Example("a", "0205", "normal"), Relabel("f", 1, "0303", "critical")),
            (Example("b", "0402", "high"), Relabel("f", 2, "0402", "high")),
            (Example("c", "0102", "low"), Relabel("f", 3, "0102", "low")),
            (Example("d", "0205", "normal"), Relabel("f", 4, "0205", "normal")),
            (Example("e", "0301", "critical"), Relabel("f", 5, "0301", "critical"))]
    got = agreement(rows, [("0303", "critical"), ("0402", "critical"), ("0102", "low"), ("0205", "normal"),
                           ("0301", "critical")])
    assert (got.raised_by_annotator, got.classifier_raised_writer) == (0.25, 0.5)
    assert got.classifier_raised_both == pytest.approx(1 / 3)   # b, c, d: neither person says critical; b is raised
