"""Negotiation-style index on scripted two-speaker calls (timings and text as the ASR would give them)."""

from __future__ import annotations

from assist.analysis.base import CallContext
from assist.analysis.style import StyleAnalyser
from assist.events import NegotiationStyle
from streaming.types import Speaker, Utterance

A, D = Speaker.AGENT, Speaker.DEBTOR

AGGRESSIVE_EN = [
    (A, 0.0, 9.0, "This is Mark from Apex Recovery calling about your Visa account, you need to pay it today."),
    (D, 9.5, 14.0, "I lost my job last month, I can't pay right now."),
    (
        A,
        12.5,
        30.0,
        "You have to pay today, this is your last chance. I need the full amount now, you must understand.",
    ),
    (D, 30.5, 35.0, "I told you I don't have the money, I can't afford it."),
    (A, 33.0, 52.0, "Then borrow it from your family or take out a loan. Can you pay the balance today?"),
    (D, 52.5, 55.0, "No, I really can't."),
    (A, 54.0, 75.0, "You still have to pay. You need to make the payment now, can you pay or not?"),
    (D, 75.5, 77.0, "Please stop."),
    (A, 77.0, 100.0, "If you don't pay today you must understand there will be consequences. You have to pay."),
]
AGGRESSIVE_ES = [
    (A, 0.0, 9.0, "Le llamo de Cobranzas del Norte por su tarjeta, tiene que pagar hoy."),
    (D, 9.5, 14.0, "Perdí mi trabajo, no puedo pagar ahora."),
    (A, 12.5, 30.0, "Es su última oportunidad. Necesito el total ahora, usted debe pagar, pague hoy."),
    (D, 30.5, 35.0, "Ya le dije que no tengo dinero, no me alcanza."),
    (A, 33.0, 52.0, "Pues pida prestado a un familiar o saque un crédito. ¿Puede pagar hoy?"),
    (D, 52.5, 55.0, "No, de verdad no puedo."),
    (A, 54.0, 75.0, "Igualmente tiene que pagar. Necesito que haga el pago ya. ¿Puede pagar o no?"),
    (D, 75.5, 77.0, "Por favor."),
    (A, 77.0, 100.0, "Si no paga hoy habrá consecuencias, ¿le parece normal? Tiene que pagar."),
]
PASSIVE_EN = [
    (A, 0.0, 6.0, "Hi, sorry to bother you, this is Ann from Apex, sorry for calling so late."),
    (
        D,
        6.5,
        40.0,
        "Yeah, look, things have been busy, my car broke down and I've had a lot of expenses lately with the kids.",
    ),
    (
        A,
        40.5,
        48.0,
        "Oh no, sorry to disturb you. Well, we can offer our maximum discount, fifty percent off, if you want.",
    ),
    (
        D,
        48.5,
        110.0,
        "I don't know, I need to look at my budget and talk to my wife, we have other bills this month too.",
    ),
    (A, 110.5, 114.0, "Sure, maybe, whenever you can."),
    (
        D,
        114.5,
        200.0,
        "Yeah, I mean, it's complicated, there's rent and the car and school starts soon for the children.",
    ),
    (A, 200.5, 204.0, "Of course, no pressure."),
    (D, 204.5, 300.0, "So I'll see, maybe next month or the one after that, depending on how work goes for me."),
    (A, 300.5, 306.0, "Okay, think about it and call us whenever you like, sorry to bother you."),
]
PASSIVE_ES = [
    (A, 0.0, 6.0, "Hola, disculpe la molestia, le habla Ana de Cobranzas del Norte, perdone que le moleste."),
    (D, 6.5, 40.0, "Sí, mire, estoy muy liado, se me rompió el coche y he tenido muchos gastos con los niños."),
    (
        A,
        40.5,
        48.0,
        "Vaya, disculpe la molestia. Podemos ofrecerle el máximo descuento, el cincuenta por ciento, si quiere.",
    ),
    (D, 48.5, 110.0, "No sé, tengo que mirar mis cuentas y hablar con mi mujer, este mes tenemos otras facturas."),
    (A, 110.5, 114.0, "Claro, cuando pueda, lo que usted pueda."),
    (D, 114.5, 200.0, "Es que es complicado, está el alquiler, el coche y el colegio de los niños empieza pronto."),
    (A, 200.5, 204.0, "Por supuesto, sin compromiso."),
    (D, 204.5, 300.0, "Ya veré, a lo mejor el mes que viene o el siguiente, depende de cómo vaya el trabajo."),
    (A, 300.5, 306.0, "Vale, lo piensa y nos llama, disculpe que le llame a esta hora."),
]
BALANCED_EN = [
    (A, 0.0, 8.0, "Hello, this is Mark from Apex Recovery, calling about your Visa account. Is now a good time?"),
    (D, 8.5, 12.0, "Yes, go ahead."),
    (A, 12.5, 20.0, "Your balance is 1,200 dollars. What happened with the last payments?"),
    (D, 20.5, 35.0, "I lost my job in March and I've been behind on everything since then."),
    (A, 35.5, 45.0, "I'm sorry to hear that. How much could you manage each month right now?"),
    (D, 45.5, 52.0, "Maybe 100 dollars a month."),
    (A, 52.5, 64.0, "I understand. We can set up a payment plan of 100 a month. Can you pay the first one on Friday?"),
    (D, 64.5, 70.0, "Yes, Friday works for me."),
    (A, 70.5, 80.0, "Great, just to confirm, 100 dollars on Friday the 12th by debit card. Does that make sense?"),
    (D, 80.5, 84.0, "Yes, that's fine, thank you."),
]
BALANCED_ES = [
    (A, 0.0, 8.0, "Buenos días, le habla Marcos de Cobranzas del Norte, por su tarjeta. ¿Es buen momento?"),
    (D, 8.5, 12.0, "Sí, dígame."),
    (A, 12.5, 20.0, "El saldo es de 1.200 euros. ¿Qué ha pasado con los últimos pagos?"),
    (D, 20.5, 35.0, "Perdí mi trabajo en marzo y desde entonces voy atrasado con todo."),
    (A, 35.5, 45.0, "Lamento escuchar eso. ¿Cuánto podría destinar al mes ahora mismo?"),
    (D, 45.5, 52.0, "Unos 100 euros al mes."),
    (A, 52.5, 64.0, "Le entiendo. Podemos hacer un plan de pagos de 100 al mes. ¿Puede pagar el primero el viernes?"),
    (D, 64.5, 70.0, "Sí, el viernes me viene bien."),
    (A, 70.5, 80.0, "Perfecto, para confirmar, 100 euros el viernes 12 con tarjeta. ¿Tiene alguna duda?"),
    (D, 80.5, 84.0, "No, está bien, gracias."),
]


