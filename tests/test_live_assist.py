"""A scripted collections call, spoken by packaged TTS voices, drives the live assist end to end.

The audio goes through the same path as a real call (Twilio mu-law 8 kHz -> VAD -> whisper tiny.en);
warnings and prompts come from what whisper heard, not from the script.
"""

from __future__ import annotations

import pytest

from assist.democall import collections_call, collections_metadata
from tests.test_end_to_end import finals, stream_call


@pytest.fixture(scope="module")
def events(english_service) -> list[dict]:
    agent, debtor, _ = collections_call("en")
    return stream_call(english_service, "twilio", agent, debtor, "collections-en", collections_metadata("en"))


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


def test_the_call_is_heard(events):
    assert "garnish your wages" in finals(events, "agent").lower()
    assert "lost my job" in finals(events, "debtor").lower()


def test_threats_raise_critical_warnings_quoting_the_agent(events):
    warnings = {w["rule_id"]: w for w in of_type(events, "compliance.warning")}
    for rule in ("US-THR-02", "US-THR-03"):
        assert warnings[rule]["severity"] == "critical"
        assert warnings[rule]["speaker"] == "agent"
        assert warnings[rule]["citation"].startswith("15 USC 1692e")
    assert "garnish" in warnings["US-THR-02"]["evidence"]["quote"]


def test_missing_disclosures_are_flagged(events):
    rules = {w["rule_id"] for w in of_type(events, "compliance.warning")}
    # California is all-party consent: no recording notice in the first 15 s; no mini-Miranda at all
    assert {"US-REC-01", "US-MM-01"} <= rules
    assert "US-3P-01" not in rules  # the debtor confirmed who she is before the debt was named


def test_hardship_and_hang_up_threat_bring_prompt_cards(events):
    cards = [p["card_id"] for p in of_type(events, "prompt")]
    assert "lost_job" in cards
    assert "angry_hang_up" in cards
    assert not any("i can pay" in p["evidence"]["quote"].lower() for p in of_type(events, "prompt"))
    lost_job = next(p for p in of_type(events, "prompt") if p["card_id"] == "lost_job")
    hardship = next(e for e in of_type(events, "transcript.final") if "lost my job" in e["text"].lower())
    # raised while the debtor spoke (from an interim) or when the sentence closed, never later
    assert hardship["start"] < lost_job["t"] <= hardship["end"] + 0.05


def test_style_turns_aggressive_after_the_threat(events):
    styles = of_type(events, "style")
    assert styles[0]["band"] == "balanced"
    assert styles[-1]["band"] == "too_aggressive"
    assert any("threat" in reason for reason in styles[-1]["reasons"])


def test_debtor_stress_rises_and_sentiment_turns_negative(events):
    stress = [s for s in of_type(events, "stress") if s["speaker"] == "debtor"]
    assert len(stress) >= 2 and max(s["level"] for s in stress) > stress[0]["level"]
    debtor_sentiment = [s["score"] for s in of_type(events, "sentiment") if s["speaker"] == "debtor"]
    assert debtor_sentiment[0] > -0.3 and min(debtor_sentiment) < -0.5


def test_the_call_fails_qa_on_compliance_and_is_categorised(events):
    qa = of_type(events, "qa.score")[-1]
    card, category = qa["scorecard"], qa["category"]
    assert card["band"] == "compliance_fail"
    failed_rules = {g["why"].split(":")[0] for g in card["gate"] if g["result"] == "fail"}
    assert {"US-THR-02", "US-THR-03", "US-MM-01"} <= failed_rules
    items = {i["id"]: i["result"] for i in card["items"]}
    assert items["A1"] == "pass" and items["D1"] == "fail"  # named themself; no empathy for the job loss
    assert category["contact"] == "right_party" and category["primary"] == "promise_to_pay"
    promise = next(o for o in category["outcomes"] if o["code"] == "promise_to_pay")
    assert promise["details"]["amount"] == 100.0 and promise["details"]["method"] == "card"
