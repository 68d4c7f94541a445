"""Pausing the cyclic garbage collector over bursts of allocations that all stay alive.

A leaf (imports nothing from durable), below storage and the engine alike: storage pauses
the collector over a journal file's scan, the engine over decoding and indexing a journal.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic GC while reading or indexing a journal.

    Reading builds one object per record, all kept; the collections they trigger walk every
    live object, so with them a 100k-step replay costs more than 10x a 10k-step one, and
    even the frame scan runs at half speed. Without them replay time grows linearly.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
