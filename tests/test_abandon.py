"""Abandon risk on scripted debtor behaviour (EN and ES), evaluated on ticks and final utterances."""

from __future__ import annotations

from assist.analysis.abandon import AbandonAnalyser
from assist.analysis.base import CallContext
from assist.events import AbandonRisk
from streaming.types import Speaker, Utterance

A, D = Speaker.AGENT, Speaker.DEBTOR

LEAVING_ES = [
    (A, 0.0, 8.0, "Le llamo por la deuda de su tarjeta, son 1.200 euros."),
    (D, 8.5, 9.0, "Ya."),
    (A, 9.5, 15.0, "¿Puede realizar el pago hoy?"),
    (D, 15.5, 16.0, "No."),
    (A, 16.5, 24.0, "Tiene que pagar, es importante que lo resuelva."),
    (D, 24.5, 25.0, "Ajá."),
    (A, 25.5, 30.0, "¿Me escucha?"),
    (D, 31.0, 33.0, "Mire, tengo que colgar."),
]
LEAVING_EN = [
    (A, 0.0, 8.0, "I'm calling about your card balance of 1,200 dollars."),
    (D, 8.5, 9.0, "Okay."),
    (A, 9.5, 15.0, "Can you pay today?"),
    (D, 15.5, 16.0, "No."),
    (A, 16.5, 24.0, "You need to take care of this."),
    (D, 24.5, 25.0, "Uh huh."),
    (A, 25.5, 30.0, "Are you there?"),
    (D, 31.0, 33.0, "I have to go, don't call me again."),
]
NORMAL_ES = [
    (A, 0.0, 8.0, "Buenos días, le llamo por su tarjeta. ¿Qué ha pasado con los últimos pagos?"),
    (D, 8.5, 18.0, "Pues perdí el trabajo en marzo y desde entonces voy atrasado con todo."),
    (A, 18.5, 26.0, "Lamento escuchar eso. ¿Cuánto podría destinar al mes?"),
    (D, 26.5, 33.0, "Unos cien euros al mes podría pagar, quizá un poco más en verano."),
    (A, 33.5, 42.0, "Podemos hacer un plan de pagos de cien euros. ¿Le viene bien el día cinco?"),
    (D, 42.5, 48.0, "Sí, el cinco me viene bien porque cobro el día uno."),
    (A, 48.5, 56.0, "Perfecto, para confirmar, cien euros el cinco de cada mes."),
    (D, 56.5, 60.0, "De acuerdo, muchas gracias por la ayuda."),
]


def _run(script, sentiment=None) -> list[AbandonRisk]:
    """Replay with a tick every second of call clock (the analyser steps every 5 s)."""
    abandon = AbandonAnalyser(CallContext("c"), sentiment_trend=sentiment)
    events: list[AbandonRisk] = []
    tick = 0.0
    for seq, (speaker, start, end, text) in enumerate(script):
        while tick < end:
            events += abandon.on_tick(tick)
            tick += 1.0
        events += abandon.on_utterance(Utterance(speaker, seq, start, end, text))
    return events


def test_exit_phrase_after_short_answers_alerts_once():
    for script in (LEAVING_ES, LEAVING_EN):
        events = _run(script)
        alerts = [e for e in events if e.alert]
        assert len(alerts) == 1 and alerts[0].t >= 31.0, events
        assert any("minimal" in r for r in alerts[0].reasons) and any("debtor said" in r for r in alerts[0].reasons)


def test_short_answers_alone_do_not_alert():
    events = _run(LEAVING_ES[:-1])
    assert events and not any(e.alert for e in events) and max(e.risk for e in events) < 0.5


def test_normal_conversation_does_not_alert():
    events = _run(NORMAL_ES, sentiment=lambda: 0.2)
    assert not any(e.alert for e in events)
    assert all(e.risk < 0.3 for e in events)


def test_silence_and_falling_sentiment_raise_the_risk():
    mood = {"s": 0.3}
    abandon = AbandonAnalyser(CallContext("c"), sentiment_trend=lambda: mood["s"])
    abandon.on_utterance(Utterance(D, 0, 0.0, 3.0, "Pues no sé muy bien qué decirle sobre eso."))
    assert abandon.on_tick(5.0) == [] and abandon.risk < 0.1
    mood["s"] = -0.7
    events = [e for t in range(10, 30, 5) for e in abandon.on_tick(float(t))]
    assert abandon.risk > 0.3 and not abandon.alerting
    assert any("silent" in r for r in events[-1].reasons) and any("sentiment" in r for r in events[-1].reasons)


def test_alert_rearms_only_after_the_risk_falls_back():
    abandon = AbandonAnalyser(CallContext("c"))
    for seq, (speaker, start, end, text) in enumerate(LEAVING_ES):
        abandon.on_utterance(Utterance(speaker, seq, start, end, text))
    assert abandon.alerting
    answers = [
        "Bueno, perdone, es que estoy muy agobiado con todo esto.",
        "Puedo pagar algo a finales de mes, cuando cobre la nómina.",
        "Sí, unos cincuenta euros al mes creo que sí podría pagar.",
    ]
    events = []
    for i, text in enumerate(answers):
        t = 40.0 + 10 * i
        events += abandon.on_utterance(Utterance(A, 10 + i, t - 4, t - 1, "Entiendo, ¿cuánto podría pagar?"))
        events += abandon.on_utterance(Utterance(D, 20 + i, t, t + 5, text))
        events += abandon.on_tick(t + 5)
    assert not abandon.alerting and abandon.risk < 0.3
    assert not any(e.alert for e in events) and events[-1].risk < 0.3


def test_reasons_are_in_the_calls_language_with_codes_and_both_texts():
    abandon = AbandonAnalyser(CallContext("c", language="es"))
    events = [e for seq, (speaker, start, end, text) in enumerate(LEAVING_ES)
              for e in abandon.on_utterance(Utterance(speaker, seq, start, end, text))]
    alert = next(e for e in events if e.alert)
    codes = {r.code for r in alert.reason_details}
    assert {"exit_phrase", "minimal_answers"} <= codes, codes
    assert alert.reasons == [r.text["es"] for r in alert.reason_details]
    assert any(r.startswith('el deudor dijo "') for r in alert.reasons), alert.reasons
    said = next(r for r in alert.reason_details if r.code == "exit_phrase")
    assert said.text["en"] == f'debtor said "{said.params["phrase"]}"'
