"""Redaction of payment and identity numbers in transcripts (card, CVV, IBAN, SSN, DNI/NIE, CURP...)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from assist.analysis.text import load_rules
from assist.spoken_numbers import spoken_as_digits

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
    s = re.sub(r"[^0-9A-Za-z]", "", raw).upper()
    return _DNI_LETTERS[int(s[:8]) % 23] == s[8]


def _nie_ok(raw: str) -> bool:
    s = re.sub(r"[^0-9A-Za-z]", "", raw).upper()
    return _dni_ok(str("XYZ".index(s[0])) + s[1:])


def _digits(raw: str) -> str:
    return re.sub(r"\D", "", raw)


@dataclass(frozen=True)
class _Pattern:
    """A kind found by `regex` (its group "v" if it has one) and checked by `valid`, or by `finder`."""

    kind: str
    regex: re.Pattern[str] | None = None
    valid: Callable[[str], bool] = lambda _: True
    finder: Callable[[str], Iterable[tuple[int, int]]] | None = None

    def find(self, text: str) -> Iterable[tuple[int, int]]:
        if self.finder is not None:
            yield from self.finder(text)
            return
        assert self.regex is not None
        for m in self.regex.finditer(text):
            s, e = m.span("v") if "v" in self.regex.groupindex else m.span()
            if self.valid(text[s:e]):
                yield s, e


_SEP = r"(?:\s*[-–.,/]\s*|\s+)?"
"""Between the digits of one number: nothing, spaces, or one mark with spaces either side, as ASR writes
groups ("123-45", "123 -45", "4111, 1111", "12.345.678")."""
_CARD_WORDS = r"card|tarjeta|visa|mastercard|amex|debit|credit|d[eé]bito|cr[eé]dito"


_IBAN_HEAD = re.compile(r"\b[A-Z]{2}\d{2}\s?$", re.IGNORECASE)
_CARD_RUN = re.compile(rf"(?<![\w.,-])\d(?:{_SEP}\d){{12,}}(?!\d)")


def _card_spans(text: str) -> Iterable[tuple[int, int]]:
    """Runs of digit groups holding a card number: more than 19 digits (ASR repeats digits; no ordinary
    number is that long), or a stretch of whole groups of 13-19 digits that passes Luhn (a run can join
    a card to a number said next to it: "4111 1111 1111 1111, 5")."""
    for run in _CARD_RUN.finditer(text):
        groups = re.findall(r"\d+", run.group())
        iban_tail = _IBAN_HEAD.search(text, 0, run.start()) is not None  # checked as an IBAN instead
        if (sum(map(len, groups)) > 19 and not iban_tail) or any(
                13 <= len(digits := "".join(groups[i:j])) <= 19 and _luhn(digits)
                for i in range(len(groups)) for j in range(i + 1, len(groups) + 1)):
            yield run.span()


_PATTERNS = (
    _Pattern("iban", re.compile(r"\b[A-Z]{2}\s?\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?\d{1,3})?\b", re.IGNORECASE), _iban_ok),
    _Pattern("card", finder=_card_spans),
    _Pattern("card", re.compile(rf"\b(?:{_CARD_WORDS})\b\D{{0,30}}(?<!\d)(?P<v>\d(?:{_SEP}\d){{11,}})(?!\d)",
                                re.IGNORECASE)),
    _Pattern("curp", re.compile(r"\b[A-Z][AEIOUX][A-Z]{2}\d{6}[HM][A-Z]{5}[A-Z0-9]\d\b", re.IGNORECASE)),
    _Pattern("rfc", re.compile(r"\b[A-Z&Ñ]{3,4}\d{6}[A-Z0-9]{3}\b", re.IGNORECASE)),
    _Pattern("nie", re.compile(rf"\b[XYZ]{_SEP}\d(?:{_SEP}\d){{6}}{_SEP}[A-Z]\b", re.IGNORECASE), _nie_ok),
    _Pattern("dni", re.compile(rf"(?<![\w.,-])\d(?:{_SEP}\d){{7}}{_SEP}[A-Z]\b", re.IGNORECASE), _dni_ok),
    _Pattern("dni", re.compile(  # the letter said as a word ("zeta") or not heard: the number after a cue
        rf"\b(?:dni|nif|documento|carn[eé] de identidad|c[eé]dula)\b\D{{0,30}}(?<!\d)(?P<v>\d(?:{_SEP}\d){{6,7}})(?!\d)"
        rf"(?!{_SEP}(?-i:[A-Z])\b)", re.IGNORECASE)),  # its capital letter written: the checksum decides
    _Pattern("ssn", re.compile(r"(?<![\w.,-])(?!000|666|9\d\d)\d{3}(?:\s*[-.,/]\s*|\s+)(?!00)\d{2}"
                               r"(?:\s*[-.,/]\s*|\s+)(?!0000)\d{4}(?!\d)")),
    _Pattern("ssn", re.compile(rf"\b(?:social|ssn|seguro social)\b\D{{0,30}}(?<!\d)(?P<v>\d(?:{_SEP}\d){{8}})(?!\d)",
                               re.IGNORECASE)),
    _Pattern("cvv", re.compile(
        rf"\b(?:cvv2?|cvc|security code|c[oó]digo de seguridad)\b\D{{0,20}}(?<!\d)(?P<v>\d(?:{_SEP}\d){{2,3}})(?!\d)",
        re.IGNORECASE)),
)


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
        spoken = spoken_as_digits(text)
        scan = spoken[0] if spoken else text
        found: list[tuple[int, int, str]] = []
        for p in _PATTERNS:
            if p.kind not in self.kinds:
                continue
            for s, e in p.find(scan):
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


@dataclass(frozen=True)
class MetadataPolicy:
    """Which call metadata is kept (assist/rules/metadata.yaml): dotted key paths, and the keys whose
    value is another metadata map filtered the same way (AudioHook customConfig)."""

    keys: frozenset[str]
    nested: frozenset[str]

    def kept(self, path: str) -> bool | None:
        """True: keep the whole value; None: keep only its allowed children; False: drop."""
        if path in self.keys:
            return True
        return None if any(k.startswith(path + ".") for k in self.keys) else False


@lru_cache(maxsize=1)
def metadata_policy() -> MetadataPolicy:
    raw = load_rules("metadata")
    return MetadataPolicy(frozenset(raw["keys"]), frozenset(raw.get("nested", [])))


MAX_METADATA_TEXT = 256
"""Longest metadata string kept (longer values are cut)."""


def _clean_value(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean_value(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_value(v, redactor) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    text = str(value)[:MAX_METADATA_TEXT]
    redacted = redactor.text(text)
    return value if redacted == str(value) else redacted


def clean_metadata(metadata: Mapping[str, Any], redactor: Redactor, prefix: str = "") -> dict[str, Any]:
    """Only the allowed keys of `metadata` (nested maps filtered too), every value redacted."""
    policy = metadata_policy()
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        path = f"{prefix}{key}"
        if not prefix and key in policy.nested and isinstance(value, dict):
            out[key] = clean_metadata(value, redactor)
        elif (keep := policy.kept(path)) is True:
            out[key] = _clean_value(value, redactor)
        elif keep is None and isinstance(value, dict):
            out[key] = clean_metadata(value, redactor, path + ".")
    return out
