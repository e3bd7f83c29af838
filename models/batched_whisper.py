"""Whisper decoding driven through CTranslate2: utterances from many calls in one encode + generate + align pass.

It follows `faster_whisper.WhisperModel.generate_segments` window by window (same prompts, temperature
fallback, no-speech skip, timestamp splitting and word alignment) with the options the live worker uses
(no previous-text conditioning, word timestamps, no VAD), so batched and one-by-one decoding agree.

Unlike faster-whisper it does not pad every window to 30 s: the encoder sees the audio plus a margin,
at least `WindowPolicy.floor_s`, and the decoder gets a token budget per second of audio. A trimmed
decode that loops (compression ratio), runs out of budget or scores too low is decoded again on the
full 30 s window with the usual temperature fallback, so the guards of the full window still apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import (
    Segment,
    Word,
    get_compression_ratio,
    get_suppressed_tokens,
)
from faster_whisper.utils import get_end

TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
BEST_OF = 5
MAX_INITIAL_TIMESTAMP_S = 1.0
TAIL_S = 2.0
"""A window after the first holding less audio than this is the utterance's tail (the VAD's trailing pad):
when its decode fails the guards it yields nothing rather than a full-window retry, whose temperature
sampling invents closings ("¿Qué es eso?") and costs seconds."""
MAX_TOKENS_PER_S = 12.0
"""More text tokens per second of a segment than anyone speaks (fast speech is about 6)."""
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


@dataclass(frozen=True, slots=True)
class WindowPolicy:
    """How much audio the encoder sees and how many tokens the decoder may write for it.

    `trim` off: every window is padded to 30 s, as faster-whisper does. On: the audio plus `margin_s`,
    never under `floor_s` (shorter windows make small models loop on short sentences), rounded up to a
    multiple of `step_s` (so an utterance gets the same window alone or in a batch), and at most
    `tokens_per_s` tokens per second of audio plus `extra_tokens`.
    """

    trim: bool = True
    floor_s: float = 10.0
    margin_s: float = 1.0
    step_s: float = 5.0
    tokens_per_s: float = 8.0
    extra_tokens: int = 10

    def frames(self, content_frames: int, frames_per_second: int, full: int) -> int:
        """Encoder input frames for a window holding `content_frames` of audio."""
        if not self.trim:
            return full
        step = round(self.step_s * frames_per_second)
        wanted = max(round(self.floor_s * frames_per_second), content_frames + round(self.margin_s * frames_per_second))
        return min(full, -(-wanted // step) * step)

    def token_budget(self, content_frames: int, frames_per_second: int) -> int:
        return round(self.tokens_per_s * content_frames / frames_per_second) + self.extra_tokens


@dataclass(frozen=True, slots=True)
class DecodeRequest:
    """One utterance: 16 kHz float32 audio, its language (None: detect), an initial prompt, a beam size.

    `detect`: report the language detected on the first window even though `language` is given.
    `retry`: a trimmed window that fails the guards is decoded again on the full window; without it
    (live interims, superseded within a second) that window yields no words instead.
    `resample_uncertain`: a decode that only scores low (avg log-probability under the threshold, no loop) is
    sampled again at rising temperature, as faster-whisper does. Live finals turn it off: on a short unclear
    fragment the six temperatures of a full window cost seconds (a 1 s Spanish tail: 3 s of base decoding) and
    end on a guess no more likely than the greedy one. A decode that loops is always sampled again.
    """

    audio: np.ndarray
    language: str | None = None
    prompt: str = ""
    beam_size: int = 1
    detect: bool = False
    retry: bool = True
    resample_uncertain: bool = True


@dataclass(frozen=True, slots=True)
class Decoded:
    """One input's segments (times in seconds from its first sample) and its language."""

    segments: list[Segment]
    language: str
    language_probability: float
    full_windows: int = 0
    """Windows decoded again on the full 30 s window because the trimmed decode failed its guards."""
    detected: tuple[str, float] | None = None
    """The language detected on the first window (and its probability), when asked for or needed."""


@dataclass(eq=False)
class _State:
    features: np.ndarray
    language: str | None
    language_probability: float
    prompt_tokens: list[int]
    beam_size: int
    detect: bool = False
    retry: bool = True
    resample_uncertain: bool = True
    detected: tuple[str, float] | None = None
    seek: int = 0
    last_speech: float = 0.0
    full_window: bool = False
    full_windows: int = 0
    segments: list[Segment] = field(default_factory=list)

    @property
    def content_frames(self) -> int:
        return self.features.shape[-1] - 1


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: ctranslate2.models.WhisperGenerationResult
    avg_logprob: float
    temperature: float
    compression_ratio: float
    exhausted: bool = False
    """The decoder stopped at its token budget."""


