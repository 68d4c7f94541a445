"""Opening files in a journal directory: relative to its descriptor, never through a link.

Every file durable opens in the directory is opened with `openat` on the directory's
descriptor by its bare name, with O_NOFOLLOW (a symbolic link planted at a journal's or
inbox's name is refused, never followed out of the directory) and O_NONBLOCK (a fifo planted
there cannot hang the open; regular files ignore the flag), then checked with fstat to be a
regular file. New files that must not exist yet (a rotation's next generation) add O_EXCL.
A writer's directory must be ours and writable by nobody else, checked once when it is
first used: the way ssh refuses a group-writable ~/.ssh (see UnsafeJournalDirectory).

Failures become durable errors naming the path, what was there and what to do: a link or a
special file (UnsafeJournalFile), a missing permission (JournalPermissionDenied), a full
disk while creating (JournalWriteError). This module knows nothing of what files hold.
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import os
import resource
import stat
from collections.abc import Iterator
from pathlib import Path

from .._errors import (
    JournalPermissionDenied,
    JournalWriteError,
    TooManyOpenJournals,
    UnsafeJournalDirectory,
    UnsafeJournalFile,
)

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
SAFE = os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
WRITE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | SAFE
READ_FLAGS = os.O_RDONLY | SAFE
NEW_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | SAFE
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC
# O_NOFOLLOW on a link: ELOOP on Linux and macOS, EMLINK on FreeBSD and NetBSD.
_LINK_ERRORS = {errno_codes.ELOOP, errno_codes.EMLINK}
_PERMISSION_ERRORS = {errno_codes.EACCES, errno_codes.EPERM, errno_codes.EROFS}
_SPACE_ERRORS = {errno_codes.ENOSPC, getattr(errno_codes, "EDQUOT", errno_codes.ENOSPC)}


def kind_of(mode: int) -> str:
    """What a file of this mode is, for messages ("a symbolic link", "a fifo", ...)."""
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a fifo (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(info: os.stat_result, path: Path) -> None:
    """Refuse a descriptor's file that is not a regular file (UnsafeJournalFile)."""
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeJournalFile(path=path, found=kind_of(info.st_mode))


def _lstat(directory_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=directory_fd, follow_symlinks=False)
    except OSError:
        return None


def permission_denied(
    path: Path, permission: str, detail: str = "", info: os.stat_result | None = None
) -> JournalPermissionDenied:
    """The error for a missing permission on `path`, with its owner and mode when known."""
    return JournalPermissionDenied(
        path=path,
        permission=permission,
        detail=detail,
        owner=None if info is None else info.st_uid,
        mode=None if info is None else info.st_mode,
        uid=os.geteuid(),
    )


def translate(error: OSError, directory_fd: int, path: Path, needs: str) -> Exception | None:
    """The durable error for a failed open of `path` in the directory (None: keep `error`).

    `needs` names the permission the open asked for ("read", "read and write").
    """
    code = error.errno
    if code in _LINK_ERRORS or code in (errno_codes.EISDIR, errno_codes.ENXIO):
        info = _lstat(directory_fd, path.name)
        if info is not None and not stat.S_ISREG(info.st_mode):
            return UnsafeJournalFile(path=path, found=kind_of(info.st_mode))
        # (gone meanwhile, or replaced by a regular file: a link it was, for ELOOP)
        return (
            UnsafeJournalFile(path=path, found="a symbolic link") if code in _LINK_ERRORS else None
        )
    if code in _PERMISSION_ERRORS:
        return _denied(code, directory_fd, path, needs)
    if code in (errno_codes.EMFILE, errno_codes.ENFILE):
        return TooManyOpenJournals(path=path, errno=code, limits=_open_file_limits())
    if code in _SPACE_ERRORS:
        detail = error.strerror or str(error)
        return JournalWriteError(
            path=path, operation="creating the file", errno=code, detail=detail
        )
    return None


def _open_file_limits() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


def _denied(code: int | None, directory_fd: int, path: Path, needs: str) -> Exception:
    if code == errno_codes.EROFS:
        return permission_denied(path, needs, "the file system is mounted read-only")
    info = _lstat(directory_fd, path.name)
    if info is None:  # not there: creating it needs the directory's permission
        return permission_denied(
            path.parent,
            "write and search (w and x)",
            f"to create {path.name} in it",
            _lstat_path(path.parent),
        )
    return permission_denied(path, needs, "", info)


