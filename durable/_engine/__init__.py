"""Replay and scheduling: runs workflow code deterministically over a journal."""
