"""Next-best-action prompt cards (collections-domain.md §4): debtor objections matched by phrase and by
meaning against the trigger examples in assist/rules/prompts.yaml, pushed once per trigger episode."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from assist.analysis.base import CallContext
from assist.analysis.intent import IntentHead, intent_config, load_heads
from assist.analysis.matching import negated_phrase, spoken_text
from assist.analysis.text import RULES_DIR, contains_phrase, normalise
from assist.events import EventBase, Evidence, PromptCard
from assist.languages import LangTag, base_language
from models.batching import Priority
from models.embedding_worker import shared_embedder
from models.embeddings import Embedder, cache_by_model
from streaming.types import AudioFrame, Speaker, Utterance

PROMPTS_PATH = RULES_DIR / "prompts.yaml"
_UNIT_SPLIT = re.compile(r"[.!?;,¿¡…]+")
TRIGGER_NEGATION_WINDOW = 2  # a negator this many words or fewer before a trigger phrase denies it


class PromptDataError(ValueError):
    """An invalid prompt-card file; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Lines = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class Title(_Model):
    en: str = Field(min_length=1)
    es: str = Field(min_length=1)


class Bilingual(_Model):
    en: Lines
    es: Lines


class Variant(_Model):
    """Replaces the card's title/say/avoid when the call metadata has a truthy value at `when`."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    when: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$", description="Dotted path into the call metadata.")
    title: Title
    say: Bilingual
    avoid: Bilingual | None = None


class Card(_Model):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: Title
    priority: int = Field(0, description="Wins over lower priorities when several cards match by phrase.")
    triggers: dict[LangTag, Lines]
    say: Bilingual
    avoid: Bilingual
    variants: list[Variant] = []

    @field_validator("triggers")
    @classmethod
    def _both_languages(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if not any(t.startswith("en") for t in v) or not any(t.startswith("es") for t in v):
            raise ValueError("needs English (en) and Spanish (es...) trigger examples")
        return v


class Matching(_Model):
    similarity: float = Field(gt=0, le=1)
    partial_similarity: float = Field(gt=0, le=1)
    margin: float = Field(ge=0, le=1)
    min_words: int = Field(ge=1)
    partial_min_words: int = Field(ge=1, description="Interim text is matched by meaning only from this many words.")
    episode_gap_s: float = Field(gt=0)


class PromptFile(_Model):
    matching: Matching
    neutral: dict[LangTag, Lines]
    cards: Annotated[list[Card], Field(min_length=1)]
    _digest: int = PrivateAttr(0)

    @model_validator(mode="after")
    def _unique_ids(self) -> PromptFile:
        ids = [c.id for c in self.cards]
        if dupes := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"duplicate card ids: {', '.join(dupes)}")
        return self

    def model_post_init(self, context: Any) -> None:
        self._digest = hash(self.model_dump_json())

    def __hash__(self) -> int:
        """By content (computed once): a card file keys its compiled index (card_index)."""
        return self._digest


def load_prompt_file(path: Path = PROMPTS_PATH) -> PromptFile:
    """Read and validate a card file; errors name the file and the field (e.g. cards.3.say.es)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return PromptFile.model_validate(raw)
    except yaml.YAMLError as exc:
        raise PromptDataError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors()]
        raise PromptDataError("\n".join(lines)) from exc


@dataclass(frozen=True, slots=True)
class CardMatch:
    card: Card
    similarity: float  # 1.0 for a phrase match
    quote: str  # the words that matched (phrase match: the utterance)


@dataclass(frozen=True)
class CardIndex:
    """A card file compiled once per process and embedding model: normalised phrases and trigger/neutral
    embeddings."""

    spec: PromptFile
    model: str  # the embedding model of `triggers` and `neutral`
    phrases: tuple[tuple[Card, str], ...]
    trigger_cards: tuple[Card, ...]  # one per row of `triggers`
    triggers: np.ndarray
    neutral: np.ndarray
    head: IntentHead | None  # the trained card classifier for `model`, if there is one

    @classmethod
    def build(cls, spec: PromptFile, embedder: Embedder) -> CardIndex:
        embed = embedder.embed
        pairs = [(card, text) for card in spec.cards for texts in card.triggers.values() for text in texts]
        neutral = [text for texts in spec.neutral.values() for text in texts]
        return cls(
            spec,
            embedder.model,
            tuple((card, normalise(text)) for card, text in pairs),
            tuple(card for card, _ in pairs),
            embed([text for _, text in pairs]),
            embed(neutral),
            load_heads(embedder.model).get("prompts"),
        )

    @property
    def _by_id(self) -> dict[str, Card]:
        return {c.id: c for c in self.spec.cards}

    def match(self, text: str, final: bool = True, embedder: Embedder | None = None,
              call_id: str = "") -> CardMatch | None:
        """The best card for one debtor utterance, or None: a trigger phrase it contains, else (finals)
        the trained card head's most probable card, else (interims, or no head for the model) the
        closest trigger example by meaning. Blocking (embeds through `embedder`, the process's shared
        one unless given): run it off the event loop."""
        norm = normalise(text)
        hits = [(card, phrase) for card, phrase in self.phrases
                if contains_phrase(norm, phrase) and not _denied(text, phrase)]
        if hits:
            card, _ = max(hits, key=lambda h: (h[0].priority, len(h[1])))
            return CardMatch(card, 1.0, text.strip())
        m = self.spec.matching
        units = _units(text, m.min_words if final else m.partial_min_words)
        if not units:
            return None
        embedder = embedder or shared_embedder(self.model)
        emb = embedder.embed(units, Priority.FINAL if final else Priority.INTERIM, call_id)
        if final and self.head is not None:
            top = self.head.top(emb)
            return CardMatch(self._by_id[top[0]], top[1], units[top[2]]) if top else None
        sims = emb @ self.triggers.T
        floor = (emb @ self.neutral.T).max(axis=1) + m.margin
        u, j = np.unravel_index(int(sims.argmax()), sims.shape)
        best = float(sims[u, j])
        if best < (m.similarity if final else m.partial_similarity) or best < floor[u]:
            return None
        return CardMatch(self.trigger_cards[j], best, units[u])


