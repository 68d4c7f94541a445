"""A crash-state simulator: what a power loss may leave of a journal directory, enumerated.

`FileSystemRecorder` records the file-system operations durable makes during a real run
(opens that create, writes with their offsets, truncations, fdatasync/fsync, syncfs,
links, renames, unlinks), by wrapping `os` and the storage modules' sync functions.
`crash_states(ops, k)` then builds, for a power loss right after operation `k`, the states
the kernel may leave, following what ext4 (data=writeback) and XFS allow:

- a file's bytes are what its last completed sync (fdatasync of it, or a syncfs) made
  durable, plus any subset of the later writes: in order (each prefix), torn at several
  offsets, or at page granularity in any order (each dirty page zeroed, filled with
  garbage, or left stale, the pages after it written: a hole, then complete later frames);
  its size may have reached the disk without its data (zeros);
- directory entries (creations, links, renames, unlinks) are durable after a directory
  fsync or a syncfs; later ones persist as a prefix (the filesystem's journal is ordered).

Each state is a mapping of file names to bytes, plus what a sync had covered of each file
at the crash (`durable_prefix`), for the invariants the tests check.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import durable._storage._group_commit as group_commit

PAGE = 4096


@dataclass(frozen=True)
class Op:
    kind: str  # create, write, trunc, sync, dirsync, syncall, link, replace, unlink
    inode: int = -1
    name: str = ""
    target: str = ""
    offset: int = 0
    data: bytes = b""


class FileSystemRecorder:
    """Records the operations on files of one directory while it is installed (a context)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self.ops: list[Op] = []
        self._lock = threading.RLock()
        self._fds: dict[int, tuple[int, bool]] = {}  # fd -> (inode, is the directory)
        self._inodes: dict[tuple[int, int], int] = {}  # (dev, ino) -> our inode number
        self._next_inode = 0
        self._dir_fds: dict[int, Path] = {}

    def _resolve(self, path: Any, dir_fd: int | None) -> Path | None:
        if isinstance(path, int):
            return None
        full = Path(os.fsdecode(path))
        if dir_fd is not None:
            base = self._dir_fds.get(dir_fd)
            if base is None:
                return None
            full = base / full
        full = Path(os.path.abspath(full))
        if full == self.directory or full.parent == self.directory:
            return full
        return None

    def _inode_of(self, fd: int, *, created: bool = False) -> int:
        """Our number for the file open at `fd`; a new one for a file just `created`.

        The kernel reuses a freed inode's number at once (ext4 hands a new file the inode of
        one just unlinked, or replaced by a rename), so a created file gets a number of its
        own: keyed by the kernel's, it would be modelled as holding the dead file's bytes.
        """
        info = os.fstat(fd)
        key = (info.st_dev, info.st_ino)
        if created or key not in self._inodes:
            self._inodes[key] = self._next_inode
            self._next_inode += 1
        return self._inodes[key]

    @contextlib.contextmanager
    def installed(self) -> Iterator[FileSystemRecorder]:
        real = {
            name: getattr(os, name)
            for name in (
                *("open", "write", "ftruncate", "fsync", "fdatasync", "close"),
                *("link", "replace", "rename", "unlink"),
            )
        }
        patched_modules: list[tuple[Any, Callable[[int], None]]] = []
        real_load_syncfs = group_commit._load_syncfs
        recorder = self

        def record(op: Op) -> None:
            recorder.ops.append(op)

        def open_(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
            with recorder._lock:
                full = recorder._resolve(path, dir_fd)
                existed = full is not None and os.path.lexists(full)
                if dir_fd is None:
                    fd: int = real["open"](path, flags, mode)
                else:
                    fd = real["open"](path, flags, mode, dir_fd=dir_fd)
                if full is None:
                    return fd
                if full == recorder.directory:
                    recorder._dir_fds[fd] = full
                    recorder._fds[fd] = (-1, True)
                    return fd
                if not os.path.isfile(full):
                    return fd
                inode = recorder._inode_of(fd, created=not existed)
                recorder._fds[fd] = (inode, False)
                if not existed:
                    record(Op("create", inode, name=full.name))
                elif flags & os.O_TRUNC:
                    record(Op("trunc", inode, offset=0))
                return fd

        def write(fd: int, data: Any) -> int:
            with recorder._lock:
                tracked = recorder._fds.get(fd)
                if tracked is None or tracked[1]:
                    return int(real["write"](fd, data))
                offset = os.fstat(fd).st_size  # (every journal and inbox is O_APPEND)
                written = int(real["write"](fd, data))
                record(Op("write", tracked[0], offset=offset, data=bytes(data)[:written]))
                return written

        def ftruncate(fd: int, length: int) -> None:
            with recorder._lock:
                real["ftruncate"](fd, length)
                tracked = recorder._fds.get(fd)
                if tracked is not None and not tracked[1]:
                    record(Op("trunc", tracked[0], offset=length))

        def syncer(name: str) -> Callable[[int], None]:
            def sync(fd: int) -> None:
                real[name](fd)
                with recorder._lock:
                    tracked = recorder._fds.get(fd)
                    if tracked is not None:
                        record(Op("dirsync") if tracked[1] else Op("sync", tracked[0]))

            return sync

        def close(fd: int) -> None:
            with recorder._lock:
                recorder._fds.pop(fd, None)
                recorder._dir_fds.pop(fd, None)
                real["close"](fd)

        def entry_op(name: str) -> Callable[..., None]:
            def operation(src: Any, dst: Any, **kwargs: Any) -> None:
                with recorder._lock:
                    real[name](src, dst, **kwargs)
                    source = recorder._resolve(src, kwargs.get("src_dir_fd"))
                    target = recorder._resolve(dst, kwargs.get("dst_dir_fd"))
                    if source is not None and target is not None:
                        kind = "link" if name == "link" else "replace"
                        record(Op(kind, name=source.name, target=target.name))

            return operation

        def unlink(path: Any, *, dir_fd: int | None = None) -> None:
            with recorder._lock:
                if dir_fd is None:
                    real["unlink"](path)
                else:
                    real["unlink"](path, dir_fd=dir_fd)
                full = recorder._resolve(path, dir_fd)
                if full is not None:
                    record(Op("unlink", name=full.name))

        def load_syncfs() -> Callable[[int], int] | None:
            function = real_load_syncfs()
            if function is None:
                return None

            def syncfs(fd: int) -> int:
                result = function(fd)
                if result == 0:
                    with recorder._lock:
                        record(Op("syncall"))
                return result

            return syncfs

        fdatasync = syncer("fdatasync")
        replacements: dict[str, Any] = {
            "open": open_,
            "write": write,
            "ftruncate": ftruncate,
            "fsync": syncer("fsync"),
            "fdatasync": fdatasync,
            "close": close,
            "link": entry_op("link"),
            "replace": entry_op("replace"),
            "rename": entry_op("rename"),
            "unlink": unlink,
        }
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("durable._storage") and hasattr(
                module, "sync_file"
            ):
                patched_modules.append((module, getattr(module, "sync_file")))  # noqa: B009
                setattr(module, "sync_file", fdatasync)  # noqa: B010
        for name, function in replacements.items():
            setattr(os, name, function)
        group_commit._load_syncfs = load_syncfs
        try:
            yield self
        finally:
            for name, function in real.items():
                setattr(os, name, function)
            for module, function in patched_modules:
                module.sync_file = function
            group_commit._load_syncfs = real_load_syncfs


@dataclass
class _Inode:
    content: bytearray = field(default_factory=bytearray)
    durable: bytes = b""
    pending: list[Op] = field(default_factory=list)


def _apply(content: bytearray, op: Op) -> None:
    if op.kind == "write":
        if len(content) < op.offset:
            content.extend(bytes(op.offset - len(content)))
        content[op.offset : op.offset + len(op.data)] = op.data
    elif op.kind == "trunc":
        if len(content) > op.offset:
            del content[op.offset :]
        else:
            content.extend(bytes(op.offset - len(content)))


def _apply_entry(entries: dict[str, int], op: Op, inodes_of_create: dict[str, int]) -> None:
    if op.kind == "create":
        entries[op.name] = op.inode
    elif op.kind == "link":
        if op.name in entries:
            entries[op.target] = entries[op.name]
    elif op.kind == "replace":
        if op.name in entries:
            entries[op.target] = entries.pop(op.name)
    elif op.kind == "unlink":
        entries.pop(op.name, None)


@dataclass
class Model:
    """The file system as the recorded operations left it at one crash point."""

    inodes: dict[int, _Inode]
    entries: dict[str, int]
    durable_entries: dict[str, int]
    pending_entries: list[Op]


def model_at(ops: list[Op], crash_after: int) -> Model:
    """Replay ops[:crash_after + 1] into what is written, what durable, what pending."""
    inodes: dict[int, _Inode] = {}
    entries: dict[str, int] = {}
    durable_entries: dict[str, int] = {}
    pending_entries: list[Op] = []
    for op in ops[: crash_after + 1]:
        if op.kind in ("create", "link", "replace", "unlink"):
            if op.kind == "create":
                inodes[op.inode] = _Inode()  # (a new file is empty, whatever its number held)
            _apply_entry(entries, op, {})
            pending_entries.append(op)
        elif op.kind in ("write", "trunc"):
            inode = inodes.setdefault(op.inode, _Inode())
            _apply(inode.content, op)
            inode.pending.append(op)
        elif op.kind == "sync":
            inode = inodes.setdefault(op.inode, _Inode())
            inode.durable = bytes(inode.content)
            inode.pending.clear()
        elif op.kind == "dirsync":
            durable_entries = dict(entries)
            pending_entries.clear()
        elif op.kind == "syncall":
            for inode in inodes.values():
                inode.durable = bytes(inode.content)
                inode.pending.clear()
            durable_entries = dict(entries)
            pending_entries.clear()
    return Model(inodes, entries, durable_entries, pending_entries)


def _variants(inode: _Inode, rng: random.Random, other: bytes) -> list[tuple[str, bytes]]:
    """What a power loss may leave of one file: (label, bytes).

    `other`: another file's bytes, for stale blocks a crash exposes (data=writeback).
    """
    base = inode.durable
    found: list[tuple[str, bytes]] = []
    content = bytearray(base)
    found.append(("synced only", bytes(content)))
    for index, op in enumerate(inode.pending):
        if op.kind == "write" and len(op.data) > 1:
            for cut in sorted({1, len(op.data) // 2, len(op.data) - 1}):
                torn = bytearray(content)
                _apply(torn, Op("write", offset=op.offset, data=op.data[:cut]))
                found.append((f"write {index} torn at {cut}", bytes(torn)))
                sized = bytearray(torn)  # the size reached the disk, the rest of the data not
                _apply(sized, Op("trunc", offset=op.offset + len(op.data)))
                found.append((f"write {index} torn at {cut}, full size", bytes(sized)))
        _apply(content, op)
        found.append((f"writes 0..{index}", bytes(content)))
    full = bytes(content)
    if full != base:
        extended = bytearray(base)
        _apply(extended, Op("trunc", offset=len(full)))
        found.append(("size without data", bytes(extended)))
        first_dirty = next(
            (i for i in range(min(len(base), len(full))) if base[i] != full[i]),
            min(len(base), len(full)),
        )
        for page in range(first_dirty // PAGE, (len(full) + PAGE - 1) // PAGE):
            # Only bytes written after the sync can change: a page that also holds synced
            # bytes is rewritten with those same bytes (torn or not, they read the same).
            start, end = max(page * PAGE, first_dirty), min((page + 1) * PAGE, len(full))
            for what in ("zeros", "garbage", "stale", "another file's", "dense marks"):
                damaged = bytearray(full)
                if what == "zeros":
                    damaged[start:end] = bytes(end - start)
                elif what == "garbage":
                    damaged[start:end] = rng.randbytes(end - start)
                elif what == "stale":
                    stale = base[start:end]
                    damaged[start:end] = stale + bytes(end - start - len(stale))
                elif what == "another file's":
                    stale = other[start:end]
                    damaged[start:end] = stale + rng.randbytes(end - start - len(stale))
                else:  # garbage full of frame starts and escapes
                    damaged[start:end] = bytes(
                        rng.choice(b"\xc1\xf7\x01\x02\x00") for _ in range(end - start)
                    )
                found.append((f"page {page} {what}", bytes(damaged)))
        pages = range(first_dirty // PAGE, (len(full) + PAGE - 1) // PAGE)
        if len(pages) > 1:  # several pages lost at once: the first and the last dirty one
            damaged = bytearray(full)
            for page in (pages[0], pages[-1]):
                start, end = max(page * PAGE, first_dirty), min((page + 1) * PAGE, len(full))
                damaged[start:end] = bytes(end - start)
            found.append((f"pages {pages[0]} and {pages[-1]} zeros", bytes(damaged)))
    return found


@dataclass(frozen=True)
class CrashState:
    """One state a power loss may leave: the directory's files, and what was durable."""

    label: str
    files: dict[str, bytes]
    durable_prefix: dict[str, bytes]  # name -> the bytes a sync had covered of its file

    def digest(self) -> str:
        hasher = hashlib.sha256()
        for name in sorted(self.files):
            hasher.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return hasher.hexdigest()


def crash_states(ops: list[Op], crash_after: int, *, seed: int = 0) -> list[CrashState]:
    """Every state (deduplicated) a power loss right after ops[crash_after] may leave."""
    model = model_at(ops, crash_after)
    rng = random.Random(f"{seed}/{crash_after}")
    entry_sets = []
    entries = dict(model.durable_entries)
    entry_sets.append(dict(entries))
    for op in model.pending_entries:
        _apply_entry(entries, op, {})
        entry_sets.append(dict(entries))
    states: dict[str, CrashState] = {}
    for entry_index, names in enumerate(entry_sets):
        full = {name: bytes(model.inodes[ino].content) for name, ino in names.items()}
        synced = {name: model.inodes[ino].durable for name, ino in names.items()}
        backgrounds = [("others written", full), ("others synced only", synced)]
        dirty = [name for name, ino in names.items() if model.inodes[ino].pending]
        for background_label, background in backgrounds:
            if not dirty:
                label = f"after op {crash_after}, entries {entry_index}"
                state = CrashState(label, background, synced)
                states.setdefault(state.digest(), state)
            for name in dirty:
                other = max(
                    (bytes(i.content) for n, i in model.inodes.items() if n != names[name]),
                    key=len,
                    default=b"",
                )
                for label, data in _variants(model.inodes[names[name]], rng, other):
                    state = CrashState(
                        f"after op {crash_after}, entries {entry_index}, {background_label}, "
                        f"{name}: {label}",
                        {**background, name: data},
                        synced,
                    )
                    states.setdefault(state.digest(), state)
    return list(states.values())


def write_state(state: CrashState, directory: Path) -> None:
    """Lay a state out as a fresh journal directory."""
    directory.mkdir(mode=0o700, parents=True)
    for name, data in state.files.items():
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o600)
