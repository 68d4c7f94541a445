"""The benchmark scripts run (at tiny size), so they cannot rot. No timing is asserted.

The peers' adapters are also imported as their peers' runtimes import them: in a fresh
process, and Temporal's through its workflow sandbox. Slow (subprocesses): CI runs this module
on one Python only.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import durable  # noqa: F401 (its storage modules, which stubbed_syncs patches)
from benchmarks.nosync import stubbed_syncs
from benchmarks.peers import restate_peer
from benchmarks.peers.__main__ import SYSTEMS
from benchmarks.peers._common import free_ports

from .postgres_server import binaries

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def run_quick(
    module: str, tmp_path: Path, *extra: str, report: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Run `python -m module --quick` into tmp_path; its output and its JSON report (named
    `report`, by default after the module)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            module,
            "--quick",
            *extra,
            "--dir",
            str(tmp_path / "scratch"),
            "--output",
            str(tmp_path / "results"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    name = report or module.rsplit(".", 1)[-1]
    found = json.loads((tmp_path / "results" / f"{name}-quick.json").read_text())
    return result.stdout, found


def test_journal_benchmark_runs_quick(tmp_path: Path) -> None:
    output, report = run_quick("benchmarks.journal", tmp_path)
    assert "journal_single / raw_single" in output
    assert set(report["medians"]) >= {"raw_single", "journal_single", "journal_100"}


def test_engine_benchmark_runs_quick(tmp_path: Path) -> None:
    output, report = run_quick("benchmarks.engine", tmp_path, "--cpu")
    assert "sequential / raw write+fdatasync loop" in output
    assert set(report["medians"]) >= {
        "raw_single",
        "sequential",
        "raw_syncfs_batch",
        "concurrent",
        "replay_100",
    }
    # The CPU mode, syncs stubbed: us of engine CPU per live, replayed and concurrent step.
    assert "engine CPU, syncs stubbed" in output
    cpu = report["cpu_us_per_step"]["medians"]
    assert set(cpu) == {"cpu_live", "cpu_replay", "cpu_concurrent"}
    assert all(value > 0 for value in cpu.values())
    # The sleepers, quick: 200 started, then recovered by a new process on the directory.
    sleepers = report["sleepers"]
    assert sleepers["count"] == sleepers["requested"] == 200
    assert sleepers["bound"] is None
    assert sleepers["medians"]["recover_s"] > 0
    # Unloaded sleepers hold their journals by name locks (Linux OFD locks), not one open
    # journal each; where there are none, each keeps its journal's descriptor.
    journals_open = sleepers["medians"]["journal_descriptors"]
    assert journals_open == (0 if hasattr(fcntl, "F_OFD_SETLK") else 200)
    assert sleepers["medians"]["open_descriptors"] > 0
    assert len(report["targets"]) == 10


def test_engine_profile_runs_a_concurrent_workload_of_any_size(tmp_path: Path) -> None:
    """`engine_profile run concurrent --workflows W --steps S` (what `instructions
    concurrent` runs under callgrind at 0 x S, W x 0 and W x S): each size finishes."""
    for workflows, steps in ((0, 2), (3, 0), (3, 2)):
        directory = tmp_path / f"{workflows}x{steps}"
        sizes = ["--workflows", str(workflows), "--steps", str(steps), "--dir", str(directory)]
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.engine_profile", "run", "concurrent", *sizes],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert "us of process CPU per step" in result.stdout
        started = {path.name for path in directory.glob("*.journal")}
        assert started == {"warm-up.journal"} | {f"c-{n}.journal" for n in range(workflows)}


def test_engine_profile_runs_the_sleepers_workload(tmp_path: Path) -> None:
    """`engine_profile run sleepers --steps N` (what `instructions sleepers` counts): N
    sleepers started one after another, each left parked with its own journal."""
    directory = tmp_path / "sleepers"
    command = ["run", "sleepers", "--steps", "3", "--dir", str(directory)]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.engine_profile", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.startswith("sleepers: ")
    assert "us of process CPU per step" in result.stdout
    assert {path.name for path in directory.glob("*.journal")} == {
        "s-0.journal",
        "s-1.journal",
        "s-2.journal",
    }


def test_stubbed_syncs_do_nothing_and_are_put_back() -> None:
    real_fdatasync, real_fsync = os.fdatasync, os.fsync
    durable_modules = [m for n, m in sys.modules.items() if n.startswith("durable.")]
    holders = [m for m in durable_modules if real_fdatasync in vars(m).values()]
    assert holders  # (storage's sync_file, bound at import)
    with stubbed_syncs():
        os.fdatasync(-1)  # (no OSError: the real ones raise EBADF)
        os.fsync(-1)
        for module in holders:
            assert real_fdatasync not in vars(module).values()
        loaders = [vars(m)["_load_syncfs"] for m in durable_modules if "_load_syncfs" in vars(m)]
        assert loaders
        for load in loaders:
            assert load()(-1) == 0
    assert (os.fdatasync, os.fsync) == (real_fdatasync, real_fsync)
    for module in holders:
        assert real_fdatasync in vars(module).values()


def test_peers_benchmark_runs_quick_for_the_systems_ci_has(tmp_path: Path) -> None:
    output, report = run_quick("benchmarks.peers", tmp_path, "--systems", "durable,files,dbos")
    assert "| durable |" in output
    results = report["results"]
    for workload in ("sequential", "concurrent", "sleeping", "replay"):
        assert "median" in next(iter(results["durable"][workload].values())), workload
    assert "median" in results["raw"]["sequential"]["20"]
    # A peer that is not installed is reported as skipped with the reason, never dropped.
    dbos_sequential = results["dbos"]["sequential"]["20"]
    assert "median" in dbos_sequential or "skipped" in dbos_sequential


def test_visibility_benchmark_runs_quick(tmp_path: Path) -> None:
    output, report = run_quick("benchmarks.visibility", tmp_path)
    assert "cli_list" in output
    assert set(report["medians"]) >= {"raw_read", "cli_list", "ui_list_page_refresh"}


def test_postgres_benchmark_runs_quick(tmp_path: Path) -> None:
    if binaries() is None and not os.environ.get("DURABLE_TEST_POSTGRES"):
        if os.environ.get("CI"):
            pytest.fail("CI must have PostgreSQL's binaries (Debian's postgresql)")
        pytest.skip("no PostgreSQL binaries here")
    output, report = run_quick("benchmarks.postgres", tmp_path)
    assert "durable_concurrent" in output
    assert isinstance(report["medians"]["durable_concurrent"], float)
    # (DBOS comes with the bench extra: measured, or reported as skipped, never dropped)
    assert "dbos_concurrent" in report["medians"]


def test_step_cpu_benchmark_runs_quick(tmp_path: Path) -> None:
    output, report = run_quick("benchmarks.step_cpu", tmp_path)
    assert "CPU per step, syncs stubbed" in output
    (medians,) = report["medians_us"].values()
    assert set(medians) == {"live", "replay"}


def test_step_floor_benchmark_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.step_floor", "--steps", "200", "--runs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        "switch",
        "wake",
        "activity",
        "record",
        "frame",
        "write",
        "sum",
    ]


# --- the peers' adapters, imported as their peers' runtimes import them ------------------------

ADAPTERS = sorted({module for module, _ in SYSTEMS.values()})


def run_python(code: str, *args: str) -> str:
    """Run `python -c code args` from the repository's root; its output (it must succeed)."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("module", ADAPTERS)
