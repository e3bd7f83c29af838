"""Train the meaning heads (assist/analysis/intent.py) and write assist/rules/intent_heads.npz.

    python benchmarks/train_intent.py [--model default]

Each head is a multinomial logistic regression over the shared sentence encoder. Examples: the rule
packs' phrases by rule family and the prompt cards' triggers (what a compliance team edits; the
triggers of cards that imply a debtor trigger family also teach that family), the TRAIN and DEV
splits of benchmarks/data/compliance_eval (SPLITS; the settings are chosen by cross-validation over
both, benchmarks/cv_intent.py), and, as the "none" class, the packs' and cards' ordinary sentences,
agent acknowledgements and debtor confirmations. The L2 strength is picked by 5-fold cross-validation
over those lines; the holdout split is never read here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.analysis.intent import HEADS_PATH, NONE, Trained, intent_config, save_heads
from assist.analysis.matching import SLOT
from assist.analysis.prompts import load_prompt_file
from assist.analysis.rulepacks import MustNotSayRule, MustSayRule, SequenceRule, TriggerRule, validate_all_packs
from benchmarks.compliance_eval import load_lines
from models.embeddings import load_embedder

C_GRID = (10.0, 30.0, 100.0, 300.0)
SPLITS = ("train", "dev")  # the lines the heads learn from (the holdout split stays out)
FOLDS = 5
Examples = list[tuple[str, str]]  # (text, label)


SLOT_VALUES = {"name": "Laura", "agency": "Norte Recoveries", "creditor": "Banco Sol", "amount": "200",
               "date": "Monday", "phone": "555 0100", "time": "ten", "person": "Laura", "n": "three"}


def _all(phrases: Mapping[str, list[str]] | None) -> list[str]:
    """A phrase list as example sentences, slots filled with a sample value."""
    return [SLOT.sub(lambda m: SLOT_VALUES[m.group(1)], p) for ps in (phrases or {}).values() for p in ps]


def pack_examples() -> tuple[Examples, Examples]:
    """(agent, debtor) examples from every pack: family phrases, and ordinary lines as NONE."""
    agent: Examples = []
    debtor: Examples = []
    for pack in validate_all_packs().values():
        agent += [(t, NONE) for t in _all(pack.semantic.neutral) + _all(pack.collection_phrases)]
        for r in pack.rules:
            if isinstance(r, MustNotSayRule) and r.family and r.semantic:
                agent += [(t, r.family) for t in _all(r.phrases)]
            elif isinstance(r, TriggerRule):
                debtor += [(t, r.family or NONE) for t in _all(r.phrases)]
                agent += [(t, NONE) for t in _all(r.acknowledge.phrases)]
            elif isinstance(r, MustSayRule):
                agent += [(t, NONE) for t in _all(r.phrases) + _all(r.also)]
            elif isinstance(r, SequenceRule):
                agent += [(t, NONE) for t in _all(r.verify_prompts)]
                debtor += [(t, NONE) for t in _all(r.confirmations) + _all(r.third_party_cues)]
    return agent, debtor


def card_family_examples() -> Examples:
    """Card triggers as debtor examples of the trigger family their card implies (intent.yaml card_families)."""
    families = intent_config().card_families
    cards = [c for c in load_prompt_file().cards if c.id in families]
    return [(t, families[c.id]) for c in cards for ts in c.triggers.values() for t in ts]


def card_examples() -> Examples:
    spec = load_prompt_file()
    out = [(t, NONE) for ts in spec.neutral.values() for t in ts]
    return out + [(t, c.id) for c in spec.cards for ts in c.triggers.values() for t in ts]


def fit(x: np.ndarray, y: np.ndarray, k: int, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression, classes weighted by 1/sqrt(count), L2 ||W||^2 / (2 C n)."""
    n, d = x.shape
    onehot = np.eye(k)[y]
    counts = np.maximum(np.bincount(y, minlength=k), 1).astype(float)
    sw = (1 / np.sqrt(counts))[y][:, None]
    sw *= n / sw.sum()

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        weights, bias = w[: d * k].reshape(d, k), w[d * k :]
        z = x @ weights + bias
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        value = -(sw * onehot * np.log(p + 1e-12)).sum() / n + (weights**2).sum() / (2 * c * n)
        g = sw * (p - onehot) / n
        return value, np.concatenate([(x.T @ g + weights / (c * n)).ravel(), g.sum(axis=0)])

    w = minimize(loss, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
    return w[: d * k].reshape(d, k), w[d * k :]


def _f1(pred: np.ndarray, y: np.ndarray) -> float:
    tp = ((pred == y) & (y > 0)).sum()
    fp = ((pred != y) & (pred > 0)).sum()
    fn = ((pred != y) & (y > 0)).sum()
    return float(2 * tp / max(1, 2 * tp + fp + fn))


def train_head(name: str, base: Examples, lines: Examples, embed, threshold: float) -> Trained:
    """Pick C by cross-validation over `lines` (always training on `base`), then fit on everything."""
    labels = [NONE, *intent_config().heads[name].labels]  # type: ignore[index]
    index = {label: i for i, label in enumerate(labels)}
    base = list(dict.fromkeys(base))
    xb, yb = embed([t for t, _ in base]), np.array([index[label] for _, label in base])
    xl, yl = embed([t for t, _ in lines]), np.array([index[label] for _, label in lines])
    folds = np.random.default_rng(0).permutation(len(lines)) % FOLDS
    scores = {}
    for c in C_GRID:
        pred = np.zeros(len(lines), dtype=int)
        for f in range(FOLDS):
            tr = folds != f
            w, b = fit(np.vstack([xb, xl[tr]]), np.concatenate([yb, yl[tr]]), len(labels), c)
            p = _softmax(xl[~tr] @ w + b)
            best = p[:, 1:].argmax(axis=1) + 1
            pred[~tr] = np.where(p[np.arange(len(best)), best] >= threshold, best, 0)
        scores[c] = _f1(pred, yl)
    c = max(scores, key=scores.get)
    print(f"  {name}: {len(base)} phrase examples, {len(lines)} train lines; CV F1 by C {scores} -> C={c}")
    x, y = np.vstack([xb, xl]), np.concatenate([yb, yl])
    w, b = fit(x, y, len(labels), c)
    return labels, w, b, x, y


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def _labelled(lines: Iterable, attr: str) -> Examples:
    return [(line.text, getattr(line, attr) or NONE) for line in lines]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=intent_config().embedder)
    model = parser.parse_args().model
    embed = load_embedder(model).embed
    agent, debtor = pack_examples()
    agent_lines = [ln for split in SPLITS for ln in load_lines(split, "agent")]
    debtor_lines = [ln for split in SPLITS for ln in load_lines(split, "debtor")]
    heads = intent_config().heads
    out = {
        "agent": train_head("agent", agent, _labelled(agent_lines, "rule"), embed, heads["agent"].threshold),
        "debtor": train_head("debtor", debtor + card_family_examples(), _labelled(debtor_lines, "rule"), embed,
                             heads["debtor"].threshold),
        "prompts": train_head("prompts", card_examples(), _labelled(debtor_lines, "card"), embed,
                              heads["prompts"].threshold),
    }
    save_heads(HEADS_PATH, out, model)
    print(f"wrote {HEADS_PATH}")


if __name__ == "__main__":
    main()
