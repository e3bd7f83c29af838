"""One shared Whisper model per process, serving every call's requests off the event loop.

Requests from all calls meet in one priority queue (finals, then interims, then post-call work; a
newer interim for a channel replaces a queued one). With batching on, one thread takes what arrived
within a short window and decodes it as one batched pass; otherwise a small pool of threads decodes
one request each. A failed decode rebuilds the model and is retried once.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment

from models.batched_whisper import BatchedWhisper, Decoded
from models.batching import Pending, Priority, RequestQueue
from models.whisper import choose_device, resolve_model
from models.words import Word

log = structlog.get_logger(__name__)

# On CPU the encoder (most of the cost) does the same work per 30 s window batched or not, and every request
# in a batch waits for the whole batch. On a 2-core EPYC, benchmarks/bench_asr_batching.py (tiny.en, bursts
# of 1-8 finals) measured the thread pool ahead in throughput and latency at every burst size (burst 8: 32 vs
# 16 s of audio per second; p50 1.3 vs 4.3 s), so CPU keeps the thread pool unless asked; CUDA batches.
_CPU_BATCHING = False


@dataclass(frozen=True, slots=True)
class AsrRequest:
    """Transcribe `audio` (16 kHz float32) whose first sample is at call-clock time `t0`.

    `call_id` and `channel` (optional) identify the stream: they key stale-interim replacement and
    per-call lag. `post_call` marks work that waits behind every live request.
    """

    audio: np.ndarray
    t0: float
    language: str | None
    prompt: str = ""
    final: bool = False
    call_id: str = ""
    channel: str = ""
    post_call: bool = False

    @property
    def priority(self) -> Priority:
        if self.post_call:
            return Priority.POST_CALL
        return Priority.FINAL if self.final else Priority.INTERIM

    @property
    def key(self) -> tuple[str, str] | None:
        return (self.call_id, self.channel) if self.call_id and not self.post_call else None


@dataclass(frozen=True, slots=True)
class AsrResult:
    """Words on the call clock. `superseded`: a newer request for the same channel replaced this one."""

    words: tuple[Word, ...]
    language: str
    language_probability: float
    queue_wait_s: float = 0.0
    decode_s: float = 0.0
    superseded: bool = False


class AsrWorker:
    """The process's Whisper model and the threads that serve the shared request queue."""

    def __init__(
        self,
        model: str,
        cache_dir: Path,
        device: str = "auto",
        compute_type: str = "auto",
        threads: int = 0,
        beam_size: int = 1,
        *,
        batching: str = "auto",
        batch_window_ms: float = 30.0,
        max_batch: int = 16,
    ) -> None:
        self.device, self.compute_type = choose_device(device, compute_type)
        if batching not in ("auto", "on", "off"):
            raise ValueError(f"batching must be auto, on or off, not {batching!r}")
        self.batched = batching == "on" or (batching == "auto" and (self.device == "cuda" or _CPU_BATCHING))
        self.threads = threads or (1 if self.device == "cuda" else max(1, os.cpu_count() or 1))
        self.beam_size = beam_size
        self.max_batch = max(1, max_batch) if self.batched else 1
        self.window_s = batch_window_ms / 1000 if self.batched else 0.0
        self.path = resolve_model(model, cache_dir)
        self.model = self._load()
        self.multilingual = self.model.model.is_multilingual
        self.generation = 0  # bumped by every rebuild of the model
        self._rebuild_lock = threading.Lock()
        self._queue = RequestQueue()
        self._consumers = [
            threading.Thread(target=self._consume, name=f"asr-{i}", daemon=True)
            for i in range(1 if self.batched else self.threads)
        ]
        for thread in self._consumers:
            thread.start()
        atexit.register(self.close)
        log.info("asr.ready", model=model, path=self.path, device=self.device, compute_type=self.compute_type,
                 threads=self.threads, batched=self.batched, max_batch=self.max_batch, window_s=self.window_s)

    def _load(self) -> WhisperModel:
        if self.batched:  # one batch at a time, using every core inside each operation
            return WhisperModel(self.path, device=self.device, compute_type=self.compute_type,
                                cpu_threads=self.threads if self.device == "cpu" else 1, num_workers=1)
        return WhisperModel(self.path, device=self.device, compute_type=self.compute_type, cpu_threads=1,
                            num_workers=self.threads)

    async def transcribe(self, request: AsrRequest) -> AsrResult:
        """Queue the request and wait for its words (or an empty, superseded result)."""
        _check(request)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AsrResult] = loop.create_future()

        def deliver(outcome: object) -> None:
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the caller's event loop has closed
                pass

        pending = Pending(request, request.priority, deliver, request.call_id, request.key)
        stale = self._queue.put(pending)
        if stale is not None:
            old: AsrRequest = stale.item  # type: ignore[assignment]
            stale.deliver(AsrResult((), old.language or "en", 0.0, superseded=True))
        try:
            return await future
        except asyncio.CancelledError:
            self._queue.discard(pending)
            raise

    def lag(self) -> dict[str, float]:
        """Per live call id: how long its oldest unanswered request has waited, in seconds."""
        return self._queue.lag()

    def queue_depth(self) -> dict[str, int]:
        """Requests waiting, per priority (final, interim, post_call)."""
        return self._queue.depth()

    def close(self) -> None:
        """Refuse new work, let running decodes finish, then free the model.

        The model is released here rather than at interpreter exit: CTranslate2 destroyed during
        finalisation, with its worker threads still joinable, aborts the process.
        """
        for pending in self._queue.close():
            pending.deliver(RuntimeError("the ASR worker is closed"))
        for thread in self._consumers:
            if thread is not threading.current_thread():
                thread.join(timeout=30)
        self.model = None

    def _consume(self) -> None:
        while batch := self._queue.take(self.max_batch, self.window_s):
            outcomes = self._serve(batch)
            self._queue.done(batch)
            for p, outcome in zip(batch, outcomes):
                p.deliver(outcome)

    def _serve(self, batch: list[Pending]) -> list[AsrResult] | list[Exception]:
        """Decode a batch; on failure rebuild the model and retry once, else every caller gets the error."""
        requests: list[AsrRequest] = [p.item for p in batch]  # type: ignore[misc]
        started = time.monotonic()
        generation = self.generation
        try:
            results = self._decode(requests)
        except Exception:
            log.exception("asr.decode_failed", requests=len(requests), generation=generation)
            try:
                self._rebuild(generation)
                results = self._decode(requests)
            except Exception as error:
                log.exception("asr.retry_failed", requests=len(requests), generation=self.generation)
                return [error] * len(batch)
        decode_s = time.monotonic() - started
        return [
            AsrResult(r.words, r.language, r.language_probability, queue_wait_s=started - p.submitted,
                      decode_s=decode_s)
            for p, r in zip(batch, results)
        ]

    def _rebuild(self, failed_generation: int) -> None:
        """Load the model afresh, once per failure even when several threads saw it fail."""
        with self._rebuild_lock:
            if self.generation != failed_generation:
                return
            started = time.monotonic()
            self.model = self._load()
            self.generation += 1
            log.warning("asr.model_rebuilt", generation=self.generation, seconds=round(time.monotonic() - started, 2))

    def _decode(self, requests: list[AsrRequest]) -> list[AsrResult]:
        model = self.model
        if self.batched:
            decoded = BatchedWhisper(model, self.beam_size).transcribe(
                [(r.audio, self._language(r), r.prompt) for r in requests]
            )
        else:
            decoded = [self._transcribe_one(model, r) for r in requests]
        return [_result(r, d) for r, d in zip(requests, decoded)]

    def _language(self, request: AsrRequest) -> str | None:
        return request.language if self.multilingual else "en"

    def _transcribe_one(self, model: WhisperModel, request: AsrRequest) -> Decoded:
        segments, info = model.transcribe(
            request.audio,
            language=self._language(request),
            beam_size=self.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=request.prompt or None,
            vad_filter=False,
            without_timestamps=False,
        )
        return Decoded(list(segments), info.language, info.language_probability)  # decodes here


def _result(request: AsrRequest, decoded: Decoded) -> AsrResult:
    words = [
        Word(w.word.strip(), request.t0 + w.start, request.t0 + w.end, w.probability)
        for seg in decoded.segments
        if not _hallucination(seg)
        for w in seg.words or ()
    ]
    return AsrResult(tuple(w for w in words if w.text), decoded.language, decoded.language_probability)


def _hallucination(seg: Segment) -> bool:
    """Guards from the field: silence-like, low-confidence or looping output is dropped."""
    if seg.no_speech_prob > 0.6 and seg.avg_logprob < -1.0:
        return True
    return seg.compression_ratio > 2.4 or seg.avg_logprob < -1.5


def _check(request: AsrRequest) -> None:
    audio = request.audio
    if not isinstance(audio, np.ndarray) or audio.ndim != 1 or audio.dtype != np.float32:
        raise ValueError("AsrRequest.audio must be a 1-D float32 numpy array of 16 kHz samples")
    if audio.size == 0 or not np.isfinite(audio).all():
        raise ValueError("AsrRequest.audio must be non-empty and finite")


def _settle(future: asyncio.Future, outcome: object) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
