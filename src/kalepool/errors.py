"""The root of kalepool's exception tree.

Every error kalepool raises on purpose derives from :class:`KalePoolError` and carries a
stable, machine-readable ``code`` (snake case), so a caller (the API's exception handler,
the CLI) maps them in one place. Two branches say the caller must change something:

* :class:`InvalidInput` (also a ``ValueError``): an argument or request field is malformed;
* :class:`ConfigError`: the settings, a key or a file they name are missing or wrong.

The command line prints either as one ``error: ...`` line with exit code 2 (any other
kalepool error: exit code 1); see :func:`kalepool.cli.main`.
"""


class KalePoolError(Exception):
    """Base class of every error kalepool raises deliberately."""

    code: str = "kalepool_error"


class InvalidInput(KalePoolError, ValueError):
    """An argument or a request field is malformed; ``field`` names it."""

    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ConfigError(KalePoolError):
    """The settings are missing, inconsistent or unsafe."""

    code = "config_error"


class NetworkMismatch(ConfigError):
    """Two parts of the pool work on different networks (or the RPC a part reaches is not
    the network it was told): ``fact`` names what differs, ``ours`` (``here``) and
    ``theirs`` (``there``) the two values."""

    code = "network_mismatch"

    def __init__(
        self, fact: str, ours: object, theirs: object, *, here: str = "this process", there: str = "another"
    ) -> None:
        super().__init__(f"{fact}: {here} has {ours!r}, {there} has {theirs!r}")
        self.fact = fact
        self.ours = ours
        self.theirs = theirs


def is_usage_error(exc: BaseException) -> bool:
    """Whether ``exc`` asks the caller to change its input or settings (CLI exit code 2)."""
    return isinstance(exc, ConfigError | ValueError | FileNotFoundError | PermissionError | IsADirectoryError)
