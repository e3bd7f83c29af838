"""The process's Whisper models, shared by every call and served off the event loop.

Each language goes to the model configured for it (`routes`: language -> model, "*" for the rest;
English may use tiny.en, every other language a multilingual model); each model is loaded once.
Requests from all calls meet in one priority queue (finals, then interims, then post-call work; a
newer interim for a channel replaces a queued one; an interim that has waited `interim_max_wait_s`
is served like a final, so live words slow down under load instead of stopping). With batching on,
one thread takes what arrived within a short window and decodes it as one batched pass; otherwise a
small pool of threads decodes one request each. A failed decode rebuilds the models and is retried once.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import structlog
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment

from models.batched_whisper import BatchedWhisper, Decoded, DecodeRequest, WindowPolicy
from models.batching import Pending, Priority, RequestQueue
from models.whisper import choose_device, resolve_model
from models.words import Word

log = structlog.get_logger(__name__)

# On CPU the encoder (most of the cost) does the same work per 30 s window batched or not, and every request
# in a batch waits for the whole batch. On a 2-core EPYC, benchmarks/bench_asr_batching.py (tiny.en, bursts
# of 1-8 finals) measured the thread pool ahead in throughput and latency at every burst size (burst 8: 32 vs
# 16 s of audio per second; p50 1.3 vs 4.3 s), so CPU keeps the thread pool unless asked; CUDA batches.
_CPU_BATCHING = False
ANY_LANGUAGE = "*"
PROBE_BELOW = 0.6
"""A final from an English-only model whose words average a lower probability is checked for its language
by the multilingual model (an encoder pass, no decoding): Spanish heard by tiny.en scores low."""


class UnsupportedLanguage(ValueError):
    """No configured model transcribes this language (or detects one, for None)."""


@dataclass(frozen=True, slots=True)
class BeamSizes:
    """Beam size per request kind: live interims are greedy; finals and post-call work may search wider."""

    final: int = 1
    interim: int = 1
    post_call: int = 1

    def of(self, priority: Priority) -> int:
        return {Priority.FINAL: self.final, Priority.INTERIM: self.interim}.get(priority, self.post_call)


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
    full_windows: int = 0
    detected: tuple[str, float] | None = None
    """For finals when more than one language is served: the language the speech sounded like."""


class AsrWorker:
    """The process's Whisper models and the threads that serve the shared request queue.

    `models`: one model for every language (a name, folder or hub id), or a mapping language -> model
    with "*" for every other language. `languages`: the languages calls may use and detection may choose.
    """

    def __init__(
        self,
        models: str | Mapping[str, str],
        cache_dir: Path,
        device: str = "auto",
        compute_type: str = "auto",
        threads: int = 0,
        *,
        languages: Iterable[str] = ("en", "es"),
        beams: BeamSizes = BeamSizes(),
        window: WindowPolicy = WindowPolicy(),
        batching: str = "auto",
        batch_window_ms: float = 30.0,
        max_batch: int = 16,
        interim_max_wait_s: float = 1.0,
    ) -> None:
        self.device, self.compute_type = choose_device(device, compute_type)
        if batching not in ("auto", "on", "off"):
            raise ValueError(f"batching must be auto, on or off, not {batching!r}")
        self.batched = batching == "on" or (batching == "auto" and (self.device == "cuda" or _CPU_BATCHING))
        self.threads = threads or (1 if self.device == "cuda" else max(1, os.cpu_count() or 1))
        self.beams = beams
        self.window = window
        self.max_batch = max(1, max_batch) if self.batched else 1
        self.window_s = batch_window_ms / 1000 if self.batched else 0.0
        self.routes = {ANY_LANGUAGE: models} if isinstance(models, str) else dict(models)
        self.paths = {name: resolve_model(name, cache_dir) for name in dict.fromkeys(self.routes.values())}
        self.models = self._load()
        self.multilingual = {name: model.model.is_multilingual for name, model in self.models.items()}
        self.languages = tuple(lang for lang in languages if self._route(lang) is not None)
        self._detectable = frozenset(self.languages)  # what language detection may answer
        self.generation = 0  # bumped by every rebuild of the models
        self._rebuild_lock = threading.Lock()
        self._queue = RequestQueue(interim_max_wait_s)
        self._consumers = [
            threading.Thread(target=self._consume, name=f"asr-{i}", daemon=True)
            for i in range(1 if self.batched else self.threads)
        ]
        for thread in self._consumers:
            thread.start()
        atexit.register(self.close)
        log.info("asr.ready", routes=self.routes, languages=self.languages, device=self.device,
                 compute_type=self.compute_type, threads=self.threads, batched=self.batched,
                 max_batch=self.max_batch, window_s=self.window_s, beams=self.beams, trim=window.trim)

    def _load(self) -> dict[str, WhisperModel]:
        if self.batched:  # one batch at a time, using every core inside each operation
            cpu_threads, workers = (self.threads if self.device == "cpu" else 1), 1
        else:
            cpu_threads, workers = 1, self.threads
        return {name: WhisperModel(path, device=self.device, compute_type=self.compute_type, cpu_threads=cpu_threads,
                                   num_workers=workers) for name, path in self.paths.items()}

    def _route(self, language: str | None) -> str | None:
        """The model for `language` (None: a multilingual model, to detect it), or None when none serves it."""
        multilingual = self.multilingual
        if language is None:
            default = self.routes.get(ANY_LANGUAGE)
            if default is not None and multilingual[default]:
                return default
            return next((name for name, m in multilingual.items() if m), None)
        name = self.routes.get(language, self.routes.get(ANY_LANGUAGE))
        if name is None or (language != "en" and not multilingual[name]):
            return None
        return name

    def model_for(self, language: str | None) -> str:
        """The configured model that serves `language` (None: detection); UnsupportedLanguage if none does."""
        if language is not None and language not in self.languages:
            raise UnsupportedLanguage(f"language {language!r} is not served (served: {', '.join(self.languages)})")
        name = self._route(language)
        if name is None:
            raise UnsupportedLanguage("no multilingual model is configured to detect the language")
        return name

    @property
    def detects(self) -> bool:
        """Whether a call of unknown language can be served: a multilingual model and more than one language."""
        return len(self.languages) > 1 and self._route(None) is not None

    async def transcribe(self, request: AsrRequest) -> AsrResult:
        """Queue the request and wait for its words (or an empty, superseded result)."""
        _check(request)
        self.model_for(request.language)
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
        """Refuse new work, let running decodes finish, then free the models.

        The models are released here rather than at interpreter exit: CTranslate2 destroyed during
        finalisation, with its worker threads still joinable, aborts the process.
        """
        for pending in self._queue.close():
            pending.deliver(RuntimeError("the ASR worker is closed"))
        for thread in self._consumers:
            if thread is not threading.current_thread():
                thread.join(timeout=30)
        self.models = {}

    def _consume(self) -> None:
        while batch := self._queue.take(self.max_batch, self.window_s):
            outcomes = self._serve(batch)
            self._queue.done(batch)
            for p, outcome in zip(batch, outcomes):
                p.deliver(outcome)

    def _serve(self, batch: list[Pending]) -> list[AsrResult] | list[Exception]:
        """Decode a batch; on failure rebuild the models and retry once, else every caller gets the error."""
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
        return [replace(r, queue_wait_s=started - p.submitted, decode_s=decode_s) for p, r in zip(batch, results)]

    def _rebuild(self, failed_generation: int) -> None:
        """Load the models afresh, once per failure even when several threads saw it fail."""
        with self._rebuild_lock:
            if self.generation != failed_generation:
                return
            started = time.monotonic()
            self.models = self._load()
            self.generation += 1
            log.warning("asr.model_rebuilt", generation=self.generation, seconds=round(time.monotonic() - started, 2))

    def _decode(self, requests: list[AsrRequest]) -> list[AsrResult]:
        """Each request on its language's model; one batched pass per model."""
        models = self.models
        by_model: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            by_model.setdefault(self.model_for(r.language), []).append(i)
        results: list[AsrResult | None] = [None] * len(requests)
        for name, members in by_model.items():
            decoder = BatchedWhisper(models[name], self.window, self._detectable)
            decoded = decoder.transcribe([
                DecodeRequest(requests[i].audio, requests[i].language, requests[i].prompt,
                              self.beams.of(requests[i].priority), detect=self._wants_language(requests[i]),
                              retry=requests[i].priority != Priority.INTERIM,
                              resample_uncertain=requests[i].priority != Priority.FINAL)
                for i in members
            ])
            for i, d in zip(members, decoded):
                results[i] = _result(requests[i], d)
        done = [r for r in results if r is not None]
        return self._probe(models, requests, done)

    def _wants_language(self, request: AsrRequest) -> bool:
        return request.final and not request.post_call and len(self.languages) > 1

    def _probe(self, models: dict[str, WhisperModel], requests: list[AsrRequest],
               results: list[AsrResult]) -> list[AsrResult]:
        """Detect the language of low-confidence finals an English-only model wrote (see PROBE_BELOW)."""
        detector = self._route(None)
        doubtful = [i for i, (q, r) in enumerate(zip(requests, results))
                    if detector is not None and self._wants_language(q) and r.detected is None
                    and (not r.words or sum(w.probability for w in r.words) / len(r.words) < PROBE_BELOW)]
        if not doubtful or detector is None:
            return results
        found = BatchedWhisper(models[detector], self.window, self._detectable).detect(
            [requests[i].audio for i in doubtful])
        for i, detected in zip(doubtful, found):
            results[i] = replace(results[i], detected=detected)
        return results


def _result(request: AsrRequest, decoded: Decoded) -> AsrResult:
    words = [
        Word(w.word.strip(), request.t0 + w.start, request.t0 + w.end, w.probability)
        for seg in decoded.segments
        if not _hallucination(seg)
        for w in seg.words or ()
    ]
    return AsrResult(tuple(w for w in words if w.text), decoded.language, decoded.language_probability,
                     full_windows=decoded.full_windows, detected=decoded.detected)


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
