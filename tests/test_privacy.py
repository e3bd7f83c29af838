"""Redaction of card numbers, CVV, IBAN, SSN, DNI/NIE, CURP; ordinary numbers stay."""

from __future__ import annotations

import pytest

from assist.privacy import Redactor


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card is 4111 1111 1111 1111 and the cvv is 123", "my card is [CARD] and the cvv is [CVV]"),
        ("la tarjeta 5500-0000-0000-0004, código de seguridad 987", "la tarjeta [CARD], código de seguridad [CVV]"),
        ("IBAN ES91 2100 0418 4502 0005 1332 please", "IBAN [IBAN] please"),
        ("it's GB82WEST12345698765432", "it's [IBAN]"),
        ("my social is 123-45-6789", "my social is [SSN]"),
        ("my social security number is 123 45 6789", "my social security number is [SSN]"),
        ("mi DNI es 12345678Z", "mi DNI es [DNI]"),
        ("el NIE X1234567L", "el NIE [NIE]"),
        ("mi CURP es GODE561231HDFRRN09", "mi CURP es [CURP]"),
    ],
)
def test_redacts(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I can pay $1,500 on March 15th, 2025",
        "call us back at 800 555 0100",
        "number 1234 5678 9012 3456 fails the Luhn check",
        "DNI 12345678A has the wrong control letter",
        "IBAN ES00 2100 0418 4502 0005 1332 fails mod 97",
    ],
)
def test_leaves_ordinary_numbers(text: str) -> None:
    assert Redactor().text(text) == text


def test_configurable_kinds_and_off_switch() -> None:
    text = "card 4111111111111111, DNI 12345678Z"
    assert Redactor(kinds=frozenset({"dni"})).text(text) == "card 4111111111111111, DNI [DNI]"
    assert Redactor(enabled=False).text(text) == text


def test_words_and_payloads() -> None:
    words = [{"text": t, "start": i, "end": i + 1} for i, t in enumerate(["my", "cvv", "is", "1", "2", "3"])]
    out = Redactor().words(words)
    assert [w["text"] for w in out] == ["my", "cvv", "is", "[CVV]", "[CVV]", "[CVV]"]  # spoken digit by digit
    said = ["card", "4111", "1111", "1111", "1111", "thanks"]
    words = [{"text": t, "start": i, "end": i + 1} for i, t in enumerate(said)]
    assert [w["text"] for w in Redactor().words(words)] == ["card"] + ["[CARD]"] * 4 + ["thanks"]
    payload = {"type": "compliance.warning", "evidence": {"quote": "SSN 123-45-6789", "start": 1.0}, "call_id": "c"}
    assert Redactor().payload(payload) == {"type": "compliance.warning", "call_id": "c",
                                           "evidence": {"quote": "SSN [SSN]", "start": 1.0}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card number is four one one one one one one one one one one one one one one one",
         "my card number is [CARD]"),
        ("cuatro uno uno uno, uno uno uno uno, uno uno uno uno, uno uno uno uno", "[CARD]"),
        ("card 4111 one one one one 1111 one one one one, thanks", "card [CARD], thanks"),
        ("la tarjeta es cuarenta y uno once, once once, once once, once once.", "la tarjeta es [CARD]."),
        ("it's forty-one eleven eleven eleven eleven eleven eleven eleven", "it's [CARD]"),
        ("and the security code is one two three", "and the security code is [CVV]"),
        ("my cvv is double four seven", "my cvv is [CVV]"),
        ("el código de seguridad es nueve ocho siete", "el código de seguridad es [CVV]"),
        ("my social is one two three four five six seven eight nine", "my social is [SSN]"),
        ("it's one two three, four five, six seven eight nine", "it's [SSN]"),
        ("mi número de seguro social es uno 2 3 cuatro cinco seis 7 ocho nueve", "mi número de seguro social es [SSN]"),
        ("mi DNI es uno dos tres cuatro cinco seis siete ocho Z", "mi DNI es [DNI]"),
    ],
)
def test_redacts_numbers_spoken_as_words(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I can pay one hundred fifty dollars on the fifteenth",
        "I have two kids and one job, I paid once or twice",
        "call me at eight hundred five five five zero one zero zero",
        "four one one one one one one one one one one one one one one two",  # fails the Luhn check
        "the security code? give me one minute",
        "tengo dos hijos y una deuda de mil quinientos pesos desde el dos mil veinte",
        "double check the date, it was nineteen eighty",
    ],
)
def test_leaves_ordinary_spoken_numbers(text: str) -> None:
    assert Redactor().text(text) == text


