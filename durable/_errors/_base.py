"""The root of durable's exceptions, and those that belong to no one family."""

from __future__ import annotations


class DurableError(Exception):
    """Root of everything durable raises on purpose."""


class SerializationError(DurableError, TypeError):
    """A value cannot be stored in, or rebuilt from, the journal; nothing was written.

    `target` is set when a recorded value does not fit the annotated type it is rebuilt to
    (on replay); otherwise the value could not be encoded in the first place. `stream` names
    the stream when the value was appended to one (durable.Stream.append).
    """

    stream: str | None = None

    def __init__(
        self,
        *,
        value_type: str,
        context: str,
        detail: str = "",
        activity: str | None = None,
        target: str | None = None,
    ) -> None:
        self.value_type = value_type
        self.context = context
        self.activity = activity
        self.target = target
        where = f"{context} of activity {activity!r}" if activity else context
        extra = f" ({detail})" if detail else ""
        if target is not None:
            message = (
                f"cannot rebuild {where} as {target} from the recorded {value_type}{extra}: "
                "the journal holds a value that does not fit the annotation (did the type "
                "change while the workflow was in flight?). Keep old records readable: give "
                "new fields defaults and keep old enum values, or annotate Any and convert "
                "the value yourself"
            )
        else:
            message = (
                f"cannot store a value of type {value_type} in {where}{extra}: journal "
                "records hold None, bool, int (64-bit), float, str, bytes, list, tuple, dict, "
                "set, frozenset, datetime, date, time, timedelta, Decimal, UUID, Enum members, "
                "dataclasses and pydantic models; convert the value to one of those first"
            )
        super().__init__(message)


class InvalidDuration(DurableError, ValueError):
    """A duration that is not seconds, a timedelta or a string like "30s" or "1h30m"."""


class OutsideWorkflowError(DurableError, RuntimeError):
    """An in-workflow (or in-activity) call made elsewhere."""


class ExtraNotInstalled(DurableError, ImportError):
    """A feature was asked for whose optional dependencies are not installed.

    `feature` names it, `extra` the aiodurable extra that installs them, `missing` the
    module that failed to import.
    """

    def __init__(self, *, feature: str, extra: str, missing: str) -> None:
        self.feature = feature
        self.extra = extra
        self.missing = missing
        super().__init__(
            f"{feature} needs the {extra!r} extra ({missing} could not be imported): "
            f"pip install 'aiodurable[{extra}]', or leave {feature} off"
        )


class SimulatedCrash(BaseException):
    """durable.testing killed the runtime here, as a SIGKILL would; it resumes from the journal.

    A BaseException, like the kill it stands for: workflow and activity code never see it.
    """

    def __init__(self, where: str) -> None:
        super().__init__(f"simulated crash {where}")
        self.where = where
