"""One live call: per-speaker VAD + streaming ASR tasks, live analysers, and its event log."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

import structlog

from assist.analysis.base import Analyser, CallContext
from assist.call_language import CallLanguage
from assist.events import (
    CallEnded,
    CallError,
    CallLanguageSet,
    CallStarted,
    EventBase,
    QaScore,
    TranscriptFinal,
    TranscriptPartial,
)
from assist.hub import EventHub
from assist.metrics import Metrics
from assist.recording import CallRecording
from assist.settings import Settings
from assist.storage.recorder import Recorder
from models.asr import AsrRequest, AsrResult, AsrWorker
from models.vad import VadStream
from streaming.agreement import LocalAgreement, join_words
from streaming.segmenter import Segment, VadSegmenter
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker, Utterance

log = structlog.get_logger(__name__)
STORE_BATCH = 200
STORE_RETRIES = 5


@dataclass
class _Channel:
    speaker: Speaker
    segmenter: VadSegmenter
    queue: asyncio.Queue[AudioFrame | None]
    utterances: int = 0
    agreement: LocalAgreement | None = None
    partial_at: float = 0.0
    partial: asyncio.Task | None = None
    task: asyncio.Task | None = None
    arrivals: deque[tuple[float, float]] = field(default_factory=deque)
    """(frame end, monotonic time it arrived) of queued and in-utterance frames: end-of-speech latency."""


class CallSession:
    """Owns one call's channels and analysers; frames go in with `push`, events out via the hub."""

    def __init__(
        self,
        ctx: CallContext,
        protocol: str,
        worker: AsrWorker,
        hub: EventHub,
        settings: Settings,
        analysers: list[Analyser],
        recorder: Recorder | None = None,
        metrics: Metrics | None = None,
        language: CallLanguage | None = None,
        recording: CallRecording | None = None,
    ) -> None:
        self.ctx = ctx
        self.call_id = ctx.call_id
        self.protocol = protocol
        self.worker = worker
        self.hub = hub
        self.settings = settings
        self.analysers = analysers
        self.language = language or CallLanguage(ctx.language, (ctx.language,))
        """The language requests are decoded in (None until detected)."""
        self.clock = 0.0
        self.audio_end = 0.0
        """End of the latest frame received (call time); a reconnect continues from here."""
        self.recorder = recorder
        self.metrics = metrics
        self.recording = recording
        """The call's audio recording (assist/recording.py): fed every frame and final's words, closed at the end."""
        self._stored: asyncio.Queue[EventBase | None] = asyncio.Queue()
        """Bounded by back-pressure: producers wait in `_room` while it holds event_store_queue events."""
        self._store_room = asyncio.Condition()  # notified each time the writer takes a batch
        self._store_task = asyncio.create_task(self._run_store())
        self._qa: dict = {}
        self._analysis: asyncio.Queue = asyncio.Queue(2 * settings.channel_queue_frames)
        self._channels = {
            speaker: _Channel(
                speaker,
                VadSegmenter(
                    VadStream(),
                    settings.vad_threshold,
                    settings.vad_min_silence_ms / 1000,
                    settings.vad_speech_pad_ms / 1000,
                    settings.max_utterance_s,
                ),
                asyncio.Queue(settings.channel_queue_frames),
                arrivals=deque(maxlen=settings.channel_queue_frames + 2000),
            )
            for speaker in Speaker
        }
        hub.open(self.call_id)
        self.emit(CallStarted(call_id=self.call_id, protocol=protocol, metadata=ctx.metadata))
        for ch in self._channels.values():
            ch.task = asyncio.create_task(self._run_channel(ch))
        self._tasks = [ch.task for ch in self._channels.values()]
        self._analysis_task = asyncio.create_task(self._run_analysis())

    def emit(self, event: EventBase) -> EventBase:
        """Number the event, fan it out live and queue it for storage."""
        event = self.hub.publish(event)
        self._stored.put_nowait(event)
        if self.metrics is not None:
            self.metrics.events.labels(event.type).inc()  # type: ignore[attr-defined]
            if isinstance(event, CallError):
                self.metrics.errors.labels("call").inc()
        return event

    @property
    def lag(self) -> float:
        """Seconds of received audio not yet through voice detection."""
        return max(0.0, self.audio_end - self.clock)

    async def push(self, frame: AudioFrame) -> None:
        """Queue a frame for its speaker (waits when the channel is full: backpressure, no loss).

        If the speaker's channel task has failed, the frame is dropped and counted."""
        ch = self._channels[frame.speaker]
        self.audio_end = max(self.audio_end, frame.end)
        ch.arrivals.append((frame.end, time.monotonic()))
        if not await self._put(ch, frame) and self.metrics is not None:
            self.metrics.dropped_frames.labels("channel_failed").inc()

    @staticmethod
    async def _put(ch: _Channel, item: AudioFrame | None) -> bool:
        """Queue `item` for the channel, waiting for room, unless its task has failed (False)."""
        assert ch.task is not None
        if ch.task.done():
            return False
        if not ch.queue.full():
            ch.queue.put_nowait(item)
            return True
        put = asyncio.ensure_future(ch.queue.put(item))
        await asyncio.wait({put, ch.task}, return_when=asyncio.FIRST_COMPLETED)
        if put.done():
            return True
        put.cancel()
        return False

    async def _room(self) -> None:
        """Back-pressure from storage: wait while this call's unwritten events reach the bound."""
        bound = self.settings.event_store_queue
        if self._stored.qsize() < bound:
            return
        async with self._store_room:
            await self._store_room.wait_for(lambda: self._stored.qsize() < bound)

    async def end(self, reason: str = "end") -> CallEnded:
        """Flush every channel's open utterance, drain the analysis, emit `call.ended`."""
        for ch in self._channels.values():
            await self._put(ch, None)
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.recording is not None:
            await self.recording.close()
        await self._analysis.put(None)
        await self._analysis_task
        for error in (r for r in results if isinstance(r, Exception)):
            self.emit(CallError(call_id=self.call_id, t=self.clock, message=str(error)))
        finals = [e for e in self.hub.calls[self.call_id].events if isinstance(e, TranscriptFinal)]
        summary = {
            "utterances": {s.value: sum(1 for e in finals if e.speaker == s) for s in Speaker},
            "words": sum(len(e.words) for e in finals),
        }
        ended = self.emit(CallEnded(call_id=self.call_id, t=self.clock, reason=reason, duration=self.clock, summary=summary))
        self._stored.put_nowait(None)
        await self._store_task
        if self._qa:
            qa = self.hub.publish(QaScore(call_id=self.call_id, t=self.clock, **self._qa))
            if self.recorder is not None:
                await self.recorder.record(qa)
        self.hub.close(self.call_id)
        return ended  # type: ignore[return-value]

    async def _run_store(self) -> None:
        """Writes every event in order, in batches; the end of the call also scores and categorises it."""
        done = False
        while not done:
            batch = [await self._stored.get()]
            while not self._stored.empty() and len(batch) < STORE_BATCH:
                batch.append(self._stored.get_nowait())
            async with self._store_room:
                self._store_room.notify_all()
            done = batch[-1] is None
            events = [e for e in batch if e is not None]
            if self.recorder is None or not events:
                continue
            for attempt in range(STORE_RETRIES):
                try:
                    await self._store(self.recorder, events)
                    break
                except Exception:  # writes are idempotent by (call, seq): retrying loses and doubles nothing
                    log.exception("store.failed", call_id=self.call_id, seqs=(events[0].seq, events[-1].seq),
                                  attempt=attempt + 1)
                    if self.metrics is not None:
                        self.metrics.errors.labels("store").inc()
                    await asyncio.sleep(0.2 * 2**attempt)

    async def _store(self, recorder: Recorder, events: list[EventBase]) -> None:
        plain: list[EventBase] = []
        for event in events:
            if isinstance(event, CallStarted | CallEnded):
                if plain:
                    await recorder.record_batch(plain)
                    plain = []
                if isinstance(event, CallStarted):
                    await recorder.call_started(event)
                else:
                    self._qa = await recorder.call_ended(event)
            else:
                plain.append(event)
        if plain:
            await recorder.record_batch(plain)

    async def _run_channel(self, ch: _Channel) -> None:
        while (frame := await ch.queue.get()) is not None:
            if self.recording is not None:
                await self.recording.audio(frame)
            await self._room()
            self.clock = max(self.clock, frame.end)
            await self._analysis.put(frame)
            for segment in ch.segmenter.push(frame):
                await self._finalise(ch, segment)
            while not ch.segmenter.speaking and ch.arrivals and ch.arrivals[0][0] < ch.segmenter.clock - 1.0:
                ch.arrivals.popleft()  # no utterance open: audio this old cannot end one
            current = ch.segmenter.current()
            if (
                current is not None
                and ch.partial is None
                and ch.segmenter.clock - ch.partial_at >= self.settings.partial_interval_s
            ):
                ch.partial_at = ch.segmenter.clock
                ch.partial = asyncio.create_task(self._interim(ch, current, ch.utterances + 1))
        if (segment := ch.segmenter.flush()) is not None:
            await self._finalise(ch, segment)

    def _request(self, ch: _Channel, segment: Segment, final: bool) -> AsrRequest:
        return AsrRequest(segment.audio, segment.t0, self.language.current, final=final, call_id=self.call_id,
                          channel=ch.speaker.value)

    async def _interim(self, ch: _Channel, segment: Segment, number: int) -> None:
        try:
            result = await self.worker.transcribe(self._request(ch, segment, final=False))
            if number != ch.utterances + 1 or not result.words:
                return  # the utterance was finalised meanwhile: this interim is stale
            ch.agreement = ch.agreement or LocalAgreement()
            ch.agreement.update(list(result.words))
            utt = Utterance(ch.speaker, number, segment.t0, result.words[-1].end, join_words(list(result.words)),
                            result.words, result.language, final=False)
            event = TranscriptPartial.from_utterance(self.call_id, utt)
            self.emit(event.model_copy(update={"stable_text": join_words(ch.agreement.committed)}))
            await self._analysis.put(utt)
        finally:
            ch.partial = None

    async def _finalise(self, ch: _Channel, segment: Segment) -> None:
        ch.utterances += 1
        ch.agreement = None
        result = await self.worker.transcribe(self._request(ch, segment, final=True))
        self._observe_language(result, segment)
        if not result.words:
            return
        text = join_words(list(result.words))
        utt = Utterance(ch.speaker, ch.utterances, segment.t0, result.words[-1].end, text, result.words,
                        result.language, final=True)
        self.emit(TranscriptFinal.from_utterance(self.call_id, utt))
        if self.recording is not None:
            self.recording.words(ch.speaker, result.words)
        self._observe_latency(ch, segment.t0 + len(segment.audio) / SAMPLE_RATE)
        await self._analysis.put(utt)

    def _observe_language(self, result: AsrResult, segment: Segment) -> None:
        """Detection decides an undecided call's language; a stretch in another language switches it."""
        if result.detected is None:
            return
        reason = "detected" if self.language.current is None else "switched"
        language, probability = result.detected
        if self.language.observe(language, probability, len(segment.audio) / SAMPLE_RATE) is None:
            return
        self.ctx.language = language
        event = self.emit(CallLanguageSet(call_id=self.call_id, t=self.clock, language=language,
                                          probability=round(probability, 3), reason=reason))
        log.info("call.language", call_id=self.call_id, language=language, probability=event.probability,
                 reason=reason)

    def _observe_latency(self, ch: _Channel, speech_end: float) -> None:
        """End of speech (when its audio arrived) to now, the final's publication."""
        received = next((at for end, at in ch.arrivals if end >= speech_end), None)
        while ch.arrivals and ch.arrivals[0][0] < speech_end:
            ch.arrivals.popleft()
        if received is not None and self.metrics is not None:
            self.metrics.final_latency.observe(time.monotonic() - received)

    async def _run_analysis(self) -> None:
        """Analysers run in call order, off the event loop, a batch of queued items at a time."""
        done = False
        last_tick = 0.0
        while not done:
            batch = [await self._analysis.get()]
            while not self._analysis.empty():
                batch.append(self._analysis.get_nowait())
            await self._room()
            done = batch[-1] is None
            items = [item for item in batch if item is not None]
            tick = self.clock if self.clock - last_tick >= 1.0 else None
            if tick is not None:
                last_tick = tick
            try:
                events = await asyncio.to_thread(self._analyse, items, tick)
            except Exception as error:  # an analyser bug must not end the call
                log.exception("analysis.failed", call_id=self.call_id)
                events = [CallError(call_id=self.call_id, t=self.clock, message=f"analysis failed: {error}")]
            for event in events:
                self.emit(event)

    def _analyse(self, items: list, tick: float | None) -> list[EventBase]:
        out: list[EventBase] = []
        for item in items:
            for analyser in self.analysers:
                out += analyser.on_audio(item) if isinstance(item, AudioFrame) else analyser.on_utterance(item)
        if tick is not None:
            for analyser in self.analysers:
                out += analyser.on_tick(tick)
        return out
