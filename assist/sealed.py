"""An append-only file of AES-256-GCM records: what a recording writes as it goes is sealed at once.

Layout: MAGIC, an 8-byte random nonce prefix, then records of (4-byte big-endian length, ciphertext + tag).
Record n's nonce is the prefix + n; its associated data binds the file header, the file's name (the call)
and n, so records cannot be reordered, moved to another file or read with another key. `close()` appends
an empty record marked last: a file without it was cut short (a crash) and reads up to its last whole
record. The plaintext is the concatenation of the records (a byte stream: ranges map onto records).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"RECOBRA-SEALED1\n"
_PREFIX = 8
_LEN = struct.Struct(">I")
_TAG = 16
MAX_RECORD = 16 << 20


class SealedError(Exception):
    """The file cannot be read: wrong key, damaged or not a sealed file."""


def _aad(header: bytes, name: str, index: int, last: bool) -> bytes:
    return header + name.encode() + struct.pack(">IB", index, last)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


HEADER_SIZE = len(MAGIC) + _PREFIX


def check_header(header: bytes) -> None:
    """SealedError unless `header` (the file's first bytes) starts a sealed file."""
    if not header.startswith(MAGIC) or len(header) < HEADER_SIZE:
        raise SealedError("not a sealed recording")


Records = list[tuple[int, int, int]]
"""(plaintext offset, file offset of the ciphertext, ciphertext length) of each record."""


def records_of(lengths: list[int]) -> tuple[Records, int, int]:
    """The records of a sealed file whose length fields are `lengths`, its plaintext size and its file size."""
    records: Records = []
    pos, plain = HEADER_SIZE, 0
    for length in lengths:
        records.append((plain, pos + _LEN.size, length))
        plain += length - _TAG
        pos += _LEN.size + length
    return records, plain, pos


def layout(path: Path) -> tuple[bytes, list[int]]:
    """A sealed file's header and the length field of each whole record."""
    lengths: list[int] = []
    with open(path, "rb") as f:
        header = f.read(HEADER_SIZE)
        check_header(header)
        size, pos = os.fstat(f.fileno()).st_size, HEADER_SIZE
        while pos + _LEN.size <= size:
            f.seek(pos)
            (length,) = _LEN.unpack(f.read(_LEN.size))
            if length < _TAG or length > MAX_RECORD or pos + _LEN.size + length > size:
                break  # a record cut short by a crash: the file ends before it
            lengths.append(length)
            pos += _LEN.size + length
    return header, lengths


class SealedWriter:
    """Appends sealed records to a new file (fsync'd per record: what returned is on disk)."""

    def __init__(self, path: Path, key: bytes, name: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._aes, self._name, self._index = AESGCM(key), name, 0
        self._header = MAGIC + os.urandom(_PREFIX)
        self._file = open(path, "xb")  # noqa: SIM115 - held open while the call lasts
        os.chmod(path, 0o600)
        self._write(self._header)

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())

    def append(self, plain: bytes, last: bool = False) -> None:
        nonce = _nonce(self._header[len(MAGIC):], self._index)
        sealed = self._aes.encrypt(nonce, plain, _aad(self._header, self._name, self._index, last))
        self._write(_LEN.pack(len(sealed)) + sealed)
        self._index += 1

    def close(self) -> None:
        """Mark the file complete and close it."""
        if not self._file.closed:
            self.append(b"", last=True)
            self._file.close()


class SealedReader:
    """Reads a sealed file's plaintext by byte range, decrypting only the records a range touches.

    Opening checks the layout and decrypts the first record (a wrong key fails here, as SealedError)."""

    def __init__(self, path: Path, key: bytes, name: str) -> None:
        self.path, self._aes, self._name = path, AESGCM(key), name
        self._records: Records = []
        self.complete = False
        try:
            self._scan()
        except OSError as error:
            raise SealedError(f"cannot read the recording: {error.strerror}") from None
        if self._records:
            self._decrypt(0)

    def _scan(self) -> None:
        self._header, self._records, self.size = self._layout()
        if self._records and self._records[-1][2] == _TAG:
            self.complete = self._try_last(len(self._records) - 1)
            if self.complete:
                self._records.pop()

    def _layout(self) -> tuple[bytes, Records, int]:
        """Where the records lie (a subclass reads them from elsewhere, with `_read_at`)."""
        header, lengths = layout(self.path)
        records, size, _ = records_of(lengths)
        return header, records, size

    def _read_at(self, offset: int, length: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def _try_last(self, index: int) -> bool:
        try:
            self._decrypt(index, last=True)
            return True
        except SealedError:
            return False

    def _decrypt(self, index: int, last: bool = False) -> bytes:
        _, offset, length = self._records[index]
        sealed = self._read_at(offset, length)
        try:
            return self._aes.decrypt(_nonce(self._header[len(MAGIC):], index), sealed,
                                     _aad(self._header, self._name, index, last))
        except InvalidTag:
            raise SealedError("the recording cannot be decrypted (wrong key or damaged file)") from None

    def read(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Plaintext bytes [start, end) (end defaults to the size), record by record."""
        end = self.size if end is None else min(end, self.size)
        for index, (offset, _, length) in enumerate(self._records):
            stop = offset + length - _TAG
            if stop <= start or offset >= end:
                continue
            plain = self._decrypt(index)
            yield plain[max(0, start - offset): end - offset]
