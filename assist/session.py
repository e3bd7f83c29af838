"""One live call: per-speaker VAD + streaming ASR tasks, live analysers, and its event log."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

import structlog

from assist.analysis.base import Analyser, CallContext
from assist.call_language import CallLanguage
from assist.event_session import EventSession
from assist.events import CallEnded, CallLanguageSet, TranscriptFinal, TranscriptPartial
from assist.hub import EventHub
from assist.metrics import Metrics
from assist.recording import CallRecording
from assist.settings import Settings
from assist.storage.recorder import Recorder
from models.asr import AsrRequest, AsrResult
from models.inference import AsrBackend
from models.vad import VadStream
from streaming.agreement import LocalAgreement, join_words
from streaming.segmenter import Segment, VadSegmenter
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker, Utterance

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _EarlyFinal:
    """The open utterance decoded as a final at a pause, `voiced` speech windows into the channel: it is the
    final if nobody speaks before the utterance closes (the VAD's full silence), and is dropped otherwise."""

    voiced: int
    task: asyncio.Task[AsrResult]


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
    early: _EarlyFinal | None = None
    arrivals: deque[tuple[float, float]] = field(default_factory=deque)
    """(frame end, monotonic time it arrived) of queued and in-utterance frames: end-of-speech latency."""


class CallSession(EventSession):
    """Owns one call's channels and analysers; frames go in with `push`, events out via the hub."""

    def __init__(
        self,
        ctx: CallContext,
        protocol: str,
        worker: AsrBackend,
        hub: EventHub,
        settings: Settings,
        analysers: list[Analyser],
        recorder: Recorder | None = None,
        metrics: Metrics | None = None,
        language: CallLanguage | None = None,
        recording: CallRecording | None = None,
    ) -> None:
        super().__init__(ctx, protocol, hub, settings, analysers, recorder, metrics)
        self.worker = worker
        self.language = language or CallLanguage(ctx.language, (ctx.language,))
        """The language requests are decoded in (None until detected)."""
        self.audio_end = 0.0
        """End of the latest frame received (call time); a reconnect continues from here."""
        self.recording = recording
        """The call's audio recording (assist/recording.py): fed every frame and final's words, closed at the end."""
        self._channels = {
            speaker: _Channel(
                speaker,
                VadSegmenter(
                    VadStream(),
                    settings.segmentation.vad_threshold,
                    settings.segmentation.vad_min_silence_ms / 1000,
                    settings.segmentation.vad_speech_pad_ms / 1000,
                    settings.segmentation.max_utterance_s,
                ),
                asyncio.Queue(settings.limits.channel_queue_frames),
                arrivals=deque(maxlen=settings.limits.channel_queue_frames + 2000),
            )
            for speaker in Speaker
        }
        self._open()
        self._tasks = []
        for ch in self._channels.values():
            ch.task = asyncio.create_task(self._run_channel(ch))
            self._tasks.append(ch.task)

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

    async def end(self, reason: str = "end") -> CallEnded:
        """Flush every channel's open utterance, drain the analysis, emit `call.ended`."""
        for ch in self._channels.values():
            await self._put(ch, None)
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.recording is not None:
            await self.recording.close()
        return await self._finish(reason, [r for r in results if isinstance(r, Exception)])

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
            self._early_final(ch)
            if self._interim_due(ch) and (current := ch.segmenter.current()) is not None:
                ch.partial_at = ch.segmenter.clock
                ch.partial = asyncio.create_task(self._interim(ch, current, ch.utterances + 1))
        if (last := ch.segmenter.flush()) is not None:
            await self._finalise(ch, last)

    def _interim_due(self, ch: _Channel) -> bool:
        """Speech is open, no interim is in flight, and `partial_interval_s` of it came since the last one
        (or since the speech began: an interim of a fraction of a word would be wasted); not in a pause
        whose early final is under way (it holds every word an interim would show)."""
        segmenter = ch.segmenter
        last = max(ch.partial_at, segmenter.speech_onset)
        if ch.early is not None and ch.early.voiced == segmenter.voiced:
            return False
        interval = self.settings.segmentation.partial_interval_s
        return segmenter.speaking and ch.partial is None and segmenter.clock - last >= interval

    def _request(self, ch: _Channel, segment: Segment, final: bool) -> AsrRequest:
        return AsrRequest(segment.audio, segment.t0, self.language.current, final=final, call_id=self.call_id,
                          channel=ch.speaker.value)

    def _early_final(self, ch: _Channel) -> None:
        """Drop an early final once speech goes on after it; start one when the speaker has paused
        `early_final_pause_s` (the final then lands up to min_silence - that pause sooner) and no live
        request is waiting for the ASR (a dropped early final is work a busy box cannot spare)."""
        segmenter, early = ch.segmenter, ch.early
        if early is not None and early.voiced != segmenter.voiced:
            early.task.cancel()  # still queued: never decoded
            ch.early = early = None
            self._count_early("dropped")
        pause = self.settings.segmentation.early_final_pause_s
        if early is None and pause > 0 and segmenter.pause_s >= pause and self._asr_idle() \
                and (current := segmenter.current()):
            request = self._request(ch, current, final=True)
            ch.early = _EarlyFinal(segmenter.voiced, asyncio.create_task(self.worker.transcribe(request)))

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
        early, ch.early = ch.early, None
        if early is not None and early.voiced == ch.segmenter.voiced:
            result = await early.task  # nobody spoke after the pause: the early final is the final
            self._count_early("used")
        else:
            if early is not None:
                early.task.cancel()
                self._count_early("dropped")
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

    def _asr_idle(self) -> bool:
        depth = self.worker.queue_depth()
        return depth.get("final", 0) + depth.get("interim", 0) == 0

    def _count_early(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.early_finals.labels(outcome).inc()

    def _observe_language(self, result: AsrResult, segment: Segment) -> None:
        """Detection decides an undecided call's language; a stretch in another language switches it."""
        if result.detected is None:
            return
        reason = "detected" if self.language.current is None else "switched"
        language, probability = result.detected
        if self.language.observe(language, probability, len(segment.audio) / SAMPLE_RATE) is None:
            return
        self.ctx.language = language
        self.emit(CallLanguageSet(call_id=self.call_id, t=self.clock, language=language,
                                  probability=round(probability, 3), reason=reason))
        log.info("call.language", call_id=self.call_id, language=language, probability=round(probability, 3),
                 reason=reason)

    def _observe_latency(self, ch: _Channel, speech_end: float) -> None:
        """End of speech (when its audio arrived) to now, the final's publication."""
        received = next((at for end, at in ch.arrivals if end >= speech_end), None)
        while ch.arrivals and ch.arrivals[0][0] < speech_end:
            ch.arrivals.popleft()
        if received is not None and self.metrics is not None:
            self.metrics.final_latency.observe(time.monotonic() - received)
