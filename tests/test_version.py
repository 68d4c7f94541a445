"""The version lives in one place (durable/_version.py), and `durable --version` prints it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from click.testing import CliRunner

import durable
from durable._cli import main

ROOT = Path(__file__).resolve().parent.parent
# PEP 440's public version, as 0.y.z while alpha: release, then an optional pre, post, dev
PEP_440 = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")


def test_the_version_is_pep_440() -> None:
    assert PEP_440.match(durable.__version__), durable.__version__


def test_hatch_reads_it_from_the_one_place() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "durable/_version.py"


def test_durable_version_prints_it() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"durable, version {durable.__version__}\n"


def test_python_m_durable_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "durable", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert durable.__version__ in result.stdout


def test_the_changelog_has_an_unreleased_section() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog\n")
    assert "\n## [Unreleased]\n" in changelog
