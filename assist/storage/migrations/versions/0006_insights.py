"""Insights facts per call (and an index to find calls scored since a time), findings (failed items, standing
warnings) and coaching notes (assist/insights_facts.py, assist/api_insights.py), indexed for grouping by tenant,
agent and time.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_index("ix_qa_results_computed_at", "qa_results", ["computed_at"])
    op.create_table(
        "call_insights",
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True),
        *(sa.Column(name, sa.String(size), nullable=False) for name, size in (
            ("tenant", 64), ("agent_id", 128), ("team", 64), ("campaign", 64), ("channel", 32), ("language", 8))),
        sa.Column("started_at", _TZ, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("band", sa.String(32), nullable=False),
        sa.Column("primary_category", sa.String(64), nullable=False),
        sa.Column("promise", sa.Integer, nullable=False),
        sa.Column("promised_amount", sa.Float, nullable=False),
        sa.Column("stress_peak", sa.Float),
        sa.Column("hangup", sa.Integer, nullable=False),
        sa.Column("hard", sa.Integer, nullable=False),
        sa.Column("abusive", sa.Integer, nullable=False),
        sa.Column("humanisation", sa.Float),
        sa.Column("computed_at", _TZ, nullable=False),
    )
    op.create_table(
        "call_humanisation",
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("parts", sa.JSON, nullable=False),
    )
    op.create_index("ix_call_insights_tenant_started", "call_insights", ["tenant", "started_at"])
    op.create_index("ix_call_insights_tenant_agent_started", "call_insights", ["tenant", "agent_id", "started_at"])
    op.create_table(
        "call_findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("started_at", _TZ, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("quote", sa.Text, nullable=False),
        sa.Column("speaker", sa.String(16), nullable=False),
        sa.Column("start", sa.Float),
    )
    op.create_index("ix_call_findings_tenant_started", "call_findings", ["tenant", "started_at"])
    op.create_index("ix_call_findings_tenant_agent_kind", "call_findings", ["tenant", "agent_id", "kind", "code"])
    op.create_table(
        "coaching_notes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_coaching_notes_tenant_agent_at", "coaching_notes", ["tenant", "agent_id", "at"])


def downgrade() -> None:
    op.drop_table("coaching_notes")
    op.drop_table("call_findings")
    op.drop_table("call_humanisation")
    op.drop_table("call_insights")
    op.drop_index("ix_qa_results_computed_at", table_name="qa_results")
