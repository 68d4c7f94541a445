"""What the engine needs to know about a workflow or an activity, as plain data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._encoding import converts
from ._retry import RetryPolicy


@dataclass(frozen=True)
class WorkflowSpec:
    """A workflow: its registered name, function and the annotations replay rebuilds values to.

    `execution_timeout`: seconds from its start until the runtime cancels it (None: never).
    """

    name: str
    fn: Callable[..., Any]
    parameter_types: tuple[Any, ...]
    return_type: Any
    execution_timeout: float | None = None


@dataclass(frozen=True)
class ActivitySpec:
    """An activity and its options (timeout in seconds per attempt, None for none)."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    timeout: float | None
    retry: RetryPolicy
    at_most_once: bool
    return_type: Any
    parameter_types: tuple[Any, ...] = ()  # of the positional parameters, in order
    keyword_types: dict[str, Any] | None = None  # of every parameter, by name
    # Derived, for the step's path: no parameter's / the result's decoded value is rebuilt
    # by `convert` (int, str, Any, ...), so a copy of plain values may skip it.
    plain_parameters: bool = field(init=False, repr=False, compare=False)
    plain_result: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keyword = (self.keyword_types or {}).values()
        plain = not any(converts(hint) for hint in (*self.parameter_types, *keyword))
        object.__setattr__(self, "plain_parameters", plain)
        object.__setattr__(self, "plain_result", not converts(self.return_type))
