"""How a Runtime is told to use OpenTelemetry, and the observer it gets for it.

`Runtime(opentelemetry=True)` (the application's global providers) or
`Runtime(opentelemetry=durable.OpenTelemetry(tracer_provider=..., meter_provider=...))`.
Off by default: then the engine has no observer, each of its few observation points is one
`is None` test, and nothing is journaled for tracing. The implementation (`_otel`) imports
`opentelemetry`, so it is imported here, on demand: durable itself never needs the extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import ExtraNotInstalled

if TYPE_CHECKING:
    from ._otel import OpenTelemetryObserver


@dataclass(frozen=True)
class OpenTelemetry:
    """OpenTelemetry spans and metrics for a Runtime (`Runtime(opentelemetry=...)`).

    Attributes:
        tracer_provider: the TracerProvider for durable's spans (default None: the
            application's global one, `opentelemetry.trace.get_tracer_provider()`, looked up
            through the API's proxy, so a provider set after the Runtime was made is used).
        meter_provider: the MeterProvider for durable's metrics (default None: the global one).
    """

    tracer_provider: Any = None
    meter_provider: Any = None


def observer_for(option: bool | OpenTelemetry) -> OpenTelemetryObserver | None:
    """The runtime's observer for its `opentelemetry` option (None: off).

    Raises:
        ExtraNotInstalled: OpenTelemetry was asked for and opentelemetry-api is missing.
        TypeError: `option` is neither a bool nor an OpenTelemetry.
    """
    if option is False:
        return None
    if option is True:
        option = OpenTelemetry()
    if not isinstance(option, OpenTelemetry):
        raise TypeError(
            f"opentelemetry= takes True, False or a durable.OpenTelemetry, not {option!r}"
        )
    try:
        from ._otel import OpenTelemetryObserver  # noqa: PLC0415 (optional: the otel extra)
    except ImportError as error:
        raise ExtraNotInstalled(
            feature="OpenTelemetry (Runtime(opentelemetry=...))",
            extra="otel",
            missing=error.name or "opentelemetry",
        ) from error
    return OpenTelemetryObserver(option.tracer_provider, option.meter_provider)
