"""Batched Whisper decoding: utterances from many calls in one CTranslate2 encode + generate + align pass.

It follows `faster_whisper.WhisperModel.generate_segments` window by window (same prompts, temperature
fallback, no-speech skip, timestamp splitting and word alignment) with the options the live worker uses
(no previous-text conditioning, word timestamps, no VAD), so batched and one-by-one decoding agree.
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
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


@dataclass(frozen=True, slots=True)
class Decoded:
    """One input's segments (times in seconds from its first sample) and its language."""

    segments: list[Segment]
    language: str
    language_probability: float


@dataclass(eq=False)
class _State:
    features: np.ndarray
    language: str | None
    language_probability: float
    prompt_tokens: list[int]
    seek: int = 0
    last_speech: float = 0.0
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


@dataclass(slots=True)
class _OneAlignment:
    """Stands in for the model in `WhisperModel.add_word_timestamps` with an alignment computed in a batch."""

    frames_per_second: int
    alignment: list[dict]

    def find_alignment(self, *args, **kwargs) -> list[list[dict]]:
        return [self.alignment]


class BatchedWhisper:
    """Decodes a list of (audio, language, prompt) as batches of 30 s windows on one WhisperModel."""

    def __init__(self, model: WhisperModel, beam_size: int = 1) -> None:
        self.model = model
        self.beam_size = beam_size
        self.multilingual = model.model.is_multilingual
        self.frames_per_window = model.feature_extractor.nb_max_frames
        self.time_per_frame = model.feature_extractor.time_per_frame

    def transcribe(self, inputs: Sequence[tuple[np.ndarray, str | None, str]]) -> list[Decoded]:
        """`inputs`: (16 kHz float32 audio, language or None to detect, initial prompt) per utterance."""
        states = []
        for audio, language, prompt in inputs:
            if not self.multilingual:
                language = "en"
            prompt_tokens = self._encode_text(" " + prompt.strip()) if prompt.strip() else []
            states.append(_State(self.model.feature_extractor(audio), language, 1.0, prompt_tokens))
        while active := [s for s in states if s.seek < s.content_frames]:
            self._window(active)
        return [Decoded(s.segments, s.language or "en", s.language_probability) for s in states]

    def _encode_text(self, text: str) -> list[int]:
        return self.model.hf_tokenizer.encode(text, add_special_tokens=False).ids

    def _window(self, states: list[_State]) -> None:
        """Encode the next window of every state at once, then decode per (language, prompt length) group."""
        sizes = [min(self.frames_per_window, s.content_frames - s.seek) for s in states]
        mel = np.stack([pad_or_trim(s.features[:, s.seek : s.seek + n]) for s, n in zip(states, sizes)])
        encoded = self.model.encode(mel)
        unknown = [i for i, s in enumerate(states) if s.language is None]
        if unknown:
            for i, ranked in zip(unknown, self.model.model.detect_language(_take(encoded, unknown, len(states)))):
                token, probability = ranked[0]
                states[i].language, states[i].language_probability = token[2:-2], probability
        groups: dict[tuple[str | None, int], list[int]] = {}
        for i, s in enumerate(states):
            # one start sequence per alignment call, and <|startoftranscript|> at one index per generate call
            groups.setdefault((s.language, len(s.prompt_tokens)), []).append(i)
        for (language, _), members in groups.items():
            self._decode_group([states[i] for i in members], [sizes[i] for i in members],
                               _take(encoded, members, len(states)), language)

    def _decode_group(self, group: list[_State], sizes: list[int], encoded: ctranslate2.StorageView,
                      language: str | None) -> None:
        tokenizer = Tokenizer(self.model.hf_tokenizer, self.multilingual, task="transcribe", language=language)
        prompts = [self.model.get_prompt(tokenizer, s.prompt_tokens, without_timestamps=False) for s in group]
        outcomes = self._generate(encoded, prompts, tokenizer)

        splits: list[tuple[list[dict], int, bool] | None] = []
        for s, n, outcome in zip(group, sizes, outcomes):
            if outcome.result.no_speech_prob > NO_SPEECH_THRESHOLD and outcome.avg_logprob <= LOG_PROB_THRESHOLD:
                splits.append(None)  # silence: skip to the next window
                continue
            s.prompt_tokens = []  # the initial prompt only conditions the first decoded window
            splits.append(self.model._split_segments_by_timestamps(
                tokenizer=tokenizer, tokens=outcome.result.sequences_ids[0], time_offset=s.seek * self.time_per_frame,
                segment_size=n, segment_duration=n * self.time_per_frame, seek=s.seek,
            ))
        text_tokens = [
            [t for seg in split[0] for t in seg["tokens"] if t < tokenizer.eot] if split else [] for split in splits
        ]
        alignments = (self.model.find_alignment(tokenizer, text_tokens, encoded, sizes)
                      if any(text_tokens) else [[] for _ in group])
        for s, n, outcome, split, alignment in zip(group, sizes, outcomes, splits, alignments):
            if split is None:
                s.seek += n
                continue
            self._finish_window(s, n, outcome, split, alignment, tokenizer)

    def _finish_window(self, s: _State, n: int, outcome: _Outcome, split: tuple[list[dict], int, bool],
                       alignment: list[dict], tokenizer: Tokenizer) -> None:
        segments, seek, single_timestamp_ending = split
        time_offset = s.seek * self.time_per_frame
        WhisperModel.add_word_timestamps(
            _OneAlignment(self.model.frames_per_second, alignment),  # type: ignore[arg-type]
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

    def _generate(self, encoded: ctranslate2.StorageView, prompts: list[list[int]],
                  tokenizer: Tokenizer) -> list[_Outcome]:
        """Greedy/beam decode of the whole batch; items that look wrong are sampled again at rising temperature."""
        tried: list[list[_Outcome]] = [[] for _ in prompts]
        chosen: list[_Outcome | None] = [None] * len(prompts)
        pending = list(range(len(prompts)))
        suppress = list(get_suppressed_tokens(tokenizer, [-1]))
        for temperature in TEMPERATURES:
            features = _take(encoded, pending, len(prompts))
            if temperature == 0:
                kwargs = {"beam_size": self.beam_size, "patience": 1}
            else:
                kwargs = {"beam_size": 1, "num_hypotheses": BEST_OF, "sampling_topk": 0,
                          "sampling_temperature": temperature}
            results = self.model.model.generate(
                features, [prompts[i] for i in pending], length_penalty=1, repetition_penalty=1,
                no_repeat_ngram_size=0, max_length=self.model.max_length, return_scores=True,
                return_no_speech_prob=True, suppress_blank=True, suppress_tokens=suppress,
                max_initial_timestamp_index=round(MAX_INITIAL_TIMESTAMP_S / self.model.time_precision), **kwargs,
            )
            retry = []
            for i, result in zip(pending, results):
                tokens = result.sequences_ids[0]
                avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
                outcome = _Outcome(result, avg_logprob, temperature,
                                   get_compression_ratio(tokenizer.decode(tokens).strip()))
                tried[i].append(outcome)
                if _needs_fallback(outcome):
                    retry.append(i)
                else:
                    chosen[i] = outcome
            pending = retry
            if not pending:
                break
        for i in pending:  # every temperature failed: the most probable readable decode
            readable = [o for o in tried[i] if o.compression_ratio <= COMPRESSION_RATIO_THRESHOLD]
            best = max(readable or tried[i], key=lambda o: o.avg_logprob)
            chosen[i] = _Outcome(best.result, best.avg_logprob, TEMPERATURES[-1], best.compression_ratio)
        return [o for o in chosen if o is not None]


def _take(encoded: ctranslate2.StorageView, rows: list[int], total: int) -> ctranslate2.StorageView:
    """Rows of a batch of encoder outputs (through host memory; the model moves them back to its device)."""
    if rows == list(range(total)):
        return encoded
    host = np.asarray(encoded.to_device(ctranslate2.Device.cpu))
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(host[rows]))


def _needs_fallback(o: _Outcome) -> bool:
    if o.result.no_speech_prob > NO_SPEECH_THRESHOLD and o.avg_logprob < LOG_PROB_THRESHOLD:
        return False  # silence
    return o.compression_ratio > COMPRESSION_RATIO_THRESHOLD or o.avg_logprob < LOG_PROB_THRESHOLD

