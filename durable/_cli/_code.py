"""Workflow code for a command: --workflow MODULE[:NAME], imported as `python -m` would."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from .._definitions import Workflow


def load_workflows(spec: str) -> list[Workflow[..., Any]]:
    """`module:name` (one workflow) or `module` (every workflow it defines at top level)."""
    module_name, _, attribute = spec.partition(":")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # (as `python -m` would: the project's modules)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise click.BadParameter(f"cannot import {module_name!r}: {error}") from error
    if attribute:
        found = getattr(module, attribute, None)
        if not isinstance(found, Workflow):
            raise click.BadParameter(
                f"{spec!r} is not a workflow (a function decorated with @durable.workflow)"
            )
        return [found]
    workflows = [value for value in vars(module).values() if isinstance(value, Workflow)]
    if not workflows:
        raise click.BadParameter(f"module {module_name!r} defines no @durable.workflow")
    return workflows
