"""Redaction in the forms ASR really writes (property-based), and call metadata kept to an allow-list."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assist.analysis.rulepacks import load_rule_pack
from assist.analysis.text import load_rules
from assist.privacy import Redactor, clean_metadata, metadata_policy
from assist.spoken_numbers import spoken_as_digits

EN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ES = ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"]
ES_TENS = ["", "diez", "veinte", "treinta", "cuarenta", "cincuenta", "sesenta", "setenta", "ochenta", "noventa"]
ES_TEENS = ["diez", "once", "doce", "trece", "catorce", "quince", "dieciséis", "diecisiete", "dieciocho", "diecinueve"]
ES_TWENTIES = ["veinte", "veintiuno", "veintidós", "veintitrés", "veinticuatro", "veinticinco", "veintiséis",
               "veintisiete", "veintiocho", "veintinueve"]
SEPARATORS = [" ", "-", " -", "- ", " - ", ", ", ".", " / "]
"""Between groups, as whisper writes them (it wrote an SSN as "123 -45 -6789")."""


def luhn_complete(body: str) -> str:
    for check in "0123456789":
        digits = body + check
        total = sum((d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d
                    for i, d in enumerate(int(c) for c in reversed(digits)))
        if total % 10 == 0:
            return digits
    raise AssertionError


def es_pair(two: str) -> str:
    """A two-digit group as a Spanish speaker reads it ("41" -> "cuarenta y uno")."""
    n = int(two)
    if n < 10:
        return f"cero {ES[n]}"
    if n < 20:
        return ES_TEENS[n - 10]
    if n < 30:
        return ES_TWENTIES[n - 20]
    return ES_TENS[n // 10] + (f" y {ES[n % 10]}" if n % 10 else "")


cards = st.from_regex(r"4[0-9]{14}", fullmatch=True).map(luhn_complete)
ssns = st.tuples(st.integers(1, 665), st.integers(1, 99), st.integers(1, 9999)).map(
    lambda t: f"{t[0]:03d}{t[1]:02d}{t[2]:04d}")
dnis = st.integers(0, 99_999_999).map(lambda n: f"{n:08d}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}")


@st.composite
def written(draw, digits: str, groups: list[int] | None = None) -> str:
    """Digits in groups (the given sizes, or drawn ones) joined by drawn separators, or run together."""
    if groups is None:
        groups, left = [], len(digits)
        while left:
            groups.append(min(left, draw(st.integers(1, 5))))
            left -= groups[-1]
    parts, at = [], 0
    for size in groups:
        parts.append(digits[at:at + size])
        at += size
    out = parts[0]
    for part in parts[1:]:
        out += draw(st.sampled_from(SEPARATORS)) + part
    return out


@st.composite
def spoken(draw, digits: str) -> str:
    """Digits said one by one (English or Spanish words, some left as digits), paused in groups."""
    words = draw(st.sampled_from([EN, ES]))
    out = []
    for i, d in enumerate(digits):
        out.append(d if draw(st.integers(0, 5)) == 0 else words[int(d)])
        if i < len(digits) - 1:
            out.append(draw(st.sampled_from([" ", " ", ", ", "... "])))
    return "".join(out).capitalize() if draw(st.booleans()) else "".join(out)


def leaked(redacted: str) -> str:
    """The digits a reader could still get from the text, spoken ones included."""
    rewritten = spoken_as_digits(redacted)
    return re.sub(r"\D", "", rewritten[0] if rewritten else redacted)


def check(said: str, kind: str) -> None:
    out = Redactor().text(said)
    assert f"[{kind.upper()}]" in out and not leaked(out), (said, out)


@settings(max_examples=150, deadline=None)
@given(st.data(), ssns)
def test_ssns_as_asr_writes_them(data, ssn):
    grouped = data.draw(written(ssn, [3, 2, 4]).filter(lambda s: not s.isdigit()))
    check(data.draw(st.sampled_from(["it's ", "okay, ", "", "yes "])) + grouped + ".", "ssn")
    check("my social security number is " + data.draw(written(ssn)), "ssn")
    check("my social is " + data.draw(spoken(ssn)), "ssn")


@settings(max_examples=150, deadline=None)
@given(st.data(), cards)
def test_cards_as_asr_writes_them(data, card):
    prefix = data.draw(st.sampled_from(["", "sure, it's ", "the card number is ", "la tarjeta es "]))
    check(prefix + data.draw(written(card)), "card")
    check(prefix + data.draw(spoken(card)), "card")
    check(prefix + ", ".join(es_pair(card[i:i + 2]) for i in range(0, 16, 2)), "card")
    thousands = f"{int(card):,}"  # whisper's "4,111,111,111,111,111"
    check(prefix + thousands, "card")
    repeats = data.draw(st.lists(st.integers(0, 15), min_size=4, max_size=6, unique=True))  # heard twice
    long = "".join(d * (2 if i in repeats else 1) for i, d in enumerate(card))
    check("it's " + data.draw(written(long)), "card")


@settings(max_examples=100, deadline=None)
@given(st.data(), dnis)
def test_dnis_as_asr_writes_them(data, dni):
    number, letter = dni[:8], dni[8]
    check("mi DNI es " + data.draw(written(number)) + data.draw(st.sampled_from(["", " ", "-", " -"])) + letter, "dni")
    check("mi DNI es " + data.draw(spoken(number)) + " " + letter, "dni")
    said_letter = data.draw(st.sampled_from(["", " zeta", " letra " + letter.lower(), " y la letra no la sé"]))
    check("mi DNI es " + data.draw(st.one_of(written(number), spoken(number))) + said_letter, "dni")


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 9_999), st.integers(1, 28), st.sampled_from(["March", "marzo"]), st.integers(1990, 2030),
       st.from_regex(r"[2-9][0-9]{2}", fullmatch=True), st.from_regex(r"[0-9]{4}", fullmatch=True))
def test_ordinary_numbers_stay(amount, day, month, year, exchange, line):
    for said in [f"I can pay ${amount:,} on {month} {day}, {year}", f"call me back at 800 {exchange} {line}",
                 f"te pago {amount} euros el {day} de {month}"]:
        assert Redactor().text(said) == said


@pytest.mark.parametrize(("said", "expected"), [
    ("My Social Security number is 123-456789.", "My Social Security number is [SSN]."),  # whisper tiny.en, TTS
    ("Sure, the card number is for 111, 111, 111, 111, 111, 111.", "Sure, the card number is for [CARD]."),
    ("It's 4,111,111,111,111,111 and the security code is 737.", "It's [CARD] and the security code is [CVV]."),
    ("my social is 123 -45 -6789", "my social is [SSN]"),
    ("cuatro mil ciento once, mil ciento once, mil ciento once, mil ciento once", "[CARD]"),
    ("mi DNI es doce, trescientos cuarenta y cinco, seiscientos setenta y ocho Z", "mi DNI es [DNI]"),
    ("four hundred eleven, one hundred eleven... wait", "four hundred eleven, one hundred eleven... wait"),
])
def test_forms_seen_from_asr(said, expected):
    assert Redactor().text(said) == expected


def test_metadata_keeps_only_allowed_keys_with_values_redacted():
    raw = {
        "agent_id": "agent-7", "language": "es", "jurisdiction": "es", "ssn": "123-45-6789",
        "card": "4111111111111111", "dni": "12345678Z", "FirstName": "Jane", "debtor_state": "CA",
        "account": {"time_barred": True, "balance_owner_ssn": "123456789", "last_payment": {"amount": 120}},
        "ledger": {"calls_last_7_days": 3}, "disposition": "ptp 4111 1111 1111 1111",
        "custom_config": {"agent": "Mike", "dni": "12345678Z", "iban": "ES9121000418450200051332"},
        "headers": {"audiohook-session-id": "s-1", "x-api-key": "secret"}, "tenant": "globex",
    }
    assert clean_metadata(raw, Redactor()) == {
        "agent_id": "agent-7", "language": "es", "jurisdiction": "es", "debtor_state": "CA",
        "account": {"time_barred": True, "last_payment": {"amount": 120}}, "ledger": {"calls_last_7_days": 3},
        "disposition": "ptp [CARD]", "custom_config": {"agent": "Mike"},
        "headers": {"audiohook-session-id": "s-1"},
    }
    assert clean_metadata({"agent_id": 4111111111111111}, Redactor()) == {"agent_id": "[CARD]"}


def when_paths(node) -> list[str]:
    """Every `when:` metadata path in a rule file (prompt card variants)."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in ([v] if k == "when" and isinstance(v, str) else when_paths(v))]
    return [p for v in node for p in when_paths(v)] if isinstance(node, list) else []


