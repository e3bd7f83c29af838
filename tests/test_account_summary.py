"""The after-call summary: structured lines in the call's language, each traceable to an utterance or an
event (a compliance warning, the account facts); nothing the analysers did not find."""

from __future__ import annotations

from assist.events import AccountUpdated, ComplianceWarning, Evidence, QaScore
from assist.summary import after_call_summary
from streaming.types import Speaker

CUE = {"speaker": "debtor", "quote": "le pago cincuenta euros el viernes con tarjeta", "start": 12.0, "end": 14.5,
       "phrase": "le pago"}
CATEGORY = {
    "contact": "right_party", "primary": "promise_to_pay", "language": "es",
    "outcomes": [{"code": "promise_to_pay", "cue": CUE,
                  "details": {"amount": 50.0, "currency": "EUR", "date": "2026-12-04", "date_text": "el viernes",
                              "method": "card"}},
                 {"code": "hardship_income", "cue": {**CUE, "quote": "este mes cobro menos", "start": 8.0, "end": 9.0},
                  "details": {}}],
    "titles": {"promise_to_pay": {"en": "Promise to pay", "es": "Promesa de pago"},
               "card": {"en": "Card", "es": "Tarjeta"}, "hardship_income": {"en": "Hardship: income", "es": "Dificultad: ingresos"}},
}


def events() -> list:
    facts = {"currency": "EUR", "balance": 250.0, "payments_since_extract": [{"amount": 150.0, "date": "2026-12-01"}]}
    evidence = Evidence(speaker=Speaker.AGENT, quote="usted debe cuatrocientos euros", start=5.0, end=6.0)
    return [
        AccountUpdated(call_id="c", seq=2, facts=facts, changed=["balance"]),
        ComplianceWarning(call_id="c", seq=7, rule_id="ACC-AMT-01", severity="critical", jurisdiction="es",
                          title="Importe adeudado indicado (400.00 EUR) distinto del de la cuenta (250.00 EUR)",
                          citation="Ley 3/1991", evidence=evidence),
        ComplianceWarning(call_id="c", seq=8, rule_id="ES-X-01", severity="warning", jurisdiction="es", title="x",
                          citation="y", evidence=evidence, status="retracted"),
        QaScore(call_id="c", seq=20, scorecard={"score": 80}, category=CATEGORY),
    ]


def test_summary_lines_are_in_the_calls_language_and_traceable():
    summary = after_call_summary(events())
    assert summary["language"] == "es"
    lines = [(line["section"], line["text"]) for line in summary["lines"]]
    assert lines == [
        ("outcome", "Resultado: Promesa de pago"),
        ("agreed", "Promesa de pago de 50.00 EUR el 2026-12-04, Tarjeta"),
        ("hardship", "Dificultad: ingresos"),
        ("compliance", "ACC-AMT-01: Importe adeudado indicado (400.00 EUR) distinto del de la cuenta (250.00 EUR)"),
        ("facts", "Pago de 150.00 EUR recibido el 2026-12-01 (datos de la cuenta)"),
        ("next_steps", "Comprobar el pago de 50.00 EUR previsto el 2026-12-04"),
    ]
    sources = [line["source"] for line in summary["lines"]]
    assert sources[1] == {"kind": "utterance", "speaker": "debtor", "quote": CUE["quote"], "start": 12.0, "end": 14.5}
    assert sources[3] == {"kind": "event", "seq": 7}  # the retracted warning (seq 8) is not in the note
    assert sources[4] == {"kind": "fact", "seq": 2, "field": "payments_since_extract.0"}


def test_a_call_with_nothing_found_has_an_empty_note():
    assert after_call_summary([]) == {"language": "en", "lines": []}
