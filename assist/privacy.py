"""Redaction of payment and identity numbers in transcripts (card, CVV, IBAN, SSN, DNI/NIE, CURP...)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from assist.analysis.text import RULES_DIR
from assist.spoken_numbers import spoken_as_digits


def packaged(name: str) -> Any:
    """A packaged rules file, parsed (the service's RuleSet validates the same files at start-up)."""
    return yaml.safe_load((RULES_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


KINDS = ("card", "cvv", "expiry", "iban", "ssn", "dni", "nie", "curp", "rfc")


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


_Finder = Callable[[str], Iterable[tuple[int, int]]]


@dataclass(frozen=True)
class _Pattern:
    """A kind found by `regex` (its group "v" if it has one) and checked by `valid`, or by `finder`."""

    kind: str
    regex: re.Pattern[str] | None = None
    valid: Callable[[str], bool] = lambda _: True
    finder: _Finder | None = None

    def find(self, text: str) -> Iterable[tuple[int, int]]:
        if self.finder is not None:
            yield from self.finder(text)
            return
        assert self.regex is not None
        for m in self.regex.finditer(text):
            s, e = m.span("v") if "v" in self.regex.groupindex else m.span()
            if self.valid(text[s:e]):
                yield s, e


_SEP = r"(?:\s*(?:[-–,/]|\.{1,3}|…)\s*|\s+)?"
"""Between the digits of one number: nothing, spaces, or one mark (or a pause's dots) with spaces either side,
as ASR writes groups ("123-45", "123 -45", "4111, 1111", "12.345.678", "7 3... 7")."""
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


_PLAIN = [
    _Pattern("iban", re.compile(r"\b[A-Z]{2}\s?\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?\d{1,3})?\b", re.IGNORECASE),
             _iban_ok),
    _Pattern("card", finder=_card_spans),
    _Pattern("curp", re.compile(r"\b[A-Z][AEIOUX][A-Z]{2}\d{6}[HM][A-Z]{5}[A-Z0-9]\d\b", re.IGNORECASE)),
    _Pattern("rfc", re.compile(r"\b[A-Z&Ñ]{3,4}\d{6}[A-Z0-9]{3}\b", re.IGNORECASE)),
    _Pattern("nie", re.compile(rf"\b[XYZ]{_SEP}\d(?:{_SEP}\d){{6}}{_SEP}[A-Z]\b", re.IGNORECASE), _nie_ok),
    _Pattern("dni", re.compile(rf"(?<![\w.,-])\d(?:{_SEP}\d){{7}}{_SEP}[A-Z]\b", re.IGNORECASE), _dni_ok),
    _Pattern("ssn", re.compile(r"(?<![\w.,-])(?!000|666|9\d\d)\d{3}(?:\s*[-.,/]\s*|\s+)(?!00)\d{2}"
                               r"(?:\s*[-.,/]\s*|\s+)(?!0000)\d{4}(?!\d)")),
]
"""The kinds found by their shape and checksum alone, without a cue."""


class Phrases(BaseModel):
    """Words or phrases in English and Spanish (assist/rules/privacy.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    en: tuple[str, ...]
    es: tuple[str, ...]

    def regex(self) -> str:
        """Any of the phrases on word boundaries, case- and accent-insensitively (compile with IGNORECASE)."""
        phrases = sorted({_phrase_regex(p) for p in (*self.en, *self.es)}, key=len, reverse=True)
        return rf"\b(?:{'|'.join(phrases)})\b" if phrases else r"(?!)"


class Cues(BaseModel):
    """The phrases that name the number said next, by kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    card: Phrases
    card_part: Phrases
    cvv: Phrases
    expiry: Phrases
    ssn: Phrases
    dni: Phrases


class PrivacyRules(BaseModel):
    """assist/rules/privacy.yaml: the cue words and word lists redaction is built from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    cues: Cues
    amount_words: Phrases
    not_card_part: Phrases
    card_amounts: Phrases
    not_expiry: Phrases
    months: Phrases
    month_year_joiners: Phrases
    expiry_without_cue: Phrases
    expiry_years: tuple[int, int]


@lru_cache(maxsize=1)
def privacy_rules() -> PrivacyRules:
    """The packaged privacy rules, validated once (the model a RuleSet validates privacy.yaml with)."""
    return PrivacyRules.model_validate(packaged("privacy"))


_ACCENTED = {"a": "[aá]", "e": "[eé]", "i": "[ií]", "o": "[oó]", "u": "[uúü]", "n": "[nñ]"}


def _phrase_regex(phrase: str) -> str:
    plain = "".join(c for c in unicodedata.normalize("NFKD", phrase.lower()) if not unicodedata.combining(c))
    return r"\s+".join("".join(_ACCENTED.get(c, re.escape(c)) for c in word) for word in plain.split())


_AMOUNT_OR_PHONE = re.compile(r"\d{1,3}(?:,\d{3})+\.\d{2}|\d{3}[\s.-]+\d{3}[\s.-]+\d{3,4}")
"""An amount with cents ("1,250.00") or a phone number in groups of three ("800 555 0100", "612 345 678")."""


def _just_before(phrases: Phrases) -> re.Pattern[str]:
    """One of `phrases` at most three words before the end of the text searched."""
    return re.compile(rf"{phrases.regex()}(?:\W+\w+){{0,3}}\W*$", re.IGNORECASE)


class _Cued:
    """The kinds found after a cue (or, for an expiry, by a form no ordinary date takes), built from the rules."""

    def __init__(self, rules: PrivacyRules) -> None:
        def cued(kind: str, value: str, after: str) -> re.Pattern[str]:
            cue = getattr(rules.cues, kind).regex()
            return re.compile(rf"{cue}(?P<between>\D{{0,30}}?)(?<!\d)(?P<v>{value}){after}", re.IGNORECASE)

        self.rules = rules
        self.amount_after = re.compile(rf"\s*{rules.amount_words.regex()}", re.IGNORECASE)
        self.not_card_part = re.compile(rules.not_card_part.regex(), re.IGNORECASE)
        self.card_amounts = re.compile(rules.card_amounts.regex(), re.IGNORECASE)
        self.amount_before = _just_before(rules.card_amounts)
        self.not_expiry = re.compile(rules.not_expiry.regex(), re.IGNORECASE)
        self.not_expiry_before = _just_before(rules.not_expiry)
        self.card = re.compile(rules.cues.card_part.regex(), re.IGNORECASE)
        month, year, year_end = r"(?:0?[1-9]|1[0-2])", r"(?P<y>(?:20)?\d{2})", r"(?![\d/.-]\d|\d)"
        joiner = rules.month_year_joiners.regex()
        self.day_before = re.compile(rf"\d(?:st|nd|rd|th|º)?\s*(?:{joiner})?\s*$", re.IGNORECASE)
        self.patterns = [
            (cued("card", rf"\d(?:{_SEP}\d){{11,}}", r"(?!\d)"), "card", None),
            (cued("dni", rf"\d(?:{_SEP}\d){{6,7}}", rf"(?!\d)(?!{_SEP}(?-i:[A-Z])\b)"), "dni", None),
            (cued("ssn", rf"\d(?:{_SEP}\d){{8}}", r"(?!\d)"), "ssn", None),
            (cued("cvv", rf"\d(?:{_SEP}\d){{2,3}}", r"(?!\d)"), "cvv", self._not_amount),
            (cued("expiry", rf"{month}(?:\s*[/.-]\s*|\s+{joiner}\s+|\s+)?{year}", year_end), "expiry",
             self._cued_expiry),
            (cued("expiry", rf"{rules.months.regex()}\.?(?:\s+{joiner}\s+|\s*['’]\s*|\s*,?\s*(?=20\d\d)){year}",
                  year_end), "expiry", self._named_expiry),
            (re.compile(rf"(?<![\d/.-])(?P<v>{month}\s+{rules.expiry_without_cue.regex()}\s+{year}){year_end}",
                        re.IGNORECASE), "expiry", self._expiry),
            (cued("card_part", rf"\d(?:{_SEP}\d){{5,10}}", rf"(?!{_SEP}\d)"), "card", self._card_part),
        ]
        """(regex with a group "v", kind, check of the match or None), in the order they are tried."""

    @staticmethod
    def finder(regex: re.Pattern[str], check: Callable[[str, re.Match[str]], bool] | None) -> _Finder:
        def find(text: str) -> Iterable[tuple[int, int]]:
            return (m.span("v") for m in regex.finditer(text) if check is None or check(text, m))
        return find

    def _not_amount(self, text: str, m: re.Match[str]) -> bool:
        """Not said with a currency word after it or a currency sign before it ("123 dollars", "$123")."""
        return self.amount_after.match(text, m.end("v")) is None and not re.search(r"[$€£]\s*$", text[:m.start("v")])

    def _expiry(self, text: str, m: re.Match[str]) -> bool:
        first, last = self.rules.expiry_years
        return first <= int(m["y"][-2:]) <= last and self._not_amount(text, m)

    def _cued_expiry(self, text: str, m: re.Match[str]) -> bool:
        """After its cue, unless that cue speaks of a payment or an offer ("su cuota vence en abril de 2027") and
        not of a card ("la tarjeta de crédito vence...")."""
        before = max(0, m.start() - 40)
        loan = self.not_expiry.search(m["between"]) or self.not_expiry_before.search(text, before, m.start())
        return self._expiry(text, m) and (not loan or self.card.search(text, before, m.end("between")) is not None)

    def _named_expiry(self, text: str, m: re.Match[str]) -> bool:
        """A month and year, not a whole date ("el 4 de abril de 2027", "April 4th of 2027" are dates)."""
        return self._cued_expiry(text, m) and not self.day_before.search(text, 0, m.start("v"))

    def _card_part(self, text: str, m: re.Match[str]) -> bool:
        """6-11 digits after a card cue, unless said as an amount or a phone number ("card balance 125000")."""
        return not (self.not_card_part.search(m["between"]) or self.card_amounts.search(m["between"])
                    or self.amount_before.search(text, max(0, m.start() - 40), m.start())
                    or _AMOUNT_OR_PHONE.fullmatch(m["v"])) and self._not_amount(text, m)


@lru_cache(maxsize=1)
def _patterns() -> tuple[_Pattern, ...]:
    """Shape-and-checksum kinds first (they win an overlap), then those found after a cue."""
    cued = _Cued(privacy_rules())
    return (*_PLAIN, *(_Pattern(kind, finder=cued.finder(regex, check)) for regex, kind, check in cued.patterns))


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
        for p in _patterns():
            if p.kind not in self.kinds:
                continue
            for s, e in p.find(scan):
                if spoken:
                    s, e = spoken[1][s][0], spoken[1][e - 1][1]
                if not any(s < fe and fs < e for fs, fe, _ in found):
                    found.append((s, e, p.kind))
        return sorted(found)

    def after(self, context: str, text: str) -> list[tuple[int, int, str]]:
        """The spans of `text` read after `context` (what was said just before it, e.g. the question whose cue
        names the number: "the security code?" - "seven three seven"), clipped to `text`."""
        if not context:
            return self.spans(text)
        offset = len(context) + 1
        return [(max(s - offset, 0), e - offset, kind) for s, e, kind in self.spans(f"{context} {text}") if e > offset]

    def text(self, text: str, context: str = "") -> str:
        out, last = [], 0
        for s, e, kind in self.after(context, text):
            out += [text[last:s], f"[{kind.upper()}]"]
            last = e
        return "".join(out) + text[last:]

    def words(self, words: Iterable[Mapping[str, Any]], context: str = "") -> list[dict[str, Any]]:
        """Word dicts (text/start/end...) with every word that overlaps a redacted span replaced."""
        out = [dict(w) for w in words]
        joined, offsets = "", []
        for w in out:
            start = len(joined) + (1 if joined else 0)
            joined = f"{joined} {w['text'].strip()}" if joined else w["text"].strip()
            offsets.append((start, len(joined)))
        for s, e, kind in self.after(context, joined):
            for w, (ws, we) in zip(out, offsets):
                if ws < e and s < we:
                    w["text"] = f"[{kind.upper()}]"
        return out

    def payload(self, data: Any, context: str = "") -> Any:
        """An event payload with its transcript text, words and evidence quotes redacted; a transcript's
        text and words read after `context`."""
        if isinstance(data, list):
            return [self.payload(x) for x in data]
        if not isinstance(data, dict):
            return data
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("text", "quote", "stable_text") and isinstance(value, str):
                out[key] = self.text(value, context if key != "quote" else "")
            elif key == "words" and isinstance(value, list):
                out[key] = self.words(value, context)
            else:
                out[key] = self.payload(value)
        return out


JOIN_S = 5.0
"""Finals (either speaker) that ended this soon before a final are read with it: a number said in two
breaths, or an answer whose cue was in the question ("the security code?" - "seven three seven")."""


class SaidBefore:
    """The finals of each live call's last JOIN_S seconds, both speakers (unredacted, in memory only): what
    a final is redacted after."""

    def __init__(self) -> None:
        self._recent: dict[str, list[tuple[float, str]]] = {}

    def context(self, call_id: str, start: float, end: float, text: str) -> str:
        """The text of the finals that ended less than JOIN_S before `start`, oldest first; notes this one."""
        recent = [(e, t) for e, t in self._recent.get(call_id, []) if e > start - JOIN_S]
        self._recent[call_id] = [*recent, (end, text)]
        return " ".join(t for _, t in recent)

    def forget(self, call_id: str) -> None:
        self._recent.pop(call_id, None)


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
    from assist.ruleset import packaged_rules

    spec = packaged_rules().metadata
    return MetadataPolicy(frozenset(spec.keys), frozenset(spec.nested))


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
