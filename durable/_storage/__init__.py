"""Bytes on disk: framed, checksummed, append-only journals and the syncs that make them durable.

This package knows nothing of workflows or msgpack: it stores opaque payloads.
"""
