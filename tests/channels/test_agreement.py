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
