"""A throwaway PostgreSQL server for the test suite: initdb in a temp dir, a loopback port.

Set DURABLE_TEST_POSTGRES to an admin DSN to use a server of your own instead. Without
PostgreSQL's binaries the PostgreSQL tests are skipped, except under CI (CI=true), where
that is a failure: the machine image has them (Debian's postgresql).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def binaries() -> Path | None:
    """The directory of initdb and pg_ctl (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A running throwaway cluster: its admin DSN, and restarts (fast or immediate)."""

    def __init__(self, bindir: Path, root: Path, port: int, as_user: list[str]) -> None:
        self.bindir, self.root, self.port, self._as_user = bindir, root, port, as_user
        self.data = root / "data"
        self.dsn = f"postgresql://durable@127.0.0.1:{port}/postgres"
        self._options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=200"

    def _pg_ctl(self, *arguments: str, check: bool = True) -> None:
        subprocess.run(
            [*self._as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), *arguments],
            check=check,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self._pg_ctl("-l", str(self.root / "log"), "-o", self._options, "-w", "start")

    def restart(self, mode: str = "fast") -> None:
        """Restart the server (`fast`: sessions ended cleanly; `immediate`: a crash, then
        recovery); return once it accepts connections again."""
        assert mode in ("smart", "fast", "immediate"), mode
        self._pg_ctl("-l", str(self.root / "log"), "-o", self._options, "-m", mode, "-w", "restart")

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "stop", check=False)


@contextlib.contextmanager
def restartable_cluster(bindir: Path) -> Iterator[Cluster]:
    """Start a cluster in a new temp dir; yield it; stop it and remove it all.

    PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user, in
    a directory it owns (outside pytest's tmp_path, whose parents only root may enter).

    The cluster serves no TLS, and its clients (this process and the subprocesses it starts)
    are told so (PGSSLMODE=disable, while it runs): with asyncpg's default, `prefer`, every
    connect asks for TLS first, and a connect cancelled during that exchange (a store's pool
    at close) leaves a future whose "unexpected connection_lost() call" nobody retrieves
    (asyncpg issue #1211), which the anyio test runner raises in whatever test is running.
    """
    ssl_mode = os.environ.get("PGSSLMODE")
    os.environ["PGSSLMODE"] = "disable"
    try:
        with _cluster(bindir) as cluster:
            yield cluster
    finally:
        if ssl_mode is None:
            del os.environ["PGSSLMODE"]
        else:
            os.environ["PGSSLMODE"] = ssl_mode


@contextlib.contextmanager
def _cluster(bindir: Path) -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="durable-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    cluster = Cluster(bindir, root, _free_port(), as_user)
    try:
        subprocess.run(
            [
                *as_user,
                str(bindir / "initdb"),
                "-D",
                str(cluster.data),
                "-A",
                "trust",
                "-U",
                "durable",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_cluster(bindir: Path) -> Iterator[str]:
    """A throwaway cluster's admin DSN (see restartable_cluster)."""
    with restartable_cluster(bindir) as cluster:
        yield cluster.dsn
