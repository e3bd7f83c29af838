"""QA scorecard on scripted EN/ES calls: item results, score, band, evidence, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from assist.analysis.base import CallContext
from assist.analysis.compliance import ComplianceAnalyser
from assist.events import ComplianceWarning
from assist.qa.calldata import CallData, Turn
from assist.qa.scorecard import Scorecard, override, score_call
from assist.qa.script import Script
from streaming.types import Speaker, Utterance, Word

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


LIVE_THREATS = [(1, 1.0, 2.0, "You could go to jail", False), (1, 1.0, 3.0, "You could go to jail for this.", True),
                (2, 4.0, 5.0, "You could go to jail", False), (2, 4.0, 6.0, "You could go to Chicago on Friday.", True)]


def live_threat_warnings() -> list[ComplianceWarning]:
    """The compliance analyser's events for LIVE_THREATS (interims and finals of two agent utterances): a
    threat heard in an interim is provisional, then the final confirms it or, no longer containing it,
    retracts it."""
    an = ComplianceAnalyser(CallContext("c", "en", "us", metadata={"identity_verified": True}), semantic=False)
    events = an.start()
    for seq, start, end, text, final in LIVE_THREATS:
        words = tuple(Word(w, start + i * 0.2, start + (i + 1) * 0.2) for i, w in enumerate(text.split()))
        events += an.on_utterance(Utterance(Speaker.AGENT, seq, start, end, text, words, "en", final))
    assert all(isinstance(e, ComplianceWarning) for e in events)
    return events  # type: ignore[return-value]


def test_gate_counts_a_live_warning_once_and_never_a_retracted_one() -> None:
    logged = [{**e.model_dump(mode="json"), "seq": n} for n, e in enumerate(live_threat_warnings(), 1)]
    assert [e["status"] for e in logged if e["rule_id"] == "US-THR-01"] == [
        "provisional", "confirmed", "provisional", "retracted"]
    turns = tuple(Turn("agent", start, end, text) for _, start, end, text, final in LIVE_THREATS if final)
    card = score_call(CallData("c", turns, tuple(logged), {"identity_verified": True}))
    assert [(g.why.split(":")[0], g.evidence[0].start) for g in card.gate] == [("US-THR-01", 1.0)]


def test_titles_in_both_languages_the_item_title_in_the_calls() -> None:
    es = [p for p in CALLS if p.stem.startswith("es_")][0]
    card = score_call(Script.load(es).call_data())
    c1 = card.item("C1")
    assert c1.title == c1.titles["es"] == "Petición de pago clara y respetuosa"
    assert c1.titles["en"] == "Clear, respectful request for payment"
    assert all(set(i.titles) == {"en", "es"} and all(i.titles.values()) for i in card.items)
    assert card.section_titles["negotiation"] == {"en": "Negotiation & resolution", "es": "Negociación y resolución"}
    assert {i.section for i in card.items} <= set(card.section_titles)
    again = Scorecard.from_dict(override(card, "C1", "fail").to_dict())
    assert again.item("C1").titles == c1.titles and again.section_titles == card.section_titles
    assert all(set(i.whys) == {"en", "es"} and i.why == i.whys["es"] for i in card.items)
    assert again.item("C1").whys == c1.whys
    en = score_call(Script.load(CALLS[0].parent / "en_wrong_number.yaml").call_data())
    assert en.item("C1").title == "Clear, respectful request for payment"
    assert en.item("A2").why == en.item("A2").whys["en"] == "the right party was not reached"
    assert en.item("A2").whys["es"] == "no se contactó con el titular"
