"""Recobra service: ingest sockets, call sessions, analysis, events, storage and the CLI."""
