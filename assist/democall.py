"""Two-speaker calls for the demo, tests and benchmarks: real recordings, or a scripted call spoken by TTS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from models.tts import load_voice
from streaming.codecs import load_audio, resample
from streaming.types import SAMPLE_RATE

DATA = Path("../shared/data")


def load_mono(path: Path) -> np.ndarray:
    audio, rate = load_audio(path)
    return resample(audio.mean(axis=0).astype(np.float32), rate, SAMPLE_RATE)


def two_speaker_call(turns: list[tuple[str, Path]], gap_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(agent, debtor) 16 kHz tracks of equal length, one recording per turn."""
    return _interleave([(speaker, load_mono(path)) for speaker, path in turns], gap_s)


def _interleave(turns: list[tuple[str, np.ndarray]], gap_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(agent, debtor) tracks of equal length; each turn is silent on the other track."""
    gap = np.zeros(int(gap_s * SAMPLE_RATE), dtype=np.float32)
    agent: list[np.ndarray] = [gap]
    debtor: list[np.ndarray] = [gap]
    for speaker, speech in turns:
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


SCRIPTS = Path(__file__).parent / "demo_calls"


def _script(language: str) -> dict:
    path = SCRIPTS / f"collections_{language}.yaml"
    if not path.exists():
        raise ValueError(f"no scripted collections call for language {language!r} in {SCRIPTS}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def collections_call(language: str = "en") -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """The scripted collections call in assist/demo_calls/ spoken by packaged TTS voices.

    Returns the (agent, debtor) tracks and (speaker, text) per turn.
    """
    script = _script(language)
    voices = {speaker: load_voice(voice) for speaker, voice in script["voices"].items()}
    turns = [(speaker, text) for speaker, text in script["turns"]]
    agent, debtor = _interleave([(speaker, voices[speaker](text)) for speaker, text in turns])
    return agent, debtor, turns


def collections_metadata(language: str = "en") -> dict:
    """Call metadata (agent, jurisdiction, language...) the scripted call is streamed with."""
    script = _script(language)
    return {"language": script["language"], **script.get("metadata", {})}
