"""Live analysers: each turns utterances (and audio) of one call into events."""