def _run(script, language: str = "en") -> list[NegotiationStyle]:
    style = StyleAnalyser(CallContext("c", language=language))
    events: list[NegotiationStyle] = []
    seqs = {A: 0, D: 0}
    for speaker, start, end, text in script:
        seqs[speaker] += 1
        utt = Utterance(speaker, seqs[speaker], start, end, text, language=language)
        assert style.on_utterance(Utterance(speaker, seqs[speaker], start, end, text[:10], final=False)) == []
        events += style.on_utterance(utt)
    return events


def _english(event: NegotiationStyle) -> list[str]:
    """The reasons in English, whatever the call's language (`reasons` is in the call's language)."""
    return [r.text["en"] for r in event.reason_details]


def test_aggressive_scripts_are_too_aggressive_with_pressure_reasons():
    for script, lang in ((AGGRESSIVE_EN, "en"), (AGGRESSIVE_ES, "es")):
        last = _run(script, lang)[-1]
        assert last.band == "too_aggressive", (lang, last)
        reasons = _english(last)
        assert any("pressure phrases" in r for r in reasons), reasons
        assert any("interruptions" in r for r in reasons), reasons
        assert any("after a refusal" in r for r in reasons), reasons
        assert any(r.startswith("agent talked") for r in reasons), reasons


def test_passive_scripts_are_too_passive():
    for script, lang in ((PASSIVE_EN, "en"), (PASSIVE_ES, "es")):
        last = _run(script, lang)[-1]
        assert last.band == "too_passive", (lang, last)
        assert last.components["no_ask"] < 0 and last.components["early_over_offer"] < 0, last.components
        assert any("vague close" in r for r in _english(last)), last.reasons


def test_balanced_scripts_stay_balanced():
    for script, lang in ((BALANCED_EN, "en"), (BALANCED_ES, "es")):
        events = _run(script, lang)
        assert all(e.band == "balanced" for e in events), (lang, [(e.index, e.reasons) for e in events])


def test_a_threat_forces_the_aggressive_end():
    script = BALANCED_EN[:4] + [(A, 35.5, 45.0, "If you don't pay, you will be arrested.")]
    last = _run(script)[-1]
    assert last.index >= 0.9 and 'threat: "you will be arrested"' in last.reasons


def test_reasons_come_in_the_calls_language_with_codes_and_both_texts():
    last = _run(AGGRESSIVE_ES, "es")[-1]
    codes = [r.code for r in last.reason_details]
    assert {"pressure", "interruptions", "demand_repetition", "talk_share"} <= set(codes), codes
    assert list(last.components) == codes
    assert last.reasons == [r.text["es"] for r in last.reason_details]
    talk = next(r for r in last.reason_details if r.code == "talk_share")
    assert talk.text["es"].startswith("el agente habló el ") and talk.text["en"].startswith("agent talked ")
    assert talk.params["minutes"] == 2 and 0.6 < talk.params["share"] <= 1
    assert any(r.endswith("frases de presión") or "frases de presión " in r for r in last.reasons), last.reasons
    english = _run(AGGRESSIVE_EN, "en")[-1]
    assert english.reasons == _english(english)
