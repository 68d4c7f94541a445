"""The docs site's code runs as written, and the site builds.

Convention for docs pages (docs/index.md, docs/tutorial/*.md, docs/how-to/*.md): every
```python block of a page is executed, the blocks in order, concatenated into one script run
by a fresh Python with a temporary directory as its cwd. A ```py block is a fragment and is
not run; ```console is shell. Two markers, HTML comments the site does not show:

- `<!-- run: pytest -->` anywhere on a page: its python blocks together are a pytest test
  module (as a user's own would be), run under pytest with warnings as errors; every
  `test_` function in it must pass.
- `<!-- file: NAME -->` right before a python block: that block is not run in the page's
  script but appended to the file NAME in the cwd, which later blocks run (the tutorial's
  shop.py, killed with SIGKILL by the next block).

Pages are found by glob, so a page added later is tested too. Running the pages and building
the site are slow tests (subprocesses; CI runs them on 3.11).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import durable
import durable.testing
import durable.web

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RUN_PAGES = sorted(
    [
        *([DOCS / "index.md"] if (DOCS / "index.md").exists() else []),
        *DOCS.glob("tutorial/*.md"),
        *DOCS.glob("how-to/*.md"),
    ]
)
FENCE = re.compile(
    r"^(<!-- file: (?P<file>[\w.-]+) -->\n)?```(?P<lang>[\w-]*)\n(?P<code>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)
TEST_FUNCTION = re.compile(r"^(?:async )?def (test_\w+)\(", re.MULTILINE)


@dataclass
class Page:
    """A docs page's code: the script it runs, the files it writes first, how it runs."""

    script: str = ""
    files: dict[str, str] = field(default_factory=dict)
    under_pytest: bool = False


def page_code(path: Path) -> Page:
    text = path.read_text()
    page = Page(under_pytest="<!-- run: pytest -->" in text)
    for block in FENCE.finditer(text):
        if block["lang"] != "python":
            continue
        if block["file"]:
            page.files[block["file"]] = page.files.get(block["file"], "") + block["code"]
        else:
            page.script += block["code"] + "\n"
    return page


def test_the_pages_are_found() -> None:
    names = {str(path.relative_to(DOCS)) for path in RUN_PAGES}
    assert {"tutorial/first-workflow.md", "how-to/testing.md"} <= names
    assert page_code(DOCS / "how-to" / "testing.md").under_pytest
    assert "shop.py" in page_code(DOCS / "tutorial" / "first-workflow.md").files


@pytest.mark.slow
@pytest.mark.parametrize("path", RUN_PAGES, ids=lambda path: str(path.relative_to(DOCS)))
def test_the_page_runs(path: Path, tmp_path: Path) -> None:
    page = page_code(path)
    if not page.script.strip():
        pytest.skip("no python block on this page")
    for name, code in page.files.items():
        (tmp_path / name).write_text(code)
    if page.under_pytest:
        (tmp_path / f"test_{path.stem.replace('-', '_')}.py").write_text(page.script)
        command = [sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider"]
    else:
        (tmp_path / "page.py").write_text(page.script)
        command = [sys.executable, "page.py"]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{path}:\n{result.stdout}\n{result.stderr}"
    if page.under_pytest:
        tests = len(TEST_FUNCTION.findall(page.script))
        assert tests > 0
        assert f"{tests} passed" in result.stdout, result.stdout


def test_every_public_name_is_in_the_api_reference() -> None:
    reference = "\n".join(path.read_text() for path in DOCS.glob("reference/*.md"))
    documented = set(re.findall(r"^::: ([\w.]+)$", reference, re.MULTILINE))
    public = {f"durable.{name}" for name in durable.__all__}
    public |= {f"durable.testing.{name}" for name in durable.testing.__all__}
    public |= {f"durable.web.{name}" for name in durable.web.__all__}
    assert public - documented == set(), "add these to a page under docs/reference/"
    assert documented - public == set(), "not public names"


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """mkdocs build --strict: a broken link, a missing reference or a bad docstring fails."""
    if importlib.util.find_spec("mkdocs") is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs the docs extra: mkdocs is missing")
        pytest.skip("the docs extra is not installed: pip install -e '.[docs]'")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "index.html").exists()
    assert (tmp_path / "reference" / "runtime" / "index.html").exists()