def test_spoken_digits_redacted_word_by_word() -> None:
    said = "my card is four one one one one one one one one one one one one one one one okay"
    words = [{"text": t, "start": i, "end": i + 1} for i, t in enumerate(said.split())]
    assert [w["text"] for w in Redactor().words(words)] == ["my", "card", "is"] + ["[CARD]"] * 16 + ["okay"]
    assert Redactor(kinds=frozenset({"ssn"})).text("cvv one two three") == "cvv one two three"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("it expires 04/27", "it expires [EXPIRY]"),
        ("the expiration date is zero four twenty seven", "the expiration date is [EXPIRY]"),
        ("expiry four twenty-seven, and the cvv is 123", "expiry [EXPIRY], and the cvv is [CVV]"),
        ("valid thru April 2027", "valid thru [EXPIRY]"),
        ("it expires April of twenty twenty-seven", "it expires [EXPIRY]"),
        ("la fecha de vencimiento es cuatro del veintisiete", "la fecha de vencimiento es [EXPIRY]"),
        ("cuatro del veintisiete", "[EXPIRY]"),
        ("vence en abril de 2027", "vence en [EXPIRY]"),
        ("la tarjeta de crédito vence en abril de 2027", "la tarjeta de crédito vence en [EXPIRY]"),
        ("caduca en abril de dos mil veintisiete", "caduca en [EXPIRY]"),
        ("the code on the back is 123", "the code on the back is [CVV]"),
        ("the three digits on the back are seven three seven", "the three digits on the back are [CVV]"),
        ("el código de seguridad es 123", "el código de seguridad es [CVV]"),
        ("el código de atrás es uno dos tres", "el código de atrás es [CVV]"),
        ("my card number starts 4111 1111", "my card number starts [CARD]"),
        ("the card is four one one one, one one one one... hold on", "the card is [CARD]... hold on"),
        ("la tarjeta es cuatro mil ciento once, mil ciento once", "la tarjeta es [CARD]"),
        ("los números de la tarjeta son 4111 11", "los números de la tarjeta son [CARD]"),
    ],
)
def test_redacts_expiry_security_code_and_half_cards(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "pay 123 dollars on the 4th",
        "I'll pay with my card, 500 dollars on April 27",
        "my credit card balance is 125000",
        "the card ending in 1234",
        "call the card company at 800 555 0100",
        "a payment on my credit card. My account number is 500042221",  # natcs-dstc11 finance
        "tengo la tarjeta asociada a la cuenta 50004222",
        "the offer expires in 30 days, on 12/15",
        "the offer expires April 27, 2027",
        "the payment expires on the 15th",
        "el 27 de abril",
        "te pago 50 euros el 4 del 12",
        "el pago vence el 4 de abril de 2027",
        "vence el quince de mayo del dos mil veintisiete",
        "con la tarjeta le pago ciento veintitrés mil pesos",
        "el código postal es 28013",
        "tengo un crédito de 300000 con ustedes",
        "su crédito vence en marzo de 2027",
        "su cuota vence en abril de 2027",
        "the payment plan expires 04/27",
        "your offer expires April 2027",
    ],
)
def test_leaves_amounts_and_dates(text: str) -> None:
    assert Redactor().text(text) == text


def test_every_cue_has_english_and_spanish_entries_and_unknown_keys_are_refused() -> None:
    from pydantic import ValidationError

    from assist.privacy import PrivacyRules, packaged, privacy_rules

    rules = privacy_rules()
    for name in ("card", "card_part", "cvv", "expiry", "ssn", "dni"):
        cue = getattr(rules.cues, name)
        assert cue.en and cue.es, name
    raw = packaged("privacy")
    raw["cues"]["cvv"]["fr"] = ["cryptogramme"]
    with pytest.raises(ValidationError, match="fr"):
        PrivacyRules.model_validate(raw)
