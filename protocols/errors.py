"""Root of Anju's expected-failure tree.

An `AnjuError` carries a message written for the person who must act on it (installer, operator);
the CLI prints it as one line without a traceback. Each boundary subclasses it.
"""


class AnjuError(Exception):
    """An expected failure with an operator-facing message."""


class ConfigError(AnjuError):
    """A configuration file or setting is missing or invalid."""


def swallowed_cancel(exc: BaseException) -> bool:
    """True when `exc` was raised while a cancellation was being handled.

    aiomqtt's `__aexit__` can replace a task's `CancelledError` with an `MqttError` (the
    disconnect failed); a loop that retries on `MqttError` must re-raise the cancellation or it
    never stops.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ == "CancelledError":  # protocols/ does not import asyncio
            return True
        seen = seen.__context__
    return False
