"""Numbers spoken as words (EN/ES) rewritten as digits, so that redaction finds them like written ones."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

from assist.analysis.text import RULES_DIR, normalise


@dataclass(frozen=True)
class NumberWords:
    """Spoken numbers (assist/rules/number_words.yaml), every language merged, keys normalised."""

    digits: Mapping[str, str]
    tens: Mapping[str, str]
    hundreds: Mapping[str, str]
    multipliers: Mapping[str, int]
    joiners: frozenset[str]
    repeat: Mapping[str, int]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> NumberWords:
        def merged(section: str) -> dict[str, Any]:
            return {normalise(k): v for by_lang in raw[section].values() for k, v in (by_lang or {}).items()}

        joiners = frozenset(normalise(w) for words in raw["joiners"].values() for w in words)
        return cls(merged("digits"), merged("tens"), merged("hundreds"), merged("multipliers"), joiners,
                   merged("repeat"))

    def unit(self, key: str | None) -> str | None:
        """The digit of a one-digit word other than zero ("four" -> "4"), else None."""
        value = self.digits.get(key or "")
        return value if value is not None and len(value) == 1 and value != "0" else None


@lru_cache(maxsize=1)
def number_words() -> NumberWords:
    return NumberWords.from_dict(yaml.safe_load((RULES_DIR / "number_words.yaml").read_text(encoding="utf-8")))


_TOKEN = re.compile(r"[0-9]+|[^\W\d_]+")
_TIGHT = re.compile(r"\s*-?\s*")  # between words of one spoken group ("forty-one", "one two")
_GAP = re.compile(r"[\s,.;:\-]{0,4}")  # between groups of one spoken number (pauses, commas)


@dataclass(frozen=True)
class _Number:
    start: int
    end: int
    digits: str
    spoken: bool


class _Cardinals:
    """Spoken cardinals over the tokens of one text: digit words, tens, hundreds and thousands.

    Each parse returns (index of its last token, value); words join only when `tight`."""

    def __init__(self, text: str, words: NumberWords) -> None:
        self.text, self.words = text, words
        self.toks = list(_TOKEN.finditer(text))
        self.keys = [t.group() if t.group().isdigit() else normalise(t.group()) for t in self.toks]

    def next_key(self, i: int) -> str | None:
        """The token after i when nothing but spaces or one hyphen separates them."""
        j = i + 1
        if j < len(self.toks) and _TIGHT.fullmatch(self.text, self.toks[i].end(), self.toks[j].start()):
            return self.keys[j]
        return None

    def below_100(self, i: int) -> tuple[int, int] | None:
        w, key = self.words, self.keys[i]
        if key in w.tens:
            tens = int(w.tens[key]) * 10
            if self.next_key(i) in w.joiners and (u := w.unit(self.next_key(i + 1))):
                return i + 2, tens + int(u)
            if u := w.unit(self.next_key(i)):
                return i + 1, tens + int(u)
            return i, tens
        return (i, int(w.digits[key])) if key in w.digits else None

    def below_1000(self, i: int) -> tuple[int, int] | None:
        w, key = self.words, self.keys[i]
        if key in w.hundreds:
            last, value = i, int(w.hundreds[key]) * 100
        elif (small := self.below_100(i)) is None:
            return None
        elif w.multipliers.get(self.next_key(small[0]) or "") == 2:
            last, value = small[0] + 1, small[1] * 100
        else:
            return small
        rest = self.below_100(last + 1) if self.next_key(last) is not None else None
        return (rest[0], value + rest[1]) if rest else (last, value)

    def number(self, i: int) -> tuple[int, str] | None:
        """(last token, digits) of the spoken number starting at token i, or None."""
        w, key = self.words, self.keys[i]
        if w.multipliers.get(key) == 3:
            last, value = i, 1000  # "mil" alone
        elif (head := self.below_1000(i)) is None:
            return None
        elif w.multipliers.get(self.next_key(head[0]) or "") == 3:
            last, value = head[0] + 1, head[1] * 1000
        else:
            simple = head[0] == i and key in w.digits  # "oh", "zero": keep the digits as said
            return head[0], w.digits[key] if simple else str(head[1])
        rest = self.below_1000(last + 1) if self.next_key(last) is not None else None
        return (rest[0], str(value + rest[1])) if rest else (last, str(value))

    def numbers(self) -> list[_Number]:
        """Every number, written ("4111") or spoken ("four", "forty one", "double four", "ciento once")."""
        w, toks, keys = self.words, self.toks, self.keys
        out: list[_Number] = []
        i = 0
        while i < len(toks):
            key, start = keys[i], toks[i].start()
            if key.isdigit():
                out.append(_Number(start, toks[i].end(), key, False))
            elif key in w.repeat and (nxt := self.next_key(i)) is not None \
                    and len(d := w.digits.get(nxt, nxt)) == 1 and d.isdigit():
                i += 1
                out.append(_Number(start, toks[i].end(), d * w.repeat[key], True))
            elif (num := self.number(i)) is not None:
                out.append(_Number(start, toks[num[0]].end(), num[1], True))
                i = num[0]
            i += 1
        return out


def spoken_as_digits(text: str, words: NumberWords | None = None) -> tuple[str, list[tuple[int, int]]] | None:
    """`text` with every run of numbers that has a spoken one rewritten in digits, and for each of its
    characters the span of `text` it came from; None when nothing is spoken.

    Words of one group join up ("four one one one" -> "4111"); a pause or written number between
    them becomes a space ("one two three, four five" -> "123 45"), as a person would write it.
    """
    runs: list[list[_Number]] = []
    for n in _Cardinals(text, words or number_words()).numbers():
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
