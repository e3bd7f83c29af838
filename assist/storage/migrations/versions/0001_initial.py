"""Initial schema: calls, call_tags, utterances, events, qa_results, qa_overrides.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _call_fk() -> sa.Column:
    return sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("started_at", TS, nullable=False, index=True),
        sa.Column("ended_at", TS),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("protocol", sa.String(32), nullable=False),
        sa.Column("agent_id", sa.String(128), index=True),
        sa.Column("language", sa.String(8)),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("duration", sa.Float),
        sa.Column("end_reason", sa.String(64)),
        sa.Column("score", sa.Float),
        sa.Column("band", sa.String(32), index=True),
        sa.Column("compliance_fail", sa.Boolean),
        sa.Column("contact", sa.String(32)),
        sa.Column("primary_category", sa.String(64)),
    )
    op.create_table(
        "call_tags",
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True, index=True),
    )
    op.create_table(
        "utterances",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _call_fk(),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("speaker", sa.String(16), nullable=False),
        sa.Column("utterance", sa.Integer, nullable=False),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("words", sa.JSON, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.UniqueConstraint("call_id", "seq"),
    )
    op.create_index("ix_utterances_call_id", "utterances", ["call_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _call_fk(),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("t", sa.Float, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.UniqueConstraint("call_id", "seq"),
    )
    op.create_index("ix_events_call_type", "events", ["call_id", "type"])
    op.create_table(
        "qa_results",
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("scorecard", sa.JSON, nullable=False),
        sa.Column("category", sa.JSON, nullable=False),
        sa.Column("computed_at", TS, nullable=False),
    )
    op.create_table(
        "qa_overrides",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _call_fk(),
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("old_result", sa.String(8), nullable=False),
        sa.Column("new_result", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("old_score", sa.Float),
        sa.Column("new_score", sa.Float),
    )
    op.create_index("ix_qa_overrides_call_id", "qa_overrides", ["call_id"])


def downgrade() -> None:
    for table in ("qa_overrides", "qa_results", "events", "utterances", "call_tags", "calls"):
        op.drop_table(table)