def _lstat_path(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def open_in(directory_fd: int, path: Path, flags: int, needs: str) -> int:
    """Open `path` (by its name, relative to `directory_fd`) without following a link.

    Raises:
        UnsafeJournalFile: a link, a directory or another special file is there.
        JournalPermissionDenied: the file (or, to create it, the directory) lacks `needs`.
        JournalWriteError: no space to create it.
        OSError: others as they are (FileNotFoundError without O_CREAT, EEXIST with O_EXCL).
    """
    try:
        return os.open(path.name, flags, 0o600, dir_fd=directory_fd)
    except OSError as error:
        refusal = translate(error, directory_fd, path, needs)
        if refusal is None:
            raise
        raise refusal from error


def open_regular(directory_fd: int, path: Path, flags: int, needs: str) -> int:
    """open_in, then refuse anything but a regular file (a fifo, a device opened O_RDONLY)."""
    fd = open_in(directory_fd, path, flags, needs)
    try:
        check_regular(os.fstat(fd), path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(directory_fd: int, path: Path) -> bytes:
    """The whole of the regular file `path` in the directory, opened without following links.

    Raises:
        FileNotFoundError: there is no such file.
        UnsafeJournalFile, JournalPermissionDenied: as open_in.
    """
    fd = open_regular(directory_fd, path, READ_FLAGS, "read")
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def check_directory(fd: int, path: Path) -> None:
    """Refuse a directory other users can write to: not ours (nor root's), or g+w / o+w."""
    info = os.fstat(fd)
    uid = os.geteuid()
    if info.st_uid not in (uid, 0) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeJournalDirectory(path=path, mode=info.st_mode, owner=info.st_uid, uid=uid)


def open_directory(path: Path, *, create: bool) -> int:
    """A descriptor of the directory `path` (a writer's: created 0700 if missing, checked).

    The directory's own path may go through links (the user named it); what is inside is
    opened relative to this descriptor.

    Raises:
        FileNotFoundError: it does not exist and `create` is False.
        JournalPermissionDenied: it, or its parent to create it, lacks a permission.
        UnsafeJournalDirectory: a writer's directory that other users can write to.
    """
    try:
        try:
            fd = os.open(path, _DIRECTORY_FLAGS)
        except FileNotFoundError:
            if not create:
                raise
            _make(path)
            fd = os.open(path, _DIRECTORY_FLAGS)
    except PermissionError as error:
        denied = path if path.exists() else path.parent
        raise permission_denied(
            denied,
            "read and search (r and x)" if denied == path else "write and search (w and x)",
            "" if denied == path else f"to create the journal directory {path.name} in it",
            _lstat_path(denied),
        ) from error
    except NotADirectoryError:
        raise UnsafeJournalFile(path=path, found="not a directory") from None
    if create:
        try:
            check_directory(fd, path)
        except BaseException:
            os.close(fd)
            raise
    return fd


def _make(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    parent_fd = os.open(path.parent, _DIRECTORY_FLAGS)
    try:
        os.fsync(parent_fd)  # the new directory's entry
    finally:
        os.close(parent_fd)


@contextlib.contextmanager
def reading(path: Path, directory_fd: int | None) -> Iterator[int | None]:
    """A descriptor of the directory for reading (None if the directory does not exist).

    The writer's `directory_fd` if it has one, else one opened for the duration. A reader
    makes no ownership check: it writes nothing (`durable list` may inspect another user's
    directory), and every file is still opened without following links.
    """
    if directory_fd is not None:
        yield directory_fd
        return
    try:
        fd = open_directory(path, create=False)
    except FileNotFoundError:
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def move_aside(directory_fd: int, path: Path, suffix: str = ".misplaced") -> Path:
    """Rename `path` to a free `<name><suffix>[.N]` in the directory, durably; the new path.

    For a file that must not be read as what its name says, yet must not be lost.
    """
    for attempt in range(1, 1000):
        target = path.name + suffix + ("" if attempt == 1 else f".{attempt}")
        try:
            os.lstat(target, dir_fd=directory_fd)
        except FileNotFoundError:
            os.rename(path.name, target, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
            os.fsync(directory_fd)
            return path.with_name(target)
    raise FileExistsError(f"no free name to move {path} aside to")
