"""Redaction of payment and identity numbers in transcripts (card, CVV, IBAN, SSN, DNI/NIE, CURP...)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from assist.analysis.text import load_rules, normalise

KINDS = ("card", "cvv", "iban", "ssn", "dni", "nie", "curp", "rfc")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _iban_ok(raw: str) -> bool:
    s = re.sub(r"\s", "", raw).upper()
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _dni_ok(raw: str) -> bool:
    s = re.sub(r"[\s-]", "", raw).upper()
    return _DNI_LETTERS[int(s[:8]) % 23] == s[8]


def _nie_ok(raw: str) -> bool:
    s = re.sub(r"[\s-]", "", raw).upper()
    return _dni_ok(str("XYZ".index(s[0])) + s[1:])


def _digits(raw: str) -> str:
    return re.sub(r"\D", "", raw)


@dataclass(frozen=True)
class _Pattern:
    kind: str
    regex: re.Pattern[str]
    valid: Callable[[str], bool] = lambda _: True


_PATTERNS = (
    _Pattern("iban", re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?\d{1,3})?\b", re.IGNORECASE), _iban_ok),
    _Pattern("card", re.compile(r"\b\d(?:[ -]?\d){12,18}\b"), lambda m: _luhn(_digits(m))),
    _Pattern("curp", re.compile(r"\b[A-Z][AEIOUX][A-Z]{2}\d{6}[HM][A-Z]{5}[A-Z0-9]\d\b", re.IGNORECASE)),
    _Pattern("rfc", re.compile(r"\b[A-Z&Ñ]{3,4}\d{6}[A-Z0-9]{3}\b", re.IGNORECASE)),
    _Pattern("nie", re.compile(r"\b[XYZ][\s-]?\d{7}[\s-]?[A-Z]\b", re.IGNORECASE), _nie_ok),
    _Pattern("dni", re.compile(r"\b\d{8}[\s-]?[A-Z]\b", re.IGNORECASE), _dni_ok),
    _Pattern("ssn", re.compile(r"\b(?!000|666|9\d\d)\d{3}[- ](?!00)\d{2}[- ](?!0000)\d{4}\b")),
    _Pattern("ssn", re.compile(r"\b(?:social|ssn|seguro social)\b\D{0,30}\b(?P<v>\d(?:[ -]?\d){8})\b", re.IGNORECASE)),
    _Pattern("cvv", re.compile(
        r"\b(?:cvv2?|cvc|security code|c[oó]digo de seguridad)\b\D{0,20}\b(?P<v>\d(?:[ -]?\d){2,3})\b", re.IGNORECASE)),
)


@dataclass(frozen=True)
class NumberWords:
    """Spoken numbers (assist/rules/number_words.yaml), every language merged, keys normalised."""

    digits: Mapping[str, str]
    tens: Mapping[str, str]
    joiners: frozenset[str]
    repeat: Mapping[str, int]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> NumberWords:
        def merged(section: str) -> dict[str, Any]:
            return {normalise(k): v for by_lang in raw[section].values() for k, v in by_lang.items()}

        joiners = frozenset(normalise(w) for words in raw["joiners"].values() for w in words)
        return cls(merged("digits"), merged("tens"), joiners, merged("repeat"))

    def unit(self, key: str) -> str | None:
        """The digit of a one-digit word other than zero ("four" -> "4"), else None."""
        value = self.digits.get(key)
        return value if value is not None and len(value) == 1 and value != "0" else None


@lru_cache(maxsize=1)
def number_words() -> NumberWords:
    return NumberWords.from_dict(load_rules("number_words"))


_TOKEN = re.compile(r"[0-9]+|[^\W\d_]+")
_TIGHT = re.compile(r"\s*-?\s*")  # between words of one spoken group ("forty-one", "one two")
_GAP = re.compile(r"[\s,.;:\-]{0,4}")  # between groups of one spoken number (pauses, commas)


@dataclass(frozen=True)
class _Number:
    start: int
    end: int
    digits: str
    spoken: bool


def _numbers(text: str, words: NumberWords) -> list[_Number]:
    """Every number in `text`, written ("4111") or spoken ("four", "forty one", "double four")."""
    toks = list(_TOKEN.finditer(text))
    keys = [t.group() if t.group().isdigit() else normalise(t.group()) for t in toks]

    def tight(i: int, j: int) -> bool:
        return j < len(toks) and bool(_TIGHT.fullmatch(text, toks[i].end(), toks[j].start()))

    out: list[_Number] = []
    i = 0
    while i < len(toks):
        key, start = keys[i], toks[i].start()
        if key.isdigit():
            out.append(_Number(start, toks[i].end(), key, False))
        elif key in words.tens:
            last, unit = i, "0"
            if tight(i, i + 1) and keys[i + 1] in words.joiners and tight(i + 1, i + 2) and (u := words.unit(keys[i + 2])):
                last, unit = i + 2, u
            elif tight(i, i + 1) and (u := words.unit(keys[i + 1])):
                last, unit = i + 1, u
            out.append(_Number(start, toks[last].end(), words.tens[key] + unit, True))
            i = last
        elif key in words.repeat and tight(i, i + 1) and (d := words.digits.get(keys[i + 1], keys[i + 1])).isdigit() \
                and len(d) == 1:
            i += 1
            out.append(_Number(start, toks[i].end(), d * words.repeat[key], True))
        elif key in words.digits:
            out.append(_Number(start, toks[i].end(), words.digits[key], True))
        i += 1
    return out


def _spoken_as_digits(text: str, words: NumberWords) -> tuple[str, list[tuple[int, int]]] | None:
    """`text` with every run of numbers that has a spoken one rewritten in digits, and for each of its
    characters the span of `text` it came from; None when nothing is spoken.

    Words of one group join up ("four one one one" -> "4111"); a pause or written number between
    them becomes a space ("one two three, four five" -> "123 45"), as a person would write it.
    """
    runs: list[list[_Number]] = []
    for n in _numbers(text, words):
        if runs and _GAP.fullmatch(text, runs[-1][-1].end, n.start):
            runs[-1].append(n)
        else:
            runs.append([n])
    runs = [r for r in runs if any(n.spoken for n in r)]
    if not runs:
        return None
    chars: list[str] = []
    origin: list[tuple[int, int]] = []
    pos = 0
    for run in runs:
        chars += text[pos : run[0].start]
        origin += [(k, k + 1) for k in range(pos, run[0].start)]
        for a, b in zip(run, [*run[1:], None]):
            chars += a.digits
            origin += [(a.start, a.end)] * len(a.digits)
            if b is not None and not (a.spoken and b.spoken and _TIGHT.fullmatch(text, a.end, b.start)):
                chars.append(" ")
                origin.append((a.end, b.start))
        pos = run[-1].end
    chars += text[pos:]
    origin += [(k, k + 1) for k in range(pos, len(text))]
    return "".join(chars), origin


@dataclass(frozen=True)
class Redactor:
    """Replaces matches of the enabled kinds with "[KIND]"; `enabled=False` returns text unchanged.
    Checksums (Luhn, IBAN mod 97, DNI/NIE letter) keep ordinary numbers such as amounts untouched.
    Numbers spoken as words (EN/ES, alone or mixed with digits) are found like written ones."""

    kinds: frozenset[str] = frozenset(KINDS)
    enabled: bool = True

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping (start, end, kind) spans, earliest first."""
        if not self.enabled:
            return []
        spoken = _spoken_as_digits(text, number_words())
        scan = spoken[0] if spoken else text
        found: list[tuple[int, int, str]] = []
        for p in _PATTERNS:
            if p.kind not in self.kinds:
                continue
            for m in p.regex.finditer(scan):
                s, e = m.span("v") if "v" in p.regex.groupindex else m.span()
                if not p.valid(scan[s:e]):
                    continue
                if spoken:
                    s, e = spoken[1][s][0], spoken[1][e - 1][1]
                if not any(s < fe and fs < e for fs, fe, _ in found):
                    found.append((s, e, p.kind))
        return sorted(found)

    def text(self, text: str) -> str:
        out, last = [], 0
        for s, e, kind in self.spans(text):
            out += [text[last:s], f"[{kind.upper()}]"]
            last = e
        return "".join(out) + text[last:]

    def words(self, words: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Word dicts (text/start/end...) with every word that overlaps a redacted span replaced."""
        words = [dict(w) for w in words]
        joined, offsets = "", []
        for w in words:
            start = len(joined) + (1 if joined else 0)
            joined = f"{joined} {w['text'].strip()}" if joined else w["text"].strip()
            offsets.append((start, len(joined)))
        for s, e, kind in self.spans(joined):
            for w, (ws, we) in zip(words, offsets):
                if ws < e and s < we:
                    w["text"] = f"[{kind.upper()}]"
        return words

    def payload(self, data: Any) -> Any:
        """An event payload with its transcript text, words and evidence quotes redacted."""
        if isinstance(data, list):
            return [self.payload(x) for x in data]
        if not isinstance(data, dict):
            return data
        out = {}
        for key, value in data.items():
            if key in ("text", "quote", "stable_text") and isinstance(value, str):
                out[key] = self.text(value)
            elif key == "words" and isinstance(value, list):
                out[key] = self.words(value)
            else:
                out[key] = self.payload(value)
        return out
