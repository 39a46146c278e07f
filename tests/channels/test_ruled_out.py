"""A report that rules a danger out ("不是着火", "消防演习", "是误会") clears only what it rules out: harm to a person in
the same report, or another danger it does not name, stays critical with its line first (the safety net)."""
from __future__ import annotations

import pytest

from alerts.channels.classifier import ReportClassifier, load_examples, SEED_FILE
from alerts.channels.evaluate import demo_catalog


@pytest.fixture(scope="module")
def clf() -> ReportClassifier:
    return ReportClassifier(demo_catalog()).fit(load_examples(SEED_FILE))


@pytest.mark.parametrize("text, line", [
    ("不是着火，是煤气味很浓，头都晕了", "119"),          # rules out a fire, reports gas
    ("消防演习的时候有个老师晕倒了叫不醒", "120"),        # a drill, and a person down in it
    ("是误会，不是打架，但是有人拿刀了", "110"),          # a misunderstanding about a fight, a knife now
])
def test_a_danger_the_report_does_not_rule_out_stays_critical(clf: ReportClassifier, text: str, line: str) -> None:
    s = clf.suggest(text)
    assert s.urgency == "critical" and s.handovers[0]["line"] == line, (s.urgency, s.handovers, s.dangers)


@pytest.mark.parametrize("text", ["以为着火了，其实是邻居烧腊肉", "虚惊一场，刚才是误报", "查了说是下水道返味，不是漏气"])
def test_what_the_report_rules_out_is_not_raised(clf: ReportClassifier, text: str) -> None:
    assert clf.suggest(text).urgency != "critical"


@pytest.mark.parametrize("text", ["灶台都关着没开火，可燃气表还在一格一格地走", "没开火也没用热水器，燃气表转个不停"])
def test_a_negation_that_denies_no_danger_leaves_the_suspicion(clf: ReportClassifier, text: str) -> None:
    """“没开火” (nothing lit) with a gas meter turning is a leak sign, not a denial of one: still critical, 119 first."""
    s = clf.suggest(text)
    assert s.urgency == "critical" and s.handovers[0]["line"] == "119", (s.urgency, s.handovers)


def test_a_denial_of_the_danger_itself_is_not_raised(clf: ReportClassifier) -> None:
    assert clf.suggest("没有闻到煤气味，就是燃气表好像走得快").urgency != "critical"
