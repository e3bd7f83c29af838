"""The database schema as typed SQLAlchemy 2 models (changed only through a migration)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class Call(Base):
    """One call; status is active until call.ended (ended) or recovery after a crash (interrupted).
    `node_id` names the front end that holds (or last held) the call."""

    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    protocol: Mapped[str] = mapped_column(String(32), default="")
    agent_id: Mapped[str | None] = mapped_column(String(128), index=True)
    language: Mapped[str | None] = mapped_column(String(8))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    duration: Mapped[float | None] = mapped_column(Float)
    end_reason: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(32), index=True)
    compliance_fail: Mapped[bool | None]
    contact: Mapped[str | None] = mapped_column(String(32))
    primary_category: Mapped[str | None] = mapped_column(String(64))
    node_id: Mapped[str | None] = mapped_column(String(128), index=True)


class Node(Base):
    """A front end holding calls, alive while `lease_until` is ahead (its heartbeat moves it on)."""

    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    lease_until: Mapped[datetime]


class CallTag(Base):
    """Category codes of a call (its contact type and every outcome), for filtering."""

    __tablename__ = "call_tags"

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Utterance(Base):
    """A final transcript segment, redacted as configured."""

    __tablename__ = "utterances"
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int]
    speaker: Mapped[str] = mapped_column(String(16))
    utterance: Mapped[int]
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    words: Mapped[list[Any]] = mapped_column(default=list)
    language: Mapped[str] = mapped_column(String(8))


class Event(Base):
    """Every event of a call as its JSON payload (redacted), in the call's `seq` order."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("call_id", "seq"), Index("ix_events_call_type", "call_id", "type"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(32))
    t: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]


class QaResult(Base):
    """The call's current scorecard and category (scorecard updated by reviewers' overrides)."""

    __tablename__ = "qa_results"

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    scorecard: Mapped[dict[str, Any]]
    category: Mapped[dict[str, Any]]
    computed_at: Mapped[datetime] = mapped_column(index=True)  # index: insights find calls scored since (0006)


class Override(Base):
    """Audit trail of a reviewer changing one scorecard item: who, when, old -> new, score before/after."""

    __tablename__ = "qa_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(32))
    reviewer: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    old_result: Mapped[str] = mapped_column(String(8))
    new_result: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str] = mapped_column(Text)
    old_score: Mapped[float | None] = mapped_column(Float)
    new_score: Mapped[float | None] = mapped_column(Float)


class Recording(Base):
    """A call's sealed recording (assist/recording.py): its file, state and the spans silenced in it
    (start, end, kind, speaker; never the value). status: recording, complete, failed, purged."""

    __tablename__ = "recordings"

    call_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant: Mapped[str | None] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    redactions: Mapped[list[Any]] = mapped_column(default=list)
    purged_at: Mapped[datetime | None]


class RecordingPlay(Base):
    """Audit trail: who fetched a recording from its start, and when."""

    __tablename__ = "recording_plays"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(128), index=True)
    who: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]


class WebhookDelivery(Base):
    """The outbox: one outcome webhook for a tenant, kept until delivered (`id` is X-Recobra-Event-Id;
    `body` the exact JSON sent). `attempts` also serves as the claim version between front ends."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    call_id: Mapped[str | None] = mapped_column(String(128), index=True)
    event: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    queued_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(256))


class SummaryEdit(Base):
    """Audit trail of an agent or reviewer rewriting a call's after-call summary: who, when, the lines
    before and after (the latest edit is the summary in force)."""

    __tablename__ = "summary_edits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(128), index=True)
    editor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    before: Mapped[list[Any]]
    after: Mapped[list[Any]]


class CallInsight(Base):
    """One scored call's facts for the insights views (assist/insights_facts.py keeps them in step with
    qa_results): who, when (day and ISO week for grouping), outcome, stress, exposure, humanisation."""

    __tablename__ = "call_insights"
    __table_args__ = (Index("ix_call_insights_tenant_started", "tenant", "started_at"),
                      Index("ix_call_insights_tenant_agent_started", "tenant", "agent_id", "started_at"))

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default="")
    agent_id: Mapped[str] = mapped_column(String(128), default="")
    team: Mapped[str] = mapped_column(String(64), default="")
    campaign: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str] = mapped_column(String(32), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    started_at: Mapped[datetime]
    day: Mapped[str] = mapped_column(String(10))
    week: Mapped[str] = mapped_column(String(8))
    score: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(32), default="")
    primary_category: Mapped[str] = mapped_column(String(64), default="")
    promise: Mapped[int] = mapped_column(Integer, default=0)
    promised_amount: Mapped[float] = mapped_column(Float, default=0.0)
    stress_peak: Mapped[float | None] = mapped_column(Float)
    hangup: Mapped[int] = mapped_column(Integer, default=0)
    hard: Mapped[int] = mapped_column(Integer, default=0)
    abusive: Mapped[int] = mapped_column(Integer, default=0)
    humanisation: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[datetime]


class CallHumanisation(Base):
    """A call's humanisation components with their evidence (apart from call_insights: its scans stay narrow)."""

    __tablename__ = "call_humanisation"

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    parts: Mapped[dict[str, Any]]


class CallFinding(Base):
    """A failed scorecard item (kind "item") or a standing compliance warning (kind "rule") of a call,
    with its strongest quote, for breach heatmaps and coaching cards."""

    __tablename__ = "call_findings"
    __table_args__ = (Index("ix_call_findings_tenant_started", "tenant", "started_at"),
                      Index("ix_call_findings_tenant_agent_kind", "tenant", "agent_id", "kind", "code"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    tenant: Mapped[str] = mapped_column(String(64), default="")
    agent_id: Mapped[str] = mapped_column(String(128), default="")
    started_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(8))
    code: Mapped[str] = mapped_column(String(64))
    severity: Mapped[int] = mapped_column(Integer, default=0)
    quote: Mapped[str] = mapped_column(Text, default="")
    speaker: Mapped[str] = mapped_column(String(16), default="")
    start: Mapped[float | None] = mapped_column(Float)


class CoachingNote(Base):
    """A supervisor's coaching note for an agent: who wrote it and when (the coaching card's trend starts
    at the latest)."""

    __tablename__ = "coaching_notes"
    __table_args__ = (Index("ix_coaching_notes_tenant_agent_at", "tenant", "agent_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), default="")
    agent_id: Mapped[str] = mapped_column(String(128))
    author: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)


class PostCallTranscript(Base):
    """A call's transcript made again from its recording after the call (assist/post_call.py), kept beside
    the live finals (utterances). status: pending, running, done, failed or skipped (`reason` says why: a
    code the QA page words); `utterances` are redacted like the live finals, with word timings; `settings`
    the models, beam and segmentation used. `node_id`: the front end running it (a lost one's is redone)."""

    __tablename__ = "post_call_transcripts"

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    node_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    utterances: Mapped[list[Any]] = mapped_column(default=list)
    queued_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
