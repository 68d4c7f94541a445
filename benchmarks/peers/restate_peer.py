"""Restate as a peer: restate-server as shipped (from npm) and the Python SDK in this process.

Set-up. The server is the npm package @restatedev/restate-server 1.7.12. Its binary ships
inside a platform package that npm picks as an optional dependency
(@restatedev/restate-server-linux-x64 here), so `npm install --ignore-scripts` brings it from
the registry alone: --ignore-scripts skips the only install script in the tree, the
postinstall of @scarf/scarf (a dependency of the wrapper) that reports installs to an
analytics service, and the binary needs none. unavailable() runs that install into
benchmarks/.restate/ (ignored by git) the first time it finds no binary there or on PATH, and
checks `restate-server --version`; without npm, or with the registry out of reach (offline:
one quick retry, then it gives up), it says so and the benchmark reports restate as skipped.
The SDK is restate-sdk from PyPI with its `client` extra (httpx), served by hypercorn, all in
the `bench` extra; hypercorn gets the settings of the SDK's own test harness (no cap on HTTP/2
streams per connection).

Every workload call starts its own server,

    restate-server --node-name bench --base-dir DIR/restate-data --listen-mode tcp
    (ingress, admin and node-to-node ports on 127.0.0.1, through RESTATE_*BIND_ADDRESS)

which keeps its state in DIR/restate-data as shipped: its log on the node's own log-server
(RocksDB, WAL fsynced: rocksdb-disable-wal-fsync = false) and the partitions' state and the
metadata in RocksDB beside it. Only telemetry is turned off (disable-telemetry), which touches
no durability setting. The server also asks GitHub for its latest release at start-up, which
no setting turns off; without a network that fails, it logs one error and goes on. This
process then serves the SDK's ASGI app on a loopback port, registers it (POST /deployments on
the admin API), runs one 1-step invocation (so connections and partition leaders are warm, as
the other peers are after their launch), and invokes handlers through the ingress: POST
/bench/<handler>, or /bench/<handler>/send without waiting. The server is stopped at the end
(SIGTERM, then SIGKILL after 10 s), also on errors, and gets SIGTERM should this process die
without its cleanup (PR_SET_PDEATHSIG), so no server outlives a run.

A step is `ctx.run`: the SDK sends its result to the server and the handler goes on once the
server has appended it to its log and acknowledged it. A step leaves two journal entries (its
Run command and the result's notification), and strace counts ~2 fdatasync per step, all on
the log-server's RocksDB WAL (`python -m benchmarks.peers.syncs --systems restate`; a
RocksDB flush that falls in one run of the two adds a few more).

Sleeping counts a sleeper as started once its sleep is in the server's journal. Over HTTP/2
the SDK keeps a waiting invocation open until the server's inactivity timeout (1 minute)
asks it to suspend, so the workload also reports when all are suspended (suspended_s).

Replay crashes everything: a child process serves the SDK and SIGKILLs itself inside the
replay handler once N steps are journaled; then the server is SIGKILLed too, relaunched on
the same data directory and ports, and the SDK served here again. The server recovers the
invocation from disk and retries it; the SDK replays its journal of N steps without running
any step body, and events_per_s is N over that replay, as for DBOS.

    python -m benchmarks.peers.restate_peer            # self-check at tiny sizes
    python -m benchmarks.peers.restate_peer full       # the benchmark's sizes
    python -m benchmarks.peers.restate_peer sequential 200   # one workload (e.g. under strace)
    python -m benchmarks.peers.restate_peer install    # npm install the server, if missing
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ._common import (
    Unsupported,
    die_with_parent,
    free_ports,
    latency_summary,
    log_tail,
    rss_mb,
    self_check,
    stop_process,
)

try:
    import httpx
    import restate
    from hypercorn.asyncio import serve
    from hypercorn.config import Config
except ImportError as error:  # reported by unavailable(), so the table can say why
    _IMPORT_ERROR: str | None = (
        f"restate-sdk, hypercorn or httpx do not import (pip install -e '.[bench]'): {error}"
    )
else:
    _IMPORT_ERROR = None

NAME = "restate"

SERVER_PACKAGE = "@restatedev/restate-server"
SERVER_VERSION = "1.7.12"
_REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_CACHE = _REPO_ROOT / "benchmarks" / ".restate"  # npm's prefix for the server (git-ignored)
INSTALL_LIMIT_S = 300.0
SERVER_START_LIMIT_S = 30.0  # bounded wait for the server to answer
SERVER_STOP_LIMIT_S = 10.0  # SIGTERM, then SIGKILL after this long
WORKLOAD_LIMIT_S = 500.0  # under the orchestrator's 600 s worker timeout
SLEEP = timedelta(hours=1)  # the durable sleep of the sleeping workload
SLEEPING_BUDGET_S = 300.0  # past it, the sleeping workload gives up (Unsupported)
SLEEPING_PROJECT_AFTER_S = 20.0  # then give up early if the ingress accepts too slowly
INACTIVITY_TIMEOUT_S = 60.0  # the server's default: a waiting invocation suspends after it
START_CONCURRENCY = 100  # sleeping: /send requests in flight at once
RECORD_BUDGET_S = 400.0  # replay: recording the journal (the caller gives a worker 600 s)
REPLAY_BUDGET_S = 150.0  # replay: relaunch until the recovered invocation passes its steps

_marks: dict[str, float] = {}  # replay: when the handler was entered, and passed its steps
_passed = asyncio.Event()  # set where the replay handler passes its journaled steps
_executed = [0]  # step bodies run in this process (replay: must stay 0, results are journaled)
_crash_after_steps = [False]  # replay's child process: die once the steps are journaled


def _mark(name: str) -> None:
    _marks[name] = time.perf_counter()
    if name == "passed":
        _passed.set()


if _IMPORT_ERROR is None:
    _BENCH = restate.Service("bench")

    async def _echo(index: int) -> int:
        """The trivial step: returns its argument."""
        _executed[0] += 1
        return index

    @_BENCH.handler(name="steps")
    async def _steps(ctx: restate.Context, count: int) -> list[float]:
        """`count` steps in sequence; perf_counter() after each (for latencies)."""
        stamps = []
        for index in range(count):
            await ctx.run_typed("step", _echo, index=index)
            stamps.append(time.perf_counter())
        return stamps

    @_BENCH.handler(name="sleeper")
    async def _sleeper(ctx: restate.Context) -> None:
        """Sleeps an hour: a durable timer on the server."""
        await ctx.sleep(SLEEP)

    @_BENCH.handler(name="replay")
    async def _replay(ctx: restate.Context, count: int) -> int:
        """`count` steps; in replay's child process, a crash once they are journaled."""
        _mark("entered")
        for index in range(count):
            await ctx.run_typed("step", _echo, index=index)
            if _crash_after_steps[0] and index % 100 == 99:
                _give_up_if_slow(count)
        _mark("passed")
        if _crash_after_steps[0]:
            print("ready", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return count


def _give_up_if_slow(steps: int) -> None:
    """Replay's child: exit (printing "slow RATE") if recording would overrun its budget."""
    elapsed = time.perf_counter() - _marks["entered"]
    rate = _executed[0] / elapsed
    if elapsed > RECORD_BUDGET_S or (elapsed > 10 and steps / rate > RECORD_BUDGET_S):
        print(f"slow {rate:.1f}", flush=True)
        os._exit(3)


# --- installing and finding the server ---------------------------------------------------------


def _platform_package() -> str | None:
    """npm's platform package holding the binary for this machine, or None if there is none."""
    system = {"linux": "linux", "darwin": "darwin"}.get(sys.platform)
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    if system is None or arch is None:
        return None
    return f"{SERVER_PACKAGE}-{system}-{arch}"


def _server_binary() -> Path | None:
    """restate-server from benchmarks/.restate/, else from PATH; None if neither has it."""
    package = _platform_package()
    if package is not None:
        cached = SERVER_CACHE / "node_modules" / package / "bin" / "restate-server"
        if cached.is_file() and os.access(cached, os.X_OK):
            return cached
    found = shutil.which("restate-server")
    return Path(found) if found else None


def install_server() -> str | None:
    """`npm install` the server into benchmarks/.restate/, no scripts run; None, or why not.

    Offline (the registry unreachable), npm gives up after one quick retry and the reason says
    so, rather than npm's advice about proxies.
    """
    if _platform_package() is None:
        return f"{SERVER_PACKAGE} ships no binary for {sys.platform} {platform.machine()}"
    npm = shutil.which("npm")
    if npm is None:
        return (
            f"npm is not installed (Debian: apt-get install npm); restate-server comes from "
            f"the npm registry ({SERVER_PACKAGE}@{SERVER_VERSION})"
        )
    SERVER_CACHE.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--prefix", str(SERVER_CACHE), "--ignore-scripts", "--no-audit"]
    command += ["--no-fund", "--no-save", "--fetch-retries=1", "--fetch-retry-mintimeout=1000"]
    command += ["--fetch-retry-maxtimeout=5000", f"{SERVER_PACKAGE}@{SERVER_VERSION}"]
    wanted = f"{SERVER_PACKAGE}@{SERVER_VERSION}"
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=INSTALL_LIMIT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return (
            f"npm install {wanted} did not finish within {INSTALL_LIMIT_S:.0f} s "
            f"(a slow or unreachable npm registry?)"
        )
    except OSError as error:
        return f"npm install {wanted} could not run: {error!r}"
    if done.returncode != 0:
        return _install_failure(wanted, done.returncode, done.stderr or done.stdout)
    return None


_NETWORK_ERRORS = (
    "ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ENETUNREACH",
    "EHOSTUNREACH", "ERR_SOCKET_TIMEOUT",
)  # fmt: skip


def _install_failure(wanted: str, returncode: int, output: str) -> str:
    """Why `npm install` failed, from its output: offline said as such, else npm's error."""
    lines = [line.removeprefix("npm error").strip() for line in output.splitlines()]
    code = next((line.split()[1] for line in lines if line.startswith("code ")), "")
    fetch = next((line for line in lines if "FetchError" in line or "request to" in line), "")
    if code in _NETWORK_ERRORS:
        return (
            f"cannot download {wanted}: the npm registry is unreachable (offline?): "
            f"{fetch or code}. Install it once with a network (python -m "
            f"benchmarks.peers.restate_peer install, into {SERVER_CACHE}) or put restate-server "
            f"on PATH"
        )
    meaningful = [line for line in lines if line and not line.startswith(("at ", "A complete"))]
    return f"npm install {wanted} exited {returncode}: {' | '.join(meaningful[:4])}"


@functools.cache
def unavailable() -> str | None:
    """None if the SDK imports and restate-server runs (installing it first if need be)."""
    if _IMPORT_ERROR is not None:
        return _IMPORT_ERROR
    binary = _server_binary()
    if binary is None:
        why_not = install_server()
        if why_not is not None:
            return why_not
        binary = _server_binary()
        if binary is None:
            return f"npm installed {SERVER_PACKAGE}@{SERVER_VERSION} but left no restate-server"
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{binary} --version failed: {error!r}"
    if done.returncode != 0 or not done.stdout.startswith("restate-server"):
        return f"{binary} --version exited {done.returncode}: {done.stderr.strip()[-500:]}"
    return None


def _require() -> None:
    reason = unavailable()
    if reason is not None:
        raise Unsupported(reason)


# --- the server, the SDK's deployment, the client ----------------------------------------------


@dataclass(frozen=True)
class _Ports:
    """Loopback ports of one run: the server's three and the SDK's."""

    ingress: int
    admin: int
    node: int
    sdk: int

    @classmethod
    def free(cls) -> _Ports:
        return cls(*free_ports(4))


@dataclass
class _Server:
    """A running restate-server."""

    process: subprocess.Popen[bytes]
    ingress: str  # base URLs
    admin: str
    log: Path

    @property
    def pid(self) -> int:
        """The server's process id (for RSS)."""
        return self.process.pid

    def crash(self) -> None:
        """SIGKILL, as a crash would."""
        self.process.kill()
        self.process.wait()


def _client() -> httpx.AsyncClient:
    """An HTTP client for the admin and ingress APIs: no pool limit, no proxies from the env."""
    return httpx.AsyncClient(
        timeout=WORKLOAD_LIMIT_S,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
        trust_env=False,
    )


@contextlib.asynccontextmanager
async def _server(
    directory: Path, ports: _Ports, client: httpx.AsyncClient
) -> AsyncIterator[_Server]:
    """Starts restate-server on `directory`; stops it on the way out, always.

    Raises Unsupported with the log's tail if it does not answer within SERVER_START_LIMIT_S.
    """
    binary = _server_binary()
    if binary is None:
        raise Unsupported("no restate-server binary")
    log = directory / "restate-server.log"
    environment = {
        **os.environ,
        "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ports.ingress}",
        "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{ports.admin}",
        "RESTATE_BIND_ADDRESS": f"127.0.0.1:{ports.node}",
        "RESTATE_ADVERTISED_ADDRESS": f"http://127.0.0.1:{ports.node}/",
        "RESTATE_DISABLE_TELEMETRY": "true",
    }
    command = [str(binary), "--no-logo", "--node-name", "bench", "--listen-mode", "tcp"]
    command += ["--base-dir", str(directory / "restate-data"), "--log-disable-ansi-codes", "true"]
    with log.open("ab") as log_file:
        # Popen on this (the main) thread: PDEATHSIG fires when the creating thread exits.
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=environment,
            preexec_fn=die_with_parent,  # noqa: PLW1509 (only prctl, no locks taken)
        )
    try:
        server = _Server(
            process, f"http://127.0.0.1:{ports.ingress}", f"http://127.0.0.1:{ports.admin}", log
        )
        await _wait_healthy(server, client)
        yield server
    finally:
        stop_process(process, SERVER_STOP_LIMIT_S)


