"""Source excerpts for call sites: only regular .py files, bounded, never through a link."""

from __future__ import annotations

import os
from pathlib import Path

from durable._excerpts import MAX_FILE, Excerpts


def test_lines_around_a_call_site(tmp_path: Path) -> None:
    source = tmp_path / "shop.py"
    source.write_text("".join(f"line {n}\n" for n in range(1, 11)))
    excerpts = Excerpts()
    assert excerpts.around(str(source), 5) == [(n, f"line {n}") for n in range(3, 8)]
    assert excerpts.around(str(source), 1) == [(1, "line 1"), (2, "line 2"), (3, "line 3")]
    assert excerpts.around(str(source), 11) == []  # past the end: the code changed since
    source.write_text("changed\n")
    assert excerpts.around(str(source), 1) == [(1, "line 1"), (2, "line 2"), (3, "line 3")]


def test_what_a_journal_names_is_read_only_if_it_is_plain_python_source(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password\n")
    link = tmp_path / "looks.py"
    link.symlink_to(secret)
    big = tmp_path / "big.py"
    big.write_bytes(b"x = 1\n" * (MAX_FILE // 6 + 1))
    fifo = tmp_path / "fifo.py"
    os.mkfifo(fifo)
    excerpts = Excerpts()
    for named in (secret, link, big, fifo, tmp_path / "missing.py", tmp_path):
        assert excerpts.around(str(named), 1) == [], named
    assert excerpts.around("bad\0name.py", 1) == []
