"""`/conversations`: written conversations (chat, WhatsApp, SMS, e-mail) in the calls' id space.

The integrator opens a conversation, posts each message as it is sent and closes it, with the tenant's
X-API-KEY (or a supervisor token); the agent's token (its call id is the conversation id) may post and check
drafts. Events, log, overlay, dashboard and QA are the call's: `/calls/{id}/events`, `/calls/{id}/log`,
`/api/calls/{id}`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from fastapi import APIRouter, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from assist.account import AccountFacts, dump
from assist.analysis.base import CallContext
from assist.analysis.pipeline import build_analysers
from assist.analysis.rulepacks import PACKS_DIR
from assist.api_account import Writer, publish
from assist.conversations import (
    ClosedAnswers,
    ConversationClosed,
    ConversationSession,
    MessageIdReused,
)
from assist.ingest import CALL_ID
from assist.languages import Language
from assist.privacy import Redactor, clean_metadata
from streaming.types import Speaker

log = structlog.get_logger(__name__)
router = APIRouter(tags=["conversations"])
ID_PATTERN = f"^{CALL_ID.pattern}$"
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such conversation (or another tenant's)"}}


class ConversationIn(BaseModel):
    """A written conversation about to start; `metadata` takes what a call's start metadata takes
    (account flags, ledger, debtor_state...), `account_facts` the creditor's facts (as PUT /calls/{id}/account)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=ID_PATTERN, description="Used once per tenant, in the same id space as calls.")
    channel: Literal["chat", "whatsapp", "sms", "email"]
    language: Language
    jurisdiction: str = Field("us", pattern=r"^[a-z]{2}$")
    agent: str | None = Field(None, max_length=128)
    agent_id: str | None = Field(None, max_length=128)
    debtor_timezone: str | None = Field(None, max_length=64, description="IANA name, e.g. America/Chicago.")
    metadata: dict[str, Any] = {}
    account_facts: AccountFacts | None = None

    @field_validator("jurisdiction")
    @classmethod
    def _known_pack(cls, v: str) -> str:
        if not (PACKS_DIR / f"{v}.yaml").is_file():
            raise ValueError(f"no compliance pack for jurisdiction {v!r}")
        return v

    @field_validator("debtor_timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        try:
            return v if v is None else str(ZoneInfo(v))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r}") from None


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender: Literal["agent", "debtor"]
    text: str
    sent_at: datetime | None = Field(None, description="When it was sent (with a UTC offset); default: now.")
    message_id: str | None = Field(None, pattern=ID_PATTERN, description="Idempotency: a retry gets the same answer.")

    @field_validator("text")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text is empty")
        return v.strip()

    @field_validator("sent_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("sent_at needs a UTC offset, e.g. 2026-12-01T18:30:00Z")
        return v


class DraftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


def _check_size(request: Request, text: str) -> None:
    limit = request.app.state.settings.conversations.conversation_max_text_bytes
    if len(text.encode()) > limit:
        raise HTTPException(413, f"text is over {limit} bytes")


async def _session(request: Request, conversation_id: str) -> ConversationSession:
    """The open conversation; 409 when it is closed (or is a voice call), 404 when there is none."""
    state = request.app.state
    session = state.sessions.get(conversation_id)
    if isinstance(session, ConversationSession):
        return session
    if session is not None:
        raise HTTPException(409, f"{conversation_id!r} is a voice call, not a conversation")
    if conversation_id in state.hub.calls or (await state.registry.owner(conversation_id))[0]:
        raise HTTPException(409, f"conversation {conversation_id!r} is closed")
    raise HTTPException(404, f"no conversation {conversation_id!r}")


def start_conversation(app: FastAPI, body: ConversationIn, tenant: str | None) -> ConversationSession:
    """A new conversation session with the call's analysers for a text channel, facts applied."""
    state, settings = app.state, app.state.settings
    meta = clean_metadata(body.metadata, Redactor(frozenset(settings.storage.redact_kinds)))
    meta |= {k: v for k, v in {"language": body.language, "jurisdiction": body.jurisdiction, "agent": body.agent,
                                "agent_id": body.agent_id, "debtor_timezone": body.debtor_timezone}.items()
             if v is not None}
    meta |= {"channel": body.channel, "started_at": datetime.now(UTC).isoformat()}
    if tenant is not None:
        meta["tenant"] = tenant
    meta = state.account_desk.start_metadata(tenant, body.id, meta)
    eu_mode = settings.analysis.eu_mode
    eu_mode = eu_mode if eu_mode is not None else state.rules.eu_mode(body.jurisdiction)
    ctx = CallContext(body.id, body.language, body.jurisdiction, eu_mode, meta, channel=body.channel)
    session = ConversationSession(ctx, state.hub, settings, build_analysers(ctx, state.embedder, state.rules),
                                  state.recorder, state.metrics)
    state.account_desk.started(session, tenant)
    if body.account_facts is not None:
        publish(session, dump(body.account_facts))
    return session


@router.post("/conversations", status_code=201,
             responses={409: {"description": "The id is already used"}, 503: {"description": "At capacity"}})
async def open_conversation(body: ConversationIn, request: Request, principal: Writer) -> dict[str, Any]:
    """Open a written conversation; its `call.started` carries the channel."""
    state = request.app.state
    registry = state.registry
    if registry.stopping:
        raise HTTPException(503, "service is stopping, try again later")
    exists, _ = await registry.owner(body.id)
    if exists or body.id in state.hub.calls or body.id in registry.sessions:
        raise HTTPException(409, f"id {body.id!r} is already used; an id is used once")
    open_now = sum(isinstance(s, ConversationSession) for s in registry.sessions.values())
    if open_now >= state.settings.conversations.max_conversations:
        raise HTTPException(503, "at capacity, try again later")
    session = registry.sessions[body.id] = start_conversation(request.app, body, principal.tenant)
    registry._remember(body.id, principal.tenant)  # the calls' id space
    log.info("conversation.opened", call_id=body.id, channel=body.channel, tenant=principal.tenant)
    return {"conversation_id": body.id, "channel": body.channel,
            "events": [e.model_dump(mode="json") for e in state.hub.calls[session.call_id].events]}


@router.post("/conversations/{conversation_id}/messages",
             responses={**NOT_FOUND, 409: {"description": "Closed, or the message id names another message"},
                        413: {"description": "Text too long"}})
async def post_message(conversation_id: str, body: MessageIn, request: Request) -> dict[str, Any]:
    """One sent message: logged, analysed and stored; answers with the events it raised."""
    _check_size(request, body.text)
    sender = Speaker(body.sender)
    closed: ClosedAnswers = request.app.state.closed_conversations
    try:
        if (answer := closed.answer(conversation_id, body.message_id, sender, body.text)) is not None:
            return answer
        session = await _session(request, conversation_id)
        return await session.message(sender, body.text, body.sent_at or datetime.now(UTC), body.message_id)
    except MessageIdReused:
        raise HTTPException(409, f"message id {body.message_id!r} was used for another message") from None
    except ConversationClosed:
        raise HTTPException(409, f"conversation {conversation_id!r} is closed") from None


@router.post("/conversations/{conversation_id}/draft", responses={**NOT_FOUND, 413: {"description": "Text too long"}})
async def check_draft(conversation_id: str, body: DraftIn, request: Request) -> dict[str, Any]:
    """The warnings the agent's unsent text would raise and the suggestions standing now; stores nothing."""
    _check_size(request, body.text)
    if not body.text.strip():
        return {"conversation_id": conversation_id, "warnings": [], "suggestions": []}
    return await (await _session(request, conversation_id)).draft(body.text.strip(), datetime.now(UTC))


@router.post("/conversations/{conversation_id}/close", responses={**NOT_FOUND, 409: {"description": "Already closed"}})
async def close_conversation(conversation_id: str, request: Request) -> dict[str, Any]:
    """End the conversation: stored, scored and categorised like a call; answers with its QA result."""
    state = request.app.state
    session = await _session(request, conversation_id)
    await state.registry.end(session, "closed")
    state.closed_conversations.closed(session)
    events = state.hub.calls[conversation_id].events
    qa = next((e for e in reversed(events) if e.type == "qa.score"), None)
    log.info("conversation.closed", call_id=conversation_id, messages=len(session.answers))
    return {"conversation_id": conversation_id, "channel": session.channel,
            "qa": None if qa is None else {"scorecard": qa.scorecard, "category": qa.category}}


def mount(app: FastAPI) -> None:
    """Add the routes and their state to the service."""
    app.state.closed_conversations = ClosedAnswers()
    app.include_router(router)
