"""One live call: per-speaker VAD + streaming ASR tasks, live analysers, and its event log."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from assist.analysis.base import Analyser, CallContext
from assist.events import (
    CallEnded,
    CallError,
    CallStarted,
    EventBase,
    QaScore,
    TranscriptFinal,
    TranscriptPartial,
)
from assist.hub import EventHub
from assist.settings import Settings
from assist.storage.recorder import Recorder
from models.asr import AsrRequest, AsrWorker
from models.vad import VadStream
from streaming.agreement import LocalAgreement, join_words
from streaming.segmenter import Segment, VadSegmenter
from streaming.types import AudioFrame, Speaker, Utterance

log = structlog.get_logger(__name__)


@dataclass
class _Channel:
    speaker: Speaker
    segmenter: VadSegmenter
    queue: asyncio.Queue[AudioFrame | None]
    utterances: int = 0
    agreement: LocalAgreement | None = None
    partial_at: float = 0.0
    partial: asyncio.Task | None = None


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
    ) -> None:
        self.ctx = ctx
        self.call_id = ctx.call_id
        self.protocol = protocol
        self.worker = worker
        self.hub = hub
        self.settings = settings
        self.analysers = analysers
        self.clock = 0.0
        self.recorder = recorder
        self._stored: asyncio.Queue[EventBase | None] = asyncio.Queue()
        self._store_task = asyncio.create_task(self._run_store())
        self._qa: dict = {}
        self._analysis: asyncio.Queue = asyncio.Queue()
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
            )
            for speaker in Speaker
        }
        hub.open(self.call_id)
        self.emit(CallStarted(call_id=self.call_id, protocol=protocol, metadata=ctx.metadata))
        self._tasks = [asyncio.create_task(self._run_channel(ch)) for ch in self._channels.values()]
        self._analysis_task = asyncio.create_task(self._run_analysis())

    def emit(self, event: EventBase) -> EventBase:
        """Number the event, fan it out live and queue it for storage."""
        event = self.hub.publish(event)
        self._stored.put_nowait(event)
        return event

    async def push(self, frame: AudioFrame) -> None:
        """Queue a frame for its speaker (waits when the channel is full: backpressure, no loss)."""
        await self._channels[frame.speaker].queue.put(frame)

    async def end(self, reason: str = "end") -> CallEnded:
        """Flush every channel's open utterance, drain the analysis, emit `call.ended`."""
        for ch in self._channels.values():
            await ch.queue.put(None)
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
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
        """Writes every event in order; the end of the call also scores and categorises it."""
        while (event := await self._stored.get()) is not None:
            if self.recorder is None:
                continue
            try:
                if isinstance(event, CallStarted):
                    await self.recorder.call_started(event)
                elif isinstance(event, CallEnded):
                    self._qa = await self.recorder.call_ended(event)
                else:
                    await self.recorder.record(event)
            except Exception:
                log.exception("store.failed", call_id=self.call_id, seq=event.seq)

    async def _run_channel(self, ch: _Channel) -> None:
        while (frame := await ch.queue.get()) is not None:
            self.clock = max(self.clock, frame.end)
            await self._analysis.put(frame)
            for segment in ch.segmenter.push(frame):
                await self._finalise(ch, segment)
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
        language = None if self.settings.language == "auto" else self.ctx.language
        return AsrRequest(segment.audio, segment.t0, language, final=final)

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
        if self.settings.language == "auto" and result.language_probability > 0.8:
            self.ctx.language = result.language
        if not result.words:
            return
        text = join_words(list(result.words))
        utt = Utterance(ch.speaker, ch.utterances, segment.t0, result.words[-1].end, text, result.words,
                        result.language, final=True)
        self.emit(TranscriptFinal.from_utterance(self.call_id, utt))
        await self._analysis.put(utt)

    async def _run_analysis(self) -> None:
        """Analysers run in call order, off the event loop, a batch of queued items at a time."""
        done = False
        last_tick = 0.0
        while not done:
            batch = [await self._analysis.get()]
            while not self._analysis.empty():
                batch.append(self._analysis.get_nowait())
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
