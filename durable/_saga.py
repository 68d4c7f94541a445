"""Sagas: undo the steps a workflow took when a later one fails or it is cancelled."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, ParamSpec

from ._definitions import Activity
from ._engine._context import current_run
from ._errors import CompensationFailed, OutsideWorkflowError

P = ParamSpec("P")


class Saga:
    """Collects compensations as the workflow goes; runs them in reverse if it fails.

        async with durable.Saga() as saga:
            payment = await charge(order)
            saga.add(refund, payment)
            await ship(order)          # fails: refund(payment) runs, then the error goes on

    Compensations are activities: journaled steps with their own retry policies, so a crash
    while compensating resumes there and never repeats one that finished. They run when the
    block raises, a cancellation included; a compensation that fails for good does not stop
    the others, and CompensationFailed reports it after they ran.
    """

    def __init__(self) -> None:
        self._compensations: list[tuple[Activity[..., Any], tuple[Any, ...], dict[str, Any]]]
        self._compensations = []

    def add(self, compensation: Activity[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        """Register an activity call that undoes the step just taken."""
        if not isinstance(compensation, Activity):
            raise TypeError(
                f"{compensation!r} is not a durable activity: compensations must be activities "
                "(decorate the function with @durable.activity) so they are journaled"
            )
        self._compensations.append((compensation, args, kwargs))

    async def compensate(self) -> None:
        """Run the compensations added so far, newest first (each at most once).

        Raises:
            CompensationFailed: some failed for good; every other one still ran.
        """
        run = current_run()
        if run is None:
            raise OutsideWorkflowError("Saga.compensate() runs compensations inside a workflow")
        failures: list[BaseException] = []
        while self._compensations:
            compensation, args, kwargs = self._compensations.pop()
            try:
                await compensation(*args, **kwargs)
            except Exception as error:
                failures.append(error)
        if failures:
            raise CompensationFailed(workflow_id=run.workflow_id, failures=failures)

    async def __aenter__(self) -> Saga:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc, Exception | asyncio.CancelledError):  # not on _Diverged & co.
            await self.compensate()
