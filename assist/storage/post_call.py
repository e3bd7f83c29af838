"""The post-call transcript queue in the database (table post_call_transcripts), shared by every front end.

A call that ended gets a row (pending) the first time a runner looks; a runner claims one pending row at
a time (running, stamped with its node), and finishes it (done, failed or skipped, with a reason code).
Rows left running by this node before a restart, or by a node whose lease ran out, go back to pending:
no queued work is lost when a service stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assist.qa.calldata import Turn
from assist.storage.tables import Call, Node, PostCallTranscript

PENDING, RUNNING, DONE, FAILED, SKIPPED = "pending", "running", "done", "failed", "skipped"
MAX_ATTEMPTS = 3
"""A call whose transcription was cut off (a crash mid-run) this many times is failed ("attempts")."""


def queue_ended(s: Session, limit: int = 50) -> int:
    """Give ended calls without a row a pending one (oldest first); returns how many were queued."""
    missing = s.scalars(
        select(Call.id).where(Call.status != "active", ~exists().where(PostCallTranscript.call_id == Call.id))
        .order_by(Call.ended_at, Call.id).limit(limit)).all()
    queued = 0
    for call_id in missing:
        try:
            with s.begin_nested():  # another front end may queue the same call at the same moment
                s.add(PostCallTranscript(call_id=call_id, status=PENDING, queued_at=datetime.now(UTC)))
            queued += 1
        except IntegrityError:
            continue
    return queued


def reset_stale(s: Session, node_id: str) -> list[str]:
    """Running rows of this node (it restarted) or of a node whose lease is gone go back to pending (failed,
    reason "attempts", after MAX_ATTEMPTS starts); returns their call ids."""
    now = datetime.now(UTC)
    alive = select(Node.id).where(Node.lease_until > now, Node.id != node_id)
    stale = s.scalars(select(PostCallTranscript.call_id).where(
        PostCallTranscript.status == RUNNING,
        or_(PostCallTranscript.node_id.is_(None), PostCallTranscript.node_id.not_in(alive)))).all()
    if stale:
        running = (PostCallTranscript.call_id.in_(stale), PostCallTranscript.status == RUNNING)
        s.execute(update(PostCallTranscript).where(*running, PostCallTranscript.attempts >= MAX_ATTEMPTS)
                  .values(status=FAILED, reason="attempts", finished_at=now))
        s.execute(update(PostCallTranscript).where(*running).values(status=PENDING, node_id=None, progress=0.0))
    return list(stale)


def claim(s: Session, node_id: str) -> str | None:
    """Take the oldest pending call for `node_id` (running); None when nothing waits or another node won."""
    for call_id in s.scalars(select(PostCallTranscript.call_id).where(PostCallTranscript.status == PENDING)
                             .order_by(PostCallTranscript.queued_at, PostCallTranscript.call_id).limit(5)):
        taken = s.execute(
            update(PostCallTranscript).where(PostCallTranscript.call_id == call_id,
                                             PostCallTranscript.status == PENDING)
            .values(status=RUNNING, node_id=node_id, attempts=PostCallTranscript.attempts + 1, progress=0.0,
                    started_at=datetime.now(UTC), reason=None, detail=None)
            .execution_options(synchronize_session=False))
        if cast(CursorResult, taken).rowcount == 1:
            return call_id
    return None


def requeue(s: Session, call_id: str, node_id: str) -> None:
    """Put a call this node was transcribing back to pending (the service is stopping)."""
    s.execute(update(PostCallTranscript).where(PostCallTranscript.call_id == call_id,
                                               PostCallTranscript.node_id == node_id,
                                               PostCallTranscript.status == RUNNING)
              .values(status=PENDING, node_id=None, progress=0.0))


def set_progress(s: Session, call_id: str, node_id: str, progress: float) -> None:
    s.execute(update(PostCallTranscript).where(PostCallTranscript.call_id == call_id,
                                               PostCallTranscript.node_id == node_id,
                                               PostCallTranscript.status == RUNNING)
              .values(progress=round(progress, 3)))


def finish(s: Session, call_id: str, status: str, reason: str | None = None, detail: str | None = None,
           utterances: Sequence[dict[str, Any]] = (), settings: dict[str, Any] | None = None) -> PostCallTranscript:
    """Store the outcome: done with its utterances, or failed / skipped with a reason code (and detail)."""
    row = s.get_one(PostCallTranscript, call_id)
    row.status, row.reason, row.detail = status, reason, (detail or "")[:1000] or None
    row.utterances, row.finished_at = list(utterances), datetime.now(UTC)
    if status == DONE:
        row.progress = 1.0
    if settings is not None:
        row.settings = settings
    return row


def turns(s: Session, call_id: str) -> tuple[Turn, ...] | None:
    """The done post-call transcript's turns for scoring, in time order; None when there is none."""
    row = s.get(PostCallTranscript, call_id)
    if row is None or row.status != DONE:
        return None
    utts = sorted(row.utterances, key=lambda u: (u["start"], u["speaker"]))
    return tuple(Turn(u["speaker"], u["start"], u["end"], u["text"], u["language"]) for u in utts)
