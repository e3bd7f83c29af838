"""After a call: its recording transcribed again with the most accurate settings the box has, and the call
rescored from that transcript (reviewers' overrides kept).

Segmentation: each channel of the recording (left agent, right debtor) is cut by the project's Silero VAD
(streaming/segmenter.py) with a longer closing silence than live (post_call_min_silence_ms) and segments of
up to post_call_max_segment_s, so a sentence the live call split at a short pause is decoded whole. A
segment's language is the one its live finals had (code-switching kept), else the call's. Words keep their
timestamps on the call clock. Requests go to the ASR worker as post-call work (queued behind every live
request, beam_size_post_call), one at a time, only while no live request waits, and paced to use at most
post_call_cpu_share of one decoding thread over time (a decode that ran d seconds is followed by a pause), so
a running post-call decode holds a core from live calls for a bounded share of the time; post_call_asr_model
loads a larger model for this work alone. The transcript is redacted like the live finals and stored beside
them (assist/storage/post_call.py); scoring then reads it (repository.load_call_data).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf
import structlog
from sqlalchemy import select

from assist.privacy import Redactor
from assist.recording_store import Recordings
from assist.ruleset import RuleSet
from assist.sealed import SealedError
from assist.settings import Settings
from assist.storage import post_call as queue
from assist.storage import repository as repo
from assist.storage.db import Database
from assist.storage.tables import Call, Recording, Utterance
from models.asr import AsrRequest, AsrWorker, BeamSizes, UnsupportedLanguage
from models.inference import AsrBackend
from models.vad import VadStream
from streaming.segmenter import VadSegmenter
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker

log = structlog.get_logger(__name__)
CHANNELS = (Speaker.AGENT, Speaker.DEBTOR)
"""Left, right: the recording's channel order (assist/recording.py)."""
BLOCK = 30 * SAMPLE_RATE
"""Frames decoded from the Ogg file at a time."""
LIVE_IDLE_S = 0.05
"""How often a waiting post-call request looks again whether the live queue is empty."""


