"""A call's recording for QA: decrypted on the fly, served with HTTP range requests, every playback audited.

Only the qa and supervisor roles of the call's tenant reach it (AuthMiddleware; agents are refused on /api).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from assist.api_qa import SessionDep
from assist.auth import principal_of
from assist.recording_store import Recordings
from assist.sealed import SealedError, SealedReader
from assist.storage.tables import Call, Recording

router = APIRouter(prefix="/api", tags=["recordings"])
log = structlog.get_logger(__name__)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
MEDIA_TYPE = "audio/ogg"
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such call, or it has no recording"}, 410: {"description": "Purged (retention)"},
          416: {"description": "Range not satisfiable"}, 500: {"description": "The file cannot be decrypted or read"}}


class RedactedSpan(BaseModel):
    start: float
    end: float
    kind: str
    speaker: str


class RecordingInfo(BaseModel):
    call_id: str
    status: str
    duration: float
    redactions: list[RedactedSpan]
    url: str


def _row(call_id: str, s: SessionDep, request: Request) -> tuple[Call, Recording]:
    call = s.get(Call, call_id)
    if call is None or not principal_of(request).sees((call.meta or {}).get("tenant")):
        raise HTTPException(404, f"no call {call_id!r}")
    row = s.get(Recording, call_id)
    if row is None:
        raise HTTPException(404, f"call {call_id!r} has no recording")
    if row.status == "purged":
        raise HTTPException(410, f"the recording of call {call_id!r} was deleted (retention)")
    return call, row


@router.get("/calls/{call_id}/recording/info", response_model=RecordingInfo, responses=ERRORS)
def recording_info(call_id: str, s: SessionDep, request: Request) -> RecordingInfo:
    """The recording's state, length and the spans silenced in it (kind and time, never the value).

    status: recording (the call is live), complete, interrupted (the call was cut off by a crash: the file
    holds the audio written until then), failed (a fault stopped it; what was written is kept)."""
    call, row = _row(call_id, s, request)
    status = "interrupted" if row.status == "recording" and call.status != "active" else row.status
    return RecordingInfo(call_id=call_id, status=status, duration=row.duration,
                         redactions=row.redactions, url=f"/api/calls/{call_id}/recording")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of a single-range `Range` header; None for the whole file; ValueError if unsatisfiable."""
    if not header:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or not (m[1] or m[2]):
        return None  # not a byte range we serve: the whole file (RFC 9110 lets a server ignore Range)
    if not m[1]:
        return max(0, size - int(m[2])), size
    start = int(m[1])
    end = min(size, int(m[2]) + 1) if m[2] else size
    if start >= size or end <= start:
        raise ValueError(header)
    return start, end


AUDIO = {"content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}


@router.get("/calls/{call_id}/recording", response_class=StreamingResponse,
            responses={200: {"description": "The whole file", **AUDIO},
                       206: {"description": "The requested byte range (Content-Range)", **AUDIO}, **ERRORS})
async def recording(call_id: str, s: SessionDep, request: Request) -> StreamingResponse:
    """The redacted recording (stereo Ogg Vorbis: left agent, right debtor); `Range: bytes=a-b` for seeking."""
    _, row = _row(call_id, s, request)
    recordings: Recordings = request.app.state.recordings
    try:
        reader = await asyncio.to_thread(recordings.reader, row)
    except SealedError as error:
        log.error("recording.unreadable", call_id=call_id, reason=str(error))
        raise HTTPException(500, str(error)) from None
    try:
        span = parse_range(request.headers.get("range"), reader.size)
    except ValueError:
        raise HTTPException(416, "range not satisfiable", headers={"Content-Range": f"bytes */{reader.size}"}) from None
    start, end = span or (0, reader.size)
    if start == 0:
        principal = principal_of(request)
        who = principal.subject or f"{principal.role}@{principal.tenant or 'development'}"
        await asyncio.to_thread(recordings.audit, call_id, who)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start), "Cache-Control": "no-store"}
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{reader.size}"
    return StreamingResponse(_chunks(reader, start, end, call_id), status_code=206 if span else 200,
                             media_type=MEDIA_TYPE, headers=headers)


def _chunks(reader: SealedReader, start: int, end: int, call_id: str) -> Iterator[bytes]:
    try:
        yield from reader.read(start, end)
    except SealedError as error:  # a record damaged after the first: the response is cut short, and logged
        log.error("recording.unreadable", call_id=call_id, reason=str(error))
        raise
