"""Redaction of payment and identity numbers in transcripts (card, CVV, IBAN, SSN, DNI/NIE, CURP...)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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
class Redactor:
    """Replaces matches of the enabled kinds with "[KIND]"; `enabled=False` returns text unchanged.
    Checksums (Luhn, IBAN mod 97, DNI/NIE letter) keep ordinary numbers such as amounts untouched."""

    kinds: frozenset[str] = frozenset(KINDS)
    enabled: bool = True

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping (start, end, kind) spans, earliest first."""
        if not self.enabled:
            return []
        found: list[tuple[int, int, str]] = []
        for p in _PATTERNS:
            if p.kind not in self.kinds:
                continue
            for m in p.regex.finditer(text):
                s, e = m.span("v") if "v" in p.regex.groupindex else m.span()
                if p.valid(text[s:e]) and not any(s < fe and fs < e for fs, fe, _ in found):
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