@cache
def _trigger_negators() -> frozenset[str]:
    return frozenset(w for words in intent_config().trigger_negators.values() for w in words)


def _denied(text: str, phrase: str) -> bool:
    """Every clause of `text` holding the trigger `phrase` denies it ("no tengo abogado"); "no, I lost
    my job" does not: the comma ends the clause the negator is in."""
    clauses = [c for c in (normalise(part) for part in _UNIT_SPLIT.split(text)) if contains_phrase(c, phrase)]
    negators = _trigger_negators()
    return bool(clauses) and all(negated_phrase(c, phrase, negators, TRIGGER_NEGATION_WINDOW) for c in clauses)


def _units(text: str, min_words: int) -> list[str]:
    """The utterance, its sentences and its clauses with at least `min_words` words, deduplicated."""
    parts = [" ".join(text.split()), *(" ".join(p.split()) for p in _UNIT_SPLIT.split(text))]
    return [p for p in dict.fromkeys(map(spoken_text, parts)) if len(p.split()) >= min_words]


def card_index(spec: PromptFile | None = None, embedder: Embedder | None = None) -> CardIndex:
    """The compiled cards of `spec` (default: the packaged prompts.yaml), built once per process and
    embedding model (by default the process's shared embedder)."""
    if spec is None:
        from assist.ruleset import packaged_rules

        spec = packaged_rules().prompts
    return _card_index(spec, embedder=embedder or shared_embedder())


@cache_by_model
def _card_index(spec: PromptFile, *, embedder: Embedder) -> CardIndex:
    return CardIndex.build(spec, embedder)


def _lookup(metadata: Mapping[str, Any], dotted: str) -> Any:
    node: Any = metadata
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


class PromptAnalyser:
    """Pushes a PromptCard (in the call's language, with the debtor's words as evidence) when a debtor
    utterance, interim or final, matches a card; once per episode: a card fires again only after
    `episode_gap_s` of call time without a hit for it. `cards` come from the service's RuleSet (default:
    the packaged prompts.yaml)."""

    def __init__(self, ctx: CallContext, cards: PromptFile | None = None, embedder: Embedder | None = None) -> None:
        self.ctx = ctx
        self.cards = cards
        self.embedder = embedder or shared_embedder()
        self._last_hit: dict[str, float] = {}

    def on_utterance(self, utt: Utterance) -> list[EventBase]:
        if utt.speaker is not Speaker.DEBTOR or not utt.text.strip():
            return []
        index = card_index(self.cards, self.embedder)  # built on first use, off the event loop
        found = index.match(utt.text, utt.final, self.embedder, self.ctx.call_id)
        if found is None:
            return []
        card = found.card
        last = self._last_hit.get(card.id)
        self._last_hit[card.id] = utt.end
        if last is not None and utt.end - last < index.spec.matching.episode_gap_s:
            return []
        return [self._event(found, utt)]

    @property
    def language(self) -> str:
        """The call's language now (it may be detected or switched during the call)."""
        return base_language(self.ctx.language)

    def _event(self, found: CardMatch, utt: Utterance) -> PromptCard:
        card, lang = found.card, self.language
        card_id, title, say, avoid = card.id, card.title, card.say, card.avoid
        for v in card.variants:
            if _lookup(self.ctx.metadata, v.when):
                card_id, title, say, avoid = f"{card.id}.{v.id}", v.title, v.say, v.avoid or card.avoid
                break
        return PromptCard(
            call_id=self.ctx.call_id, t=utt.end, card_id=card_id, title=getattr(title, lang), language=lang,
            say=getattr(say, lang), avoid=getattr(avoid, lang),
            evidence=Evidence(speaker=utt.speaker, quote=found.quote, start=utt.start, end=utt.end),
        )

    def on_audio(self, frame: AudioFrame) -> list[EventBase]:
        return []

    def on_tick(self, t: float) -> list[EventBase]:
        return []
