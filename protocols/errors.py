"""Root of Anju's expected-failure tree.

An `AnjuError` carries a message written for the person who must act on it (installer, operator);
the CLI prints it as one line without a traceback. Each boundary subclasses it.
"""


class AnjuError(Exception):
    """An expected failure with an operator-facing message."""


class ConfigError(AnjuError):
    """A configuration file or setting is missing or invalid."""