class Skip(Exception):
    """The call has no transcript to make: finished as `status` with a reason code (and detail)."""

    def __init__(self, status: str, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.status, self.reason, self.detail = status, reason, detail


@dataclass(frozen=True)
class Piece:
    """One VAD segment of one channel, and the language to decode it in (None: detect)."""

    speaker: str
    t0: float
    audio: np.ndarray
    language: str | None

    @property
    def end(self) -> float:
        return self.t0 + len(self.audio) / SAMPLE_RATE


def decode_recording(data: bytes) -> np.ndarray:
    """Stereo Ogg Vorbis bytes -> (samples, 2) float32; a file cut short gives what could be read."""
    blocks: list[np.ndarray] = []
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            if f.channels != len(CHANNELS) or f.samplerate != SAMPLE_RATE:
                raise Skip(queue.FAILED, "recording_unreadable", f"{f.channels} channels at {f.samplerate} Hz")
            while len(block := f.read(BLOCK, dtype="float32", always_2d=True)):
                blocks.append(block)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        if not blocks:
            raise Skip(queue.FAILED, "recording_unreadable", str(error)) from None
        log.warning("post_call.recording_cut_short", read_s=round(sum(map(len, blocks)) / SAMPLE_RATE, 1))
    return np.concatenate(blocks) if blocks else np.zeros((0, len(CHANNELS)), np.float32)


def segment(audio: np.ndarray, settings: Settings) -> list[tuple[float, np.ndarray]]:
    """(start on the call clock, samples) of each stretch of speech in one channel (Silero VAD)."""
    live, post = settings.segmentation, settings.post_call
    segmenter = VadSegmenter(VadStream(), live.vad_threshold, post.post_call_min_silence_ms / 1000,
                             live.vad_speech_pad_ms / 1000, post.post_call_max_segment_s)
    found = segmenter.push(AudioFrame(Speaker.AGENT, 0.0, np.ascontiguousarray(audio, dtype=np.float32)))
    if (last := segmenter.flush()) is not None:
        found.append(last)
    return [(s.t0, s.audio) for s in found if len(s.audio) >= SAMPLE_RATE // 10]


def language_of(t0: float, t1: float, speaker: str, live: Sequence[tuple[str, float, float, str]],
                default: str | None) -> str | None:
    """The language the live finals of this speaker overlapping [t0, t1) were in (most overlap wins)."""
    overlap: dict[str, float] = defaultdict(float)
    for who, start, end, language in live:
        if who == speaker and (shared := min(t1, end) - max(t0, start)) > 0:
            overlap[language] += shared
    return max(overlap, key=overlap.__getitem__) if overlap else default


class PostCallRunner:
    """Works through the post-call queue, one call and one segment at a time, in the background."""

    def __init__(self, settings: Settings, db: Database, recordings: Recordings, worker: AsrBackend,
                 redactor: Redactor, node_id: str, rules: RuleSet | None = None) -> None:
        self.settings, self.db, self.recordings, self.live = settings, db, recordings, worker
        self.redactor, self.node_id, self.rules = redactor, node_id, rules
        """`rules`: what calls are rescored by (the service's RuleSet; None: the packaged rules)."""
        self.extra: AsrWorker | None = None
        """The post_call_asr_model worker, when one is configured."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.current: str | None = None

    async def start(self) -> None:
        """Put back work a stopped or lost node left running, load the larger model if any, start."""
        if model := self.settings.post_call.post_call_asr_model:
            args = {**self.settings.asr.worker_args(), "models": model, "threads": 1,
                    "beams": BeamSizes(post_call=self.settings.asr.beam_size_post_call)}
            self.extra = await asyncio.to_thread(lambda: AsrWorker(**args))
        reset = await asyncio.to_thread(self._in_session, queue.reset_stale, self.node_id)
        if reset:
            log.warning("post_call.resumed", calls=reset)
        self._task = asyncio.create_task(self._loop(), name="post-call")

    def wake(self, *_: object) -> None:
        """A call ended: look for work now rather than at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        """Stop; a call being transcribed goes back to pending for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.current is not None:
            await asyncio.to_thread(self._in_session, queue.requeue, self.current, self.node_id)
        if self.extra is not None:
            self.extra.close()

    def _in_session(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.db.session() as s:
            return fn(s, *args)

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._in_session, queue.queue_ended)
                call_id = await asyncio.to_thread(self._in_session, queue.claim, self.node_id)
            except Exception as error:  # noqa: BLE001 - the database may be away for a while: try again
                log.warning("post_call.queue_failed", error=str(error))
                call_id = None
            if call_id is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.post_call.post_call_poll_s)
                continue
            self.current = call_id
            await self.run(call_id)
            self.current = None

    async def run(self, call_id: str) -> str:
        """Transcribe one claimed call and rescore it; returns the status stored (never raises but to cancel)."""
        try:
            utterances, used = await self._transcribe(call_id)
        except Skip as skip:
            log.warning("post_call.not_done", call_id=call_id, status=skip.status, reason=skip.reason,
                        detail=skip.detail)
            await asyncio.to_thread(self._in_session, queue.finish, call_id, skip.status, skip.reason, skip.detail)
            return skip.status
        except Exception as error:  # one call's fault (a decode, the database) must not stop the runner
            log.exception("post_call.failed", call_id=call_id)
            await asyncio.to_thread(self._in_session, queue.finish, call_id, queue.FAILED, "error", str(error))
            return queue.FAILED

        def store(s: Any) -> None:
            queue.finish(s, call_id, queue.DONE, utterances=utterances, settings=used)
            s.flush()
            repo.score_and_store(s, call_id, self.rules)

        await asyncio.to_thread(self._in_session, store)
        log.info("post_call.done", call_id=call_id, utterances=len(utterances))
        return queue.DONE

    async def _transcribe(self, call_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        row, language, live = await asyncio.to_thread(self._in_session, _inputs, call_id)
        data = await asyncio.to_thread(self._read, row)
        audio = await asyncio.to_thread(decode_recording, data)
        pieces = await asyncio.to_thread(self._pieces, audio, live, language)
        utterances: list[dict[str, Any]] = []
        models: dict[str, str] = {}
        for done, piece in enumerate(pieces):
            worker, models[piece.language or "detected"] = self._worker_for(piece.language)
            await self._live_idle()
            result = await worker.transcribe(AsrRequest(piece.audio, piece.t0, piece.language, final=True,
                                                        call_id=call_id, channel=piece.speaker, post_call=True))
            if result.words:
                utterances.append(self._utterance(len(utterances) + 1, piece, result.words, result.language))
            await asyncio.to_thread(self._in_session, queue.set_progress, call_id, self.node_id,
                                    (done + 1) / len(pieces))
            await asyncio.sleep(result.decode_s * (1 / self.settings.post_call.post_call_cpu_share - 1))
        used = {"models": models, "beam": self.settings.asr.beam_size_post_call, "segmentation": "silero-vad",
                "min_silence_s": self.settings.post_call.post_call_min_silence_ms / 1000,
                "max_segment_s": self.settings.post_call.post_call_max_segment_s}
        return utterances, used

    def _read(self, row: Recording | None) -> bytes:
        if row is None:
            raise Skip(queue.SKIPPED, "no_recording")
        if row.status == "purged":
            raise Skip(queue.SKIPPED, "recording_purged")
        try:
            reader = self.recordings.reader(row)
            return b"".join(reader.read(0, reader.size))
        except SealedError as error:
            raise Skip(queue.FAILED, "recording_unreadable", str(error)) from None

    def _pieces(self, audio: np.ndarray, live: list[tuple[str, float, float, str]],
                language: str | None) -> list[Piece]:
        pieces = []
        for column, speaker in enumerate(CHANNELS):
            for t0, samples in segment(audio[:, column], self.settings):
                t1 = t0 + len(samples) / SAMPLE_RATE
                pieces.append(Piece(speaker.value, t0, samples, language_of(t0, t1, speaker.value, live, language)))
        return sorted(pieces, key=lambda p: (p.t0, p.speaker))

    def _worker_for(self, language: str | None) -> tuple[AsrBackend, str]:
        """(worker, model name): the larger model's when it serves the language, else the live routing's."""
        if self.extra is not None:
            with contextlib.suppress(UnsupportedLanguage):
                return self.extra, self.extra.model_for(language)
        if language in self.live.languages or (language is None and self.live.detects):
            routes = self.settings.asr.routes
            return self.live, routes.get(language or "*", routes.get("*", ""))
        raise Skip(queue.FAILED, "language_unsupported", f"language {language!r} is not served")

    async def _live_idle(self) -> None:
        """Wait while any live request (final or interim) waits for the ASR worker."""
        while any(n for kind, n in self.live.queue_depth().items() if kind != "post_call"):
            await asyncio.sleep(LIVE_IDLE_S)

    def _utterance(self, seq: int, piece: Piece, words: Sequence[Any], language: str) -> dict[str, Any]:
        plain = [{"text": w.text, "start": round(w.start, 3), "end": round(w.end, 3),
                  "probability": round(w.probability, 3)} for w in words]
        text = " ".join(w["text"] for w in plain)
        redacted = self.redactor.payload({"text": text, "words": plain})
        return {"seq": seq, "speaker": piece.speaker, "start": round(piece.t0, 3), "end": plain[-1]["end"],
                "text": redacted["text"], "language": language, "words": redacted["words"]}


def _inputs(s: Any, call_id: str) -> tuple[Recording | None, str | None, list[tuple[str, float, float, str]]]:
    """The call's recording row, language and live finals (speaker, start, end, language)."""
    call = s.get_one(Call, call_id)
    live = s.execute(select(Utterance.speaker, Utterance.start, Utterance.end, Utterance.language)
                     .where(Utterance.call_id == call_id))
    return s.get(Recording, call_id), call.language, [tuple(r) for r in live]

