"""A queued request's bytes: the record both layouts of a queue hold, checked on reading.

The same bytes are a request file of the old layout (`waiting/<id>`, one file per request,
written by durable before the request log) and the body of an enqueue record in a queue's
request log (`_request_log.py`):

    "DURQ" u8(1) u8(priority) u16(len key) u16(len dedup) u32(len payload) u64(seq)
    f64(enqueued) f64(not_before) key dedup payload u32(crc32 of all before)

little endian. Knows nothing of msgpack nor of workflows: the payload is the caller's.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

_HEADER = struct.Struct("<4sBBHHIQdd")
_MAGIC = b"DURQ"
_CRC = struct.Struct("<I")
MAX_REQUEST_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    """One queued request as stored (key and dedup_id None when not given)."""

    workflow_id: str
    priority: int
    seq: int
    enqueued: float
    not_before: float
    key: str | None
    dedup_id: str | None
    payload: bytes


class DamagedRequest(Exception):
    """A request that does not check out (torn by a power loss, or not ours)."""


def encode_request(request: Request) -> bytes:
    """A request's bytes (a request file's, or an enqueue record's body)."""
    key = (request.key or "").encode()
    dedup = (request.dedup_id or "").encode()
    head = _HEADER.pack(
        _MAGIC,
        1,
        request.priority,
        len(key),
        len(dedup),
        len(request.payload),
        request.seq,
        request.enqueued,
        request.not_before,
    )
    body = head + key + dedup + request.payload
    return body + _CRC.pack(zlib.crc32(body))


def decode_request(workflow_id: str, data: bytes) -> Request:
    """A request's bytes, checked (DamagedRequest)."""
    if len(data) < _HEADER.size + _CRC.size:
        raise DamagedRequest(f"{len(data)} bytes, shorter than a request")
    magic, version, priority, key_n, dedup_n, payload_n, seq, enqueued, not_before = (
        _HEADER.unpack_from(data)
    )
    if magic != _MAGIC or version != 1:
        raise DamagedRequest("not a request file of this durable")
    end = _HEADER.size + key_n + dedup_n + payload_n
    if end + _CRC.size != len(data):
        raise DamagedRequest("its lengths do not add up (torn or truncated)")
    if _CRC.unpack_from(data, end)[0] != zlib.crc32(data[:end]):
        raise DamagedRequest("its checksum does not match")
    key = data[_HEADER.size : _HEADER.size + key_n].decode(errors="replace")
    dedup = data[_HEADER.size + key_n : _HEADER.size + key_n + dedup_n].decode(errors="replace")
    return Request(
        workflow_id,
        priority,
        seq,
        enqueued,
        not_before,
        key or None,
        dedup or None,
        data[_HEADER.size + key_n + dedup_n : end],
    )
