"""The shared ASR worker: batched vs one-by-one decoding on real audio, queue policy, crash recovery."""

from __future__ import annotations

import asyncio
import difflib
import time
from pathlib import Path

import jiwer
import numpy as np
import pytest

from assist.democall import DATA, fleurs_call, load_mono
from assist.events import TranscriptFinal
from assist.settings import Settings
from models.asr import AsrRequest, AsrResult, AsrWorker
from models.batching import Pending, Priority, RequestQueue
from tests.service import RunningService
from tests.test_end_to_end import normalise, stream_call

FLEURS = DATA / "fleurs-cuttledoc"


def clip(language: str, i: int) -> np.ndarray:
    return load_mono(FLEURS / f"fleurs-{language}-{i:03d}.ogg")


def reference(language: str, i: int) -> str:
    return (FLEURS / f"fleurs-{language}-{i:03d}.txt").read_text().strip()


def text(result: AsrResult) -> str:
    return " ".join(w.text for w in result.words)


async def transcribe_all(worker: AsrWorker, requests: list[AsrRequest]) -> list[AsrResult]:
    return await asyncio.gather(*(worker.transcribe(r) for r in requests))


def compare(batched: list[AsrResult], single: list[AsrResult]) -> tuple[float, float]:
    """WER of the batched words against the one-by-one words, and the largest timestamp gap of matched words."""
    wer = jiwer.wer([normalise(text(s)) or "-" for s in single], [normalise(text(b)) or "-" for b in batched])
    gap = 0.0
    for b, s in zip(batched, single):
        matcher = difflib.SequenceMatcher(a=[w.text for w in s.words], b=[w.text for w in b.words], autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                ws, wb = s.words[block.a + k], b.words[block.b + k]
                gap = max(gap, abs(ws.start - wb.start), abs(ws.end - wb.end))
    return wer, gap


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("asr-cache")


@pytest.fixture(scope="module")
def tiny_workers(cache):
    workers = {mode: AsrWorker("tiny.en", cache, "cpu", batching=mode, batch_window_ms=200) for mode in ("on", "off")}
    yield workers
    for worker in workers.values():
        worker.close()


def test_batched_and_one_by_one_decoding_agree_on_real_english(tiny_workers):
    audios = [clip("en", i) for i in range(6)]
    requests = [AsrRequest(a, 10.0 * i, "en", final=True, call_id=f"call-{i}", channel="agent")
                for i, a in enumerate(audios)]
    # interim-like cuts that end mid-word, where Whisper has to decode the unfinished tail again
    requests += [AsrRequest(audios[0][: int(4.3 * 16000)], 0.0, "en", call_id="cut-0", channel="agent"),
                 AsrRequest(audios[3][: int(6.1 * 16000)], 0.0, "en", call_id="cut-3", channel="agent")]
    batched = asyncio.run(transcribe_all(tiny_workers["on"], requests))
    single = asyncio.run(transcribe_all(tiny_workers["off"], requests))
    wer, gap = compare(batched, single)
    print(f"batched vs one-by-one: WER {wer:.3f}, largest word timestamp gap {gap:.3f} s")
    assert wer <= 0.03 and gap <= 0.1
    accuracy = jiwer.wer([normalise(reference("en", i)) for i in range(6)], [normalise(text(b)) for b in batched[:6]])
    assert accuracy <= 0.25
    assert all(b.words[0].start >= r.t0 for b, r in zip(batched, requests))
    assert batched[1].words[0].start >= 10.0  # call-clock times: t0 is added


def test_batched_base_detects_each_language_in_a_mixed_batch(cache):
    """Multilingual base, language left to detection: English and Spanish utterances share one batch."""
    plan = [("en", 1), ("es", 0), ("en", 2), ("es", 1)]
    requests = [AsrRequest(clip(lang, i), 0.0, None, final=True, call_id=f"{lang}{i}", channel="debtor")
                for lang, i in plan]
    on = AsrWorker("base", cache, "cpu", batching="on", batch_window_ms=200)
    off = AsrWorker("base", cache, "cpu", batching="off")
    try:
        batched = asyncio.run(transcribe_all(on, requests))
        single = asyncio.run(transcribe_all(off, requests))
    finally:
        on.close()
        off.close()
    assert [b.language for b in batched] == [lang for lang, _ in plan] == [s.language for s in single]
    wer, gap = compare(batched, single)
    print(f"base mixed EN/ES batched vs one-by-one: WER {wer:.3f}, gap {gap:.3f} s")
    assert wer <= 0.03 and gap <= 0.1


def test_queue_serves_finals_then_interims_then_post_call_and_replaces_stale_interims():
    queue = RequestQueue()
    told: list[str] = []

    def pending(name: str, priority: Priority, key=None) -> Pending:
        return Pending(name, priority, told.append, call_id=name.split(":")[0], key=key)

    assert queue.put(pending("a:post", Priority.POST_CALL)) is None
    first_interim = pending("a:interim-1", Priority.INTERIM, ("a", "agent"))
    assert queue.put(first_interim) is None
    assert queue.put(pending("b:interim", Priority.INTERIM, ("b", "agent"))) is None
    assert queue.put(pending("a:interim-2", Priority.INTERIM, ("a", "agent"))) is first_interim
    assert queue.put(pending("c:final", Priority.FINAL, ("c", "debtor"))) is None
    assert queue.depth() == {"final": 1, "interim": 2, "post_call": 1}
    assert set(queue.lag()) == {"a", "b", "c"}
    order = [[p.item for p in queue.take(n, 0.0)] for n in (2, 10, 10)]
    assert order == [["c:final", "b:interim"], ["a:interim-2"], ["a:post"]]  # post-call work is never batched
    # with live requests
    # a final for a channel makes its queued interim stale too
    stale = pending("d:interim", Priority.INTERIM, ("d", "agent"))
    queue.put(stale)
    assert queue.put(pending("d:final", Priority.FINAL, ("d", "agent"))) is stale
    assert [p.item for p in queue.close()] == ["d:final"]
    assert queue.take(1, 0.0) == []


def test_newer_interim_supersedes_queued_one_and_lag_is_measured(tiny_workers):
    worker = tiny_workers["on"]  # 200 ms batching window: both interims are queued together
    audio = clip("en", 4)

    async def run():
        old = asyncio.create_task(worker.transcribe(AsrRequest(audio[:32000], 0.0, "en", call_id="x", channel="agent")))
        new = asyncio.create_task(worker.transcribe(AsrRequest(audio[:64000], 0.0, "en", call_id="x", channel="agent")))
        final = asyncio.create_task(worker.transcribe(AsrRequest(audio, 0.0, "en", final=True, call_id="y",
                                                                  channel="debtor")))
        await asyncio.sleep(0)
        waiting = worker.lag()
        results = await asyncio.gather(old, new, final)
        return waiting, results, worker.lag()

    waiting, (old, new, final), after = asyncio.run(run())
    assert {"x", "y"} <= set(waiting)
    assert old.superseded and not old.words
    assert not new.superseded and new.words and final.words
    assert new.queue_wait_s >= 0 and final.decode_s > 0
    assert after["x"] == 0.0 and after["y"] == 0.0


@pytest.mark.parametrize("mode", ["on", "off"])
def test_unloaded_model_is_rebuilt_and_the_request_retried(cache, mode):
    worker = AsrWorker("tiny.en", cache, "cpu", batching=mode)
    try:
        first = asyncio.run(worker.transcribe(AsrRequest(clip("en", 5), 0.0, "en", final=True)))
        broken = worker.models["tiny.en"].model
        while broken.model_is_loaded:  # a real CTranslate2 failure: every later call raises RuntimeError
            broken.unload_model()  # a no-op until CTranslate2 has wound down the last job
            time.sleep(0.001)
        second = asyncio.run(worker.transcribe(AsrRequest(clip("en", 6), 0.0, "en", final=True)))
        rebuilt = worker.models["tiny.en"].model
    finally:
        worker.close()
    assert first.words and second.words
    assert worker.generation == 1 and rebuilt is not broken and worker.models == {}  # close() frees it
    assert jiwer.wer(normalise(reference("en", 6)), normalise(text(second))) <= 0.3


def test_call_keeps_getting_finals_after_the_model_breaks_mid_call(tmp_path):
    settings = Settings(asr_model="tiny.en", device="cpu", cache_dir=tmp_path / "cache",
                        database_url=f"sqlite:///{tmp_path / 'crash.db'}")
    agent, debtor, refs = fleurs_call("en", turns=4)
    broke_at: list[int] = []
    with RunningService(settings) as service:
        worker: AsrWorker = service.app.state.worker

        def break_model(event) -> None:
            """On the call's first final: unload the model as soon as no decode is running (the loop is held)."""
            if broke_at or not isinstance(event, TranscriptFinal) or event.call_id != "crash":
                return
            while worker.models["tiny.en"].model.model_is_loaded:
                worker.models["tiny.en"].model.unload_model()  # a no-op while a decode runs
                time.sleep(0.001)
            broke_at.append(event.seq)

        service.app.state.hub.add_listener(break_model)
        events = stream_call(service, "plain", agent, debtor, "crash")
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert broke_at and worker.generation >= 1
    assert [e for e in finals if e["seq"] > broke_at[0]], "no final after the model broke"
    hypothesis = " ".join(e["text"] for e in sorted(finals, key=lambda e: e["start"]))
    assert jiwer.wer(normalise(" ".join(r for _, r in refs)), normalise(hypothesis)) <= 0.25
    assert not [e for e in events if e["type"] == "call.error"]


def test_bad_audio_is_refused_with_a_clear_error(tiny_workers):
    worker = tiny_workers["on"]
    for audio in (np.zeros(0, np.float32), np.zeros(1600, np.int16), np.zeros((2, 1600), np.float32),
                  np.full(1600, np.nan, np.float32)):
        with pytest.raises(ValueError, match="AsrRequest.audio"):
            asyncio.run(worker.transcribe(AsrRequest(audio, 0.0, "en")))


def test_post_call_work_never_holds_more_than_one_worker():
    """Two post-call requests wait: one is handed out; while it runs the other waits and a live final
    arriving later is handed out at once; once the first is done the second follows."""
    queue = RequestQueue()
    queue.put(Pending("post-1", Priority.POST_CALL, print))
    queue.put(Pending("post-2", Priority.POST_CALL, print))
    first = queue.take(4, 0.0)
    assert [p.item for p in first] == ["post-1"]
    queue.put(Pending("final", Priority.FINAL, print, "a", ("a", "agent")))
    assert [p.item for p in queue.take(4, 0.0)] == ["final"]
    assert queue.depth()["post_call"] == 1
    queue.done(first)
    assert [p.item for p in queue.take(4, 0.0)] == ["post-2"]