@dataclass(slots=True)
class _OneAlignment:
    """Stands in for the model in `WhisperModel.add_word_timestamps` with an alignment computed in a batch."""

    frames_per_second: int
    alignment: list[dict]

    def find_alignment(self, *args, **kwargs) -> list[list[dict]]:
        return [self.alignment]


class BatchedWhisper:
    """Decodes a list of `DecodeRequest`s as batches of windows on one WhisperModel.

    `languages`: the languages detection may choose from (None: any the model knows).
    """

    def __init__(self, model: WhisperModel, window: WindowPolicy = WindowPolicy(),
                 languages: frozenset[str] | None = None) -> None:
        self.model = model
        self.window = window
        self.languages = languages
        self.multilingual = model.model.is_multilingual
        self.frames_per_window = model.feature_extractor.nb_max_frames
        self.time_per_frame = model.feature_extractor.time_per_frame
        self.frames_per_second = model.frames_per_second

    def transcribe(self, requests: Sequence[DecodeRequest]) -> list[Decoded]:
        states = []
        for r in requests:
            language = r.language if self.multilingual else "en"
            prompt_tokens = self._encode_text(" " + r.prompt.strip()) if r.prompt.strip() else []
            states.append(_State(self._features(r.audio), language, 1.0, prompt_tokens, r.beam_size,
                                 detect=r.detect and self.multilingual, retry=r.retry,
                                 resample_uncertain=r.resample_uncertain))
        while active := [s for s in states if s.seek < s.content_frames]:
            self._window(active)
        return [Decoded(s.segments, s.language or "en", s.language_probability, s.full_windows, s.detected)
                for s in states]

    def detect(self, audios: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """The most probable allowed language of each audio's first window, without decoding it."""
        features = [self._features(a) for a in audios]
        sizes = [min(self.frames_per_window, f.shape[-1] - 1) for f in features]
        found: list[tuple[str, float]] = []
        for f, n in zip(features, sizes):
            frames = self.window.frames(n, self.frames_per_second, self.frames_per_window)
            encoded = self.model.encode(pad_or_trim(f[:, :n], frames)[None])
            found += [self._pick_language(ranked) for ranked in self.model.model.detect_language(encoded)]
        return found

    def _features(self, audio: np.ndarray) -> np.ndarray:
        """Whisper's log-mel features with the mel projection in float64, so the same float32 values whatever the
        number of BLAS threads (the service runs one, models/threads.py; in float32, one thread and two differ in
        the last bit of 0.5 % of the values, which is enough to change some of tiny.en's words)."""
        extractor = self.model.feature_extractor
        if extractor.mel_filters.dtype != np.float64:
            extractor.mel_filters = extractor.mel_filters.astype(np.float64)
        return extractor(audio).astype(np.float32)

    def _encode_text(self, text: str) -> list[int]:
        return self.model.hf_tokenizer.encode(text, add_special_tokens=False).ids

    def _window(self, states: list[_State]) -> None:
        """The next window of every state: one encoder pass per window length."""
        sizes = [min(self.frames_per_window, s.content_frames - s.seek) for s in states]
        by_frames: dict[int, list[int]] = {}
        for i, (s, n) in enumerate(zip(states, sizes)):
            frames = self.frames_per_window if s.full_window else self.window.frames(
                n, self.frames_per_second, self.frames_per_window)
            by_frames.setdefault(frames, []).append(i)
        for frames, members in by_frames.items():
            self._pass([states[i] for i in members], [sizes[i] for i in members], frames)

    def _pass(self, states: list[_State], sizes: list[int], frames: int) -> None:
        """Encode the windows at `frames`, then decode per (language, prompt length, beam) group."""
        mel = np.stack([pad_or_trim(s.features[:, s.seek : s.seek + n], frames) for s, n in zip(states, sizes)])
        encoded = self.model.encode(mel)
        unknown = [i for i, s in enumerate(states) if s.language is None or (s.detect and s.detected is None)]
        if unknown:
            for i, ranked in zip(unknown, self.model.model.detect_language(_take(encoded, unknown, len(states)))):
                states[i].detected = detected = self._pick_language(ranked)
                if states[i].language is None:
                    states[i].language, states[i].language_probability = detected
        groups: dict[tuple[str | None, int, int], list[int]] = {}
        for i, s in enumerate(states):
            # one start sequence per alignment call, and <|startoftranscript|> at one index per generate call
            groups.setdefault((s.language, len(s.prompt_tokens), s.beam_size), []).append(i)
        for (language, _, beam_size), members in groups.items():
            self._decode_group([states[i] for i in members], [sizes[i] for i in members],
                               _take(encoded, members, len(states)), language, beam_size,
                               trimmed=frames < self.frames_per_window)

    def _pick_language(self, ranked: list[tuple[str, float]]) -> tuple[str, float]:
        """The most probable allowed language, its probability renormalised over the allowed ones."""
        allowed = [(token[2:-2], p) for token, p in ranked if self.languages is None or token[2:-2] in self.languages]
        if not allowed:
            token, probability = ranked[0]
            return token[2:-2], probability
        total = sum(p for _, p in allowed)
        language, probability = max(allowed, key=lambda lp: lp[1])
        return language, probability / total if total > 0 else 0.0

    def _decode_group(self, group: list[_State], sizes: list[int], encoded: ctranslate2.StorageView,
                      language: str | None, beam_size: int, trimmed: bool) -> None:
        tokenizer = Tokenizer(self.model.hf_tokenizer, self.multilingual, task="transcribe", language=language)
        prompts = [self.model.get_prompt(tokenizer, s.prompt_tokens, without_timestamps=False) for s in group]
        if trimmed:
            budget = max(self.window.token_budget(n, self.frames_per_second) for n in sizes)
            outcomes = self._generate(encoded, prompts, tokenizer, beam_size, [s.resample_uncertain for s in group],
                                      (0.0,), budget)
        else:
            outcomes = self._generate(encoded, prompts, tokenizer, beam_size, [s.resample_uncertain for s in group])

        splits: list[tuple[list[dict], int, bool] | None] = []
        for s, n, outcome in zip(group, sizes, outcomes):
            if outcome.result.no_speech_prob > NO_SPEECH_THRESHOLD and outcome.avg_logprob <= LOG_PROB_THRESHOLD:
                splits.append(None)  # silence: skip to the next window
                continue
            tokens = outcome.result.sequences_ids[0]
            if trimmed and not any(t < tokenizer.eot for t in tokens):
                splits.append(None)  # nothing said (typically the pause after the last sentence): no fallback
                continue
            split = self.model._split_segments_by_timestamps(
                tokenizer=tokenizer, tokens=tokens, time_offset=s.seek * self.time_per_frame,
                segment_size=n, segment_duration=n * self.time_per_frame, seek=s.seek,
            )
            if trimmed and (outcome.exhausted or _needs_fallback(outcome, s.resample_uncertain)
                            or _crammed(split[0], tokenizer)):
                if s.retry and not (s.seek > 0 and n < TAIL_S * self.frames_per_second):
                    s.full_window, s.full_windows = True, s.full_windows + 1  # decode this window again, untrimmed
                splits.append(None)
                continue
            splits.append(split)
        text_tokens = [
            [t for seg in split[0] for t in seg["tokens"] if t < tokenizer.eot] if split else [] for split in splits
        ]
        alignments = (self.model.find_alignment(tokenizer, text_tokens, encoded, sizes)
                      if any(text_tokens) else [[] for _ in group])
        for s, n, outcome, split, alignment in zip(group, sizes, outcomes, splits, alignments):
            if split is None:
                if not (trimmed and s.full_window):
                    s.seek += n
                continue
            s.prompt_tokens = []  # the initial prompt only conditions the first decoded window
            self._finish_window(s, n, outcome, split, alignment, tokenizer)
            s.full_window = False

    def _finish_window(self, s: _State, n: int, outcome: _Outcome, split: tuple[list[dict], int, bool],
                       alignment: list[dict], tokenizer: Tokenizer) -> None:
        segments, seek, single_timestamp_ending = split
        time_offset = s.seek * self.time_per_frame
        WhisperModel.add_word_timestamps(
            _OneAlignment(self.model.frames_per_second, alignment),
            [segments], tokenizer, None, n, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS, s.last_speech,
        )
        last_word_end = get_end(segments)
        if not single_timestamp_ending and last_word_end is not None and last_word_end > time_offset:
            seek = round(last_word_end * self.model.frames_per_second)
        if last_word_end is not None:
            s.last_speech = last_word_end
        s.seek = seek if seek > s.seek else s.seek + n
        for seg in segments:
            text = tokenizer.decode(seg["tokens"])
            if seg["start"] == seg["end"] or not text.strip():
                continue
            s.segments.append(Segment(
                id=len(s.segments) + 1, seek=round(time_offset * self.model.frames_per_second),
                start=seg["start"], end=seg["end"], text=text, tokens=seg["tokens"],
                avg_logprob=outcome.avg_logprob, compression_ratio=outcome.compression_ratio,
                no_speech_prob=outcome.result.no_speech_prob, temperature=outcome.temperature,
                words=[Word(**w) for w in seg["words"]],
            ))

    def _generate(self, encoded: ctranslate2.StorageView, prompts: list[list[int]], tokenizer: Tokenizer,
                  beam_size: int, resample_uncertain: Sequence[bool], temperatures: Sequence[float] = TEMPERATURES,
                  max_tokens: int | None = None) -> list[_Outcome]:
        """Greedy/beam decode of the whole batch; items that look wrong are sampled again at rising temperature
        (those with `resample_uncertain` false only when they loop).

        CTranslate2's Whisper writes at most `max_length // 2` tokens, so a budget of N tokens is 2N.
        """
        limit = self.model.max_length if max_tokens is None else min(self.model.max_length, 2 * max_tokens)
        limit = max(limit, max(len(p) for p in prompts) + 2)
        tried: list[list[_Outcome]] = [[] for _ in prompts]
        chosen: list[_Outcome | None] = [None] * len(prompts)
        pending = list(range(len(prompts)))
        suppress = list(get_suppressed_tokens(tokenizer, [-1]))
        for temperature in temperatures:
            features = _take(encoded, pending, len(prompts))
            kwargs: dict[str, float]
            if temperature == 0:
                kwargs = {"beam_size": beam_size, "patience": 1}
            else:
                kwargs = {"beam_size": 1, "num_hypotheses": BEST_OF, "sampling_topk": 0,
                          "sampling_temperature": temperature}
            results = self.model.model.generate(
                features, [prompts[i] for i in pending], length_penalty=1, repetition_penalty=1,
                no_repeat_ngram_size=0, max_length=limit, return_scores=True,
                return_no_speech_prob=True, suppress_blank=True, suppress_tokens=suppress,
                max_initial_timestamp_index=round(MAX_INITIAL_TIMESTAMP_S / self.model.time_precision), **kwargs,
            )
            retry = []
            for i, result in zip(pending, results):
                tokens = result.sequences_ids[0]
                avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
                outcome = _Outcome(result, avg_logprob, temperature,
                                   get_compression_ratio(tokenizer.decode(tokens).strip()),
                                   exhausted=max_tokens is not None and len(tokens) >= limit // 2)
                tried[i].append(outcome)
                if _needs_fallback(outcome, resample_uncertain[i]):
                    retry.append(i)
                else:
                    chosen[i] = outcome
            pending = retry
            if not pending:
                break
        for i in pending:  # every temperature failed: the most probable readable decode
            readable = [o for o in tried[i] if o.compression_ratio <= COMPRESSION_RATIO_THRESHOLD]
            best = max(readable or tried[i], key=lambda o: o.avg_logprob)
            chosen[i] = _Outcome(best.result, best.avg_logprob, temperatures[-1], best.compression_ratio,
                                 best.exhausted)
        return [o for o in chosen if o is not None]


def _take(encoded: ctranslate2.StorageView, rows: list[int], total: int) -> ctranslate2.StorageView:
    """Rows of a batch of encoder outputs (through host memory; the model moves them back to its device)."""
    if rows == list(range(total)):
        return encoded
    host = np.asarray(encoded.to_device(ctranslate2.Device.cpu))
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(host[rows]))


def _crammed(segments: list[dict], tokenizer: Tokenizer) -> bool:
    """A segment holding far more text than its time can (a repeated sentence squeezed into a blip)."""
    for seg in segments:
        text = [t for t in seg["tokens"] if t < tokenizer.eot]
        if len(text) > MAX_TOKENS_PER_S * max(seg["end"] - seg["start"], 0.0) + 4:
            return True
    return False


def _needs_fallback(o: _Outcome, uncertain_too: bool = True) -> bool:
    """The decode loops (compression ratio) or, with `uncertain_too`, scores under the log-probability threshold."""
    if o.result.no_speech_prob > NO_SPEECH_THRESHOLD and o.avg_logprob < LOG_PROB_THRESHOLD:
        return False  # silence
    return o.compression_ratio > COMPRESSION_RATIO_THRESHOLD or (uncertain_too and o.avg_logprob < LOG_PROB_THRESHOLD)

