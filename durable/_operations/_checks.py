"""Before an operation writes: would the current code replay what it keeps?

A fork onto new code, or a resumption after a deploy, replays the records it keeps with
the code that will run them. This runs that replay first, in memory (writing and running
nothing), so a prefix that would diverge is refused with the step and the call site
rather than written and left to fail. It also checks an override against the return
annotation of the activity the code calls at that step.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from .._definitions import Workflow
from .._encoding import convert
from .._engine._checking import NoChildren, ReadOnlyJournal
from .._engine._records import CHILD_PREFIX
from .._engine._specs import ActivitySpec
from .._engine._workflow_run import WorkflowRun
from .._errors import InvalidOverride, NonDeterminismError, SerializationError
from .._storage._frames import StoredRecord


def check_replays(
    workflow: Workflow[..., Any],
    workflow_id: str,
    payloads: list[bytes],
    *,
    where: str,
    override: tuple[int, Any] | None = None,
    source: str | None = None,
) -> None:
    """Replay `payloads` (a journal to be) with `workflow`'s code; raise what it would hit.

    Raises:
        NonDeterminismError: the code diverges from the records (step, call site).
        InvalidOverride: the overridden value does not fit the activity's return annotation.
    """
    stored = [StoredRecord(index, payload) for index, payload in enumerate(payloads)]
    asked: dict[int, ActivitySpec] = {}
    run = WorkflowRun(
        spec=workflow.spec,
        workflow_id=workflow_id,
        journal=ReadOnlyJournal(stored),
        arguments=None,
        children=NoChildren(),
        location=where,
        asked=asked,
    )
    try:
        run.check_replay()
    except NonDeterminismError as error:
        error.add_note(
            "Refused before anything was written: the records it would keep do not replay "
            "with this code (see `durable verify`)"
        )
        raise
    except SerializationError as error:
        if override is None:
            raise
        raise InvalidOverride(
            workflow_id=source or workflow_id, step=override[0], problem=str(error)
        ) from None
    if override is not None:
        step, value = override
        spec = asked.get(step)
        if spec is not None:
            problem = fit_problem(value, spec.return_type)
            if problem is not None:
                raise InvalidOverride(
                    workflow_id=source or workflow_id,
                    step=step,
                    problem=f"{_step_kind(spec.name)} returns {_name(spec.return_type)}, "
                    f"and {problem}",
                )


def fit_problem(value: Any, hint: Any) -> str | None:  # noqa: PLR0911 (a return a case)
    """Why `value` (as decoded from the journal) is not a `hint`; None if it fits.

    What the engine can check: plain classes by isinstance (an int is a float), unions by
    any member, containers by their class, dataclasses and the like by rebuilding them.
    Anything else (Any, a TypeVar, no annotation) fits.
    """
    if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
        return None
    if hint is None or hint is type(None):
        return None if value is None else f"{_shown(value)} is not None"
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        members = typing.get_args(hint)
        if any(fit_problem(value, member) is None for member in members):
            return None
        return f"{_shown(value)} is none of {_name(hint)}"
    if origin is typing.Literal:
        return None if value in typing.get_args(hint) else f"{_shown(value)} is not {hint}"
    try:
        rebuilt = convert(value, hint)
    except SerializationError as error:
        return str(error)
    klass = origin if isinstance(origin, type) else hint
    if not isinstance(klass, type):
        return None
    if klass is float and isinstance(rebuilt, int) and not isinstance(rebuilt, bool):
        return None
    if klass in (list, tuple) and isinstance(rebuilt, list | tuple):
        return None  # (msgpack keeps no difference between them)
    if isinstance(rebuilt, klass) and not (klass is int and isinstance(rebuilt, bool)):
        return _inner_problem(value, hint, klass)
    return f"{_shown(value)} is not of type {_name(hint)}"


def _inner_problem(value: Any, hint: Any, klass: type) -> str | None:
    """What inside `value` does not fit: a dataclass's fields, a container's items.

    (convert() rebuilds a dataclass from any values of its fields, and a list of anything:
    an override must fit all the way down, as the activity's own result would.)
    """
    if dataclasses.is_dataclass(klass) and isinstance(value, dict):
        try:
            hints = typing.get_type_hints(klass)
        except Exception:  # (an annotation that does not resolve here: not checked)
            return None
        for field in dataclasses.fields(klass):
            if field.name in value:
                problem = fit_problem(value[field.name], hints.get(field.name, Any))
                if problem is not None:
                    return f"its field {field.name!r}: {problem}"
        return None
    for where, item, item_hint in _items(value, typing.get_args(hint), klass):
        problem = fit_problem(item, item_hint)
        if problem is not None:
            return f"its {where}: {problem}"
    return None


def _items(value: Any, arguments: tuple[Any, ...], klass: type) -> list[tuple[str, Any, Any]]:
    """A container's items with the hints they must fit ([] when there is nothing to check)."""
    if klass is dict and isinstance(value, dict) and len(arguments) == 2:
        pairs = [(f"key {_shown(key)}", key, arguments[0]) for key in value]
        return pairs + [(f"item {_shown(key)}", item, arguments[1]) for key, item in value.items()]
    if not arguments or not isinstance(value, list | tuple | set | frozenset):
        return []
    if klass is tuple and not (len(arguments) == 2 and arguments[1] is Ellipsis):
        if len(arguments) != len(value):
            return [("length", len(value), typing.Literal[len(arguments)])]
        return [(f"item {i}", item, arguments[i]) for i, item in enumerate(value)]
    if klass in (list, tuple, set, frozenset):
        return [(f"item {i}", item, arguments[0]) for i, item in enumerate(value)]
    return []


def _step_kind(name: str) -> str:
    """'activity 'charge'' or 'child workflow 'kid'' (a child step's spec is named child:...)."""
    if name.startswith(CHILD_PREFIX):
        return f"child workflow {name.removeprefix(CHILD_PREFIX)!r}"
    return f"activity {name!r}"


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"
