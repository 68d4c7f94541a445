"""The benchmark scripts run (at tiny size), so they cannot rot. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_journal_benchmark_runs_quick(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.journal",
            "--quick",
            "--dir",
            str(tmp_path / "scratch"),
            "--output",
            str(tmp_path / "results"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "journal_single / raw_single" in result.stdout
    report = json.loads((tmp_path / "results" / "journal-quick.json").read_text())
    assert set(report["medians"]) >= {"raw_single", "journal_single", "journal_100"}


def test_engine_benchmark_runs_quick(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.engine",
            "--quick",
            "--dir",
            str(tmp_path / "scratch"),
            "--output",
            str(tmp_path / "results"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "sequential / raw_single" in result.stdout
    report = json.loads((tmp_path / "results" / "engine-quick.json").read_text())
    assert set(report["medians"]) >= {"raw_single", "sequential", "replay_100"}


def test_peers_benchmark_runs_quick_for_the_systems_ci_has(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.peers",
            "--quick",
            "--systems",
            "durable,files,dbos",
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
    assert "| durable |" in result.stdout
    report = json.loads((tmp_path / "results" / "peers-quick.json").read_text())
    results = report["results"]
    for workload in ("sequential", "concurrent", "sleeping", "replay"):
        assert "median" in next(iter(results["durable"][workload].values())), workload
    assert "median" in results["raw"]["sequential"]["20"]
    # A peer that is not installed is reported as skipped with the reason, never dropped.
    dbos_sequential = results["dbos"]["sequential"]["20"]
    assert "median" in dbos_sequential or "skipped" in dbos_sequential
