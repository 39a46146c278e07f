"""Round 7d's danger model: a third safety-net signal (critical or not), trained on the seed plus the packaged
emergencies (``alerts/channels/data/emergency_reports.jsonl``). It may only raise a report to critical, never lower
one, and its emergencies must never include a held-out report (docs/CHANNELS.md, round 7d)."""
from __future__ import annotations

import pytest

import alerts.channels.classifier as classifier_module
from alerts.channels.classifier import EMERGENCY_FILE, SEED_FILE, ReportClassifier, load_examples
from alerts.channels.evaluate import EMERGENCY_DEVELOPMENT, HELDOUT, demo_catalog, later_heldout


@pytest.fixture(scope="module")
def catalog():
    return demo_catalog()


def test_packaged_emergencies_are_the_development_sets_and_no_held_out_report():
    packaged = load_examples(EMERGENCY_FILE)
    development = [r for p in EMERGENCY_DEVELOPMENT for r in load_examples(p)]
    assert [(r.text, r.category, r.urgency) for r in packaged] == [(r.text, r.category, r.urgency) for r in development]
    assert sum(r.urgency == "critical" for r in packaged) >= 300
    held = {r.text for r in load_examples(HELDOUT)} | {r.text for rows in later_heldout().values() for r in rows}
    assert not {r.text for r in packaged} & held


@pytest.mark.timeout(180)
def test_danger_model_raises_emergencies_the_other_signals_miss_and_lowers_none(catalog, monkeypatch):
    """On the demoted fourteenth file (emergencies first): every report critical without the danger model stays
    critical with it, and with it every critical report is caught, more than without. (Round 8: the lexicon's new
    families catch 69 of its 71 without the model, so the margin is no longer 5.)"""
    rows = load_examples(next(p for p in EMERGENCY_DEVELOPMENT if p.name == "tuning_round7d.jsonl"))
    seed = load_examples(SEED_FILE)
    with_model = [s.urgency for s in map(ReportClassifier(catalog).fit(seed).suggest, (r.text for r in rows))]
    monkeypatch.setattr(classifier_module, "DANGER_MODEL_P", 2.0)   # above any probability: the signal is off
    off = ReportClassifier(catalog).fit(seed)
    assert off.danger_probability("楼里着火了") == 0.0   # switched off, no model is fitted
    without = [s.urgency for s in map(off.suggest, (r.text for r in rows))]
    assert all(w == "critical" for o, w in zip(without, with_model) if o == "critical")
    caught = lambda urgencies: sum(u == "critical" for u, r in zip(urgencies, rows) if r.urgency == "critical")
    assert caught(with_model) == sum(r.urgency == "critical" for r in rows) > caught(without), (caught(with_model), caught(without))


def test_danger_model_learns_from_the_training_rows(catalog):
    """A dispatcher's critical corrections reach the danger model (``fit`` trains it on the rows it is given)."""
    clf = ReportClassifier(catalog).fit(load_examples(SEED_FILE))
    text = clf.lexicon.normalise("咕噜咕噜冒泡泡的那口井旁边")
    before = clf.danger_probability(text)
    taught = [classifier_module.Example("咕噜咕噜冒泡泡的那口井旁边", "0303", "critical", 8.0)]
    clf.fit(load_examples(SEED_FILE) + taught)
    assert clf.danger_probability(text) > before + 0.2, (before, clf.danger_probability(text))


def test_a_file_left_out_of_the_emergencies_is_not_learnt(catalog):
    """``evaluate --emergencies-left-out`` scores each emergency file with a danger model that never saw it: its
    reports then look less like the model's own training rows than with the packaged emergencies."""
    rows = load_examples(EMERGENCY_DEVELOPMENT[-1])
    texts = {r.text for r in rows}
    seed = load_examples(SEED_FILE)
    packaged = ReportClassifier(catalog).fit(seed)
    left_out = ReportClassifier(catalog, emergencies=tuple(e for e in load_examples(EMERGENCY_FILE) if e.text not in texts)).fit(seed)
    critical = [packaged.lexicon.normalise(r.text) for r in rows if r.urgency == "critical"]
    mean = lambda clf: sum(map(clf.danger_probability, critical)) / len(critical)
    assert mean(left_out) < mean(packaged) - 0.05, (mean(left_out), mean(packaged))
