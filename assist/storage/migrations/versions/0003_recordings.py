"""Call recordings (sealed files, silenced spans) and the audit trail of their playback.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("call_id", sa.String(128), primary_key=True),
        sa.Column("tenant", sa.String(64), index=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("redactions", sa.JSON, nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "recording_plays",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(128), nullable=False, index=True),
        sa.Column("who", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("recording_plays")
    op.drop_table("recordings")
