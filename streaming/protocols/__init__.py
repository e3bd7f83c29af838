"""Telephony protocol adapters: vendor messages in, per-speaker audio frames out (no I/O)."""
