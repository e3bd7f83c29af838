"""Words users read, as data in every language the pages speak (assist/rules/reasons.yaml), typed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from assist.events import Reason


class Plural(BaseModel):
    """A text that depends on a count: `one` when the parameter `n` is 1, else `other`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    one: str
    other: str


class Words(BaseModel):
    """One user-visible text in English and Spanish: plain, a format template, or a Plural."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    en: str | Plural
    es: str | Plural

    def render(self, **params: Any) -> dict[str, str]:
        """The text in each language, with `params` filled in; a param given as {language: text} (e.g. a
        rendered title) fills each language with its own."""
        out = {}
        for lang in type(self).model_fields:
            template = getattr(self, lang)
            if isinstance(template, Plural):
                template = template.one if params.get("n") == 1 else template.other
            values = {k: v.get(lang, v.get("en")) if isinstance(v, Mapping) else v for k, v in params.items()}
            out[lang] = template.format(**values)
        return out

    def reason(self, code: str, **params: Any) -> Reason:
        """A Reason with this text rendered in every language."""
        return Reason(code=code, params=params, text=self.render(**params))


class ReasonBook(BaseModel):
    """assist/rules/reasons.yaml: reason strings of the style and hang-up-risk analysers by code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    style: Mapping[str, Words]
    style_suffixes: Mapping[str, Words]
    abandon: Mapping[str, Words]


def reason_book() -> ReasonBook:
    """The packaged reason strings (the service hands its RuleSet's `reasons` to the analysers)."""
    from assist.ruleset import packaged_rules

    return packaged_rules().reasons


def in_language(reason: Reason, language: str) -> str:
    """The reason's text in `language`, English when it has none in that language."""
    return reason.text.get(language) or reason.text["en"]


def with_suffix(reason: Reason, suffix: Words, context: str) -> Reason:
    """`reason` with `suffix` appended in every language; `context` names the suffix in params."""
    tail = suffix.render()
    text = {lang: t + tail.get(lang, "") for lang, t in reason.text.items()}
    return Reason(code=reason.code, params={**reason.params, "context": context}, text=text)
