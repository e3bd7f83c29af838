"""Meaning heads on benchmarks/data/compliance_eval with the real packaged encoder. DEV split (fitted
since issue 15's second pass, so in-sample; the thresholds are picked by cross-validation over train +
dev, benchmarks/cv_intent.py): floors just under the measured numbers. HOLDOUT split (written before the
issue-15 tuning, never fitted or tuned on; scored once at the end of each of the two passes): the
issue-15 targets as passing tests where met, as strict xfails where not.
Measured numbers: benchmarks/results/compliance_eval.json."""

from __future__ import annotations

from functools import cache

import pytest

from benchmarks import compliance_eval as ev
from streaming.types import Speaker

TARGET_PR = 0.90
TARGET_TOP1 = 0.85
TARGET_FALSE_RAISE = 0.05
# measured (benchmarks/results/compliance_eval.json):
#   first pass (heads fitted on train, thresholds chosen on dev):
#     dev      compliance en P 0.86 R 0.82, es P 0.93 R 0.92; cards en 0.85 / 1.0 %, es 0.94 / 9.8 %
#     holdout  compliance en P 0.93 R 0.897, es P 0.91 R 0.92; cards en 0.89 / 23.5 % (4 of 17),
#              es 0.94 / 5.9 % (1 of 17)
#   second pass (fitted on train + dev, thresholds picked by cross-validation over both):
#     dev      (in-sample) compliance en P 0.93 R 1.00, es P 0.97 R 0.99; cards en 1.00 / 0 %, es 1.00 / 9.8 %
#     holdout  compliance en P 0.890 (73 of 82) R 0.94, es P 0.92 R 0.95; cards en 0.87 / 17.6 % (3 of 17),
#              es 0.92 / 5.9 % (1 of 17)
FLOOR = {"dev": {"en": (0.90, 0.97), "es": (0.94, 0.96)},
         "holdout": {"en": (0.88, 0.92), "es": (0.90, 0.93)}}  # (precision, recall) per split and language
CARD_FLOOR = {"dev": {"en": (0.97, 0.02), "es": (0.97, 0.12)},
              "holdout": {"en": (0.86, 0.18), "es": (0.91, 0.06)}}  # (top-1, most raised on none)
MIN_NONE_LINES = {"dev": 60, "holdout": 35}


@cache
def _lines(split: str) -> list[ev.EvalLine]:
    return ev.load_lines(split)


@cache
def _compliance(split: str) -> tuple[dict[str, ev.Tally], list[str]]:
    tallies, errors = ev.score_compliance(_lines(split))
    return ev.by_language(tallies), errors


@cache
def _cards(split: str) -> tuple[dict[str, dict[str, float]], list[str]]:
    return ev.score_prompts([ln for ln in _lines(split) if ln.speaker is Speaker.DEBTOR])


@pytest.mark.parametrize("split", ["dev", "holdout"])
def test_split_covers_every_family_and_card_in_both_languages(split) -> None:
    lines = _lines(split)
    for lang in ("en", "es"):
        ours = [ln for ln in lines if ln.language == lang]
        assert len({ln.rule for ln in ours if ln.rule}) == 15, lang
        assert len({ln.card for ln in ours if ln.card}) == 12, lang
        assert sum(ln.rule is None and ln.card is None for ln in ours) >= MIN_NONE_LINES[split], lang
    assert {ln.region for ln in lines} == set(ev.JURISDICTION)


def test_holdout_shares_no_line_with_train_or_dev() -> None:
    seen = {ln.text.lower() for split in ("train", "dev") for ln in _lines(split)}
    assert not [ln.text for ln in _lines("holdout") if ln.text.lower() in seen]


@pytest.mark.parametrize(("split", "lang"), [(s, lang) for s in ("dev", "holdout") for lang in ("en", "es")])
def test_compliance_precision_and_recall_hold_their_floor(split, lang) -> None:
    by_lang, errors = _compliance(split)
    t, (precision, recall) = by_lang[lang], FLOOR[split][lang]
    assert t.precision >= precision and t.recall >= recall, (t, errors)


@pytest.mark.parametrize(("split", "lang"), [(s, lang) for s in ("dev", "holdout") for lang in ("en", "es")])
def test_prompt_cards_hold_their_floor(split, lang) -> None:
    scores, errors = _cards(split)
    top1, false_raise = CARD_FLOOR[split][lang]
    assert scores[lang]["top1"] >= top1 and scores[lang]["false_raise"] <= false_raise, (scores, errors)


@pytest.mark.parametrize("lang", [
    pytest.param("en", marks=pytest.mark.xfail(
        strict=True, reason="issue 15 second pass: holdout EN precision 0.890 (73 of 82; 0.93 in the first pass)")),
    "es",
])
def test_holdout_compliance_precision_meets_the_issue_target(lang) -> None:
    assert _compliance("holdout")[0][lang].precision >= TARGET_PR


@pytest.mark.parametrize("lang", ["en", "es"])
def test_holdout_compliance_recall_meets_the_issue_target(lang) -> None:
    assert _compliance("holdout")[0][lang].recall >= TARGET_PR


@pytest.mark.parametrize("lang", ["en", "es"])
def test_holdout_prompt_cards_top1_meets_the_issue_target(lang) -> None:
    assert _cards("holdout")[0][lang]["top1"] >= TARGET_TOP1


@pytest.mark.xfail(strict=True, reason="issue 15: holdout cards raised on 3 of 17 EN and 1 of 17 ES none-lines")
def test_holdout_prompt_cards_false_raises_meet_the_issue_target() -> None:
    assert all(s["false_raise"] <= TARGET_FALSE_RAISE for s in _cards("holdout")[0].values())
