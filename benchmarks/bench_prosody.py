"""Latency of prosodic feature extraction and of the stress/style/abandon analysers per utterance.

Run from the repo root: .venv/bin/python benchmarks/bench_prosody.py  -> benchmarks/results/prosody.json
Audio: the 35.6 s OSR Harvard telephone recording (8 kHz, upsampled to 16 kHz), cut into utterances.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assist.analysis.abandon import AbandonAnalyser
from assist.analysis.base import CallContext
from assist.analysis.prosody import extract
from assist.analysis.stress import StressAnalyser
from assist.analysis.style import StyleAnalyser
from streaming.codecs import load_audio, resample
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker, Utterance, Word

AUDIO = "../shared/data/osr-harvard-8k/OSR_us_000_0034_8k.wav"
OUT = Path(__file__).parent / "results" / "prosody.json"
REPEATS = 5


def _ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    x, rate = load_audio(AUDIO)
    x = resample(x[0], rate, SAMPLE_RATE).astype("float32")
    result: dict[str, object] = {"machine": platform.processor() or platform.machine(), "extract": {}}
    print(f"{'utterance s':>12}{'extract ms':>12}{'ms per audio s':>16}")
    for seconds in (2.0, 5.0, 10.0, 15.0):
        chunk = x[: int(seconds * SAMPLE_RATE)]
        words = tuple(Word("w", i * 0.3, i * 0.3 + 0.25) for i in range(int(seconds / 0.3)))
        extract(chunk, words)
        ms = statistics.median(_ms(lambda c=chunk, w=words: extract(c, w)) for _ in range(REPEATS))
        result["extract"][f"{seconds:g}s"] = {"median_ms": round(ms, 2), "ms_per_audio_s": round(ms / seconds, 2)}
        print(f"{seconds:>12.1f}{ms:>12.2f}{ms / seconds:>16.2f}")

    ctx = CallContext("bench")
    stress = StressAnalyser(ctx)
    style = StyleAnalyser(ctx, stress)
    abandon = AbandonAnalyser(ctx, stress, lambda: 0.0)
    step = int(3.5 * SAMPLE_RATE)
    per: dict[str, list[float]] = {"stress": [], "style": [], "abandon": []}
    for seq, i in enumerate(range(0, len(x) - SAMPLE_RATE, step)):
        t, chunk = i / SAMPLE_RATE, x[i : i + step]
        speaker = Speaker.DEBTOR if seq % 2 else Speaker.AGENT
        utt = Utterance(speaker, seq, t, t + len(chunk) / SAMPLE_RATE, "can you pay the balance today, i understand")
        for name, analyser in (("stress", stress), ("style", style), ("abandon", abandon)):
            analyser.on_audio(AudioFrame(speaker, t, chunk))
            per[name].append(_ms(lambda a=analyser, u=utt: a.on_utterance(u)))
    result["per_utterance_ms"] = {
        k: {"median": round(statistics.median(v), 2), "max": round(max(v), 2)} for k, v in per.items()
    }
    for k, v in result["per_utterance_ms"].items():
        print(f"{k:<8} per 3.5 s utterance: median {v['median']:.2f} ms, max {v['max']:.2f} ms")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
