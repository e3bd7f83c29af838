"""Meaning classifiers over the shared sentence encoder: one multinomial logistic head per role (agent
must-not-say families, debtor trigger families, prompt cards), so paraphrases the phrase lists do not
name are still caught. Settings and labels: assist/rules/intent.yaml; weights: assist/rules/intent_heads.npz,
written by benchmarks/train_intent.py from the packs' and cards' own phrases plus labelled example lines."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assist.analysis.text import RULES_DIR
from assist.languages import Language

log = structlog.get_logger(__name__)

INTENT_PATH = RULES_DIR / "intent.yaml"
HEADS_PATH = RULES_DIR / "intent_heads.npz"
KNN = 5  # nearest training examples that vote
KNN_TEMPERATURE = 0.05  # softness of the similarity weights
NONE = "none"
"""The label of the class that calls for nothing (index 0 of every head)."""
HeadName = Literal["agent", "debtor", "prompts"]
Label = Annotated[str, Field(pattern=r"^[a-z_]+$")]
Phrases = dict[Language, list[Annotated[str, Field(min_length=1)]]]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HeadSpec(_Model):
    threshold: float = Field(gt=0, le=1, description="Probability a sentence or clause needs to raise a label.")
    thresholds: dict[Label, Annotated[float, Field(gt=0, le=1)]] = Field(
        {}, description="Per-label thresholds that replace `threshold` (calibrated on the dev split).")
    labels: list[Label] = Field(min_length=1)
    negative_meaning: list[Label] = Field(
        [], description="Labels stated with a negation: a negator does not clear them.")


class IntentConfig(_Model):
    embedder: str = Field(description="The models.embeddings name the heads are trained on.")
    knn_weight: float = Field(ge=0, le=1, description="Share of the nearest training examples' vote.")
    heads: dict[HeadName, HeadSpec]
    hedges: Phrases = Field(description="Negators that keep a must-not-say warning, one severity lower.")
    conditionals: Phrases = Field(description="Words after which a negator belongs to a condition.")
    not_paying: Phrases = Field(description="Negations of paying: the reason for a threat, not a negation of it.")
    trigger_negators: Phrases = Field(description="Words that, just before a card's trigger phrase, deny it.")
    card_families: dict[Label, Label] = Field(
        {}, description="Prompt cards whose triggers also teach the debtor head a trigger family.")

    @model_validator(mode="after")
    def _all_heads(self) -> IntentConfig:
        if missing := {"agent", "debtor", "prompts"} - set(self.heads):
            raise ValueError(f"missing heads: {sorted(missing)}")
        for name, spec in self.heads.items():
            if unknown := set(spec.thresholds) - set(spec.labels):
                raise ValueError(f"head {name}: thresholds for unknown labels {sorted(unknown)}")
        for card, family in self.card_families.items():
            if card not in self.heads["prompts"].labels or family not in self.heads["debtor"].labels:
                raise ValueError(f"card_families: {card} -> {family} is not a prompt card -> debtor family")
        return self


@cache
def intent_config(path: Path = INTENT_PATH) -> IntentConfig:
    """The validated settings, read once per process."""
    return IntentConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def source_digest() -> str:
    """A digest of what the heads learn from in the shipped data (packs, cards, intent.yaml): when it
    differs from the one saved with the heads, they were trained on older phrases."""
    files = [*sorted((RULES_DIR / "compliance").glob("*.yaml")), RULES_DIR / "prompts.yaml", INTENT_PATH]
    sha = hashlib.sha256()
    for f in files:
        sha.update(f.read_bytes())
    return sha.hexdigest()[:16]


@dataclass(frozen=True)
class IntentHead:
    """Multinomial logistic regression over L2-normalised sentence embeddings."""

    labels: tuple[str, ...]  # labels[0] is NONE
    weights: np.ndarray  # (dim, len(labels))
    bias: np.ndarray  # (len(labels),)
    threshold: float | np.ndarray  # one for every label, or (len(labels),) per label (index 0 unused)
    negative_meaning: frozenset[str] = frozenset()
    examples: np.ndarray | None = None  # (m, dim) embedded training examples, for the nearest-neighbour vote
    example_labels: np.ndarray | None = None  # (m,) label index of each example
    knn_weight: float = 0.0

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, len(labels)) class probabilities per embedded sentence: the logistic model, mixed with
        the labels of the KNN closest training examples (similarity-weighted) by `knn_weight`."""
        logits = embeddings @ self.weights + self.bias
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        if self.examples is None or self.example_labels is None or not self.knn_weight:
            return p
        sims = np.einsum("id,md->im", embeddings, self.examples)  # not BLAS: its threads stall on a busy CPU
        near = np.argpartition(-sims, KNN, axis=1)[:, :KNN]
        w = np.exp(np.take_along_axis(sims, near, axis=1) / KNN_TEMPERATURE)
        votes = np.zeros_like(p)
        np.add.at(votes, (np.repeat(np.arange(len(p)), KNN), self.example_labels[near].ravel()), w.ravel())
        votes /= votes.sum(axis=1, keepdims=True)
        return (1 - self.knn_weight) * p + self.knn_weight * votes

    def raised(self, embeddings: np.ndarray) -> dict[str, list[int]]:
        """Per label (not NONE): the sentences at or above the threshold, most probable first."""
        if not len(embeddings):
            return {}
        p = self.probabilities(embeddings)
        limits = np.broadcast_to(self.threshold, (len(self.labels),))
        out: dict[str, list[int]] = {}
        for j, label in enumerate(self.labels[1:], start=1):
            rows = np.flatnonzero(p[:, j] >= limits[j])
            if len(rows):
                out[label] = [int(i) for i in rows[np.argsort(-p[rows, j])]]
        return out

    def top(self, embeddings: np.ndarray) -> tuple[str, float, int] | None:
        """The most probable non-NONE label over all sentences, if at or above its threshold:
        (label, probability, sentence index)."""
        if not len(embeddings):
            return None
        p = self.probabilities(embeddings)[:, 1:]
        i, j = np.unravel_index(int(p.argmax()), p.shape)
        limit = np.broadcast_to(self.threshold, (len(self.labels),))[j + 1]
        return (self.labels[j + 1], float(p[i, j]), int(i)) if p[i, j] >= limit else None


