"""Durable storage of calls, utterances, events and QA results (SQLAlchemy 2 + Alembic)."""
