"""Compliance engine: unit tests per rule type, and scripted EN/ES calls replayed utterance by utterance
(with partials and ticks) against their expected rule ids."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from assist.analysis.base import CallContext
from assist.analysis.compliance import ComplianceAnalyser
from assist.events import ComplianceWarning, EventBase
from assist.qa.calldata import CallData
from streaming.types import Speaker, Utterance, Word

CALLS_DIR = Path(__file__).parent / "data" / "compliance_calls"
A, D = Speaker.AGENT, Speaker.DEBTOR
TICK_S = 0.5
TAIL_S = 25.0  # ticks after the last utterance, past every deadline


def _utterance(speaker: Speaker, seq: int, start: float, end: float, text: str, lang: str, final: bool) -> Utterance:
    """Words spread evenly over [start, end], as the ASR would time them."""
    parts = text.split()
    step = (end - start) / max(1, len(parts))
    words = tuple(Word(w, start + i * step, start + (i + 1) * step) for i, w in enumerate(parts))
    return Utterance(speaker, seq, start, end, text, words, lang, final)


@dataclass(frozen=True)
class ScriptedCall:
    name: str
    ctx: CallContext
    expected: frozenset[str]
    script: list[list[Any]]


def load_calls() -> list[ScriptedCall]:
    calls = []
    for path in sorted(CALLS_DIR.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        ctx = CallContext(path.stem, raw["language"], raw["jurisdiction"], metadata=raw["metadata"])
        calls.append(ScriptedCall(path.stem, ctx, frozenset(raw["expected"]), raw["script"]))
    return calls


def replay(call: ScriptedCall, analyser: ComplianceAnalyser, on_utterance=None) -> list[EventBase]:
    """Feed partials, finals and ticks in call-clock order; `on_utterance(utt, seconds)` sees timings."""
    queue: list[tuple[float, int, Any]] = []
    seqs = {A: 0, D: 0}
    for n, (speaker, start, end, text, *partials) in enumerate(call.script):
        spk = Speaker(speaker)
        seqs[spk] += 1
        texts = partials[0] if partials else []
        for i, p in enumerate(texts):
            t = start + (i + 1) * (end - start) / (len(texts) + 1)
            heapq.heappush(queue, (t, n, _utterance(spk, seqs[spk], start, t, p, call.ctx.language, False)))
        heapq.heappush(queue, (end, n, _utterance(spk, seqs[spk], start, end, text, call.ctx.language, True)))
    last = max(end for _, _, end, *_ in call.script)
    for k in range(int((last + TAIL_S) / TICK_S) + 1):
        heapq.heappush(queue, (k * TICK_S, -1, k * TICK_S))
    events: list[EventBase] = []
    while queue:
        _, _, item = heapq.heappop(queue)
        if isinstance(item, Utterance):
            out = analyser.on_utterance(item) if on_utterance is None else on_utterance(item)
        else:
            out = analyser.on_tick(item)
        events += out
    return events


def standing(events: list[EventBase]) -> set[str]:
    """Rule ids of warnings that stand at the end, as the QA scorecard reads them from the stored log."""
    assert all(isinstance(e, ComplianceWarning) for e in events)
    call = CallData("c", (), tuple(e.model_dump(mode="json") for e in events))
    return {e["rule_id"] for e in call.standing_warnings()}


CALLS = load_calls()


@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
def test_scripted_call_gives_exactly_the_expected_rules(call: ScriptedCall) -> None:
    events = replay(call, ComplianceAnalyser(call.ctx))
    assert standing(events) == call.expected


def test_scripted_set_covers_both_languages_and_clean_calls() -> None:
    assert sum(c.ctx.language == "en" for c in CALLS) >= 4 and sum(c.ctx.language == "es" for c in CALLS) >= 4
    assert sum(not c.expected for c in CALLS) >= 3


def test_misheard_partial_is_provisional_then_retracted() -> None:
    call = next(c for c in CALLS if c.name == "us_threats_en")
    events = [e for e in replay(call, ComplianceAnalyser(call.ctx)) if isinstance(e, ComplianceWarning)]
    fraud = [e for e in events if e.evidence and e.evidence.quote == "this is fraud"]
    assert [e.status for e in fraud] == ["provisional", "retracted"]
    assert all(e.rule_id == "US-THR-01" for e in fraud)


def test_partial_threat_is_provisional_then_confirmed_once() -> None:
    ctx = CallContext("c", "en", "us", metadata={"identity_verified": True})
    an = ComplianceAnalyser(ctx, semantic=False)
    an.start()
    part = an.on_utterance(_utterance(A, 1, 1.0, 2.0, "You could go to jail", "en", False))
    again = an.on_utterance(_utterance(A, 1, 1.0, 2.5, "You could go to jail for", "en", False))
    final = an.on_utterance(_utterance(A, 1, 1.0, 3.0, "You could go to jail for this.", "en", True))
    assert [(e.rule_id, e.status) for e in part] == [("US-THR-01", "provisional")]
    assert again == []
    assert [(e.rule_id, e.status, e.severity) for e in final] == [("US-THR-01", "confirmed", "critical")]
    assert final[0].evidence.quote == "You could go to jail" and final[0].evidence.start == pytest.approx(1.0)
    assert final[0].citation.startswith("15 USC 1692e(4)") and final[0].jurisdiction == "us"
    assert an.on_utterance(_utterance(A, 1, 1.0, 3.0, "You could go to jail for this.", "en", True)) == []


def _warnings(an: ComplianceAnalyser, *utts: Utterance, ticks: tuple[float, ...] = ()) -> list[ComplianceWarning]:
    out: list[EventBase] = an.start()
    for u in utts:
        out += an.on_utterance(u)
    for t in ticks:
        out += an.on_tick(t)
    return [e for e in out if isinstance(e, ComplianceWarning)]


@pytest.mark.parametrize(
    ("jurisdiction", "started_at", "tz", "fires"),
    [
        ("us", "2025-03-04T02:30:00+00:00", "America/New_York", True),  # 21:30 Mon
        ("us", "2025-03-04T20:00:00+00:00", "America/New_York", False),  # 15:00
        ("mx", "2025-03-04T13:30:00+00:00", "America/Mexico_City", False),  # 07:30
        ("co", "2025-03-09T15:00:00+00:00", "America/Bogota", True),  # Sunday 10:00
        ("co", "2025-03-08T21:00:00+00:00", "America/Bogota", True),  # Saturday 16:00
        ("pe", "2025-03-05T00:30:00+00:00", "America/Lima", False),  # Tue 19:30
        ("pe", "2025-03-05T01:30:00+00:00", "America/Lima", True),  # Tue 20:30
        ("es", "2025-03-08T10:00:00+00:00", None, True),  # Saturday in Madrid (pack default timezone)
    ],
)
def test_calling_window_gate(jurisdiction: str, started_at: str, tz: str | None, fires: bool) -> None:
    md = {"started_at": started_at, **({"debtor_timezone": tz} if tz else {})}
    an = ComplianceAnalyser(CallContext("c", "es", jurisdiction, metadata=md), semantic=False)
    ids = {w.rule_id for w in an.start()}
    assert (f"{jurisdiction.upper()}-TIME-01" in ids) is fires
    assert an.start() == []  # gates fire once


def test_frequency_and_flag_gates_read_ledger_and_account() -> None:
    md = {"ledger": {"calls_last_7_days": 7, "days_since_last_conversation": 3}, "account": {"bankruptcy": True}}
    ids = {w.rule_id for w in ComplianceAnalyser(CallContext("c", metadata=md), semantic=False).start()}
    assert ids == {"US-FREQ-01", "US-FREQ-02", "US-DNC-01"}
    md = {"ledger": {"calls_last_7_days": 6, "days_since_last_conversation": 7}}
    assert ComplianceAnalyser(CallContext("c", metadata=md), semantic=False).start() == []


def test_recording_notice_deadline_fires_on_tick_only_in_all_party_states() -> None:
    late = ComplianceAnalyser(CallContext("c", metadata={"debtor_state": "CA"}), semantic=False)
    assert _warnings(late, ticks=(10.0, 16.0)) == []  # 15 s + 1.5 s grace not yet passed
    assert [w.rule_id for w in late.on_tick(16.6)] == ["US-REC-01"]
    assert late.on_tick(20.0) == []
    ok = ComplianceAnalyser(CallContext("c", metadata={"debtor_state": "CA"}), semantic=False)
    said = _utterance(A, 1, 2.0, 6.0, "Hi, my name is Ann, you are on a recorded line.", "en", True)
    assert _warnings(ok, said, ticks=(20.0, 40.0)) == []
    elsewhere = ComplianceAnalyser(CallContext("c", metadata={"debtor_state": "TX"}), semantic=False)
    assert [w.rule_id for w in _warnings(elsewhere, ticks=(40.0,))] == ["US-ID-01"]


def test_must_say_retracted_when_final_arrives_after_the_deadline_tick() -> None:
    an = ComplianceAnalyser(
        CallContext("c", metadata={"debtor_state": "WA", "identity_verified": True}), semantic=False
    )
    fired = _warnings(an, ticks=(17.0,))
    assert [w.rule_id for w in fired if w.rule_id == "US-REC-01"] == ["US-REC-01"]
    late_final = _utterance(A, 1, 10.0, 17.5, "Hello, this call may be recorded, my name is Bo.", "en", True)
    out = an.on_utterance(late_final)
    assert [(w.rule_id, w.status) for w in out] == [("US-REC-01", "retracted")]


def test_mini_miranda_needs_both_clauses_after_verification() -> None:
    an = ComplianceAnalyser(CallContext("c"), semantic=False)
    utts = [
        _utterance(A, 1, 0.0, 4.0, "Hi, my name is Joe from Acme. Is this Kim Lee?", "en", True),
        _utterance(D, 1, 4.5, 5.0, "Yes, speaking.", "en", True),
        _utterance(A, 2, 6.0, 9.0, "This is an attempt to collect a debt.", "en", True),
    ]
    assert [w.rule_id for w in _warnings(an, *utts, ticks=(30.0, 36.6))] == ["US-MM-01"]


def test_disclosure_before_verification_and_to_a_third_party() -> None:
    an = ComplianceAnalyser(CallContext("c"), semantic=False)
    utts = [
        _utterance(A, 1, 0.0, 3.0, "Hello, is this Kim Lee?", "en", True),
        _utterance(D, 1, 3.5, 5.0, "Yes, this is her mother.", "en", True),
        _utterance(A, 2, 5.5, 9.0, "Please tell her the balance is overdue.", "en", True),
    ]
    w = _warnings(an, *utts)
    assert [(x.rule_id, x.severity, x.evidence.quote) for x in w] == [("US-3P-01", "critical", "balance")]
    verified = ComplianceAnalyser(CallContext("c"), semantic=False)
    utts[1] = _utterance(D, 1, 3.5, 5.0, "Yes, speaking.", "en", True)
    assert _warnings(verified, *utts) == []


def test_answer_analysed_before_its_question_still_verifies() -> None:
    """A short "yes" finalises sooner than the long question before it; arrival order must not matter."""
    ask = _utterance(A, 1, 0.0, 3.0, "Hello, is this Kim Lee?", "en", True)
    answer = _utterance(D, 1, 3.5, 4.0, "Yes, speaking.", "en", True)
    disclose = _utterance(A, 2, 5.5, 9.0, "The balance is overdue.", "en", True)
    assert _warnings(ComplianceAnalyser(CallContext("c"), semantic=False), answer, ask, disclose) == []
    stale = _utterance(D, 1, -5.0, -4.5, "Yes, speaking.", "en", True)  # said before the question began
    w = _warnings(ComplianceAnalyser(CallContext("c"), semantic=False), stale, ask, disclose)
    assert [x.rule_id for x in w] == ["US-3P-01"]


def test_negated_threat_is_downgraded_not_cleared() -> None:
    an = ComplianceAnalyser(CallContext("c", metadata={"identity_verified": True}), semantic=False)
    w = _warnings(an, _utterance(A, 1, 0.0, 4.0, "I'm not saying you will go to jail, but think about it.", "en", True))
    assert [(x.rule_id, x.severity) for x in w] == [("US-THR-01", "warning")]


def test_threat_allowed_only_when_account_facts_make_it_true() -> None:
    line = "If we can't agree, we will sue you."
    for account, fires in [
        ({"litigation_authorized": True}, False),
        ({"litigation_authorized": True, "time_barred": True}, True),
        ({"litigation_authorized": False}, True),
        ({}, True),
    ]:
        an = ComplianceAnalyser(
            CallContext("c", metadata={"identity_verified": True, "account": account}), semantic=False
        )
        assert bool(_warnings(an, _utterance(A, 1, 0.0, 3.0, line, "en", True))) is fires, account


def test_spanish_trigger_acknowledged_in_time_gives_no_warning() -> None:
    ctx = CallContext("c", "es", "es", metadata={"identity_verified": True})
    ok = ComplianceAnalyser(ctx, semantic=False)
    utts = [
        _utterance(D, 1, 0.0, 2.0, "No, no me llame más.", "es", True),
        _utterance(A, 1, 3.0, 6.0, "Entendido, he registrado su solicitud.", "es", True),
    ]
    assert [w for w in _warnings(ok, *utts, ticks=(30.0,)) if w.rule_id == "ES-OPOS-01"] == []
    late = ComplianceAnalyser(ctx, semantic=False)
    missed = [w for w in _warnings(late, utts[0], ticks=(21.0, 21.6, 30.0)) if w.rule_id == "ES-OPOS-01"]
    assert [(w.severity, w.evidence.speaker) for w in missed] == [("warning", D)]


def test_negated_trigger_does_not_start_an_obligation() -> None:
    an = ComplianceAnalyser(CallContext("c", "es", "mx", metadata={"identity_verified": True}), semantic=False)
    utts = [
        _utterance(D, 1, 0.0, 2.0, "No tengo abogado.", "es", True),
        _utterance(A, 1, 3.0, 6.0, "Entonces, ¿cuánto puede pagar hoy?", "es", True),
    ]
    assert [w.rule_id for w in _warnings(an, *utts, ticks=(40.0,)) if "ATTY" in w.rule_id] == []


def test_unsure_language_matches_both_languages() -> None:
    an = ComplianceAnalyser(CallContext("c", "en", "us", metadata={"identity_verified": True}), semantic=False)
    w = _warnings(an, _utterance(A, 1, 0.0, 3.0, "Le van a meter a la cárcel.", "es", True))
    assert [x.rule_id for x in w] == ["US-THR-01"]
    assert w[0].title == "Threat of arrest, jail or criminal charges"


def _agent_line(text: str, lang: str = "en", jurisdiction: str = "us", semantic: bool = False, final: bool = True,
                account: dict | None = None) -> list[tuple[str, str]]:
    md = {"identity_verified": True, "account": account or {}}
    an = ComplianceAnalyser(CallContext("c", lang, jurisdiction, metadata=md), semantic=semantic)
    w = _warnings(an, _utterance(A, 1, 0.0, 3.0, text, lang, final))
    return [(x.rule_id, x.severity) for x in w if x.status != "retracted" and x.speaker is A]


@pytest.mark.parametrize(
    ("text", "lang", "jurisdiction", "expected"),
    [
        ("We will not take you to court.", "en", "us", []),  # a reassurance
        ("No, we are not going to sue you.", "en", "us", []),
        # the negator is the condition's
        ("If you don't pay, we will sue you.", "en", "us", [("US-THR-03", "critical")]),
        ("Por no pagar le vamos a embargar.", "es", "es", [("ES-CRIM-03", "critical")]),  # not paying is the reason
        ("Sí, no le vamos a demandar.", "es", "es", []),  # "sí" is not "si": the comma parts them
        ("No le digo que le vamos a demandar, pero piénselo.", "es", "es", [("ES-AGGR-02", "warning")]),  # a hedge
        ("We aren't going to garnish your wages.", "en", "us", []),  # a contracted negator reassures too
        ("The bailiffs aren't going to seize your belongings.", "en", "uk", []),
    ],
)
def test_negation_reassures_hedges_downgrade_conditions_do_not_negate(text, lang, jurisdiction, expected) -> None:
    assert _agent_line(text, lang, jurisdiction) == expected


@pytest.mark.parametrize(
    ("text", "lang", "jurisdiction", "rule"),
    [
        ("Keep this up and you'll end up behind bars.", "en", "us", "US-THR-01"),
        ("Your wages will be garnished next month.", "en", "us", "US-THR-02"),
        ("I'm going to let your employer know about this debt.", "en", "us", "US-HARASS-01"),
        ("Le vamos a contar a su patrón que usted nos debe.", "es", "mx", "MX-COAC-01"),
    ],
)
def test_unlisted_threats_are_caught_by_meaning_on_finals_only(text, lang, jurisdiction, rule) -> None:
    assert _agent_line(text, lang, jurisdiction) == []  # no listed phrase
    assert (rule, "critical") in _agent_line(text, lang, jurisdiction, semantic=True)
    assert _agent_line(text, lang, jurisdiction, semantic=True, final=False) == []  # interims: phrases only


def test_lawful_consequence_is_allowed_when_the_account_facts_make_it_true() -> None:
    line = "The creditor has approved legal action, so a lawsuit may be filed next month."
    assert ("US-THR-03", "critical") in _agent_line(line, semantic=True)
    assert _agent_line(line, semantic=True, account={"litigation_authorized": True, "time_barred": False}) == []


def test_unlisted_stop_request_starts_the_obligation() -> None:
    an = ComplianceAnalyser(CallContext("c", metadata={"identity_verified": True}))
    utts = [_utterance(D, 1, 0.0, 2.0, "Quit ringing my phone, I'm done with you people.", "en", True)]
    assert [w.rule_id for w in _warnings(an, *utts, ticks=(30.0,))] == ["US-MEDIUM-01"]
