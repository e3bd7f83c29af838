"""Which front end holds which call: node leases in the shared database, and recovery of calls left open.

Every node renews its lease (`nodes.lease_until`) on a heartbeat and stamps the calls it starts with its
id. A call is left open when its node stopped without ending it: the node's lease expired (a crash, a
partition) or is gone (a clean stop deletes it). Any node may recover such a call; the claim is one
`UPDATE ... WHERE status = 'active'` in the transaction that scores the call, so of two survivors only
one scores it, and a survivor that fails midway leaves it for the next sweep. Leases compare wall clocks:
keep the nodes' clocks in sync (NTP) to well within the lease.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.orm import Session

from assist.storage import repository as repo
from assist.storage.tables import Call, Node

if TYPE_CHECKING:
    from assist.ruleset import RuleSet

OWN_REASON = "service stopped"
"""End reason of a call this node held before it restarted."""
LOST_REASON = "node lost"
"""End reason of a call another node held until its lease ran out."""


def default_node_id() -> str:
    """A name unique to this process (host, process id, random suffix)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def renew(s: Session, node_id: str, ttl_s: float) -> None:
    """Hold (or take) this node's lease for `ttl_s` from now."""
    until = datetime.now(UTC) + timedelta(seconds=ttl_s)
    node = s.get(Node, node_id)
    if node is None:
        s.add(Node(id=node_id, lease_until=until))
    else:
        node.lease_until = until


def release(s: Session, node_id: str) -> None:
    """Give the lease up (clean stop): anything this node left open may be recovered at once."""
    s.execute(delete(Node).where(Node.id == node_id))


def left_open(s: Session, node_id: str, own: bool) -> list[tuple[str, str | None]]:
    """(call, node) of active calls whose node has no live lease, plus this node's own when `own`
    (at start-up, before it holds any call); oldest first."""
    now = datetime.now(UTC)
    gone = or_(Call.node_id.is_(None), Node.id.is_(None), Node.lease_until < now)
    others = or_(Call.node_id.is_(None), Call.node_id != node_id)
    held = or_(Call.node_id == node_id, gone) if own else (others & gone)
    query = (select(Call.id, Call.node_id).outerjoin(Node, Node.id == Call.node_id)
             .where(Call.status == "active", held).order_by(Call.started_at))
    return [(call_id, node) for call_id, node in s.execute(query)]


def claim_and_score(s: Session, call_id: str, reason: str, rules: RuleSet | None = None) -> bool:
    """Mark the call interrupted and score it (by `rules`), if it is still active; False when another node
    was first."""
    claimed = cast(CursorResult, s.execute(
        update(Call).where(Call.id == call_id, Call.status == "active")
        .values(status="interrupted", end_reason=reason, ended_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )).rowcount
    if claimed != 1:
        return False
    repo.score_and_store(s, call_id, rules)
    return True
