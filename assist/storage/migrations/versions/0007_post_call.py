"""Post-call transcripts (assist/post_call.py): a call's recording transcribed again after the call, kept
beside the live finals. Calls that ended before this revision are marked skipped ("predates"), so an
upgrade does not queue the whole history for transcription.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "post_call_transcripts",
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("reason", sa.String(64)),
        sa.Column("detail", sa.Text),
        sa.Column("node_id", sa.String(128)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("utterances", sa.JSON, nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    when = sa.DateTime(timezone=True)
    calls = sa.table("calls", sa.column("id", sa.String), sa.column("status", sa.String),
                     sa.column("ended_at", when), sa.column("started_at", when))
    op.execute(table.insert().from_select(
        ["call_id", "status", "reason", "attempts", "progress", "settings", "utterances", "queued_at"],
        sa.select(calls.c.id, sa.literal("skipped"), sa.literal("predates"), sa.literal(0), sa.literal(0.0),
                  sa.literal({}, sa.JSON), sa.literal([], sa.JSON),
                  sa.func.coalesce(calls.c.ended_at, calls.c.started_at))
        .where(calls.c.status != "active")))


def downgrade() -> None:
    op.drop_table("post_call_transcripts")
