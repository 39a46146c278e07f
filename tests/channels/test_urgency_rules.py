"""Urgency follows the rules every writer was given (tests/channels/data/README.md, "Urgency labels"), in sentences
of our own: high for harm that is not yet a danger to life, normal for ongoing nuisances, low for questions and
long-standing matters. Why: the classifier had rated the rule's high cases normal when worded differently."""
import pytest

from alerts.channels.classifier import SEED_FILE, ReportClassifier, load_examples
from alerts.channels.evaluate import demo_catalog


@pytest.fixture(scope="module")
def classifier():
    return ReportClassifier(demo_catalog()).fit(load_examples(SEED_FILE))

HIGH = [
    "我外婆出门买菜走丢了，到现在都没回来",             # a confused elder missing
    "菜市场有人掏包，被我看见了",                       # theft
    "小区门口两个人打成一团，薅头发扇耳光",               # a fight without weapons
    "马路边的水管崩开了，水柱冲得老高",                   # a burst main
    "工地门口聚了几十号人讨工钱，越围越多",               # a crowd that may turn
]
NORMAL = [
    "隔壁烧烤摊每天晚上吵到十二点",                       # noise
    "楼下商铺把货摆到人行道上卖，行人要绕着走",           # a stall
]
LOW = [
    "想知道社区的老年证去哪里办，要带什么材料",           # a question
]


@pytest.mark.parametrize("text", HIGH)
def test_rule_high_cases_are_high(classifier, text):
    assert classifier.suggest(text).urgency == "high"


@pytest.mark.parametrize("text", NORMAL)
def test_ongoing_nuisances_are_normal(classifier, text):
    assert classifier.suggest(text).urgency == "normal"


@pytest.mark.parametrize("text", LOW)
def test_questions_are_low(classifier, text):
    assert classifier.suggest(text).urgency == "low"

