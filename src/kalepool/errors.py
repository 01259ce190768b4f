"""The root of kalepool's exception tree.

Every error kalepool raises on purpose derives from :class:`KalePoolError`, so a
caller (the API's exception handler, the CLI) can map them in one place. Errors
caused by bad input also derive from :class:`ValueError`.
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