async def _wait_healthy(server: _Server, client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + SERVER_START_LIMIT_S
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise Unsupported(
                f"restate-server exited with {server.process.returncode}: {log_tail(server.log)}"
            )
        try:
            admin = await client.get(f"{server.admin}/health", timeout=5)
            ingress = await client.get(f"{server.ingress}/restate/health", timeout=5)
            if admin.status_code == ingress.status_code == 200:
                return
            last = RuntimeError(f"health: admin {admin.status_code}, ingress {ingress.status_code}")
        except httpx.HTTPError as error:  # not up yet
            last = error
        await asyncio.sleep(0.05)
    raise Unsupported(
        f"restate-server did not answer within {SERVER_START_LIMIT_S:.0f} s "
        f"(last error: {last!r}): {log_tail(server.log)}"
    )


@contextlib.asynccontextmanager
async def _serving(port: int) -> AsyncIterator[None]:
    """Serves the SDK's ASGI app (the "bench" service) with hypercorn on 127.0.0.1:`port`."""
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.h2_max_concurrent_streams = 2**31 - 1  # as the SDK's test harness
    config.keep_alive_max_requests = 2**31 - 1
    config.keep_alive_timeout = 2**31 - 1
    config.loglevel = "ERROR"  # not the warning that the SDK's app has no lifespan support
    shutdown = asyncio.Event()
    serving = asyncio.create_task(
        serve(restate.app([_BENCH]), config, shutdown_trigger=shutdown.wait, mode="asgi")
    )
    try:
        deadline = time.monotonic() + SERVER_START_LIMIT_S
        while True:
            if serving.done():
                serving.result()  # raises what stopped it
                raise RuntimeError(f"hypercorn stopped serving on port {port}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)
            else:
                writer.close()
                await writer.wait_closed()
                break
        yield
    finally:
        shutdown.set()
        with contextlib.suppress(TimeoutError):  # then wait_for has cancelled it
            await asyncio.wait_for(serving, timeout=SERVER_STOP_LIMIT_S)


async def _register(server: _Server, client: httpx.AsyncClient, ports: _Ports) -> None:
    """Registers the SDK's deployment with the server (discovery runs over HTTP/2)."""
    answer = await client.post(
        f"{server.admin}/deployments", json={"uri": f"http://127.0.0.1:{ports.sdk}"}
    )
    if answer.status_code not in (200, 201):
        raise RuntimeError(f"registering the deployment: {answer.status_code} {answer.text}")


async def _call(server: _Server, client: httpx.AsyncClient, handler: str, argument: Any) -> Any:
    """Invokes bench/`handler` through the ingress and returns its (JSON) result."""
    answer = await client.post(f"{server.ingress}/bench/{handler}", json=argument)
    if answer.status_code != 200:
        raise RuntimeError(f"bench/{handler}: {answer.status_code} {answer.text[:500]}")
    return answer.json()


async def _send(server: _Server, client: httpx.AsyncClient, handler: str, argument: Any) -> None:
    """Starts bench/`handler` through the ingress without waiting for it (202 Accepted)."""
    answer = await client.post(f"{server.ingress}/bench/{handler}/send", json=argument)
    if answer.status_code not in (200, 202):
        raise RuntimeError(f"bench/{handler}/send: {answer.status_code} {answer.text[:500]}")


@contextlib.asynccontextmanager
async def _deployed(directory: Path) -> AsyncIterator[tuple[_Server, httpx.AsyncClient]]:
    """Server, SDK deployment registered and warmed up by one 1-step invocation, a client."""
    ports = _Ports.free()
    async with (
        _client() as client,
        _serving(ports.sdk),
        _server(Path(directory), ports, client) as server,
    ):
        await _register(server, client, ports)
        await _call(server, client, "steps", 1)
        yield server, client


async def _query(server: _Server, client: httpx.AsyncClient, sql: str) -> list[dict[str, Any]]:
    """Rows of a query on the server's introspection tables (the admin SQL API)."""
    answer = await client.post(
        f"{server.admin}/query", json={"query": sql}, headers={"accept": "application/json"}
    )
    if answer.status_code != 200:
        raise RuntimeError(f"admin query: {answer.status_code} {answer.text[:500]}")
    rows: list[dict[str, Any]] = answer.json()["rows"]
    return rows


async def _status_counts(server: _Server, client: httpx.AsyncClient) -> dict[str, int]:
    """Invocations by status (pending, running, suspended, ...)."""
    sql = "SELECT status, count(*) AS n FROM sys_invocation GROUP BY status"
    return {row["status"]: int(row["n"]) for row in await _query(server, client, sql)}


async def _sleeps_journaled(server: _Server, client: httpx.AsyncClient) -> int:
    """How many sleeps the server's journals hold."""
    sql = "SELECT count(*) AS n FROM sys_journal WHERE entry_type = 'Command: Sleep'"
    return int((await _query(server, client, sql))[0]["n"])


# --- workloads ---------------------------------------------------------------------------------


async def sequential(directory: Path, steps: int) -> dict[str, Any]:
    """One invocation of `steps` steps; p50/p99 of the gaps between steps, seen in the handler."""
    _require()
    async with asyncio.timeout(WORKLOAD_LIMIT_S), _deployed(directory) as (server, client):
        started = time.perf_counter()
        stamps: list[float] = await _call(server, client, "steps", steps)
        elapsed = time.perf_counter() - started
    if len(stamps) != steps:
        raise RuntimeError(f"{len(stamps)} step times for {steps} steps")
    latencies = [after - before for before, after in zip([started, *stamps], stamps, strict=False)]
    return {"steps_per_s": steps / elapsed, **latency_summary(latencies)}


async def concurrent(directory: Path, workflows: int, steps: int) -> dict[str, Any]:
    """`workflows` invocations of `steps` steps, started together; total steps per second."""
    _require()
    async with asyncio.timeout(WORKLOAD_LIMIT_S), _deployed(directory) as (server, client):
        started = time.perf_counter()
        results = await asyncio.gather(
            *(_call(server, client, "steps", steps) for _ in range(workflows))
        )
        elapsed = time.perf_counter() - started
    if [len(stamps) for stamps in results] != [steps] * workflows:
        raise RuntimeError("a concurrent invocation returned a wrong number of step times")
    return {"steps_per_s": workflows * steps / elapsed}


async def sleeping(directory: Path, workflows: int) -> dict[str, Any]:
    """`workflows` invocations that each sleep an hour (a durable timer on the server).

    start_s runs from the first /send until the server's journals hold every invocation's
    sleep (the point where durable, DBOS and Temporal count a sleeper as started); /send
    requests go START_CONCURRENCY at a time. As shipped the SDK does not suspend by itself
    over HTTP/2: a sleeper stays in flight (an open stream to the SDK, a task here) until the
    server's 1-minute inactivity timeout asks it to suspend, so suspended_s, until the server
    lists all of them as suspended, is about a minute more. rss_mb is the growth of this
    process's RSS plus the server's by then (all suspended), rss_mb_asleep the same when
    start_s ends (all in flight). Past SLEEPING_BUDGET_S, or SLEEPING_PROJECT_AFTER_S into it
    if the ingress's rate of accepting cannot make it, this raises Unsupported with the
    figures reached.
    """
    _require()
    async with _deployed(directory) as (server, client):
        rss_before = rss_mb() + rss_mb(server.pid)
        gate = asyncio.Semaphore(START_CONCURRENCY)
        accepted = 0
        marks: dict[str, float] = {}
        rss_asleep = 0.0

        async def start() -> None:
            nonlocal accepted
            async with gate:
                await _send(server, client, "sleeper", None)
            accepted += 1
            if accepted == workflows:
                marks["accepted"] = time.perf_counter()

        started = time.perf_counter()
        starting = asyncio.gather(*(start() for _ in range(workflows)))
        try:
            while True:
                await asyncio.sleep(0.5)
                if starting.done():
                    starting.result()  # a failed /send fails the workload
                if "asleep" not in marks and await _sleeps_journaled(server, client) >= workflows:
                    marks["asleep"] = time.perf_counter()
                    rss_asleep = rss_mb() + rss_mb(server.pid) - rss_before
                counts = await _status_counts(server, client) if "asleep" in marks else {}
                if counts.get("suspended", 0) >= workflows:
                    break
                elapsed = time.perf_counter() - started
                if elapsed > SLEEPING_BUDGET_S or (
                    elapsed > SLEEPING_PROJECT_AFTER_S
                    and accepted / elapsed * (SLEEPING_BUDGET_S - INACTIVITY_TIMEOUT_S) < workflows
                ):
                    raise Unsupported(
                        f"{workflows:,} sleeping invocations do not start and suspend within "
                        f"{SLEEPING_BUDGET_S:.0f} s (as shipped one waits in flight until the "
                        f"server's 1-minute inactivity timeout). After {elapsed:.0f} s: "
                        f"{accepted:,} accepted by the ingress ({accepted / elapsed:,.0f}/s), "
                        f"{await _sleeps_journaled(server, client):,} sleeps journaled, "
                        f"{counts.get('suspended', 0):,} suspended, RSS "
                        f"+{rss_mb() + rss_mb(server.pid) - rss_before:,.0f} MiB "
                        f"(server {rss_mb(server.pid):,.0f} MiB)"
                    )
            await starting
        finally:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        finished = time.perf_counter()
        grown = rss_mb() + rss_mb(server.pid) - rss_before
    return {
        "start_s": marks["asleep"] - started,
        "rss_mb": grown,
        "rss_mb_asleep": rss_asleep,
        "accepted_s": marks["accepted"] - started,
        "suspended_s": finished - started,
    }


def _replay_child(port: int, steps: int) -> None:
    """In a child process: serve the SDK until the replay handler has journaled `steps`, die.

    Prints "serving" once hypercorn listens. The handler prints "ready" and SIGKILLs this
    process once its last step is acknowledged by the server (a crash mid-invocation), or
    prints "slow RATE" and exits if recording at Restate's rate would overrun RECORD_BUDGET_S.
    """
    _crash_after_steps[0] = True

    async def run() -> None:
        async with _serving(port):
            print("serving", flush=True)
            await asyncio.Event().wait()  # until the handler ends this process

    asyncio.run(run())


async def _record(
    directory: Path, ports: _Ports, client: httpx.AsyncClient, steps: int
) -> subprocess.CompletedProcess[str]:
    """Runs the replay handler in a child process until it crashes with `steps` journaled."""
    code = (
        "import sys; from benchmarks.peers import restate_peer; "
        "restate_peer._replay_child(int(sys.argv[1]), int(sys.argv[2]))"
    )
    command = [sys.executable, "-c", code, str(ports.sdk), str(steps)]
    async with _server(directory, ports, client) as server:
        with (directory / "sdk-child.log").open("ab") as child_log:
            child = await asyncio.create_subprocess_exec(
                *command,
                cwd=_REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=child_log,
                preexec_fn=die_with_parent,
            )
        try:
            assert child.stdout is not None
            first = await asyncio.wait_for(child.stdout.readline(), SERVER_START_LIMIT_S)
            if first.strip() != b"serving":
                raise RuntimeError(f"the SDK's child process did not serve: {first!r}")
            await _register(server, client, ports)
            await _send(server, client, "replay", steps)
            output, _ = await asyncio.wait_for(child.communicate(), RECORD_BUDGET_S + 60)
        except TimeoutError:
            raise RuntimeError(f"recording {steps:,} steps timed out") from None
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        server.crash()  # the journal is on disk: now the server dies too
    return subprocess.CompletedProcess(command, child.returncode or 0, output.decode(), "")


async def replay(directory: Path, steps: int) -> dict[str, Any]:
    """Resume a crashed invocation whose journal holds `steps` steps, by relaunching.

    The child process and then the server are SIGKILLed once the steps are journaled; the
    server is relaunched on the same directory and ports, and the SDK served here again.
    events_per_s is steps / (time from the handler's re-entry until it passes its journaled
    steps): the SDK's replay of the journal the server streams to it, no step body run.
    resume_s adds what comes before: the server's start and recovery, and its retry of the
    invocation (dispatch_s).
    """
    _require()
    directory = Path(directory)
    ports = _Ports.free()
    async with _client() as client:
        child = await _record(directory, ports, client, steps)
        slow = [line for line in child.stdout.splitlines() if line.startswith("slow ")]
        if slow:
            rate = float(slow[0].split()[1])
            raise Unsupported(
                f"recording {steps:,} steps through Restate would take "
                f"~{steps / max(rate, 1e-9):,.0f} s at {rate:,.0f} steps/s, over this adapter's "
                f"{RECORD_BUDGET_S:.0f} s budget"
            )
        if "ready" not in child.stdout or child.returncode != -signal.SIGKILL:
            tail = log_tail(directory / "sdk-child.log", 600)
            raise RuntimeError(f"first run failed (exit {child.returncode}): {tail}")

        started = time.perf_counter()
        async with _serving(ports.sdk), _server(directory, ports, client):
            try:
                await asyncio.wait_for(_passed.wait(), REPLAY_BUDGET_S)
            except TimeoutError:
                raise RuntimeError(
                    f"the recovered invocation did not pass {steps:,} steps in time"
                ) from None
    if _executed[0]:
        raise RuntimeError(f"recovery re-ran {_executed[0]} step bodies instead of replaying")
    return {
        "events_per_s": steps / (_marks["passed"] - _marks["entered"]),
        "resume_s": _marks["passed"] - started,
        "dispatch_s": _marks["entered"] - started,
    }


# --- self-check --------------------------------------------------------------------------------


def _main(argv: list[str]) -> None:
    if argv[:1] == ["install"]:
        print(install_server() or f"installed: {_server_binary()}", flush=True)
        return
    self_check("benchmarks.peers.restate_peer", argv, unavailable)


if __name__ == "__main__":
    _main(sys.argv[1:])
