"""The README: its two commands are the ones CI runs, and every link in it leads somewhere.

The README's longer examples moved to the docs site; tests/test_docs.py runs them there.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

DEMO = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && "
    ".venv/bin/python examples/order_demo.py"
)
SUITE = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest"
)


def test_the_two_commands_are_there_exactly() -> None:
    assert f"\n{DEMO}\n" in README
    assert f"\n{SUITE}\n" in README
    assert (ROOT / "examples" / "order_demo.py").exists()


def test_ci_runs_the_readmes_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"\n{SUITE}\n" in ci


def test_try_it_says_what_the_full_suite_needs() -> None:
    section = README.split("## Try it: two commands\n", 1)[1].split("\n## ", 1)[0]
    for needed in ("`chromium`", "`postgresql`", "skipped", "CI"):
        assert needed in section


def test_every_relative_link_leads_to_a_file() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    relative = [link for link in links if "://" not in link]
    assert len(relative) > 10
    missing = [link for link in relative if not (ROOT / link).exists()]
    assert missing == []
