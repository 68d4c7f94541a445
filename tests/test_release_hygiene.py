"""What a release carries besides the code: its metadata, and examples that say what they show."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_metadata_has_project_urls_and_classifiers() -> None:
    """What PyPI shows beside the description: where the project lives, which Pythons."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    urls = project["urls"]
    assert urls, "pyproject.toml has no [project.urls]"
    for label, url in urls.items():
        assert re.match(r"^https://[a-z0-9.-]+\.[a-z]+/", url), (label, url)
    classifiers = project["classifiers"]
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "Typing :: Typed" in classifiers


def test_examples_readme_says_what_each_example_shows() -> None:
    """examples/README.md has a row, with how to run it, for every example file."""
    readme = (ROOT / "examples" / "README.md").read_text()
    for example in sorted((ROOT / "examples").glob("*.py")):
        assert f"[{example.name}]({example.name})" in readme, example.name
        assert f"python examples/{example.name}" in readme, example.name
