"""Calls belong to the front end holding them: calls.node_id and the nodes' leases.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("node_id", sa.String(128)))
        batch.create_index("ix_calls_node_id", ["node_id"])
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("nodes")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_node_id")
        batch.drop_column("node_id")
