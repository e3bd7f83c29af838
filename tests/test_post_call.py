"""Post-call transcripts end to end on the real service (assist/post_call.py): real English and Spanish
speech (../shared/data) streamed in, recorded, transcribed again from the sealed recording after the call,
the call rescored from it with reviewers' overrides kept; a call not recorded, a damaged recording and a
service restart each end in a clear state."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jiwer
import pytest
from sqlalchemy import update

from assist.democall import fleurs_call
from assist.settings import Settings
from assist.storage.tables import PostCallTranscript, Recording
from tests.service import RunningService
from tests.test_end_to_end import finals, normalise, stream_call
from tests.test_languages import spanish_call


def english_call() -> tuple[Any, Any, dict[str, str]]:
    """Every FLEURS English recording in ../shared/data, agent and debtor in turn."""
    agent, debtor, turns = fleurs_call("en", turns=10)
    return agent, debtor, {s: " ".join(text for who, text in turns if who == s) for s in ("agent", "debtor")}


def settings_for(tmp: Path, **extra: Any) -> Settings:
    return Settings(cache_dir=tmp / "cache", database_url=f"sqlite:///{tmp / 'r.db'}", post_call_poll_s=0.5, **extra)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    """The service on its defaults (tiny.en for English, multilingual base for Spanish, beam 5 post-call)."""
    with RunningService(settings_for(tmp_path_factory.mktemp("post_call"))) as running:
        yield running


def detail(service: RunningService, call_id: str) -> dict[str, Any]:
    resp = httpx.get(f"{service.http}/api/calls/{call_id}", timeout=30)
    resp.raise_for_status()
    return resp.json()


def settled(service: RunningService, call_id: str, after: str | None = None, timeout: float = 600) -> dict[str, Any]:
    """The call's detail once its post-call transcript is done, failed or skipped (finished after `after`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = detail(service, call_id)
        post = body["post_call"]
        if post and post["status"] in ("done", "failed", "skipped") and post["finished_at"] != after:
            return body
        time.sleep(0.5)
    raise AssertionError(f"post-call transcript of {call_id} not finished: {body['post_call']}")


def requeue(service: RunningService, call_id: str) -> None:
    """Queue the call's post-call work again and wake the runner (as a service start finds pending work)."""
    with service.app.state.db.session() as s:
        s.execute(update(PostCallTranscript).where(PostCallTranscript.call_id == call_id).values(status="pending"))
    service.loop.call_soon_threadsafe(service.app.state.post_call.wake)


def wer(ref: str, utterances: list[dict[str, Any]], speaker: str) -> float:
    return jiwer.wer(normalise(ref), normalise(" ".join(u["text"] for u in utterances if u["speaker"] == speaker)))


@pytest.mark.parametrize("language, protocol", [("en", "plain"), ("es", "twilio")])
def test_a_call_gets_a_post_call_transcript_no_worse_than_live_and_is_rescored_from_it(service, language, protocol):
    agent, debtor, refs = english_call() if language == "en" else spanish_call()
    call_id = f"post-call-{language}"
    events = stream_call(service, protocol, agent, debtor, call_id, metadata={"language": language})
    body = settled(service, call_id)
    post = body["post_call"]
    assert post["status"] == "done" and post["progress"] == 1.0 and body["transcript"] == "post_call"
    assert post["settings"]["beam"] == 5 and post["settings"]["segmentation"] == "silero-vad"
    assert post["settings"]["models"] == {language: "tiny.en" if language == "en" else "base"}
    live = {s: jiwer.wer(normalise(refs[s]), normalise(finals(events, s))) for s in ("agent", "debtor")}
    after = {s: wer(refs[s], post["utterances"], s) for s in ("agent", "debtor")}
    print(f"{language} WER live {live} post-call {after}")
    both = normalise(refs["agent"] + " " + refs["debtor"])
    live_all = jiwer.wer(both, normalise(finals(events, "agent") + " " + finals(events, "debtor")))
    post_all = jiwer.wer(both, normalise(" ".join(u["text"] for s in ("agent", "debtor")
                                                  for u in post["utterances"] if u["speaker"] == s)))
    assert post_all <= live_all
    for u in post["utterances"]:  # word timings on the call clock, inside the utterance, in the call's language
        assert u["language"] == language and u["words"]
        assert u["start"] <= u["words"][0]["start"] + 0.5 and u["words"][-1]["end"] == u["end"]
        assert all(a["start"] <= b["start"] for a, b in zip(u["words"], u["words"][1:]))
    assert len(body["utterances"]) == len([e for e in events if e["type"] == "transcript.final"])  # live kept


def test_a_reviewers_override_survives_rescoring_from_the_post_call_transcript(service):
    body = settled(service, "post-call-en")
    item = next(i for i in body["scorecard"]["items"] if i["result"] in ("pass", "fail"))
    flipped = "fail" if item["result"] == "pass" else "pass"
    resp = httpx.post(f"{service.http}/api/calls/post-call-en/scorecard/items/{item['id']}/override",
                      json={"result": flipped, "reviewer": "qa-lead", "comment": "heard it on the recording"})
    assert resp.status_code == 200
    requeue(service, "post-call-en")
    again = settled(service, "post-call-en", after=body["post_call"]["finished_at"])
    assert again["transcript"] == "post_call"
    assert next(i for i in again["scorecard"]["items"] if i["id"] == item["id"])["result"] == flipped
    assert [o["item_id"] for o in again["overrides"]] == [item["id"]]


def test_a_call_not_recorded_is_skipped_and_a_damaged_recording_fails_with_its_reason(service):
    agent, debtor, _ = fleurs_call("en", turns=2)
    stream_call(service, "plain", agent, debtor, "not-recorded", metadata={"language": "en", "record": "false"})
    body = settled(service, "not-recorded")
    assert (body["post_call"]["status"], body["post_call"]["reason"], body["transcript"]) == (
        "skipped", "no_recording", "live")
    stream_call(service, "plain", agent, debtor, "damaged", metadata={"language": "en"})
    first = settled(service, "damaged")
    with service.app.state.db.session() as s:
        path = Path(s.get_one(Recording, "damaged").path)
    data = bytearray(path.read_bytes())
    data[40:200] = bytes(160)  # the first sealed record no longer decrypts
    path.write_bytes(bytes(data))
    requeue(service, "damaged")
    body = settled(service, "damaged", after=first["post_call"]["finished_at"])
    assert (body["post_call"]["status"], body["post_call"]["reason"]) == ("failed", "recording_unreadable")
    assert body["transcript"] == "live" and body["scorecard"] is not None


def test_work_left_running_by_a_stopped_service_is_done_after_its_restart(tmp_path):
    settings = settings_for(tmp_path, post_call_transcripts=False)
    agent, debtor, _ = fleurs_call("en", turns=2)
    with RunningService(settings) as first:
        stream_call(first, "plain", agent, debtor, "restart", metadata={"language": "en"})
        with first.app.state.db.session() as s:  # as a crash mid-transcription leaves it
            s.add(PostCallTranscript(call_id="restart", status="running", node_id=first.app.state.recorder.node_id,
                                     attempts=1, queued_at=datetime.now(UTC)))
    with RunningService(settings.model_copy(update={"post_call_transcripts": True})) as second:
        body = settled(second, "restart")
    assert body["post_call"]["status"] == "done" and body["post_call"]["attempts"] == 2
    assert body["transcript"] == "post_call" and body["post_call"]["utterances"]

