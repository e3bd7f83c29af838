"""Assembles a two-speaker call from real recordings: one file per turn, alternating speakers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streaming.codecs import load_audio, resample
from streaming.types import SAMPLE_RATE

DATA = Path("../shared/data")


def load_mono(path: Path) -> np.ndarray:
    audio, rate = load_audio(path)
    return resample(audio.mean(axis=0).astype(np.float32), rate, SAMPLE_RATE)


def two_speaker_call(turns: list[tuple[str, Path]], gap_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(agent, debtor) 16 kHz tracks of equal length; each turn is silent on the other track."""
    gap = np.zeros(int(gap_s * SAMPLE_RATE), dtype=np.float32)
    agent: list[np.ndarray] = [gap]
    debtor: list[np.ndarray] = [gap]
    for speaker, path in turns:
        speech = load_mono(path)
        silence = np.zeros_like(speech)
        agent += [speech if speaker == "agent" else silence, gap]
        debtor += [speech if speaker == "debtor" else silence, gap]
    return np.concatenate(agent), np.concatenate(debtor)


def fleurs_call(language: str = "en", turns: int = 4) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """A call of real FLEURS read speech; returns the tracks and (speaker, reference text) per turn."""
    folder = DATA / "fleurs-cuttledoc"
    plan = [("agent" if i % 2 == 0 else "debtor", folder / f"fleurs-{language}-{i:03d}.ogg") for i in range(turns)]
    agent, debtor = two_speaker_call(plan)
    refs = [(speaker, path.with_suffix(".txt").read_text().strip()) for speaker, path in plan]
    return agent, debtor, refs
