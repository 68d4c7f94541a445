"""TestRuntime changes a Runtime by composition (RuntimeSeams), never by overriding."""

from __future__ import annotations

from pathlib import Path

import pytest

from durable import Runtime
from durable._engine._clock import SYSTEM_CLOCK
from durable._seams import AS_OPENED, PRODUCTION
from durable.testing import CrashPoint, TestRuntime

pytestmark = pytest.mark.anyio


def private_names(cls: type) -> set[str]:
    """The single-underscore names `cls` defines itself (methods, properties, attributes)."""
    return {name for name in vars(cls) if name.startswith("_") and not name.startswith("__")}


def test_test_runtime_overrides_no_private_method_of_runtime() -> None:
    runtime_private = set().union(*(private_names(cls) for cls in Runtime.__mro__))
    below_runtime = TestRuntime.__mro__[: TestRuntime.__mro__.index(Runtime)]
    for cls in below_runtime:
        overridden = private_names(cls) & runtime_private
        assert not overridden, f"{cls.__name__} overrides Runtime's {sorted(overridden)}"


async def test_a_runtime_runs_on_production_seams_by_default(tmp_path: Path) -> None:
    async with Runtime(tmp_path) as runtime:
        assert runtime._seams is PRODUCTION
        assert runtime._clock is SYSTEM_CLOCK
    assert PRODUCTION.journals is AS_OPENED
    assert PRODUCTION.substitute is None
    assert not PRODUCTION.restarts_after(RuntimeError("boom"))


async def test_test_runtime_passes_its_seams_in(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path) as plain:
        assert plain._clock is plain._virtual
        assert plain._seams.journals is AS_OPENED
    async with TestRuntime(tmp_path, crash=CrashPoint(3)) as crashing:
        assert crashing._seams.journals is crashing._injector
