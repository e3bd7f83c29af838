"""`GET /api/webhooks/deliveries` and `POST /api/webhooks/deliveries/{id}/redeliver`: a tenant's outcome
webhooks (assist/webhooks.py), with the tenant's X-API-KEY or a supervisor token."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from assist.auth import principal_of
from assist.storage.repository import utc
from assist.storage.tables import WebhookDelivery
from assist.webhooks import list_deliveries, redeliver

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])
READERS = ("dev", "integration", "supervisor")
Status = Literal["pending", "delivered", "failed"]


class DeliveryOut(BaseModel):
    id: str
    event: str
    call_id: str | None
    status: Status
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None

    @classmethod
    def of(cls, row: WebhookDelivery) -> DeliveryOut:
        return cls(id=row.id, event=row.event, call_id=row.call_id, status=row.status,
                   attempts=row.attempts, created_at=utc(row.created_at),
                   next_attempt_at=utc(row.next_attempt_at) if row.status == "pending" else None,
                   last_attempt_at=utc(row.last_attempt_at), delivered_at=utc(row.delivered_at),
                   last_status=row.last_status, last_error=row.last_error)


def _tenant(request: Request) -> str | None:
    principal = principal_of(request)
    if principal.role not in READERS:
        raise HTTPException(403, "webhook deliveries need the tenant's X-API-KEY or a supervisor token")
    return principal.tenant


@router.get("/deliveries", response_model=list[DeliveryOut])
async def deliveries(request: Request, status: Status | None = None,
                     call_id: str | None = Query(None, max_length=128), limit: int = Query(100, ge=1, le=1000),
                     offset: int = Query(0, ge=0, le=1_000_000)) -> list[DeliveryOut]:
    """The tenant's webhook deliveries, newest first."""
    rows = await asyncio.to_thread(list_deliveries, request.app.state.db, _tenant(request), status, call_id, limit,
                                   offset)
    return [DeliveryOut.of(r) for r in rows]


@router.post("/deliveries/{event_id}/redeliver", response_model=DeliveryOut, status_code=202,
             responses={404: {"description": "No such delivery"}})
async def redeliver_one(event_id: str, request: Request) -> DeliveryOut:
    """Send a delivery again now, with the same event id and body (a fresh signature)."""
    row = await asyncio.to_thread(redeliver, request.app.state.db, _tenant(request), event_id)
    if row is None:
        raise HTTPException(404, f"no delivery {event_id!r}")
    request.app.state.outbox.wake()
    return DeliveryOut.of(row)
