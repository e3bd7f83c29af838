"""One call's recording: stereo Ogg Vorbis (left agent, right debtor), payment and identity numbers silenced,
sealed (AES-GCM) as it is written.

Audio waits in memory until no utterance still being transcribed can cover it: a channel's audio older
than its latest frame minus `hold_s` (longer than the longest utterance) has had its finals, so the
spans the transcript redactor finds in their words (plus a margin) are silenced, in both channels (echo),
before the audio is encoded and sealed. Nothing unredacted reaches disk; a crash loses the held audio
only. A reconnect continues the same session, so the same file. Faults stop the recording, never the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import structlog

from assist.privacy import JOIN_S, Redactor
from assist.sealed import SealedWriter
from streaming.types import SAMPLE_RATE, AudioFrame, Speaker, Word

log = structlog.get_logger(__name__)
CHANNELS = (Speaker.AGENT, Speaker.DEBTOR)
"""Left, right (as `recobra replay` reads stereo files)."""
MAX_BLOCK_S = 30
"""Most audio encoded at once (seconds)."""
VORBIS_LEVEL = 0.0
"""Vorbis compression level, 0.0 = best quality: the post-call transcript is made from this file (the default
level cost tiny.en 7 WER points on FLEURS English, level 0.0 none; assist/post_call.py)."""


@dataclass(frozen=True)
class Span:
    """Silenced audio: call-clock seconds, the kind of number and who said it (never the value)."""

    start: float
    end: float
    kind: str
    speaker: str


def redacted_spans(words: Sequence[tuple[str, Word]], redactor: Redactor, margin: float) -> list[Span]:
    """The spans of the (speaker, word)s the transcript redactor replaces, widened by `margin`, overlapping
    ones merged (the speaker of a span is its first word's)."""
    plain: list[dict[str, Any]] = [{"text": w.text, "start": w.start, "end": w.end, "speaker": who}
                                   for who, w in words]
    spans: list[Span] = []
    for word, out in zip(plain, redactor.words(plain)):
        if out["text"] == word["text"]:
            continue
        kind = out["text"].strip(" []").lower()
        start, end = max(0.0, word["start"] - margin), word["end"] + margin
        speaker = word["speaker"]
        if spans and start <= spans[-1].end:
            last = spans.pop()
            start, kind, speaker = last.start, last.kind, last.speaker
        spans.append(Span(round(start, 3), round(end, 3), kind, speaker))
    return spans


class _Sink:
    """The file object libsndfile encodes into: new bytes are taken out as they come (Ogg never seeks back)."""

    def __init__(self) -> None:
        self.size, self.new = 0, bytearray()

    def write(self, data: bytes) -> int:
        self.new += data
        self.size += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.size

    def tell(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        return b""

    def take(self) -> bytes:
        data, self.new = bytes(self.new), bytearray()
        return data


class _Track:
    """One speaker's audio not yet written, ending at global sample `end`: int16 chunks, and gaps as counts
    of silent samples (a media clock may jump an hour ahead: its silence is only made when written)."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray | int] = []
        self.end = 0

    def add(self, start: int, samples: np.ndarray) -> None:
        if start > self.end + 2:  # a gap (discarded or missing audio): silence
            self.chunks.append(start - self.end)
            self.end = start
        elif start < self.end - 2:  # audio for time already held or written
            samples = samples[self.end - start:]
        if len(samples):
            self.chunks.append(samples)
            self.end += len(samples)

    def take(self, base: int, n: int) -> np.ndarray:
        """The n samples from `base` (the oldest held), zero-padded where none arrived."""
        out, filled = np.zeros(n, np.int16), 0
        while self.chunks and filled < n:
            chunk = self.chunks.pop(0)
            size = chunk if isinstance(chunk, int) else len(chunk)
            used = min(size, n - filled)
            if not isinstance(chunk, int):
                out[filled:filled + used] = chunk[:used]
            if used < size:
                self.chunks.insert(0, size - used if isinstance(chunk, int) else chunk[used:])
            filled += used
        self.end = max(self.end, base + n)
        return out


@dataclass(frozen=True)
class RecordingPolicy:
    hold_s: float = 22.0
    margin_s: float = 0.3
    flush_s: float = 2.0
    max_held_s: float = 120.0
    """A channel silent this far behind the other is written as silence (held audio stays bounded)."""


class CallRecording:
    """Fed by the call session: `audio` per frame taken for transcription, `words` per final, `close` at the end.

    `on_change(status, duration, spans)` persists the recording's row (run off the event loop)."""

    def __init__(self, call_id: str, path: Path, key: bytes, redactor: Redactor, policy: RecordingPolicy,
                 on_change: Callable[[str, float, list[dict]], None]) -> None:
        self.call_id, self.path, self._key, self.redactor, self.policy = call_id, path, key, redactor, policy
        self._on_change = on_change
        self._tracks = {speaker: _Track() for speaker in CHANNELS}
        self._written = 0
        self.spans: list[Span] = []
        self._recent: list[tuple[str, Word]] = []
        """The words of the finals of the last JOIN_S seconds, both speakers, in time order."""
        self._writer: SealedWriter | None = None
        self._encoder: sf.SoundFile | None = None
        self._sink = _Sink()
        self._task: asyncio.Task | None = None
        self._saved: tuple[int, int] | None = None
        self.failed = False

    async def audio(self, frame: AudioFrame) -> None:
        """Hold a frame; start writing what is settled; wait for the writer when too much is held."""
        if self.failed:
            return
        pcm = (np.clip(frame.samples, -1.0, 1.0) * 32767).astype(np.int16)
        self._tracks[frame.speaker].add(round(frame.t * SAMPLE_RATE), pcm)
        idle = self._task is None or self._task.done()
        if idle and self._upto() - self._written >= self.policy.flush_s * SAMPLE_RATE:
            self._task = asyncio.create_task(self._flush(final=False))
        held = max(t.end for t in self._tracks.values()) - self._written
        if held > 2 * self.policy.max_held_s * SAMPLE_RATE and self._task is not None:
            await asyncio.shield(self._task)

    def words(self, speaker: Speaker, words: Sequence[Word]) -> None:
        """A final's words: the spans to silence, read with the finals just before it (JOIN_S)."""
        if not words:
            return
        recent = [(who, w) for who, w in self._recent if w.end > words[0].start - JOIN_S]
        self._recent = sorted([*recent, *((speaker.value, w) for w in words)], key=lambda item: item[1].start)
        for span in redacted_spans(self._recent, self.redactor, self.policy.margin_s):
            if any(s.start <= span.start and span.end <= s.end for s in self.spans):
                continue
            if span.start * SAMPLE_RATE < self._written:
                log.error("recording.redaction_late", call_id=self.call_id, kind=span.kind,
                          seconds_written=round(self._written / SAMPLE_RATE - span.start, 2))
            self.spans.append(span)

    async def close(self) -> None:
        """Write everything held (every final is in) and seal the file as complete."""
        if self._task is not None:
            await self._task
        if not self.failed:
            await self._flush(final=True)
        if self._writer is not None and not self.failed:
            await self._run(self._finish)

    def _upto(self, final: bool = False) -> int:
        ends = [t.end for t in self._tracks.values()]
        if final:
            return max(ends)
        hold = int(self.policy.hold_s * SAMPLE_RATE)
        upto = min(ends) - hold
        if max(ends) - self._written > self.policy.max_held_s * SAMPLE_RATE:
            upto = max(upto, max(ends) - hold)  # one channel sends nothing: do not hold the other for ever
        return upto

    async def _flush(self, final: bool) -> None:
        while not self.failed and (n := self._upto(final) - self._written) >= (1 if final else SAMPLE_RATE // 10):
            n, base = min(n, MAX_BLOCK_S * SAMPLE_RATE), self._written
            settled = [self._tracks[s].end - int(self.policy.hold_s * SAMPLE_RATE) for s in CHANNELS]
            block = np.stack([self._tracks[s].take(base, n) for s in CHANNELS], axis=1)
            self._silence(block, base)
            if not final:
                self._drop_unsettled(block, base, settled)
            self._written += n
            await self._run(partial(self._write, block))
            if not final and self._upto() - self._written < self.policy.flush_s * SAMPLE_RATE:
                break

    def _drop_unsettled(self, block: np.ndarray, base: int, settled: list[int]) -> None:
        """A channel far behind the other (written anyway, to bound memory): its audio whose finals may not be
        in yet (from its `settled` sample on) is dropped as silence, never written unredacted."""
        for column, (speaker, limit) in enumerate(zip(CHANNELS, settled)):
            cut = max(0, limit - base)
            if cut < len(block) and block[cut:, column].any():
                log.warning("recording.channel_lagging", call_id=self.call_id, speaker=speaker.value,
                            dropped_s=round((len(block) - cut) / SAMPLE_RATE, 2))
                block[cut:, column] = 0

    def _silence(self, block: np.ndarray, base: int) -> None:
        for span in self.spans:
            a = max(0, int(span.start * SAMPLE_RATE) - base)
            b = min(len(block), int(np.ceil(span.end * SAMPLE_RATE)) - base)
            if a < b:
                block[a:b] = 0

    async def _run(self, work: Callable[[], None]) -> None:
        try:
            await asyncio.to_thread(work)
        except Exception:  # a full disk or a database fault stops the recording, never the call
            log.exception("recording.failed", call_id=self.call_id)
            self.failed = True
            await asyncio.to_thread(self._save, "failed")

    def _save(self, status: str) -> None:
        """Persist the row; a database fault is logged and the next save tries again (the audio goes on)."""
        try:
            self._on_change(status, self._written / SAMPLE_RATE, [asdict(s) for s in self.spans])
        except Exception:
            log.exception("recording.save_failed", call_id=self.call_id, status=status)
            self._saved = None

    def _write(self, block: np.ndarray) -> None:
        if self._writer is None:
            self._writer = SealedWriter(self.path, self._key, self.call_id)
            self._encoder = sf.SoundFile(self._sink, "w", samplerate=SAMPLE_RATE, channels=len(CHANNELS),
                                         format="OGG", subtype="VORBIS", compression_level=VORBIS_LEVEL)
            log.info("recording.started", call_id=self.call_id)
        assert self._encoder is not None
        self._encoder.write(block)
        if data := self._sink.take():
            self._writer.append(data)
        if self._saved != (len(self.spans), self._written // (30 * SAMPLE_RATE)):  # new spans, or every 30 s
            self._saved = (len(self.spans), self._written // (30 * SAMPLE_RATE))
            self._save("recording")

    def _finish(self) -> None:
        assert self._encoder is not None and self._writer is not None
        self._encoder.close()
        if data := self._sink.take():
            self._writer.append(data)
        self._writer.close()
        self._save("complete")
        log.info("recording.complete", call_id=self.call_id, seconds=round(self._written / SAMPLE_RATE, 1),
                 redacted=len(self.spans))
