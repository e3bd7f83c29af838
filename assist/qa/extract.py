"""Amounts, dates, times and payment methods mentioned in a transcript (EN/ES)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from assist.analysis.text import normalise

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "cero": 0, "un": 1, "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6,
    "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14,
    "quince": 15, "dieciseis": 16, "diecisiete": 17, "dieciocho": 18, "diecinueve": 19, "veinte": 20,
    "veintiuno": 21, "veintidos": 22, "veintitres": 23, "veinticuatro": 24, "veinticinco": 25,
    "veintiseis": 26, "veintisiete": 27, "veintiocho": 28, "veintinueve": 29, "treinta": 30,
    "cuarenta": 40, "cincuenta": 50, "sesenta": 60, "setenta": 70, "ochenta": 80, "noventa": 90,
    "cien": 100, "ciento": 100, "doscientos": 200, "doscientas": 200, "trescientos": 300,
    "cuatrocientos": 400, "quinientos": 500, "seiscientos": 600, "setecientos": 700,
    "ochocientos": 800, "novecientos": 900,
}
_HUNDRED = {"hundred"}
_THOUSAND = {"thousand", "mil"}
_JOINERS = {"and", "y", "a"}
_NUMBER_WORDS = set(_UNITS) | _HUNDRED | _THOUSAND | _JOINERS
_CURRENCY = {
    "dollar": "USD", "dollars": "USD", "bucks": "USD", "dolar": "USD", "dolares": "USD",
    "euro": "EUR", "euros": "EUR", "peso": "MXN", "pesos": "MXN", "sol": "PEN", "soles": "PEN",
    "pound": "GBP", "pounds": "GBP", "libras": "GBP",
}
_SYMBOL = {"$": "USD", "€": "EUR", "£": "GBP"}
_NUM = r"\d{1,3}(?:[.,]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_SYMBOL_AMOUNT = re.compile(rf"(?P<sym>[$€£])\s?(?P<num>{_NUM})|(?P<num2>{_NUM})\s?(?P<sym2>[$€£])")
_WORD_AMOUNT = re.compile(rf"\b(?P<num>{_NUM})\s+(?P<cur>{'|'.join(_CURRENCY)})\b", re.IGNORECASE)

_WEEKDAYS = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
    "lunes": 0, "martes": 1, "miercoles": 2, "jueves": 3, "viernes": 4, "sabado": 5, "domingo": 6,
}
_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12,
    "enero": 1, "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7, "agosto": 8,
    "septiembre": 9, "setiembre": 9, "octubre": 10, "noviembre": 11, "diciembre": 12,
}
_RELATIVE = {"today": 0, "hoy": 0, "tomorrow": 1, "manana": 1, "pasado manana": 2, "day after tomorrow": 2}
_ORD = r"(\d{1,2})(?:st|nd|rd|th)?"
_DAY_PATTERNS = (
    re.compile(rf"\b(?P<month>{'|'.join(_MONTHS)}) (?:the )?{_ORD}\b".replace("(\\d", "(?P<day>\\d", 1)),
    re.compile(rf"\b(?:the )?{_ORD} (?:of )?(?P<month>{'|'.join(_MONTHS)})\b".replace("(\\d", "(?P<day>\\d", 1)),
    re.compile(rf"\b(?:el|dia) {_ORD} de (?P<month>{'|'.join(_MONTHS)})\b".replace("(\\d", "(?P<day>\\d", 1)),
    re.compile(rf"\b(?:on the|the|el dia|el) {_ORD}\b".replace("(\\d", "(?P<day>\\d", 1)),
)
_WEEKDAY = re.compile(rf"\b(?P<wd>{'|'.join(_WEEKDAYS)})\b")
_REL = re.compile(rf"\b(?P<rel>{'|'.join(sorted(_RELATIVE, key=len, reverse=True))})\b")
_TIME = re.compile(
    r"\b(?:at|a las|a la|after|despues de las)\s+(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?\s*(?P<ap>a\.?m\.?|p\.?m\.?)?"
    r"|\b(?P<h2>\d{1,2})(?:[:.](?P<m2>\d{2}))?\s*(?P<ap2>a\.?m\.?|p\.?m\.?)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Amount:
    value: float
    currency: str | None
    text: str


@dataclass(frozen=True)
class DateMention:
    text: str
    value: date | None


def _parse_number(num: str) -> float:
    """'1,500.50', '1.500,50', '150' -> float (the last separator followed by 1-2 digits is decimal)."""
    m = re.match(r"^(.*?)([.,](\d{1,2}))?$", num)
    whole, dec = (m.group(1), m.group(3)) if m and m.group(2) else (num, None)
    value = float(re.sub(r"[.,]", "", whole) or 0)
    return value + (float(f"0.{dec}") if dec else 0.0)


def words_to_number(tokens: list[str]) -> int | None:
    """Spoken numbers in EN or ES ("two hundred fifty", "doscientos cincuenta", "mil quinientos")."""
    total, current, seen = 0, 0, False
    for tok in tokens:
        if tok in _UNITS:
            current += _UNITS[tok]
        elif tok in _HUNDRED:
            current = max(current, 1) * 100
        elif tok in _THOUSAND:
            total += max(current, 1) * 1000
            current = 0
        elif tok in _JOINERS and seen:
            continue
        else:
            return None
        seen = True
    return total + current if seen else None


def find_amounts(text: str) -> list[Amount]:
    """Money amounts: "$150", "150 dollars", "1.500 €", "two hundred dollars", "cien euros"."""
    found: list[Amount] = []
    for m in _SYMBOL_AMOUNT.finditer(text):
        num, sym = (m.group("num"), m.group("sym")) if m.group("num") else (m.group("num2"), m.group("sym2"))
        found.append(Amount(_parse_number(num), _SYMBOL[sym], m.group(0)))
    for m in _WORD_AMOUNT.finditer(text):
        if not any(m.group("num") in a.text for a in found):
            found.append(Amount(_parse_number(m.group("num")), _CURRENCY[m.group("cur").lower()], m.group(0)))
    tokens = normalise(text).split()
    for i, tok in enumerate(tokens):
        if tok in _CURRENCY:
            j = i
            while j > 0 and tokens[j - 1] in _NUMBER_WORDS:
                j -= 1
            while j < i and tokens[j] in _JOINERS:
                j += 1
            value = words_to_number(tokens[j:i]) if j < i else None
            if value:
                found.append(Amount(float(value), _CURRENCY[tok], " ".join(tokens[j : i + 1])))
    return found


def _next_weekday(ref: date, weekday: int) -> date:
    return ref + timedelta(days=(weekday - ref.weekday()) % 7 or 7)


def _day_of_month(ref: date, day: int, month: int | None) -> date | None:
    try:
        if month is None:
            candidate = ref.replace(day=day)
            if candidate < ref:
                candidate = (ref.replace(day=1) + timedelta(days=32)).replace(day=day)
            return candidate
        candidate = date(ref.year, month, day)
        return candidate if candidate >= ref else date(ref.year + 1, month, day)
    except ValueError:
        return None


def find_dates(text: str, ref: date | None = None) -> list[DateMention]:
    """Date mentions, resolved against the call date `ref` when given (the next such day)."""
    norm = normalise(text)
    found: list[DateMention] = []
    taken: list[tuple[int, int]] = []
    for pattern in _DAY_PATTERNS:
        for m in pattern.finditer(norm):
            if any(s <= m.start() < e for s, e in taken):
                continue
            taken.append(m.span())
            day = int(m.group("day"))
            month = _MONTHS.get(m.groupdict().get("month") or "")
            if not 1 <= day <= 31:
                continue
            found.append(DateMention(m.group(0), _day_of_month(ref, day, month) if ref else None))
    for m in _WEEKDAY.finditer(norm):
        found.append(DateMention(m.group(0), _next_weekday(ref, _WEEKDAYS[m.group("wd")]) if ref else None))
    for m in _REL.finditer(norm):
        found.append(DateMention(m.group(0), ref + timedelta(days=_RELATIVE[m.group("rel")]) if ref else None))
    return found


def find_time(text: str) -> str | None:
    """A clock time ("at 3 pm", "a las 5", "10:30 am") as HH:MM, or None."""
    for m in _TIME.finditer(text):
        hour = m.group("h") or m.group("h2")
        minute = int(m.group("m") or m.group("m2") or 0)
        ampm = (m.group("ap") or m.group("ap2") or "").lower().replace(".", "")
        h = int(hour)
        if h > 23 or minute > 59:
            continue
        if ampm == "pm" and h < 12:
            h += 12
        return f"{h:02d}:{minute:02d}"
    return None
