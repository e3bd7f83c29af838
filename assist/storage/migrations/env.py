"""Alembic environment: runs on the connection passed in by `upgrade_database`."""

from alembic import context

from assist.storage.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