def test_the_allow_list_covers_every_field_the_rule_packs_and_cards_read():
    policy = metadata_policy()
    cards = when_paths(load_rules("prompts"))
    assert cards and all(policy.kept(path) is True for path in cards), cards
    for jurisdiction in ("us", "es", "mx", "co", "pe", "uk"):
        pack = load_rule_pack(jurisdiction)
        for rule in pack.rules:
            fields = [c.field for c in [*getattr(rule, "when", []), *getattr(rule, "unless", [])]]
            if getattr(rule, "ledger", None) is not None:
                fields.append(f"ledger.{rule.ledger.field}")
            fields += [f"account.{f}" for f in getattr(rule, "flags", [])]
            for path in fields:
                assert policy.kept(path) is True, (jurisdiction, rule.id, path)


EN_TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
            "nineteen"]
EN_TENS = ["", "ten", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def en_pair(two: str) -> str:
    """A two-digit group as an English speaker reads it ("27" -> "twenty seven", "04" -> "oh four")."""
    n = int(two)
    if n < 10:
        return f"oh {EN[n]}"
    if n < 20:
        return EN_TEENS[n - 10]
    return EN_TENS[n // 10] + (f"-{EN[n % 10]}" if n % 10 else "")


ES_MONTHS = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
             "noviembre", "diciembre"]
EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December"]
expiries = st.tuples(st.integers(1, 12), st.integers(20, 45))


@settings(max_examples=150, deadline=None)
@given(st.data(), expiries)
def test_card_expiry_dates_as_said(data, expiry):
    month, year = expiry
    mm, yy = f"{month:02d}", f"{year:02d}"
    en = data.draw(st.sampled_from(["it expires ", "the expiration date is ", "expiry: ", "valid thru "]))
    es = data.draw(st.sampled_from(["vence el ", "la fecha de vencimiento es ", "caduca en ", "vencimiento "]))
    check(en + data.draw(st.sampled_from([f"{mm}/{yy}", f"{month}/{yy}", f"{mm} {yy}", f"{mm}/20{yy}"])), "expiry")
    check(en + f"{en_pair(mm)} {en_pair(yy)}", "expiry")
    check(en + f"{EN_MONTHS[month - 1]} 20{yy}", "expiry")
    es_month = ES[month] if month < 10 else es_pair(mm)
    check(es + data.draw(st.sampled_from([f"{mm}/{yy}", f"{month} del {yy}", f"{es_month} del {es_pair(yy)}"])),
          "expiry")
    check(es + f"{ES_MONTHS[month - 1]} de dos mil {es_pair(yy)}", "expiry")
    check(f"{es_month} del {es_pair(yy)}", "expiry")  # no cue needed


@settings(max_examples=150, deadline=None)
@given(st.data(), st.from_regex(r"[0-9]{3,4}", fullmatch=True))
def test_security_codes_said_alone(data, code):
    cue = data.draw(st.sampled_from(["the code on the back is ", "security code, ", "my cvv is ", "cvc: ",
                                     "el código de seguridad es ", "el código de atrás es ",
                                     "los dígitos de atrás son "]))
    check(cue + data.draw(st.one_of(written(code), spoken(code))), "cvv")


@settings(max_examples=150, deadline=None)
@given(st.data(), cards, st.integers(6, 11))
def test_half_card_numbers_after_a_card_cue(data, card, size):
    cue = data.draw(st.sampled_from(["my card number is ", "the visa starts with ", "la tarjeta es ",
                                     "el número de la tarjeta de crédito es "]))
    part = card[:size]
    said = data.draw(st.one_of(written(part, [4, 4, 3][: -(-size // 4)] if size > 8 else None), spoken(part)))
    check(cue + said, "card")


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 999_999), st.integers(1, 28), st.integers(1, 12), st.integers(2020, 2045))
def test_amounts_and_dates_stay_beside_card_words(amount, day, month, year):
    for said in [f"I'll pay {amount} dollars with my card on the {day}th",
                 f"my card payment of ${amount} is due {EN_MONTHS[month - 1]} {day}, {year}",
                 f"the offer expires {EN_MONTHS[month - 1]} {day}",
                 f"le pago {amount} pesos con la tarjeta el {day} de {ES_MONTHS[month - 1]} de {year}",
                 f"el pago vence el {day} de {ES_MONTHS[month - 1]}",
                 f"el saldo de la tarjeta es de {amount}"]:
        assert Redactor().text(said) == said
