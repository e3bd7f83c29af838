"""Recordings kept in an S3-compatible bucket (recording_storage=s3), against a real S3 server over HTTP (moto's
server on a loopback port): spooled while the call lasts, uploaded when it ends, read by range, purged;
what a crash leaves in the spool uploaded at start-up; a damaged object is a clear error."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

from assist.democall import fleurs_call  # noqa: E402
from assist.recording_store import Recordings  # noqa: E402
from assist.sealed import SealedError  # noqa: E402
from assist.settings import Settings  # noqa: E402
from assist.storage.db import Database  # noqa: E402
from assist.storage.tables import Call, Recording  # noqa: E402
from streaming.types import SAMPLE_RATE, Word  # noqa: E402
from tests.service import RunningService  # noqa: E402
from tests.tenancy import METRICS_TOKEN, TOKEN_SECRET  # noqa: E402
from tests.test_recording import _stream, rms  # noqa: E402
from tests.test_recording_service import call_as_acme, get, sealed_tenants, spoken, until_stored  # noqa: E402

BUCKET = "recobra-recordings"


@pytest.fixture(scope="module")
def s3():
    """A real S3 API on a loopback port, with an empty bucket; yields a client of it."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                          aws_access_key_id="recobra", aws_secret_access_key="recobra-secret")
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()


def s3_settings(client, tmp: Path, **more) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp / 'recobra.db'}", recordings_dir=tmp / "spool",
                    tenants=sealed_tenants(), token_secret=TOKEN_SECRET,
                    recording_storage="s3", recording_s3_bucket=BUCKET, recording_s3_prefix=f"{tmp.name}/",
                    recording_s3_endpoint_url=client.meta.endpoint_url, recording_s3_region="us-east-1",
                    recording_s3_access_key_id="recobra", recording_s3_secret_access_key="recobra-secret", **more)


@pytest.fixture
def s3_store(s3, tmp_path: Path) -> Iterator[tuple[Settings, Database, Recordings]]:
    """This test's own bucket prefix, spool and database: (settings, database, recordings store)."""
    settings = s3_settings(s3, tmp_path)
    db = Database(settings.storage.database_url)
    yield settings, db, Recordings(settings, db)
    db.close()


def stored_row(db: Database, call_id: str) -> Recording:
    """The call's recording row, detached from the database session."""
    with db.session() as s:
        row = s.get_one(Recording, call_id)
        s.expunge(row)
    return row


def objects(client, prefix: str) -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def test_a_call_is_uploaded_when_it_ends_and_read_by_range(s3, s3_store, tmp_path: Path) -> None:
    settings, db, store = s3_store
    recording = store.open("s3-call", {"tenant": "acme"})
    agent, debtor, _ = fleurs_call("es", 3)
    t0 = np.flatnonzero(np.abs(debtor) > 0.05)[0] / SAMPLE_RATE + 0.5
    said = "vence el cuatro del veintisiete".split()  # an expiry date "said" inside the debtor's speech
    words = [Word(w, t0 + i * 0.4, t0 + i * 0.4 + 0.3) for i, w in enumerate(said)]
    asyncio.run(_stream(recording, agent, debtor, words, words_at=t0 + 3.0))
    assert not list(settings.recordings_root.rglob("*.rec")), "the spool file is removed once uploaded"
    row = stored_row(db, "s3-call")
    assert row.status == "complete" and row.path.startswith(f"s3://{BUCKET}/{tmp_path.name}/acme/")
    stored = objects(s3, tmp_path.name)
    assert sorted(k.rsplit(".", 1)[1] for k in stored) == ["index", "rec"]
    assert all(b"OggS" not in body for body in stored.values()), "sealed in the bucket too"
    reader = store.reader(row)
    full = b"".join(reader.read())
    assert reader.complete and len(full) == reader.size
    for start, end in [(0, 100), (5000, 90_000), (reader.size - 77, reader.size), (123_456, 123_457)]:
        assert b"".join(store.reader(row).read(start, end)) == full[start:end]
    audio, rate = sf.read(io.BytesIO(full))
    (span,) = row.redactions
    a, b = int(span["start"] * SAMPLE_RATE), int(span["end"] * SAMPLE_RATE)
    assert span["kind"] == "expiry" and rms(debtor[a:b]) > 0.02 and (rms(audio[a:b]) < 0.002).all()
    assert store.purge(datetime.now(UTC) + timedelta(days=91)) == ["s3-call"]
    assert objects(s3, tmp_path.name) == {}


