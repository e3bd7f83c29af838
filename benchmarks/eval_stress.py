"""Correlation of the arousal/stress score with human arousal ratings (pyAudioAnalysis speechEmotion,
47 clips, one speaker each): each clip is scored against the set median (no own baseline exists).

Run from the repo root: .venv/bin/python benchmarks/eval_stress.py  -> benchmarks/results/stress_eval.json
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assist.analysis.prosody import extract
from assist.analysis.stress import StressRules, population_scores
from streaming.codecs import load_audio

DATA = Path("../shared/data/pyaudioanalysis-speechemotion")
OUT = Path(__file__).parent / "results" / "stress_eval.json"


def main() -> None:
    with open(DATA / "manifest.tsv", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["arousal"]]
    feats = [extract(load_audio(DATA / r["path"])[0][0]).as_dict() for r in rows]
    arousal = np.array([float(r["arousal"]) for r in rows])
    rules = StressRules.load()
    result: dict[str, object] = {"clips": len(rows), "features": {}}
    for name in feats[0]:
        v = np.array([f[name] for f in feats])
        ok = np.isfinite(v)
        if ok.sum() > 5:
            result["features"][name] = {
                "spearman": round(float(spearmanr(v[ok], arousal[ok])[0]), 3),
                "n": int(ok.sum()),
            }
    no_gain = replace(rules, weights={k: w for k, w in rules.weights.items() if k != "loudness_db"})
    for label, r in (("combined", rules), ("combined_without_loudness", no_gain)):
        s = np.array(population_scores(feats, r))
        result[label] = {
            "spearman": round(float(spearmanr(s, arousal)[0]), 3),
            "pearson": round(float(pearsonr(s, arousal)[0]), 3),
            "mean_high_minus_low": round(float(s[arousal > 0.3].mean() - s[arousal < -0.3].mean()), 3),
        }
    result["note"] = (
        "loudness across recordings reflects each clip's recording gain, not the speaker; within a call it is "
        "measured against the speaker's own baseline. Weights are a priori (assist/rules/stress.yaml), not fitted."
    )
    print(f"{'feature':<18}{'spearman':>10}")
    for name, v in result["features"].items():
        print(f"{name:<18}{v['spearman']:>10.3f}")
    for label in ("combined", "combined_without_loudness"):
        v = result[label]
        print(
            f"{label:<26} spearman {v['spearman']:.3f}  pearson {v['pearson']:.3f}"
            f"  high-low {v['mean_high_minus_low']:.2f}"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
