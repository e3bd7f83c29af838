"""What a voice call and a written conversation share: numbered events, in-order analysis, storage and the
scored end (`CallSession` adds audio channels, `ConversationSession` messages)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

from assist.analysis.base import Analyser, CallContext
from assist.events import (
    CallEnded,
    CallError,
    CallStarted,
    EventBase,
    QaScore,
    TranscriptFinal,
)
from assist.hub import EventHub
from assist.metrics import Metrics
from assist.settings import Settings
from assist.storage.recorder import Recorder
from streaming.types import AudioFrame, Speaker

log = structlog.get_logger(__name__)
STORE_BATCH = 200
AUDIO_GATHER_S = 0.1
"""Audio frames only fill the analysers' buffers: the analysis task gathers this much of them per hop to its
worker thread (one hop per 20 ms frame of every channel cost the event loop more than the analysis itself)."""
STORE_RETRIES = 5


class EventSession:
    """One call's event log, analysers and storage; subclasses feed it audio or messages."""

    def __init__(self, ctx: CallContext, protocol: str, hub: EventHub, settings: Settings,
                 analysers: list[Analyser], recorder: Recorder | None = None, metrics: Metrics | None = None,
                 channel: str = "voice") -> None:
        self.ctx = ctx
        self.call_id = ctx.call_id
        self.protocol = protocol
        self.channel = channel
        self.hub = hub
        self.settings = settings
        self.analysers = analysers
        self.clock = 0.0
        self.recorder = recorder
        self.metrics = metrics
        self._stored: asyncio.Queue[EventBase | None] = asyncio.Queue()
        """Bounded by back-pressure: producers wait in `_room` while it holds event_store_queue events."""
        self._store_room = asyncio.Condition()  # notified each time the writer takes a batch
        self._store_task = asyncio.create_task(self._run_store())
        self._qa: dict = {}
        self._analysis: asyncio.Queue = asyncio.Queue(2 * settings.limits.channel_queue_frames)

    def _open(self) -> None:
        """Open the call's log with `call.started` and start the analysis task."""
        self.hub.open(self.call_id)
        self.emit(CallStarted(call_id=self.call_id, protocol=self.protocol, channel=self.channel,
                              metadata=self.ctx.metadata))
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

    async def _room(self) -> None:
        """Back-pressure from storage: wait while this call's unwritten events reach the bound."""
        bound = self.settings.limits.event_store_queue
        if self._stored.qsize() < bound:
            return
        async with self._store_room:
            await self._store_room.wait_for(lambda: self._stored.qsize() < bound)

    async def _finish(self, reason: str, errors: Iterable[BaseException] = ()) -> CallEnded:
        """Drain the analysis, emit `call.ended`, store everything, then score, categorise and close."""
        await self._analysis.put(None)
        await self._analysis_task
        for error in errors:
            self.emit(CallError(call_id=self.call_id, t=self.clock, message=str(error)))
        finals = [e for e in self.hub.calls[self.call_id].events if isinstance(e, TranscriptFinal)]
        summary = {
            "utterances": {s.value: sum(1 for e in finals if e.speaker == s) for s in Speaker},
            "words": sum(len(e.words) for e in finals),
        }
        ended = self.emit(CallEnded(call_id=self.call_id, t=self.clock, reason=reason, duration=self.clock,
                                    summary=summary))
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

    async def _run_analysis(self) -> None:
        """Analysers run in call order, off the event loop, a batch of queued items at a time."""
        done = False
        last_tick = 0.0
        while not done:
            batch = [await self._analysis.get()]
            if isinstance(batch[0], AudioFrame):
                await asyncio.sleep(AUDIO_GATHER_S)
            while not self._analysis.empty():
                batch.append(self._analysis.get_nowait())
            await self._room()
            done = batch[-1] is None
            items = [item for item in batch if item is not None]
            tick = self.clock if self.clock - last_tick >= 1.0 else None
            if tick is not None:
                last_tick = tick
            await self._analyse_and_emit(items, tick)

    async def _analyse_and_emit(self, items: list, tick: float | None) -> list[EventBase]:
        """Run the analysers over `items` (then a tick) in a worker thread; emit and return their events."""
        try:
            events = await asyncio.to_thread(self._analyse, items, tick)
        except Exception as error:  # an analyser bug must not end the call
            log.exception("analysis.failed", call_id=self.call_id)
            events = [CallError(call_id=self.call_id, t=self.clock, message=f"analysis failed: {error}")]
        return [self.emit(event) for event in events]

    def _analyse(self, items: list, tick: float | None) -> list[EventBase]:
        out: list[EventBase] = []
        for item in items:
            for analyser in self.analysers:
                out += analyser.on_audio(item) if isinstance(item, AudioFrame) else analyser.on_utterance(item)
        if tick is not None:
            for analyser in self.analysers:
                out += analyser.on_tick(tick)
        return out
