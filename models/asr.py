"""One shared Whisper model per process, served off the event loop to every call."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog
from faster_whisper import WhisperModel

from models.whisper import choose_device, resolve_model
from streaming.types import Word

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AsrRequest:
    """Transcribe `audio` (16 kHz float32) whose first sample is at call-clock time `t0`."""

    audio: np.ndarray
    t0: float
    language: str | None
    prompt: str = ""
    final: bool = False


@dataclass(frozen=True, slots=True)
class AsrResult:
    words: tuple[Word, ...]
    language: str
    language_probability: float


class AsrWorker:
    """Runs requests from all calls on a small thread pool, one single-threaded decode per core.

    Finals are served before partials when more requests wait than there are threads.
    """

    def __init__(
        self,
        model: str,
        cache_dir: Path,
        device: str = "auto",
        compute_type: str = "auto",
        threads: int = 0,
        beam_size: int = 1,
    ) -> None:
        self.device, self.compute_type = choose_device(device, compute_type)
        self.threads = threads or (1 if self.device == "cuda" else max(1, os.cpu_count() or 1))
        path = resolve_model(model, cache_dir)
        self.model = WhisperModel(
            path,
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=1,
            num_workers=self.threads,
        )
        self.multilingual = self.model.model.is_multilingual
        self.beam_size = beam_size
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="asr")
        self._slots = asyncio.Semaphore(self.threads)
        self._finals_pending = 0
        log.info("asr.ready", model=model, path=path, device=self.device, compute_type=self.compute_type,
                 threads=self.threads)

    async def transcribe(self, request: AsrRequest) -> AsrResult:
        """Decode in a worker thread; partials step aside while finals wait for a thread."""
        if request.final:
            self._finals_pending += 1
        try:
            while not request.final and self._finals_pending and self._slots.locked():
                await asyncio.sleep(0.01)
            async with self._slots:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._pool, self._run, request)
        finally:
            if request.final:
                self._finals_pending -= 1

    def _run(self, request: AsrRequest) -> AsrResult:
        language = request.language if self.multilingual else "en"
        segments, info = self.model.transcribe(
            request.audio,
            language=language,
            beam_size=self.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=request.prompt or None,
            vad_filter=False,
            without_timestamps=False,
        )
        words: list[Word] = []
        for seg in segments:  # the generator decodes here, in the worker thread
            if _hallucination(seg):
                continue
            for w in seg.words or ():
                words.append(Word(w.word.strip(), request.t0 + w.start, request.t0 + w.end, w.probability))
        return AsrResult(tuple(w for w in words if w.text), info.language, info.language_probability)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _hallucination(seg) -> bool:
    """Guards from the field: silence-like, low-confidence or looping output is dropped."""
    if seg.no_speech_prob > 0.6 and seg.avg_logprob < -1.0:
        return True
    return seg.compression_ratio > 2.4 or seg.avg_logprob < -1.5

