"""A rule pack's phrase lists by (rule id, role), compiled for phrase matching and embedded for
nearest-phrase similarity, once per process (and embedding model)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from functools import cache, lru_cache
from typing import Any

from assist.analysis.intent import intent_config
from assist.analysis.matching import PhraseIndex, SemanticIndex, Tokens
from assist.analysis.rulepacks import (
    GateRule,
    MustSayRule,
    RulePack,
    SequenceRule,
    TriggerRule,
)
from models.embeddings import Embedder, cache_by_model
from streaming.types import Speaker, Utterance

NEGATORS: Hashable = ("", "negators")
COLLECTION: Hashable = ("", "collection")
NEUTRAL: Hashable = ("", "neutral")
HEDGES: Hashable = ("", "hedges")
CONDITIONALS: Hashable = ("", "conditionals")
NOT_PAYING: Hashable = ("", "not_paying")
_SEMANTIC_ROLES = ("phrases", "also", "ack", "forbidden")


def _lists(pack: RulePack, langs: frozenset[str]) -> dict[Hashable, list[str]]:
    """Every phrase list of the pack in `langs`, keyed (rule id, role) or ("", list name)."""

    def pick(phrases: Mapping[Any, list[str]] | None) -> list[str]:  # keys: language tags
        return [p for tag, ps in (phrases or {}).items() if tag.split("-")[0] in langs for p in ps]

    config = intent_config()
    out: dict[Hashable, list[str]] = {
        NEGATORS: pick(pack.negators),
        HEDGES: pick(config.hedges),
        CONDITIONALS: pick(config.conditionals),
        NOT_PAYING: pick(config.not_paying),
        COLLECTION: pick(pack.collection_phrases),
        NEUTRAL: pick(pack.semantic.neutral),
    }
    for r in pack.rules:
        if isinstance(r, GateRule):
            continue
        out[(r.id, "phrases")] = pick(r.phrases)
        if isinstance(r, MustSayRule) and r.also:
            out[(r.id, "also")] = pick(r.also)
        if isinstance(r, SequenceRule):
            out[(r.id, "verify")] = pick(r.verify_prompts)
            out[(r.id, "confirm")] = pick(r.confirmations)
            out[(r.id, "third_party")] = pick(r.third_party_cues)
        if isinstance(r, TriggerRule):
            out[(r.id, "ack")] = pick(r.acknowledge.phrases)
            out[(r.id, "forbidden")] = pick(r.forbidden_after)
    return out


@cache
def phrase_index(pack: RulePack, langs: frozenset[str]) -> PhraseIndex:
    """The pack's phrase lists compiled once per process."""
    return PhraseIndex({k: v for k, v in _lists(pack, langs).items() if k != NEUTRAL})


@cache_by_model
def semantic_index(pack: RulePack, langs: frozenset[str], *, embedder: Embedder) -> SemanticIndex:
    """The pack's paraphrase-matchable phrases embedded once per process and model. Generic collection
    phrases are matched by phrase only: their paraphrases sit as close to polite small talk as to demands."""
    semantic_rules = {r.id for r in pack.rules if not isinstance(r, GateRule) and r.semantic}
    lists = {
        k: v
        for k, v in _lists(pack, langs).items()
        if k == NEUTRAL or (isinstance(k, tuple) and k[0] in semantic_rules and k[1] in _SEMANTIC_ROLES)
    }
    return SemanticIndex(lists, embedder.embed)


@lru_cache(maxsize=4096)
def phrase_is_negative(pack: RulePack, langs: frozenset[str], text: str) -> bool:
    """Whether a phrase carries a negator of its own."""
    tokens = Tokens.from_utterance(Utterance(Speaker.AGENT, 0, 0.0, 0.0, text))
    return bool(phrase_index(pack, langs).find(tokens).get(NEGATORS))