Trained = tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""labels (NONE first), weights, bias, example embeddings, example label indices."""


def save_heads(path: Path, heads: dict[str, Trained], embedder: str) -> None:
    """Write trained heads with the source digest (examples as float16: they only vote)."""
    arrays: dict[str, Any] = {"embedder": np.str_(embedder), "digest": np.str_(source_digest())}
    for name, (labels, weights, bias, examples, example_labels) in heads.items():
        arrays[f"{name}.labels"] = np.array(labels)
        arrays[f"{name}.weights"] = weights.astype(np.float32)
        arrays[f"{name}.bias"] = bias.astype(np.float32)
        arrays[f"{name}.examples"] = examples.astype(np.float16)
        arrays[f"{name}.example_labels"] = example_labels.astype(np.int16)
    np.savez_compressed(path, **arrays)


@cache
def load_heads(embedder: str, path: Path = HEADS_PATH) -> dict[str, IntentHead]:
    """The shipped heads for an embedding model, once per process; {} when there are none for it
    (matching then falls back to phrases and nearest-example similarity)."""
    config = intent_config()
    if not path.exists() or embedder != config.embedder:
        log.warning("intent.heads_unavailable", path=str(path), embedder=embedder, trained_on=config.embedder)
        return {}
    heads: dict[str, IntentHead] = {}
    with np.load(path, allow_pickle=False) as z:
        if str(z["digest"]) != source_digest():
            log.warning("intent.heads_stale", hint="packs or cards changed: run benchmarks/train_intent.py")
        for name, spec in config.heads.items():
            labels = tuple(str(x) for x in z[f"{name}.labels"])
            if labels != (NONE, *spec.labels):
                raise ValueError(f"{path}: head {name} has labels {labels[1:]}, intent.yaml lists {spec.labels}")
            limits = np.array([spec.threshold, *(spec.thresholds.get(lb, spec.threshold) for lb in spec.labels)])
            heads[name] = IntentHead(
                labels, z[f"{name}.weights"], z[f"{name}.bias"], limits, frozenset(spec.negative_meaning),
                z[f"{name}.examples"].astype(np.float32), z[f"{name}.example_labels"].astype(np.intp),
                config.knn_weight,
            )
    return heads
