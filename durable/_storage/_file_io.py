"""The file-I/O primitives every writer in a directory uses: whole writes and syncs.

`write_all` writes until done (a short write to a regular file means the disk is full);
`sync_file` is `fdatasync` (`fsync` where there is none); `sync_directory` is `fsync` of
a directory (its new entries made durable); `load_syncfs` finds `syncfs(2)`
through ctypes (Linux only), which reports a failure as -1 and errno, read by
`syncfs_error`. No state and no policy here: which sync a batch gets, and on which thread,
is group commit's (`_group_commit`).
"""

from __future__ import annotations

import ctypes
import errno as errno_codes
import os
import sys
from collections.abc import Callable

sync_file: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def sync_directory(fd: int) -> None:
    """`fsync` the open directory `fd`: the entries of files created in it become durable.

    `os.fsync` is looked up at each call, so a substitute of it (a test counting
    directory syncs, the power-loss simulator, benchmarks.nosync) sees these calls too.
    """
    os.fsync(fd)


def load_syncfs() -> Callable[[int], int] | None:
    """`syncfs(fd)` from the C library (0, or -1 and errno: see `syncfs_error`); None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return,unused-ignore]


def syncfs_error() -> OSError:
    """The error of the `syncfs` call that just returned -1 on this thread (its errno)."""
    code = ctypes.get_errno()
    return OSError(code, os.strerror(code))


def write_all(fd: int, data: bytes) -> None:
    """os.write until done; a short write to a regular file means the disk is full."""
    written = os.write(fd, data)
    if written == len(data):
        return
    view = memoryview(data)[written:]
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(errno_codes.ENOSPC, os.strerror(errno_codes.ENOSPC))
        view = view[written:]
