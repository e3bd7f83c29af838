"""The languages Recobra speaks, in one place: every rules file, page and setting takes them from here."""

from __future__ import annotations

from typing import Literal

LANGUAGES = ("en", "es")
"""Languages of every user-visible text (each rules file has an entry in each)."""

LANG_TAGS = ("en", "es", "es-ES", "es-MX", "es-CO", "es-PE", "es-US", "en-GB", "en-US")
"""Tags a phrase list may be written under: a language, or a regional variant of one."""

Language = Literal[LANGUAGES]  # type: ignore[valid-type]
LangTag = Literal[LANG_TAGS]  # type: ignore[valid-type]


def base_language(tag: str) -> str:
    """The language of a tag or call language ("es-MX" -> "es"); English when it is not one of LANGUAGES."""
    lang = tag.split("-")[0].split("_")[0].lower()
    return lang if lang in LANGUAGES else LANGUAGES[0]
