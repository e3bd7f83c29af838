"""Recordings in an S3-compatible bucket (AWS S3, MinIO, Ceph...): setting recording_storage=s3.

A live call is written to the local spool (recordings_dir) exactly as with local storage: sealed records,
fsync'd as they come. When the call ends, the sealed file is uploaded as one object (multipart when large)
with an index object beside it (the length of each record), and the spool file is removed. A recording is
read by range: one GET for the index and header, then GETs with `Range` for the records a request touches
(`BLOCK` bytes at least, so a player reading on costs one GET per block). Every record is still checked by
AES-GCM: a damaged or replaced object, or an index that does not fit it, is a SealedError.

What a crash loses: nothing already written to the spool (audio held in memory is lost as with local
storage); at start-up `Recordings.upload_spooled` uploads what the calls cut off left there. A node whose
disk is lost with it loses the recordings of the calls it held live (their transcripts are in the database).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select

from assist.sealed import HEADER_SIZE, Records, SealedError, SealedReader, check_header, layout, records_of
from assist.settings import Settings
from assist.storage.db import Database
from assist.storage.tables import Call, Recording

log = structlog.get_logger(__name__)
SCHEME = "s3://"
BLOCK = 1 << 20
"""Least bytes one ranged GET fetches while reading records."""


def is_object(location: str) -> bool:
    """Whether a recording's stored location (Recording.path) is an object, not a local file."""
    return location.startswith(SCHEME)


class RecordingBucket:
    """The bucket recordings are uploaded to, read from by range and deleted from."""

    def __init__(self, settings: Settings) -> None:
        if not settings.recordings.recording_s3_bucket:
            raise ValueError("recording_storage=s3 needs recording_s3_bucket")
        try:
            import boto3  # type: ignore[import-untyped]
        except ImportError:
            raise ValueError("recording_storage=s3 needs boto3: pip install 'recobra[s3]'") from None
        s3 = settings.recordings
        secret = s3.recording_s3_secret_access_key
        self.bucket, self.prefix = s3.recording_s3_bucket, s3.recording_s3_prefix
        self.client: Any = boto3.client(
            "s3", endpoint_url=s3.recording_s3_endpoint_url, region_name=s3.recording_s3_region,
            aws_access_key_id=s3.recording_s3_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None)

    def location(self, spooled: Path, root: Path) -> str:
        """The object a spooled file becomes: its path under the spool, under the prefix."""
        return f"{SCHEME}{self.bucket}/{self.prefix}{spooled.relative_to(root).as_posix()}"

    def _key(self, location: str) -> str:
        bucket, _, key = location.removeprefix(SCHEME).partition("/")
        if bucket != self.bucket:
            raise SealedError(f"the recording is in bucket {bucket!r}, not the configured one")
        return key

    def upload(self, spooled: Path, location: str) -> None:
        """The sealed file and its index uploaded (the index last: an object without one is not whole yet)."""
        _, lengths = layout(spooled)
        _, _, whole = records_of(lengths)
        if spooled.stat().st_size > whole:  # a record cut short by a crash: unreadable, not uploaded
            os.truncate(spooled, whole)
        key = self._key(location)
        self.client.upload_file(str(spooled), self.bucket, key)
        index = json.dumps({"lengths": lengths}).encode()
        self.client.put_object(Bucket=self.bucket, Key=key + ".index", Body=index)

    def delete(self, location: str) -> None:
        """The object and its index deleted (deleting a missing one is no error: a purge may run again)."""
        key = self._key(location)
        reply = self.client.delete_objects(Bucket=self.bucket,
                                           Delete={"Objects": [{"Key": key}, {"Key": key + ".index"}]})
        if errors := reply.get("Errors"):
            raise RuntimeError(f"the bucket did not delete {location}: {errors[0].get('Code')}")

    def reader(self, location: str, key: bytes, name: str) -> SealedReader:
        """A reader of the object by range (SealedError when it is missing, damaged or cannot be decrypted)."""
        return ObjectReader(self, self._key(location), key, name)

    def get(self, key: str, start: int | None = None, end: int | None = None) -> tuple[bytes, int]:
        """Bytes [start, end) of an object (all of it without a range) and the object's size."""
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        ranged = {"Range": f"bytes={start}-{end - 1}"} if start is not None and end is not None else {}
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=key, **ranged)
            data = reply["Body"].read()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise SealedError("the recording's object is missing from the bucket") from None
            raise SealedError(f"the bucket refused the read ({code})") from None
        except BotoCoreError as error:
            raise SealedError(f"the bucket cannot be reached ({type(error).__name__})") from None
        total = reply.get("ContentRange", "").rpartition("/")[2]
        return data, int(total) if total.isdigit() else len(data)