def test_a_crash_leaves_the_spool_which_is_uploaded_at_start_up(s3_store) -> None:
    settings, db, store = s3_store
    recording = store.open("cut-call", {"tenant": "acme"})
    agent, debtor, _ = fleurs_call("en", 4)  # 42 s: what is older than the 22 s held is written
    asyncio.run(_stream(recording, agent, debtor, [], 0.0, close=False))  # the node dies mid-call
    with recording.path.open("ab") as f:
        f.write(b"\0\0\1")  # and a record was cut short
    with db.session() as s:
        s.add(Call(id="cut-call", started_at=datetime.now(UTC), status="active", meta={"tenant": "acme"}))
    assert store.upload_spooled() == [], "a live call's spool stays"
    with db.session() as s:
        s.get_one(Call, "cut-call").status = "interrupted"
    assert Recordings(settings, db).upload_spooled() == ["cut-call"] and not recording.path.exists()
    reader = store.reader(stored_row(db, "cut-call"))
    audio, _ = sf.read(io.BytesIO(b"".join(reader.read())))
    assert not reader.complete and len(audio) > len(agent) - 25 * SAMPLE_RATE


def test_a_damaged_replaced_or_missing_object_is_a_clear_error(s3, s3_store) -> None:
    _, db, store = s3_store
    recording = store.open("bad-call", {"tenant": "globex"})
    agent, debtor, _ = fleurs_call("en", 2)
    asyncio.run(_stream(recording, agent, debtor, [], 0.0))
    row = stored_row(db, "bad-call")
    key = row.path.split("/", 3)[3]
    original = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 1
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(damaged))
    with pytest.raises(SealedError, match="cannot be decrypted"):
        b"".join(store.reader(row).read())
    s3.put_object(Bucket=BUCKET, Key=key, Body=original[:-100])
    with pytest.raises(SealedError, match="index does not match"):
        store.reader(row)
    s3.delete_object(Bucket=BUCKET, Key=key)
    with pytest.raises(SealedError, match="missing"):
        store.reader(row)
    s3.put_object(Bucket=BUCKET, Key=key, Body=original)
    with pytest.raises(SealedError, match="cannot be decrypted"):  # another tenant's key
        store.reader(Recording(call_id="bad-call", tenant="acme", path=row.path, status="complete"))


TURNS = [
    ("agent", "Which card would you like to use today?"),
    ("debtor", "The card number is four one one one, one one one one, one one one one, one one one one."),
]


@pytest.fixture(scope="module")
def service_call(s3, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s3service")
    settings = s3_settings(s3, tmp, asr_model="tiny.en", language="en", cache_dir=tmp / "cache",
                           metrics_token=METRICS_TOKEN)
    agent, debtor = spoken(TURNS)
    with RunningService(settings) as service:
        call_as_acme(service, "s3-1", agent, debtor)
        until_stored(service, "s3-1")
        yield service, settings, tmp


def test_the_service_serves_a_recording_from_the_bucket(s3, service_call) -> None:
    service, settings, tmp = service_call
    info = get(service, "/api/calls/s3-1/recording/info").json()
    assert info["status"] == "complete" and any(s["kind"] == "card" for s in info["redactions"])
    assert not list(settings.recordings_root.rglob("*.rec")) and len(objects(s3, tmp.name)) == 2
    full = get(service, "/api/calls/s3-1/recording").content
    audio, rate = sf.read(io.BytesIO(full))
    assert rate == SAMPLE_RATE and audio.shape[1] == 2
    part = get(service, "/api/calls/s3-1/recording", Range="bytes=1000-2999")
    assert part.status_code == 206 and part.content == full[1000:3000]
    assert part.headers["content-range"] == f"bytes 1000-2999/{len(full)}"
    assert get(service, "/api/calls/s3-1/recording", Range="bytes=-50").content == full[-50:]
    assert get(service, "/api/calls/s3-1/recording", tenant="globex").status_code == 404
    (key,) = [k for k in objects(s3, tmp.name) if k.endswith(".rec")]
    original = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=original[:60] + bytes([original[60] ^ 1]) + original[61:])
    damaged = get(service, "/api/calls/s3-1/recording")
    assert damaged.status_code == 500 and "cannot be decrypted" in damaged.json()["detail"]
    s3.put_object(Bucket=BUCKET, Key=key, Body=original)
    assert service.app.state.recordings.purge(datetime.now(UTC) + timedelta(days=91)) == ["s3-1"]
    assert get(service, "/api/calls/s3-1/recording").status_code == 410
    assert objects(s3, tmp.name) == {}
