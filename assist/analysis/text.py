"""Text normalisation and cue-phrase matching shared by the analysers (EN/ES)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
"""The packaged rules folder (read through assist/ruleset.py)."""
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """Lowercase, accents stripped (NFKD), punctuation and apostrophes to spaces, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", plain.replace("'", "").replace("’", "")).strip()


def contains_phrase(norm_text: str, phrase: str) -> bool:
    """True when the normalised `phrase` occurs in `norm_text` on word boundaries."""
    return bool(phrase) and f" {phrase} " in f" {norm_text} "


def load_rules(name: str) -> dict[str, Any]:
    """A packaged rules file by stem, parsed but not validated (tools and tests); the service reads its rules
    through one validated RuleSet (assist/ruleset.py)."""
    with open(RULES_DIR / f"{name}.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@dataclass(frozen=True)
class PhraseBook:
    """Cue phrases by category, every language merged (calls code-switch), normalised once."""

    phrases: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_rules(cls, raw: Mapping[str, Mapping[str, Sequence[str]]]) -> PhraseBook:
        """`raw` is {category: {language: [phrase, ...]}}."""
        book: dict[str, tuple[str, ...]] = {}
        for cat, langs in raw.items():
            phrases = [p for lang in langs.values() for p in lang]
            bad = [p for p in phrases if not isinstance(p, str)]
            if bad:
                raise TypeError(f"{cat}: {bad} are not strings (quote yes/no/on/off in YAML)")
            book[cat] = tuple(dict.fromkeys(normalise(p) for p in phrases))
        return cls(book)

    def hits(self, norm_text: str, category: str) -> list[str]:
        """The category's phrases found in `norm_text`, longest first, each counted once; a phrase
        inside a longer hit (e.g. "pague" in "pague hoy") is not counted again."""
        found: list[str] = []
        for phrase in sorted(self.phrases.get(category, ()), key=len, reverse=True):
            if contains_phrase(norm_text, phrase) and not any(contains_phrase(f, phrase) for f in found):
                found.append(phrase)
        return found

    def any(self, norm_text: str, category: str) -> bool:
        return any(contains_phrase(norm_text, p) for p in self.phrases.get(category, ()))
