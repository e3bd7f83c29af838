"""Train the sentiment head on XLM-T/UMSAB tweets (EN + ES) and report held-out test scores.

    python benchmarks/train_sentiment.py [--model default] [--data ../shared/data/xlmt-umsab-sentiment]

Train split fits a multinomial logistic regression on the multilingual embeddings, val picks the L2
strength and the English VADER fusion weight, test is only scored at the end. Writes
assist/rules/sentiment_head.npz and benchmarks/results/sentiment.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.analysis.sentiment import (
    HEAD_PATH,
    LABELS,
    SentimentHead,
    classify,
    vader_compound,
)
from models.embeddings import load_embedder

LANGUAGES = {"en": "english", "es": "spanish"}
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
VADER_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
RESULTS = ROOT / "benchmarks" / "results" / "sentiment.json"


def clean(tweet: str) -> str:
    """Undo the dataset's \\uXXXX escapes; drop @user, links, quotes and '#' (not in speech transcripts)."""
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), tweet)
    text = re.sub(r"@user|https?://\S+", " ", text).replace('"', " ").replace("#", "")
    return " ".join(text.split())


def load_split(data: Path, lang: str, split: str) -> tuple[list[str], np.ndarray]:
    folder = data / LANGUAGES[lang]
    texts = [clean(t) for t in (folder / f"{split}_text.txt").read_text(encoding="utf-8").splitlines()]
    labels = np.array([int(x) for x in (folder / f"{split}_labels.txt").read_text().split()])
    assert len(texts) == len(labels), f"{folder}/{split}: {len(texts)} texts, {len(labels)} labels"
    return texts, labels


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression, L2 penalty ||W||^2 / (2 C n), L-BFGS."""
    n, d = x.shape
    k = len(LABELS)
    onehot = np.eye(k)[y]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        weights, bias = w[: d * k].reshape(d, k), w[d * k :]
        z = x @ weights + bias
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        value = -(onehot * np.log(p + 1e-12)).sum() / n + (weights**2).sum() / (2 * c * n)
        g = (p - onehot) / n
        return value, np.concatenate([(x.T @ g + weights / (c * n)).ravel(), g.sum(axis=0)])

    w = minimize(loss, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": 1000}).x
    return w[: d * k].reshape(d, k), w[d * k :]


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    scores = []
    for c in range(len(LABELS)):
        tp, fp, fn = ((pred == c) & (y == c)).sum(), ((pred == c) & (y != c)).sum(), ((pred != c) & (y == c)).sum()
        scores.append(2 * tp / max(1, 2 * tp + fp + fn))
    return float(np.mean(scores))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="models.embeddings name to train on")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "xlmt-umsab-sentiment")
    ap.add_argument("--out", type=Path, default=HEAD_PATH)
    args = ap.parse_args()

    embedder = load_embedder(args.model)
    splits = {(lang, s): load_split(args.data, lang, s) for lang in LANGUAGES for s in ("train", "val", "test")}
    emb = {key: embedder.embed(texts) for key, (texts, _) in splits.items() if key[1] != "test"}
    x_train = np.vstack([emb[lang, "train"] for lang in LANGUAGES])
    y_train = np.concatenate([splits[lang, "train"][1] for lang in LANGUAGES])
    val_compound = vader_compound(splits["en", "val"][0])

    def val_f1(head: SentimentHead, lang: str) -> float:
        compound = val_compound if lang == "en" else None
        return macro_f1(splits[lang, "val"][1], head.probabilities(emb[lang, "val"], compound).argmax(axis=1))

    best: tuple[float, float, SentimentHead] | None = None
    for c in C_GRID:
        head = SentimentHead(*fit_logistic(x_train, y_train, c), embedder=args.model, vader_weight=0.0)
        f1 = float(np.mean([val_f1(head, lang) for lang in LANGUAGES]))
        print(f"C={c:<5} val macro-F1 (no VADER) en {val_f1(head, 'en'):.3f} es {val_f1(head, 'es'):.3f}")
        if best is None or f1 > best[0]:
            best = (f1, c, head)
    assert best is not None
    _, c, head = best
    vader_weight = max(VADER_GRID, key=lambda a: val_f1(SentimentHead(head.weights, head.bias, args.model, a), "en"))
    head = SentimentHead(head.weights, head.bias, args.model, vader_weight)
    print(f"chosen C={c}, VADER weight {vader_weight} (en val macro-F1 {val_f1(head, 'en'):.3f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    head.save(args.out)

    report: dict[str, object] = {
        "data": "XLM-T UMSAB sentiment (tweets), test split held out; 0 negative, 1 neutral, 2 positive",
        "embedder": args.model, "l2_c": c, "vader_weight": vader_weight,
        "head_bytes": args.out.stat().st_size, "languages": {},
    }
    for lang in LANGUAGES:
        texts, y = splits[lang, "test"]
        t0 = time.perf_counter()
        pred = np.array([LABELS.index(r.label) for r in classify(texts, lang, head)])
        ms = (time.perf_counter() - t0) / len(texts) * 1000
        row = {"n": len(y), "accuracy": round(float(np.mean(pred == y)), 4), "macro_f1": round(macro_f1(y, pred), 4),
               "ms_per_text_batched": round(ms, 2)}
        if lang == "en":
            no_vader = SentimentHead(head.weights, head.bias, args.model, 0.0)
            pred = np.array([LABELS.index(r.label) for r in classify(texts, lang, no_vader)])
            row["macro_f1_without_vader"] = round(macro_f1(y, pred), 4)
        report["languages"][lang] = row  # type: ignore[index]
        print(f"test {lang}: {row}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} and {RESULTS}")


if __name__ == "__main__":
    main()
