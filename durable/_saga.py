"""Sagas: undo the steps a workflow took when a later one fails or it is cancelled."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, ParamSpec

from ._definitions import Activity
from ._engine._workflow_run import current_run
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

        A cancellation of the workflow that arrives meanwhile stops none of them: it is
        raised once they all ran.

        Raises:
            CompensationFailed: some failed for good; every other one still ran.
            CancelledError: the workflow was cancelled while they ran.
        """
        run = current_run()
        if run is None:
            raise OutsideWorkflowError("Saga.compensate() runs compensations inside a workflow")
        failures: list[BaseException] = []
        cancelled: asyncio.CancelledError | None = None
        while self._compensations:
            compensation, args, kwargs = self._compensations.pop()
            call = asyncio.ensure_future(compensation(*args, **kwargs))
            while not call.done():  # a cancel meanwhile must not stop it, nor the others
                try:
                    await asyncio.shield(call)
                except asyncio.CancelledError as error:
                    if not call.done():
                        cancelled = error
                except Exception:  # noqa: S110 (read from `call` below)
                    pass
            outcome = call.exception()  # (raises CancelledError if the call was cancelled)
            if isinstance(outcome, Exception):
                failures.append(outcome)
            elif outcome is not None:
                raise outcome
        if failures:
            raise CompensationFailed(workflow_id=run.workflow_id, failures=failures)
        if cancelled is not None:
            raise cancelled

    async def __aenter__(self) -> Saga:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc, Exception | asyncio.CancelledError):  # not on Diverged & co.
            await self.compensate()
