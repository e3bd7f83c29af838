"""Audio, telephony protocols and the streaming transcription policy. Pure: no network I/O."""
