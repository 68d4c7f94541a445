"""Logging that fits: records carry where they come from, and replay does not log twice.

Three things, none of which touches the logging module's global state:

- `context_fields()`: the workflow id and name, and in an activity its name, step, attempt
  and generation, of whatever code runs now (a workflow's loop, an activity's context, or
  the runtime's task of that workflow).
- `LogContext`, a logging.Filter the application adds to its handler: every record logged
  inside a workflow or an activity (durable's own, the activity's, its libraries') gets
  those fields as attributes (`record.workflow_id`...), which a JSON formatter picks up.
  durable's own loggers ("durable", "durable.storage", ...) add them too, with no filter.
- `WorkflowLogger`, a LoggerAdapter for workflow code (`durable.logger`): it adds the fields
  and drops what workflow code logs while its run replays recorded steps, so a restart does
  not repeat the log of work done before it. Code running past the last recorded step is
  new work and logs (after a crash, the stretch between the last journaled outcome and the
  crash runs again and logs again: at least once, as in Temporal).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from ._engine._log_fields import context_fields
from ._engine._workflow_run import current_run


class LogContext(logging.Filter):
    """A filter that adds durable's fields to every record logged in a workflow or activity.

    Add it to a handler (`handler.addFilter(durable.LogContext())`): records of any logger
    (your activities', the HTTP client's they call) then carry `workflow_id`,
    `workflow_name`, and in activities `activity`, `step`, `attempt` (and `generation`
    after a continue_as_new), for a JSON formatter to emit. A field the record already has
    (given as `extra`) is kept. Never filters a record out.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in context_fields().items():
            if key not in record.__dict__:
                record.__dict__[key] = value
        return True


class WorkflowLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger for workflow code that stays quiet while the workflow replays.

    `durable.logger` is one (logger name "durable.workflow"); wrap your own logger with
    `durable.WorkflowLogger(logging.getLogger("shop.orders"))`. In workflow code, records
    logged while the run replays recorded steps are dropped, and the others carry
    `workflow_id` and `workflow_name` (see LogContext); in activities they carry the
    activity's fields; elsewhere it logs as the logger it wraps.
    """

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})

    def isEnabledFor(self, level: int) -> bool:
        run = current_run()
        if run is not None and run.replaying:
            return False  # (the record was logged when this stretch of code first ran)
        return self.logger.isEnabledFor(level)

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        fields = context_fields()
        if fields:
            given = kwargs.get("extra")
            kwargs["extra"] = fields if not given else {**fields, **given}
        return msg, kwargs


logger = WorkflowLogger(logging.getLogger("durable.workflow"))
"""Workflow code's logger: quiet during replay, records carry the workflow id (durable.logger)."""
