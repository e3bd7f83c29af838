"""QA scorecard on scripted EN/ES calls: item results, score, band, evidence, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from assist.qa.scorecard import Scorecard, override, score_call
from assist.qa.script import Script

CALLS = sorted((Path(__file__).parent / "data" / "qa_calls").glob("*.yaml"))


@pytest.mark.parametrize("path", CALLS, ids=lambda p: p.stem)
def test_scripted_call_items_and_band(path: Path) -> None:
    script = Script.load(path)
    card = score_call(script.call_data())
    got = {i.id: i.result for i in card.items}
    assert {k: got[k] for k in script.expect["items"]} == script.expect["items"]
    if "band" in script.expect:
        assert card.band == script.expect["band"]
    if "score" in script.expect:
        assert card.score == script.expect["score"]
    assert card.compliance_fail == script.expect.get("compliance_fail", False)


def test_every_item_has_a_reason_and_failures_quote_the_call() -> None:
    script = Script.load(Path(__file__).parent / "data" / "qa_calls" / "en_threat_refusal.yaml")
    card = score_call(script.call_data())
    texts = {t[3] for t in script.turns}
    assert all(i.why for i in card.items)
    assert [g.evidence[0].quote for g in card.gate] == ["If you don't pay we will have you arrested."]
    quoted = [q for i in card.items if i.result == "fail" for q in i.evidence]
    assert quoted and all(q.quote in texts for q in quoted)
    assert all(q.start < q.end for q in quoted)


def test_na_items_leave_the_denominator() -> None:
    card = score_call(Script.load(CALLS[0].parent / "en_wrong_number.yaml").call_data())
    applicable = sum(i.points for i in card.items if i.result != "na")
    earned = sum(i.earned for i in card.items)
    assert applicable < 100
    assert card.score == round(100 * earned / applicable, 1)


def test_override_recomputes_score_and_gate() -> None:
    card = score_call(Script.load(CALLS[0].parent / "en_threat_refusal.yaml").call_data())
    gate_id = card.gate[0].id
    cleared = override(card, gate_id, "pass")
    assert card.band == "compliance_fail" and not cleared.compliance_fail
    assert cleared.band == "below_standard"
    a1 = override(card, "A1", "pass")
    assert a1.score > card.score
    assert Scorecard.from_dict(a1.to_dict()).to_dict() == a1.to_dict()
    with pytest.raises(ValueError):
        override(card, "A1", "maybe")  # type: ignore[arg-type]