class ObjectReader(SealedReader):
    """A SealedReader over an object: its records found from the index object, read with ranged GETs."""

    def __init__(self, bucket: RecordingBucket, object_key: str, key: bytes, name: str) -> None:
        self.bucket, self.object_key = bucket, object_key
        self._block, self._block_at = b"", -1
        super().__init__(Path(object_key), key, name)

    def _layout(self) -> tuple[bytes, Records, int]:
        raw, _ = self.bucket.get(self.object_key + ".index")
        try:
            lengths = [int(n) for n in json.loads(raw)["lengths"]]
        except (ValueError, KeyError, TypeError):
            raise SealedError("the recording's index is damaged") from None
        header, size = self.bucket.get(self.object_key, 0, HEADER_SIZE)
        check_header(header)
        records, plain, end = records_of(lengths)
        if end != size:
            raise SealedError("the recording's index does not match its object (damaged or replaced)")
        return header, records, plain

    def _read_at(self, offset: int, length: int) -> bytes:
        at = offset - self._block_at
        if self._block_at < 0 or at < 0 or at + length > len(self._block):
            self._block, _ = self.bucket.get(self.object_key, offset, offset + max(length, BLOCK))
            self._block_at, at = offset, 0
        return self._block[at:at + length]


class RecordingFiles:
    """Where recordings are kept: sealed files under `root` (the spool, with a bucket), and the bucket when
    recording_storage=s3. A stored location (Recording.path) is a file path or an s3:// URL."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.recordings_root
        self.bucket = RecordingBucket(settings) if settings.recordings.recording_storage == "s3" else None

    def reader(self, location: str, key: bytes, name: str) -> SealedReader:
        if is_object(location):
            if self.bucket is None:
                raise SealedError("the recording is in a bucket and recording_storage is not s3")
            return self.bucket.reader(location, key, name)
        return SealedReader(Path(location), key, name)

    def delete(self, location: str) -> None:
        if not is_object(location):
            Path(location).unlink(missing_ok=True)
        elif self.bucket is not None:
            self.bucket.delete(location)
        else:
            raise ValueError(f"cannot delete {location}: recording_storage is not s3")

    def keep(self, spooled: Path, call_id: str) -> str | None:
        """With a bucket: the spooled file uploaded and removed; its new location, or None (local storage,
        no file here, or the upload failed: logged, the file stays for the next try)."""
        if self.bucket is None or not spooled.exists():
            return None
        location = self.bucket.location(spooled, self.root)
        try:
            self.bucket.upload(spooled, location)
        except Exception:  # noqa: BLE001 - the spool keeps it; `Recordings.upload_spooled` tries again
            log.exception("recording.upload_failed", call_id=call_id)
            return None
        spooled.unlink()
        log.info("recording.uploaded", call_id=call_id, location=location)
        return location


def set_location(db: Database, call_id: str, location: str) -> None:
    """Note where a recording now lives (after its upload)."""
    with db.session() as s:
        row = s.get(Recording, call_id)
        if row is not None:
            row.path = location


def upload_spooled(db: Database, files: RecordingFiles) -> list[str]:
    """With a bucket: upload the spooled files of calls no longer live (cut off by a crash, or an upload that
    failed), on this node (another node's spool is not here); run once interrupted calls are marked.
    Returns their call ids."""
    if files.bucket is None:
        return []
    with db.session() as s:
        rows = s.execute(select(Recording.call_id, Recording.path).join(Call, Call.id == Recording.call_id)
                         .where(Recording.status != "purged", ~Recording.path.startswith(SCHEME),
                                Call.status != "active")).all()
    uploaded = []
    for call_id, path in rows:
        if location := files.keep(Path(path), call_id):
            set_location(db, call_id, location)
            uploaded.append(call_id)
    return uploaded