def test_a_peer_adapter_imports_in_a_fresh_process(module: str) -> None:
    # As the benchmark's worker process, and DBOS's and Restate's replay child, import it:
    # whether or not its peer is installed (unavailable() then says why).
    run_python("import importlib, sys; importlib.import_module(sys.argv[1])", module)


TEMPORAL_SANDBOX_CHECK = """
import asyncio

from temporalio.worker import Replayer

from benchmarks.peers import temporal_peer


async def no_histories():
    return
    yield


async def main():
    # A Replayer, as a Worker, validates each workflow when it starts: the sandbox re-imports
    # the workflow's module, and what that imports, under its restrictions.
    await Replayer(workflows=temporal_peer.WORKFLOWS).replay_workflows(no_histories())


asyncio.run(main())
print("validated", *(workflow.__name__ for workflow in temporal_peer.WORKFLOWS))
"""


def test_the_temporal_adapters_workflows_pass_the_sandbox() -> None:
    # The regression this guards: _common called Path.resolve() at import, which the sandbox
    # refuses ("Failed validating workflow Steps" in every Temporal workload).
    if importlib.util.find_spec("temporalio") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have temporalio (the test extra)")
        pytest.skip("temporalio is not installed (pip install -e '.[test]')")
    output = run_python(TEMPORAL_SANDBOX_CHECK)
    assert output.split() == ["validated", "StepsWorkflow", "SleepWorkflow"]


def test_restates_server_install_says_when_the_registry_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # restate-server comes from npm on first use; offline, that fails fast and says so.
    if shutil.which("npm") is None:
        pytest.skip("no npm here")
    (closed_port,) = free_ports(1)  # nothing listens there: as a registry out of reach
    monkeypatch.setenv("npm_config_registry", f"http://127.0.0.1:{closed_port}/")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setattr(restate_peer, "SERVER_CACHE", tmp_path / ".restate")
    reason = restate_peer.install_server()
    assert reason is not None
    assert "the npm registry is unreachable (offline?)" in reason
    assert "ECONNREFUSED" in reason


def test_queues_benchmark_runs_quick(tmp_path: Path) -> None:
    output, report = run_quick("benchmarks.queues", tmp_path)
    assert "limit_overhead_ms" in output
    assert set(report["medians"]) >= {"enqueue_batched_per_s", "drain_queue_per_s", "admit_us"}


def test_query_benchmark_runs_quick(tmp_path: Path) -> None:
    (tmp_path / "scratch").mkdir()
    output, report = run_quick("benchmarks.query", tmp_path)
    assert "cold_index" in output
    assert report["journals"] == 1_200
    assert set(report["medians"]) == {
        "cold_no_index",
        "cold_index",
        "warm",
        "warm_prefix",
        "one_changed",
    }


def test_queues_benchmark_runs_quick_on_postgres(tmp_path: Path) -> None:
    if binaries() is None and not os.environ.get("DURABLE_TEST_POSTGRES"):
        if os.environ.get("CI"):
            pytest.fail("CI must have PostgreSQL's binaries (Debian's postgresql)")
        pytest.skip("no PostgreSQL binaries here")
    output, report = run_quick(
        "benchmarks.queues", tmp_path, "--store", "postgres", report="queues-postgres"
    )
    assert "limit_overhead_ms" in output
    assert report["store"] == "postgres"
    assert set(report["medians"]) >= {"enqueue_batched_per_s", "drain_queue_per_s", "admit_us"}
    if importlib.util.find_spec("dbos") is not None:  # (the bench extra: DBOS beside it)
        assert "vs_dbos_drain_queue_per_s" in report["medians"]
