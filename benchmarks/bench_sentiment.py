"""Per-utterance latency of text sentiment and prompt-card matching (one utterance at a time, as live).

    python benchmarks/bench_sentiment.py [--repeat 3]

Prints median / p95 milliseconds and writes benchmarks/results/sentiment_latency.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.analysis.prompts import card_index
from assist.analysis.sentiment import classify
from benchmarks.train_sentiment import load_split
from models.embeddings import load_embedder

DATA = ROOT.parent / "shared" / "data" / "xlmt-umsab-sentiment"
RESULTS = ROOT / "benchmarks" / "results" / "sentiment_latency.json"


def _time(fn, items: list, repeat: int) -> dict[str, float]:
    ms = []
    for _ in range(repeat):
        for item in items:
            t0 = time.perf_counter()
            fn(item)
            ms.append((time.perf_counter() - t0) * 1000)
    return {"n": len(ms), "median_ms": round(float(np.median(ms)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--n", type=int, default=100, help="utterances per language (test split)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    load_embedder()
    index = card_index()
    classify(["warm up"], "en")
    report: dict[str, object] = {"machine": platform.processor() or platform.machine(),
                                 "load_s": round(time.perf_counter() - t0, 2)}
    for lang in ("en", "es"):
        texts = load_split(DATA, lang, "test")[0][: args.n]
        report[lang] = {
            "sentiment": _time(lambda t, lang=lang: classify([t], lang), texts, args.repeat),
            "prompt_match_final": _time(lambda t: index.match(t, True), texts, args.repeat),
            "prompt_match_partial": _time(
                lambda t: index.match(" ".join(t.split()[: max(3, len(t.split()) // 2)]), False),
                                          texts, args.repeat),
        }
    for key, value in report.items():
        print(f"{key}: {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
